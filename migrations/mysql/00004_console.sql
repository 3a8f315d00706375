-- Ferry store schema v4 (MySQL/MariaDB): the console's users and audit
-- trail (issue 11). *_ms columns are Unix milliseconds from the database's
-- clock.
--
-- users: console users, bcrypt password hashes, role viewer|operator|admin.
-- sessions: login sessions; token_hash is the SHA-256 (hex) of the cookie
--   value, never the value itself.
-- api_tokens: bearer tokens for scripts, stored as SHA-256 (hex) too.
-- audit_log: every change made through the console or the API: who, when,
--   what, before and after (JSON), one batch id for a bulk change.
-- login_throttle: failed logins per key (user name or client address),
--   shared by every replica.
-- version / updated_by on clusters, tasks and apps: optimistic locking, so
--   a stale write is refused naming who changed the row and when.

-- +goose Up
CREATE TABLE users (
  id            BIGINT       NOT NULL AUTO_INCREMENT,
  name          VARCHAR(128) NOT NULL,
  role          VARCHAR(16)  NOT NULL,
  password_hash VARCHAR(128) NOT NULL,
  version       BIGINT       NOT NULL DEFAULT 1,
  created_at_ms BIGINT       NOT NULL,
  updated_at_ms BIGINT       NOT NULL,
  updated_by    VARCHAR(128) NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  UNIQUE KEY uk_users_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
  token_hash    CHAR(64) NOT NULL,
  user_id       BIGINT   NOT NULL,
  created_at_ms BIGINT   NOT NULL,
  expires_at_ms BIGINT   NOT NULL,
  PRIMARY KEY (token_hash),
  KEY idx_sessions_user (user_id),
  KEY idx_sessions_expires (expires_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE api_tokens (
  id              BIGINT       NOT NULL AUTO_INCREMENT,
  user_id         BIGINT       NOT NULL,
  token_hash      CHAR(64)     NOT NULL,
  label           VARCHAR(128) NOT NULL DEFAULT '',
  created_at_ms   BIGINT       NOT NULL,
  last_used_at_ms BIGINT       NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY uk_api_tokens_hash (token_hash),
  KEY idx_api_tokens_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_log (
  id       BIGINT        NOT NULL AUTO_INCREMENT,
  at_ms    BIGINT        NOT NULL,
  actor    VARCHAR(128)  NOT NULL,
  action   VARCHAR(64)   NOT NULL,
  target   VARCHAR(512)  NOT NULL DEFAULT '',
  before_v TEXT          NOT NULL,
  after_v  TEXT          NOT NULL,
  batch_id VARCHAR(64)   NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  KEY idx_audit_at (at_ms),
  KEY idx_audit_target (target(191), id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE login_throttle (
  throttle_key     VARCHAR(255) NOT NULL,
  failures         INT          NOT NULL DEFAULT 0,
  first_failure_ms BIGINT       NOT NULL,
  locked_until_ms  BIGINT       NOT NULL DEFAULT 0,
  PRIMARY KEY (throttle_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE zk_clusters ADD COLUMN version BIGINT NOT NULL DEFAULT 1, ADD COLUMN updated_by VARCHAR(128) NOT NULL DEFAULT '';
ALTER TABLE registry_clusters ADD COLUMN version BIGINT NOT NULL DEFAULT 1, ADD COLUMN updated_by VARCHAR(128) NOT NULL DEFAULT '';
ALTER TABLE sync_tasks ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE apps ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE apps DROP COLUMN version;
ALTER TABLE sync_tasks DROP COLUMN version;
ALTER TABLE registry_clusters DROP COLUMN version, DROP COLUMN updated_by;
ALTER TABLE zk_clusters DROP COLUMN version, DROP COLUMN updated_by;
DROP TABLE login_throttle;
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
