-- Ferry store schema v2 (SQLite). Same table as mysql/00002_task_status.sql.

-- +goose Up
CREATE TABLE task_status (
  task_id       INTEGER NOT NULL,
  worker_id     TEXT    NOT NULL,
  running       INTEGER NOT NULL DEFAULT 0,
  error         TEXT    NOT NULL DEFAULT '',
  zk_synced     INTEGER NOT NULL DEFAULT 0,
  owned_shards  INTEGER NOT NULL DEFAULT 0,
  kept_shards   INTEGER NOT NULL DEFAULT 0,
  services      INTEGER NOT NULL DEFAULT 0,
  desired       INTEGER NOT NULL DEFAULT 0,
  registered    INTEGER NOT NULL DEFAULT 0,
  pending       INTEGER NOT NULL DEFAULT 0,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (task_id, worker_id)
);
CREATE INDEX idx_task_status_updated ON task_status (updated_at_ms);

-- +goose Down
DROP TABLE task_status;
