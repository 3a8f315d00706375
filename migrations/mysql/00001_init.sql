-- Ferry store schema v1 (MySQL 8 / MariaDB 10.11).
-- Times that decide ownership (*_ms) are Unix milliseconds set by the
-- database's own clock; audit times are DATETIME(6) in UTC.

-- +goose Up
CREATE TABLE zk_clusters (
  id                 BIGINT        NOT NULL AUTO_INCREMENT,
  name               VARCHAR(128)  NOT NULL,
  connect_string     VARCHAR(1024) NOT NULL,
  root               VARCHAR(255)  NOT NULL DEFAULT '/dubbo',
  session_timeout_ms INT           NOT NULL DEFAULT 30000,
  created_at         DATETIME(6)   NOT NULL,
  updated_at         DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_zk_clusters_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE registry_clusters (
  id          BIGINT        NOT NULL AUTO_INCREMENT,
  name        VARCHAR(128)  NOT NULL,
  kind        VARCHAR(16)   NOT NULL,
  server_list VARCHAR(2048) NOT NULL,
  namespace   VARCHAR(128)  NOT NULL DEFAULT '',
  group_name  VARCHAR(128)  NOT NULL DEFAULT 'DEFAULT_GROUP',
  username    VARCHAR(128)  NOT NULL DEFAULT '',
  password    VARCHAR(256)  NOT NULL DEFAULT '',
  created_at  DATETIME(6)   NOT NULL,
  updated_at  DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_registry_clusters_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sync_tasks (
  id                  BIGINT       NOT NULL AUTO_INCREMENT,
  source_cluster_id   BIGINT       NOT NULL,
  dest_cluster_id     BIGINT       NOT NULL,
  scope               VARCHAR(16)  NOT NULL,
  service             VARCHAR(512) NOT NULL DEFAULT '',
  include_patterns    TEXT         NOT NULL,
  exclude_patterns    TEXT         NOT NULL,
  state               VARCHAR(16)  NOT NULL,
  created_by          VARCHAR(128) NOT NULL DEFAULT '',
  updated_by          VARCHAR(128) NOT NULL DEFAULT '',
  created_at          DATETIME(6)  NOT NULL,
  updated_at          DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  KEY idx_sync_tasks_state (state),
  CONSTRAINT fk_sync_tasks_source FOREIGN KEY (source_cluster_id) REFERENCES zk_clusters (id),
  CONSTRAINT fk_sync_tasks_dest FOREIGN KEY (dest_cluster_id) REFERENCES registry_clusters (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE apps (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  name       VARCHAR(255) NOT NULL,
  mode       VARCHAR(16)  NOT NULL,
  changed_by VARCHAR(128) NOT NULL DEFAULT '',
  changed_at DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_apps_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE workers (
  id              VARCHAR(128) NOT NULL,
  address         VARCHAR(255) NOT NULL DEFAULT '',
  version         VARCHAR(64)  NOT NULL DEFAULT '',
  started_at_ms   BIGINT       NOT NULL,
  heartbeat_at_ms BIGINT       NOT NULL,
  PRIMARY KEY (id),
  KEY idx_workers_heartbeat (heartbeat_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE shard_leases (
  shard         INT          NOT NULL,
  owner         VARCHAR(128) NOT NULL DEFAULT '',
  epoch         BIGINT       NOT NULL DEFAULT 0,
  expires_at_ms BIGINT       NOT NULL DEFAULT 0,
  PRIMARY KEY (shard),
  KEY idx_shard_leases_owner (owner)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE events (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  occurred_at DATETIME(6)  NOT NULL,
  kind        VARCHAR(64)  NOT NULL,
  service     VARCHAR(512) NOT NULL DEFAULT '',
  instance    VARCHAR(255) NOT NULL DEFAULT '',
  worker      VARCHAR(128) NOT NULL DEFAULT '',
  detail      TEXT         NOT NULL,
  PRIMARY KEY (id),
  KEY idx_events_occurred (occurred_at),
  KEY idx_events_kind (kind, occurred_at),
  KEY idx_events_service (service, occurred_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE events;
DROP TABLE shard_leases;
DROP TABLE workers;
DROP TABLE apps;
DROP TABLE sync_tasks;
DROP TABLE registry_clusters;
DROP TABLE zk_clusters;
