-- Ferry store schema v1 (SQLite). Same tables as mysql/00001_init.sql.
-- Times that decide ownership (*_ms) are Unix milliseconds set by the
-- database's own clock; audit times are DATETIME text in UTC.

-- +goose Up
CREATE TABLE zk_clusters (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  name               TEXT     NOT NULL UNIQUE,
  connect_string     TEXT     NOT NULL,
  root               TEXT     NOT NULL DEFAULT '/dubbo',
  session_timeout_ms INTEGER  NOT NULL DEFAULT 30000,
  created_at         DATETIME NOT NULL,
  updated_at         DATETIME NOT NULL
);

CREATE TABLE registry_clusters (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT     NOT NULL UNIQUE,
  kind        TEXT     NOT NULL,
  server_list TEXT     NOT NULL,
  namespace   TEXT     NOT NULL DEFAULT '',
  group_name  TEXT     NOT NULL DEFAULT 'DEFAULT_GROUP',
  username    TEXT     NOT NULL DEFAULT '',
  password    TEXT     NOT NULL DEFAULT '',
  created_at  DATETIME NOT NULL,
  updated_at  DATETIME NOT NULL
);

CREATE TABLE sync_tasks (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  source_cluster_id INTEGER  NOT NULL REFERENCES zk_clusters (id),
  dest_cluster_id   INTEGER  NOT NULL REFERENCES registry_clusters (id),
  scope             TEXT     NOT NULL,
  service           TEXT     NOT NULL DEFAULT '',
  include_patterns  TEXT     NOT NULL DEFAULT '',
  exclude_patterns  TEXT     NOT NULL DEFAULT '',
  state             TEXT     NOT NULL,
  created_by        TEXT     NOT NULL DEFAULT '',
  updated_by        TEXT     NOT NULL DEFAULT '',
  created_at        DATETIME NOT NULL,
  updated_at        DATETIME NOT NULL
);
CREATE INDEX idx_sync_tasks_state ON sync_tasks (state);

CREATE TABLE apps (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT     NOT NULL UNIQUE,
  mode       TEXT     NOT NULL,
  changed_by TEXT     NOT NULL DEFAULT '',
  changed_at DATETIME NOT NULL
);

CREATE TABLE workers (
  id              TEXT    NOT NULL PRIMARY KEY,
  address         TEXT    NOT NULL DEFAULT '',
  version         TEXT    NOT NULL DEFAULT '',
  started_at_ms   INTEGER NOT NULL,
  heartbeat_at_ms INTEGER NOT NULL
);
CREATE INDEX idx_workers_heartbeat ON workers (heartbeat_at_ms);

CREATE TABLE shard_leases (
  shard         INTEGER NOT NULL PRIMARY KEY,
  owner         TEXT    NOT NULL DEFAULT '',
  epoch         INTEGER NOT NULL DEFAULT 0,
  expires_at_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_shard_leases_owner ON shard_leases (owner);

CREATE TABLE events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  occurred_at DATETIME NOT NULL,
  kind        TEXT     NOT NULL,
  service     TEXT     NOT NULL DEFAULT '',
  instance    TEXT     NOT NULL DEFAULT '',
  worker      TEXT     NOT NULL DEFAULT '',
  detail      TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX idx_events_occurred ON events (occurred_at);
CREATE INDEX idx_events_kind ON events (kind, occurred_at);
CREATE INDEX idx_events_service ON events (service, occurred_at);

-- +goose Down
DROP TABLE events;
DROP TABLE shard_leases;
DROP TABLE workers;
DROP TABLE apps;
DROP TABLE sync_tasks;
DROP TABLE registry_clusters;
DROP TABLE zk_clusters;
