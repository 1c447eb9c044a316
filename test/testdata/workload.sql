-- The mariadb CLI workload of TestMariaDBCLI. @@DB@@, @@INFILE@@ and
-- @@IN_TRANSACTION@@ (the engine's inTransactionSQL) are replaced before it
-- runs; it runs with --force, so the expected errors (a duplicate key, a
-- missing table) are printed and the script goes on.
DROP DATABASE IF EXISTS @@DB@@;
CREATE DATABASE @@DB@@ CHARACTER SET utf8mb4;
USE @@DB@@;
SELECT DATABASE();
CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE,
  qty INT NOT NULL DEFAULT 0, price DECIMAL(10,2), note TEXT) ENGINE=InnoDB;
ALTER TABLE items ADD COLUMN created DATE NULL, ADD INDEX by_qty (qty);
INSERT INTO items (name, qty, price, note) VALUES ('apple', 3, 1.25, 'red'), ('pear', 5, 2.50, NULL),
  ('plum', 0, 0.99, 'tab\there ''quoted'' \\ é😀');
SELECT ROW_COUNT(), LAST_INSERT_ID();
UPDATE items SET qty = qty + 1 WHERE qty > 0;
SELECT ROW_COUNT();
DELETE FROM items WHERE name = 'plum';
SELECT ROW_COUNT();
INSERT INTO items (name) VALUES ('apple');
SELECT * FROM no_such_table;
START TRANSACTION;
INSERT INTO items (name, qty) VALUES ('rolled-back', 1);
SELECT COUNT(*), @@IN_TRANSACTION@@ FROM items;
ROLLBACK;
SELECT COUNT(*), @@IN_TRANSACTION@@ FROM items;
BEGIN;
INSERT INTO items (name, qty) VALUES ('committed', 2);
COMMIT;
SELECT id, name, qty, price, note, created FROM items ORDER BY id;
PREPARE ps FROM 'SELECT name, qty FROM items WHERE qty >= ? ORDER BY id';
SET @q = 2;
EXECUTE ps USING @q;
DEALLOCATE PREPARE ps;
DELIMITER //
SELECT 1 AS one; SELECT 'two' AS two, 2.0 AS num; UPDATE items SET qty = 10 WHERE name = 'apple'; SELECT qty FROM items WHERE name = 'apple'//
CREATE PROCEDURE multi(IN n INT)
BEGIN
  SELECT n AS n, 'first' AS which;
  SELECT id, name FROM items ORDER BY id;
  SELECT COUNT(*) AS cnt, SUM(qty) AS total FROM items;
END//
DELIMITER ;
CALL multi(7);
SELECT 'after call' AS still_in_sync;
CREATE TABLE loaded (id INT PRIMARY KEY, txt VARCHAR(100), bin VARBINARY(100), n DECIMAL(10,3));
LOAD DATA LOCAL INFILE '@@INFILE@@' INTO TABLE loaded CHARACTER SET binary;
SELECT COUNT(*), SUM(n), SUM(CRC32(CONCAT(id, txt, HEX(bin)))) FROM loaded;
SELECT * FROM loaded ORDER BY id LIMIT 5;
SHOW WARNINGS;
SELECT @@IN_TRANSACTION@@, @@autocommit;
