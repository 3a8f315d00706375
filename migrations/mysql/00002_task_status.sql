-- Ferry store schema v2 (MySQL/MariaDB): task status written back by the
-- workers (issue 13), one row per task and worker, so that every worker's
-- status API and the console show every task. updated_at_ms is the
-- database's clock in Unix milliseconds; a row older than a few task polls
-- belongs to a worker that stopped writing.

-- +goose Up
CREATE TABLE task_status (
  task_id       BIGINT        NOT NULL,
  worker_id     VARCHAR(128)  NOT NULL,
  running       TINYINT(1)    NOT NULL DEFAULT 0,
  error         VARCHAR(1024) NOT NULL DEFAULT '',
  zk_synced     TINYINT(1)    NOT NULL DEFAULT 0,
  owned_shards  INT           NOT NULL DEFAULT 0,
  kept_shards   INT           NOT NULL DEFAULT 0,
  services      INT           NOT NULL DEFAULT 0,
  desired       INT           NOT NULL DEFAULT 0,
  registered    INT           NOT NULL DEFAULT 0,
  pending       INT           NOT NULL DEFAULT 0,
  updated_at_ms BIGINT        NOT NULL,
  PRIMARY KEY (task_id, worker_id),
  KEY idx_task_status_updated (updated_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE task_status;
