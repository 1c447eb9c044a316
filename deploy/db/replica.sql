-- First start of a replica: replicate everything the primary ever logged
-- (schema and users included), by GTID.
SET GLOBAL gtid_slave_pos = '';
CHANGE MASTER TO
  MASTER_HOST = '@PRIMARY_HOST@',
  MASTER_PORT = 3306,
  MASTER_USER = 'repl',
  MASTER_PASSWORD = '@REPL_PASSWORD@',
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 1;
