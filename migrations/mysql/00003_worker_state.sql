-- Ferry store schema v3 (MySQL/MariaDB): the state the console shows and
-- the workers follow (issue 11). *_ms columns are Unix milliseconds; those
-- named updated_at_ms, created_at_ms, expires_at_ms, applied_at_ms come
-- from the database's clock, minute_ms from the writing worker's.
--
-- settings_generation: one row, bumped in the same transaction as every
--   change to clusters, tasks and apps; workers report the generation they
--   applied in workers.applied_generation.
-- commands / command_acks: cluster-wide actions every live worker applies
--   once (an ack row per worker and command).
-- app_counts: per task, worker, app and kind, the owning worker's share;
--   readers sum over workers.
-- service_counts: per task and service, written by the service's owner.
-- worker_metrics: per worker and minute, beats, errors and the
--   ZooKeeper-to-registry lag histogram's bucket counts (JSON array, not
--   cumulative) so quantiles merge across workers.

-- +goose Up
CREATE TABLE settings_generation (
  id         INT    NOT NULL,
  generation BIGINT NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO settings_generation (id, generation) VALUES (1, 1);

ALTER TABLE workers ADD COLUMN applied_generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE commands (
  id            BIGINT       NOT NULL AUTO_INCREMENT,
  kind          VARCHAR(64)  NOT NULL,
  task_id       BIGINT       NOT NULL DEFAULT 0,
  service       VARCHAR(512) NOT NULL DEFAULT '',
  created_by    VARCHAR(128) NOT NULL DEFAULT '',
  created_at_ms BIGINT       NOT NULL,
  expires_at_ms BIGINT       NOT NULL,
  PRIMARY KEY (id),
  KEY idx_commands_expires (expires_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE command_acks (
  command_id    BIGINT        NOT NULL,
  worker_id     VARCHAR(128)  NOT NULL,
  applied_at_ms BIGINT        NOT NULL,
  result        VARCHAR(1024) NOT NULL DEFAULT '',
  error         VARCHAR(1024) NOT NULL DEFAULT '',
  PRIMARY KEY (command_id, worker_id),
  KEY idx_command_acks_worker (worker_id, command_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE app_counts (
  task_id       BIGINT       NOT NULL,
  worker_id     VARCHAR(128) NOT NULL,
  app           VARCHAR(255) NOT NULL,
  kind          VARCHAR(16)  NOT NULL,
  zk            INT          NOT NULL DEFAULT 0,
  synced        INT          NOT NULL DEFAULT 0,
  native        INT          NOT NULL DEFAULT 0,
  failing       INT          NOT NULL DEFAULT 0,
  skipped       TEXT         NOT NULL,
  round         BIGINT       NOT NULL,
  updated_at_ms BIGINT       NOT NULL,
  PRIMARY KEY (task_id, worker_id, app, kind),
  KEY idx_app_counts_updated (updated_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE service_counts (
  task_id       BIGINT       NOT NULL,
  service       VARCHAR(512) NOT NULL,
  worker_id     VARCHAR(128) NOT NULL,
  app           VARCHAR(255) NOT NULL DEFAULT '',
  kind          VARCHAR(16)  NOT NULL,
  zk            INT          NOT NULL DEFAULT 0,
  registry      INT          NOT NULL DEFAULT 0,
  synced        INT          NOT NULL DEFAULT 0,
  native        INT          NOT NULL DEFAULT 0,
  round         BIGINT       NOT NULL,
  updated_at_ms BIGINT       NOT NULL,
  PRIMARY KEY (task_id, service),
  KEY idx_service_counts_worker (worker_id, task_id),
  KEY idx_service_counts_updated (updated_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE worker_metrics (
  worker_id VARCHAR(128) NOT NULL,
  minute_ms BIGINT       NOT NULL,
  beats     BIGINT       NOT NULL DEFAULT 0,
  errors    BIGINT       NOT NULL DEFAULT 0,
  lag       TEXT         NOT NULL,
  PRIMARY KEY (worker_id, minute_ms),
  KEY idx_worker_metrics_minute (minute_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE worker_metrics;
DROP TABLE service_counts;
DROP TABLE app_counts;
DROP TABLE command_acks;
DROP TABLE commands;
ALTER TABLE workers DROP COLUMN applied_generation;
DROP TABLE settings_generation;
