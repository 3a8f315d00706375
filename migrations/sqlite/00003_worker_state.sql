-- Ferry store schema v3 (SQLite). Same tables as mysql/00003_worker_state.sql.

-- +goose Up
CREATE TABLE settings_generation (
  id         INTEGER NOT NULL PRIMARY KEY,
  generation INTEGER NOT NULL
);
INSERT INTO settings_generation (id, generation) VALUES (1, 1);

ALTER TABLE workers ADD COLUMN applied_generation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE commands (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  kind          TEXT    NOT NULL,
  task_id       INTEGER NOT NULL DEFAULT 0,
  service       TEXT    NOT NULL DEFAULT '',
  created_by    TEXT    NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX idx_commands_expires ON commands (expires_at_ms);

CREATE TABLE command_acks (
  command_id    INTEGER NOT NULL,
  worker_id     TEXT    NOT NULL,
  applied_at_ms INTEGER NOT NULL,
  result        TEXT    NOT NULL DEFAULT '',
  error         TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (command_id, worker_id)
);
CREATE INDEX idx_command_acks_worker ON command_acks (worker_id, command_id);

CREATE TABLE app_counts (
  task_id       INTEGER NOT NULL,
  worker_id     TEXT    NOT NULL,
  app           TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  zk            INTEGER NOT NULL DEFAULT 0,
  synced        INTEGER NOT NULL DEFAULT 0,
  native        INTEGER NOT NULL DEFAULT 0,
  failing       INTEGER NOT NULL DEFAULT 0,
  skipped       TEXT    NOT NULL,
  round         INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (task_id, worker_id, app, kind)
);
CREATE INDEX idx_app_counts_updated ON app_counts (updated_at_ms);

CREATE TABLE service_counts (
  task_id       INTEGER NOT NULL,
  service       TEXT    NOT NULL,
  worker_id     TEXT    NOT NULL,
  app           TEXT    NOT NULL DEFAULT '',
  kind          TEXT    NOT NULL,
  zk            INTEGER NOT NULL DEFAULT 0,
  registry      INTEGER NOT NULL DEFAULT 0,
  synced        INTEGER NOT NULL DEFAULT 0,
  native        INTEGER NOT NULL DEFAULT 0,
  round         INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (task_id, service)
);
CREATE INDEX idx_service_counts_worker ON service_counts (worker_id, task_id);
CREATE INDEX idx_service_counts_updated ON service_counts (updated_at_ms);

CREATE TABLE worker_metrics (
  worker_id TEXT    NOT NULL,
  minute_ms INTEGER NOT NULL,
  beats     INTEGER NOT NULL DEFAULT 0,
  errors    INTEGER NOT NULL DEFAULT 0,
  lag       TEXT    NOT NULL,
  PRIMARY KEY (worker_id, minute_ms)
);
CREATE INDEX idx_worker_metrics_minute ON worker_metrics (minute_ms);

-- +goose Down
DROP TABLE worker_metrics;
DROP TABLE service_counts;
DROP TABLE app_counts;
DROP TABLE command_acks;
DROP TABLE commands;
ALTER TABLE workers DROP COLUMN applied_generation;
DROP TABLE settings_generation;
