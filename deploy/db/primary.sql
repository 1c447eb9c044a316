-- First start of the primary. Everything here is binlogged, so the replicas
-- get the schema and the users (Switchyard logs into every backend as the
-- client's own user) through replication.
CREATE DATABASE app CHARACTER SET utf8mb4;
CREATE TABLE app.visits (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  app_server VARCHAR(64) NOT NULL,
  framework VARCHAR(16) NOT NULL,
  note VARCHAR(255) NOT NULL DEFAULT ''
) ENGINE=InnoDB;

-- The application, through Switchyard.
CREATE USER '@APP_USER@'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('@APP_PASSWORD@');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO '@APP_USER@'@'%';
-- Replication.
CREATE USER 'repl'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('@REPL_PASSWORD@');
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
-- Switchyard's health and lag monitor.
CREATE USER 'monitor'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('@MONITOR_PASSWORD@');
GRANT REPLICATION CLIENT, PROCESS, SLAVE MONITOR, SELECT ON *.* TO 'monitor'@'%';
-- Switchyard's switchovers and automatic failover: make servers read-only or
-- writable, promote and repoint replicas, read GTID positions.
CREATE USER 'switchyard'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('@FAILOVER_PASSWORD@');
GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, RELOAD, BINLOG MONITOR, SLAVE MONITOR, REPLICATION CLIENT ON *.* TO 'switchyard'@'%';
-- The Prometheus mysqld exporter, over the local socket only.
CREATE USER 'exporter'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('@EXPORTER_PASSWORD@')
  WITH MAX_USER_CONNECTIONS 3;
GRANT REPLICATION CLIENT, PROCESS, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'localhost';
