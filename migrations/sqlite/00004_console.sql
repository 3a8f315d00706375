-- Ferry store schema v4 (SQLite). Same tables as mysql/00004_console.sql.

-- +goose Up
CREATE TABLE users (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT    NOT NULL UNIQUE,
  role          TEXT    NOT NULL,
  password_hash TEXT    NOT NULL,
  version       INTEGER NOT NULL DEFAULT 1,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  updated_by    TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE sessions (
  token_hash    TEXT    NOT NULL PRIMARY KEY,
  user_id       INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX idx_sessions_user ON sessions (user_id);
CREATE INDEX idx_sessions_expires ON sessions (expires_at_ms);

CREATE TABLE api_tokens (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id         INTEGER NOT NULL,
  token_hash      TEXT    NOT NULL UNIQUE,
  label           TEXT    NOT NULL DEFAULT '',
  created_at_ms   INTEGER NOT NULL,
  last_used_at_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_api_tokens_user ON api_tokens (user_id);

CREATE TABLE audit_log (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms    INTEGER NOT NULL,
  actor    TEXT    NOT NULL,
  action   TEXT    NOT NULL,
  target   TEXT    NOT NULL DEFAULT '',
  before_v TEXT    NOT NULL,
  after_v  TEXT    NOT NULL,
  batch_id TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX idx_audit_at ON audit_log (at_ms);
CREATE INDEX idx_audit_target ON audit_log (target, id);

CREATE TABLE login_throttle (
  throttle_key     TEXT    NOT NULL PRIMARY KEY,
  failures         INTEGER NOT NULL DEFAULT 0,
  first_failure_ms INTEGER NOT NULL,
  locked_until_ms  INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE zk_clusters ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE zk_clusters ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
ALTER TABLE registry_clusters ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE registry_clusters ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_tasks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE apps ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE apps DROP COLUMN version;
ALTER TABLE sync_tasks DROP COLUMN version;
ALTER TABLE registry_clusters DROP COLUMN updated_by;
ALTER TABLE registry_clusters DROP COLUMN version;
ALTER TABLE zk_clusters DROP COLUMN updated_by;
ALTER TABLE zk_clusters DROP COLUMN version;
DROP TABLE login_throttle;
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
