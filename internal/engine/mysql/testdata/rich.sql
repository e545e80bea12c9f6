-- A schema that exercises the MySQL/MariaDB engine: every tricky type,
-- generated columns, triggers, views (with a dependency), routines, an
-- event, a sequence, a table without a key, an empty table and foreign keys.
CREATE TABLE parent (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  label VARCHAR(40) NOT NULL
) ENGINE=InnoDB AUTO_INCREMENT=100;

CREATE TABLE rich (
  id INT NOT NULL AUTO_INCREMENT,
  parent_id INT NULL,
  name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  note TEXT,
  data BLOB,
  flag BIT(1),
  bits BIT(13),
  amount DECIMAL(20,6),
  created DATETIME(6),
  ts TIMESTAMP(3) NULL DEFAULT NULL,
  doc JSON,
  f FLOAT,
  d DOUBLE,
  name_upper VARCHAR(100) AS (UPPER(name)) VIRTUAL,
  amount2 DECIMAL(21,6) AS (amount * 2) STORED,
  latin VARCHAR(20) CHARACTER SET latin1,
  e ENUM('a','b','c'),
  s SET('x','y'),
  u BIGINT UNSIGNED,
  y YEAR,
  dt DATE,
  tm TIME(2),
  fixed CHAR(5),
  vb VARBINARY(16),
  PRIMARY KEY (id),
  KEY idx_name (name),
  UNIQUE KEY uq_fixed (fixed),
  CONSTRAINT fk_rich_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE nopk (
  a VARCHAR(10),
  b INT,
  c BLOB
);

CREATE TABLE empty_table (
  id BIGINT PRIMARY KEY,
  v VARCHAR(10)
);

CREATE TABLE composite (
  k1 VARCHAR(10) NOT NULL,
  k2 INT NOT NULL,
  v TEXT,
  PRIMARY KEY (k1, k2)
);

CREATE TABLE audit_log (
  id INT AUTO_INCREMENT PRIMARY KEY,
  msg VARCHAR(200)
);

CREATE SEQUENCE seq_orders START WITH 1000 INCREMENT BY 5;

CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;

DELIMITER ;;
CREATE PROCEDURE add_parent(IN l VARCHAR(40))
BEGIN
  DECLARE n INT;
  INSERT INTO parent (label) VALUES (l);
  SELECT COUNT(*) INTO n FROM parent;
  SELECT n;
END ;;
CREATE TRIGGER rich_bi BEFORE INSERT ON rich FOR EACH ROW
BEGIN
  SET NEW.note = CONCAT(COALESCE(NEW.note, ''), '');
  INSERT INTO audit_log (msg) VALUES (CONCAT('insert ', COALESCE(NEW.name, 'null')));
END ;;
CREATE TRIGGER rich_bu BEFORE UPDATE ON rich FOR EACH ROW SET NEW.amount = NEW.amount ;;
DELIMITER ;

CREATE VIEW z_base AS SELECT id, name, twice(id) AS dbl FROM rich;
CREATE VIEW a_top AS SELECT id, dbl FROM z_base WHERE dbl > 2;

CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit_log WHERE id < 0;

INSERT INTO parent (label) VALUES ('one'), ('two');

INSERT INTO rich (parent_id, name, note, data, flag, bits, amount, created, ts, doc, f, d, latin, e, s, u, y, dt, tm, fixed, vb) VALUES
 (100, 'emoji 😀🎉 ünïcödé', 'line1\nline2\r\nend\ttab\\back\\\\slash', X'00', b'1', b'1111111111111', 12345678901234.123456, '2024-02-29 23:59:59.999999', '2024-01-01 12:00:00.123', '{"a": [1, 2, {"b": null}], "s": "x\\"y"}', 1.5, 0.1, 'café', 'b', 'x,y', 18446744073709551615, 2024, '2024-02-29', '-838:59:59.00', 'k1', X'00ff10'),
 (101, '', '', X'', b'0', b'0', -0.000001, '1000-01-01 00:00:00.000000', NULL, 'null', -3.25e10, 1.7976931348623157e308, '', 'a', '', 0, 1901, '1000-01-01', '00:00:00.01', 'k2', X''),
 (NULL, 'NULL', 'NULL', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (NULL, NULL, NULL, NULL, NULL, b'1010101010101', 0, NULL, '2038-01-19 03:14:07.999', '[]', 0, -0.0, 'NULL', 'c', 'y', 1, NULL, NULL, NULL, 'k4', NULL),
 (100, '\\N', '\\N', X'5C4E', b'1', b'101', 1, NULL, NULL, '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'k5', X'5c');

INSERT INTO rich (name, f, d, fixed) VALUES ('floats', 16777215, 0.1, 'k6'), ('floats2', 1.2345678, 1e-300, 'k7');

INSERT INTO nopk VALUES ('a', 1, X'01'), ('A', 1, X'01'), ('a', 1, X'01'), (NULL, NULL, NULL), ('', 0, X''), ('b\tc', 2, X'0a0d09');

-- YEAR 0000 and the two-digit forms; ZEROFILL (display only)
CREATE TABLE years (id INT PRIMARY KEY, y YEAR, z INT(5) ZEROFILL, b BIGINT UNSIGNED ZEROFILL);
INSERT INTO years VALUES (1, 0000, 42, 7), (2, 2024, 7, 18446744073709551615), (3, '00', 0, 0), (4, '69', 99999, NULL), (5, NULL, NULL, NULL);

INSERT INTO composite VALUES ('x', 2, 'two'), ('x', 1, 'one'), ('X2', 1, NULL), ('é', 3, 'accent');

DO NEXTVAL(seq_orders);
DO NEXTVAL(seq_orders);
