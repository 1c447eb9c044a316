-- Tables that the statements of router/testdata/classify.golden read, created
-- before them by TestOracleProject so that the server runs those reads instead of
-- failing on a missing table. The golden table's statements were captured from
-- sessions whose tables existed, or written by hand; these definitions are made
-- up from the columns the statements name.
CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50), a INT, b INT, c INT, d INT,
  price DECIMAL(10,2), doc JSON, dyn BLOB, title VARCHAR(100), body TEXT, `for` INT, `update` INT,
  get_lock INT, `values` INT, KEY idx_a (a), FULLTEXT KEY ft (title, body)) WITH SYSTEM VERSIONING;
INSERT INTO t (name, a, b, c, d, price, doc, title, body) VALUES
  ('ann', 1, 2, 3, 4, 1.50, '{"a": 1, "b": 2}', 'db', 'a database'),
  ('bob', 2, 3, NULL, 5, 2.00, '{"a": 2}', 'go', 'a language');
CREATE TABLE t1 (id INT PRIMARY KEY, a INT, b INT, for_update INT);
CREATE TABLE t2 (id INT PRIMARY KEY, a INT, b INT);
CREATE TABLE t3 (id INT PRIMARY KEY, b INT);
INSERT INTO t1 VALUES (1, 1, 1, 1), (2, 2, 2, 0);
INSERT INTO t2 VALUES (1, 1, 1);
CREATE TABLE users (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50));
CREATE TABLE addresses (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100), user_id INT);
INSERT INTO users (name) VALUES ('ann');
CREATE TABLE kv (k VARCHAR(20) PRIMARY KEY, v VARCHAR(100));
CREATE TABLE sbtest1 (id INT PRIMARY KEY AUTO_INCREMENT, k INT NOT NULL DEFAULT 0,
  c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k));
INSERT INTO sbtest1 (k, c, pad) SELECT seq % 100, 'c', 'pad' FROM seq_1_to_200;
CREATE TABLE shop_category (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50) NOT NULL UNIQUE);
CREATE TABLE shop_product (id INT PRIMARY KEY AUTO_INCREMENT, category_id INT NOT NULL, name VARCHAR(100),
  price DECIMAL(10,2), stock INT, created DATETIME(6));
CREATE TABLE auth_user (id INT PRIMARY KEY AUTO_INCREMENT, password VARCHAR(128), last_login DATETIME(6),
  is_superuser BOOL, username VARCHAR(150) UNIQUE, first_name VARCHAR(150), last_name VARCHAR(150),
  email VARCHAR(254), is_staff BOOL, is_active BOOL, date_joined DATETIME(6));
