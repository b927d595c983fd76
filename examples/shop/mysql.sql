-- lookout example shop for MySQL 8 / MariaDB 10.4+: the tables and indexes of the
-- `lookout demo` database, filled with a deterministic sample (20,000 users and wallets,
-- 150,150 wallet transactions over the last 30 days, 30,040 orders with their payments,
-- 300 products, 1,503 group buys, a week of logins, the last hour of API requests).
--
--   mysql -u root < examples/shop/mysql.sql          # creates and fills `shop`
--
-- To load into another database, drop the CREATE DATABASE and USE lines and run
-- `mysql -u root OTHER_DB < mysql.sql`. Loading again starts over (tables are dropped).
--
-- Times are DATETIME in UTC (lookout's sessions use time_zone '+00:00'; the queries in
-- lookout.yaml compare with UTC_TIMESTAMP()). Money is USDT. Pseudo-random values come
-- from CRC32 of the row number, so every load gives the same data relative to its time.

CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop;

DROP TABLE IF EXISTS access_log, login_attempts, payments, orders, group_buys, products,
  transactions, wallets, users, seq;

CREATE TABLE users (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username       VARCHAR(64) NOT NULL,
  phone          VARCHAR(20) NOT NULL,
  level          VARCHAR(16) NOT NULL COMMENT 'normal, vip, star_1 … star_5, director',
  status         VARCHAR(16) NOT NULL COMMENT 'active, inactive, banned',
  created_at     DATETIME NOT NULL,
  last_login_at  DATETIME NULL,
  deleted_at     DATETIME NULL,
  KEY users_level_status (deleted_at, level, status),
  KEY users_activity (deleted_at, last_login_at, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE wallets (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id         BIGINT UNSIGNED NOT NULL,
  currency        VARCHAR(10) NOT NULL DEFAULT 'USDT',
  address         VARCHAR(64) NOT NULL,
  balance         DECIMAL(20, 2) NOT NULL DEFAULT 0,
  frozen_balance  DECIMAL(20, 2) NOT NULL DEFAULT 0,
  status          VARCHAR(16) NOT NULL COMMENT 'active, frozen, closed',
  created_at      DATETIME NOT NULL,
  updated_at      DATETIME NOT NULL,
  KEY wallets_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE transactions (
  id                      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  wallet_id               BIGINT UNSIGNED NOT NULL,
  counterparty_wallet_id  BIGINT UNSIGNED NULL,
  type                    VARCHAR(16) NOT NULL COMMENT 'deposit, withdraw, transfer',
  amount                  DECIMAL(20, 2) NOT NULL,
  fee                     DECIMAL(20, 2) NOT NULL DEFAULT 0,
  status                  VARCHAR(16) NOT NULL COMMENT 'pending, confirmed, failed',
  tx_hash                 CHAR(64) NULL,
  created_at              DATETIME NOT NULL,
  confirmed_at            DATETIME NULL,
  KEY transactions_created (created_at, type, status, amount),
  KEY transactions_wallet (wallet_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE products (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  sku         VARCHAR(32) NOT NULL,
  name        VARCHAR(128) NOT NULL,
  category    VARCHAR(32) NOT NULL,
  price       DECIMAL(12, 2) NOT NULL,
  stock       INT NOT NULL,
  status      VARCHAR(16) NOT NULL COMMENT 'on_sale, off_shelf',
  updated_at  DATETIME NOT NULL,
  UNIQUE KEY products_sku (sku),
  KEY products_status_stock (status, stock)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE group_buys (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  product_id      BIGINT UNSIGNED NOT NULL,
  required_count  INT NOT NULL,
  current_count   INT NOT NULL,
  status          VARCHAR(16) NOT NULL COMMENT 'open, success, failed',
  created_at      DATETIME NOT NULL,
  expire_at       DATETIME NOT NULL,
  KEY group_buys_status_expire (status, expire_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE orders (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id       BIGINT UNSIGNED NOT NULL,
  product_id    BIGINT UNSIGNED NOT NULL,
  group_buy_id  BIGINT UNSIGNED NULL,
  quantity      INT NOT NULL,
  amount        DECIMAL(20, 2) NOT NULL,
  status        VARCHAR(16) NOT NULL COMMENT 'pending_payment, paid, shipped, completed, cancelled, refunded',
  created_at    DATETIME NOT NULL,
  paid_at       DATETIME NULL,
  updated_at    DATETIME NOT NULL,
  KEY orders_status_created (status, created_at),
  KEY orders_created (created_at, status, amount)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE payments (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id    BIGINT UNSIGNED NOT NULL,
  method      VARCHAR(16) NOT NULL COMMENT 'wallet, alipay, wechat, card',
  amount      DECIMAL(20, 2) NOT NULL,
  status      VARCHAR(16) NOT NULL COMMENT 'success, failed',
  error_code  VARCHAR(32) NULL,
  created_at  DATETIME NOT NULL,
  KEY payments_method_status (method, status),
  KEY payments_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE login_attempts (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id     BIGINT UNSIGNED NULL,
  username    VARCHAR(64) NOT NULL,
  ip          VARCHAR(45) NOT NULL,
  success     BOOLEAN NOT NULL,
  reason      VARCHAR(32) NULL,
  created_at  DATETIME NOT NULL,
  KEY login_attempts_success_created (success, created_at, ip)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE access_log (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ip           VARCHAR(45) NOT NULL,
  method       VARCHAR(8) NOT NULL,
  path         VARCHAR(255) NOT NULL,
  status       SMALLINT NOT NULL,
  duration_ms  INT NOT NULL,
  created_at   DATETIME NOT NULL,
  KEY access_log_created (created_at, ip)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- ---------------------------------------------------------------------------------------
-- Sample data
-- ---------------------------------------------------------------------------------------

SET @now = UTC_TIMESTAMP();
-- Beijing (UTC+8) midnight, in UTC: "today" for the queries.
SET @today = DATE(@now + INTERVAL 8 HOUR) - INTERVAL 8 HOUR;

-- Row numbers 0 … 199,999.
CREATE TABLE seq (n INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO seq (n)
SELECT d0.d + 10 * d1.d + 100 * d2.d + 1000 * d3.d + 10000 * d4.d + 100000 * d5.d
FROM (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d0
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d1
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d2
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d3
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS d4
CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1) AS d5;

-- Users: a year of sign-ups, growing towards today.
INSERT INTO users (id, username, phone, level, status, created_at, last_login_at, deleted_at)
SELECT id,
       CONCAT('user', LPAD(id, 5, '0')),
       CONCAT(ELT(1 + rp % 6, '138', '139', '186', '135', '177', '150'), LPAD(rp % 100000000, 8, '0')),
       CASE WHEN lv < 6000 THEN 'normal' WHEN lv < 8500 THEN 'vip' WHEN lv < 9100 THEN 'star_1'
            WHEN lv < 9500 THEN 'star_2' WHEN lv < 9750 THEN 'star_3' WHEN lv < 9880 THEN 'star_4'
            WHEN lv < 9950 THEN 'star_5' ELSE 'director' END,
       CASE WHEN st < 90 THEN 'active' WHEN st < 98 THEN 'inactive' ELSE 'banned' END,
       created_at,
       CASE WHEN st < 90 AND lr < 35 THEN GREATEST(created_at, @now - INTERVAL (r1 % 86400) SECOND)
            WHEN st < 90 AND lr < 85 THEN GREATEST(created_at, @now - INTERVAL (r1 % 2592000) SECOND)
            WHEN lr < 80 THEN created_at + INTERVAL (r1 % GREATEST(TIMESTAMPDIFF(SECOND, created_at, @now), 1)) SECOND
       END,
       CASE WHEN r2 % 100 = 0 THEN GREATEST(created_at, @now - INTERVAL (r2 % 2592000) SECOND) END
FROM (
  SELECT n + 1 AS id,
         @now - INTERVAL FLOOR(POW((20000 - n) / 20000, 1.3) * 31536000) SECOND AS created_at,
         CRC32(CONCAT(n, 'level')) % 10000 AS lv,
         CRC32(CONCAT(n, 'status')) % 100 AS st,
         CRC32(CONCAT(n, 'login')) % 100 AS lr,
         CRC32(CONCAT(n, 'r1')) AS r1,
         CRC32(CONCAT(n, 'r2')) AS r2,
         CRC32(CONCAT(n, 'phone')) AS rp
  FROM seq WHERE n < 20000
) AS u;

-- One USDT wallet per user: 15 % empty, 1.5 % over 10,000 USDT, the rest log-normal.
INSERT INTO wallets (id, user_id, currency, address, balance, frozen_balance, status, created_at, updated_at)
SELECT id, id, 'USDT', address, balance,
       CASE WHEN balance > 0 AND fr % 100 < 6 THEN ROUND(balance * (0.05 + 0.45 * (fr2 / 4294967296)), 2) ELSE 0 END,
       CASE WHEN ws < 95 THEN 'active' WHEN ws < 99 THEN 'frozen' ELSE 'closed' END,
       created_at,
       GREATEST(created_at, @now - INTERVAL (fr2 % 2592000) SECOND)
FROM (
  SELECT id, created_at, fr, fr2, ws,
         CONCAT('T', REPLACE(SUBSTR(CONCAT(MD5(CONCAT(id, 'a')), MD5(CONCAT(id, 'b'))), 1, 33), '0', 'z')) AS address,
         CASE WHEN b < 150 THEN 0
              WHEN b < 165 THEN ROUND(10001 + (bx % 24000000) / 100, 2)
              ELSE ROUND(LEAST(GREATEST(300 * EXP(1.3 * SQRT(-2 * LN((g1 + 0.5) / 4294967296)) * COS(2 * PI() * g2 / 4294967296)), 0.01), 9999), 2)
         END AS balance
  FROM (
    SELECT id, created_at,
           CRC32(CONCAT(id, 'b')) % 1000 AS b, CRC32(CONCAT(id, 'bx')) AS bx,
           CRC32(CONCAT(id, 'g1')) AS g1, CRC32(CONCAT(id, 'g2')) AS g2,
           CRC32(CONCAT(id, 'fr')) AS fr, CRC32(CONCAT(id, 'fr2')) AS fr2,
           CRC32(CONCAT(id, 'ws')) % 100 AS ws
    FROM users
  ) AS r
) AS w;

-- Transactions: 150,000 over 30 days plus 150 in the last 15 minutes (never before
-- today's Beijing midnight); 45 % deposits, 25 % withdrawals, 30 % transfers; one in 500
-- over 10,000 USDT; 2.5 % failed; the last two minutes partly still pending.
INSERT INTO transactions (wallet_id, counterparty_wallet_id, type, amount, fee, status, tx_hash, created_at, confirmed_at)
SELECT wallet_id,
       CASE WHEN type = 'transfer' THEN cp END,
       type, amount,
       CASE WHEN type = 'withdraw' THEN 1 ELSE 0 END,
       status,
       CASE WHEN type <> 'transfer' AND status <> 'failed' THEN SHA2(CONCAT(n, 'hash'), 256) END,
       created_at,
       CASE WHEN status = 'confirmed' THEN LEAST(created_at + INTERVAL (5 + r3 % 595) SECOND, @now) END
FROM (
  SELECT n, wallet_id, cp, type, created_at, r3,
         CASE WHEN big = 0 THEN ROUND(10001 + (r3 % 3000000) / 100, 2)
              ELSE ROUND(LEAST(GREATEST(
                     CASE type WHEN 'deposit' THEN 250 WHEN 'withdraw' THEN 200 ELSE 80 END
                     * EXP(CASE type WHEN 'deposit' THEN 1.1 WHEN 'withdraw' THEN 1.0 ELSE 1.2 END * z),
                     CASE type WHEN 'transfer' THEN 1 ELSE 10 END), 9500), 2)
         END AS amount,
         CASE WHEN TIMESTAMPDIFF(SECOND, created_at, @now) < 120 AND sr < 450 THEN 'pending'
              WHEN sr < 25 THEN 'failed'
              ELSE 'confirmed' END AS status
  FROM (
    SELECT n,
           1 + CRC32(CONCAT(n, 'w')) % 20000 AS wallet_id,
           1 + CRC32(CONCAT(n, 'c')) % 20000 AS cp,
           CASE WHEN CRC32(CONCAT(n, 'k')) % 100 < 45 THEN 'deposit'
                WHEN CRC32(CONCAT(n, 'k')) % 100 < 70 THEN 'withdraw'
                ELSE 'transfer' END AS type,
           CASE WHEN n < 150 THEN GREATEST(@today, @now - INTERVAL (CRC32(CONCAT(n, 't')) % 900) SECOND)
                ELSE @now - INTERVAL (CRC32(CONCAT(n, 't')) % 2592000) SECOND END AS created_at,
           CRC32(CONCAT(n, 'big')) % 500 AS big,
           CRC32(CONCAT(n, 's')) % 1000 AS sr,
           CRC32(CONCAT(n, 'r3')) AS r3,
           SQRT(-2 * LN((CRC32(CONCAT(n, 'z1')) + 0.5) / 4294967296))
             * COS(2 * PI() * CRC32(CONCAT(n, 'z2')) / 4294967296) AS z
    FROM seq WHERE n < 150150
  ) AS a
) AS t
ORDER BY created_at;

-- Products: fresh food; every 25th is running low.
INSERT INTO products (id, sku, name, category, price, stock, status, updated_at)
SELECT id,
       CONCAT('SKU-', LPAD(id, 5, '0')),
       CONCAT(ELT(1 + k, '阳光玫瑰葡萄', '赣南脐橙', '海南贵妃芒', '云南蓝莓', '烟台红富士苹果', '丹东草莓',
                  '智利车厘子', '新疆哈密瓜', '有机菠菜', '山东大葱', '云南小番茄', '有机西兰花', '五常大米',
                  '东北黑木耳', '宁夏枸杞', '内蒙古羊排', '散养土鸡蛋', '鲜牛奶', '舟山带鱼', '阳澄湖大闸蟹',
                  '厄瓜多尔白虾', '西湖龙井', '云南普洱', '土蜂蜜'),
              ' ', ELT(1 + sz, '500g', '1kg', '2kg', '2.5kg', '5kg', '礼盒装', '家庭装', '12枚')),
       ELT(1 + k, '水果', '水果', '水果', '水果', '水果', '水果', '水果', '水果', '蔬菜', '蔬菜', '蔬菜', '蔬菜',
           '粮油', '干货', '干货', '肉禽', '蛋奶', '蛋奶', '水产', '水产', '水产', '茶饮', '茶饮', '滋补'),
       ROUND(LEAST(GREATEST(40 * EXP(0.8 * z), 3), 800), 2),
       CASE WHEN id % 25 = 7 THEN r % 10 ELSE 30 + r % 970 END,
       CASE WHEN id % 25 = 7 OR r2 % 100 >= 5 THEN 'on_sale' ELSE 'off_shelf' END,
       @now - INTERVAL (r2 % 604800) SECOND
FROM (
  SELECT n + 1 AS id,
         CRC32(CONCAT(n, 'name')) % 24 AS k,
         CRC32(CONCAT(n, 'size')) % 8 AS sz,
         CRC32(CONCAT(n, 'stock')) AS r,
         CRC32(CONCAT(n, 'p2')) AS r2,
         SQRT(-2 * LN((CRC32(CONCAT(n, 'z1')) + 0.5) / 4294967296))
           * COS(2 * PI() * CRC32(CONCAT(n, 'z2')) / 4294967296) AS z
  FROM seq WHERE n < 300
) AS p;

-- Group buys: open for a day; 65 % of the finished ones succeeded.
INSERT INTO group_buys (product_id, required_count, current_count, status, created_at, expire_at)
SELECT product_id, required,
       CASE WHEN status = 'success' THEN required ELSE 1 + r % (required - 1) END,
       status, created_at, created_at + INTERVAL 1 DAY
FROM (
  SELECT 1 + CRC32(CONCAT(n, 'gp')) % 300 AS product_id,
         3 + CRC32(CONCAT(n, 'gq')) % 8 AS required,
         CRC32(CONCAT(n, 'gc')) AS r,
         created_at,
         CASE WHEN created_at + INTERVAL 1 DAY > @now THEN 'open'
              WHEN CRC32(CONCAT(n, 'gs')) % 100 < 65 THEN 'success'
              ELSE 'failed' END AS status
  FROM (SELECT n, @now - INTERVAL (CRC32(CONCAT(n, 'gt')) % 2592000) SECOND AS created_at
        FROM seq WHERE n < 1500) AS s
) AS g
ORDER BY created_at;

-- Three group buys past their expiry that the settling job has not closed yet.
INSERT INTO group_buys (product_id, required_count, current_count, status, created_at, expire_at)
SELECT 1 + n * 37, 5, 2, 'open', expire_at - INTERVAL 1 DAY, expire_at
FROM (SELECT n, @now - INTERVAL (60 + n * 300) SECOND AS expire_at FROM seq WHERE n < 3) AS e;

-- Orders: 30,000 over 30 days plus 40 in the last 15 minutes; status by age.
INSERT INTO orders (user_id, product_id, quantity, amount, status, created_at, paid_at, updated_at)
SELECT o.user_id, o.product_id, o.quantity, ROUND(p.price * o.quantity, 2), o.status, o.created_at,
       o.paid_at, COALESCE(o.paid_at, o.created_at)
FROM (
  SELECT user_id, product_id, quantity, status, created_at,
         CASE WHEN status NOT IN ('pending_payment', 'cancelled')
              THEN LEAST(created_at + INTERVAL (20 + r % 880) SECOND, @now) END AS paid_at
  FROM (
    SELECT user_id, product_id, quantity, created_at, r,
           CASE WHEN age < 1800 THEN IF(roll < 25, 'pending_payment', 'paid')
                WHEN age < 7200 THEN CASE WHEN roll < 3 THEN 'pending_payment' WHEN roll < 15 THEN 'cancelled' ELSE 'paid' END
                WHEN age < 172800 THEN CASE WHEN roll < 12 THEN 'cancelled' WHEN roll < 15 THEN 'refunded'
                                            WHEN roll < 35 THEN 'paid' ELSE 'shipped' END
                ELSE CASE WHEN roll < 12 THEN 'cancelled' WHEN roll < 17 THEN 'refunded' ELSE 'completed' END
           END AS status
    FROM (
      SELECT 1 + CRC32(CONCAT(n, 'ou')) % 20000 AS user_id,
             1 + CRC32(CONCAT(n, 'op')) % 300 AS product_id,
             CASE WHEN CRC32(CONCAT(n, 'oq')) % 10 < 7 THEN 1 WHEN CRC32(CONCAT(n, 'oq')) % 10 < 9 THEN 2 ELSE 3 END AS quantity,
             created_at,
             TIMESTAMPDIFF(SECOND, created_at, @now) AS age,
             CRC32(CONCAT(n, 'or')) % 100 AS roll,
             CRC32(CONCAT(n, 'oa')) AS r
      FROM (SELECT n,
                   CASE WHEN n < 40 THEN GREATEST(@today, @now - INTERVAL (CRC32(CONCAT(n, 'ot')) % 900) SECOND)
                        ELSE @now - INTERVAL (CRC32(CONCAT(n, 'ot')) % 2592000) SECOND END AS created_at
            FROM seq WHERE n < 30040) AS s
    ) AS a
  ) AS b
) AS o
JOIN products AS p ON p.id = o.product_id
ORDER BY o.created_at;

-- Payments: a failed attempt before 6 % of the paid orders and half the cancelled ones,
-- then the successful payment of every paid order.
INSERT INTO payments (order_id, method, amount, status, error_code, created_at)
SELECT id, method, amount, status, error_code, created_at
FROM (
  SELECT id,
         CASE WHEN m < 40 THEN 'wallet' WHEN m < 70 THEN 'alipay' WHEN m < 95 THEN 'wechat' ELSE 'card' END AS method,
         amount, 'failed' AS status,
         ELT(1 + e % 4, 'INSUFFICIENT_BALANCE', 'GATEWAY_TIMEOUT', 'RISK_REJECTED', 'USER_CANCELLED') AS error_code,
         LEAST(created_at + INTERVAL (10 + e % 50) SECOND, @now) AS created_at,
         (paid_at IS NOT NULL AND f < 6) OR (status = 'cancelled' AND f < 50) AS attempted
  FROM (SELECT o.*, CRC32(CONCAT(id, 'pm')) % 100 AS m, CRC32(CONCAT(id, 'pf')) % 100 AS f,
               CRC32(CONCAT(id, 'pe')) AS e
        FROM orders AS o) AS x
) AS failed
WHERE attempted
UNION ALL
SELECT id,
       CASE WHEN CRC32(CONCAT(id, 'pm')) % 100 < 40 THEN 'wallet' WHEN CRC32(CONCAT(id, 'pm')) % 100 < 70 THEN 'alipay'
            WHEN CRC32(CONCAT(id, 'pm')) % 100 < 95 THEN 'wechat' ELSE 'card' END,
       amount, 'success', NULL, paid_at
FROM orders
WHERE paid_at IS NOT NULL
ORDER BY created_at;

-- Logins: a week, 94 % successful, mostly from each user's usual address; plus a
-- password-guessing run from one address in the last four minutes and a slower one.
INSERT INTO login_attempts (user_id, username, ip, success, reason, created_at)
SELECT user_id, CONCAT('user', LPAD(user_id, 5, '0')),
       IF(home, CONCAT(ELT(1 + user_id % 10, '36', '58', '101', '112', '113', '117', '120', '183', '218', '223'),
                       '.', CRC32(CONCAT(user_id, 'b')) % 256, '.', CRC32(CONCAT(user_id, 'c')) % 256,
                       '.', 1 + CRC32(CONCAT(user_id, 'd')) % 254),
                CONCAT(ELT(1 + r % 10, '36', '58', '101', '112', '113', '117', '120', '183', '218', '223'),
                       '.', (r >> 8) % 256, '.', (r >> 16) % 256, '.', 1 + (r >> 24) % 254)),
       success,
       CASE WHEN NOT success THEN ELT(1 + r % 10, 'bad_password', 'bad_password', 'bad_password', 'bad_password',
                                      'bad_password', 'bad_password', 'bad_password', 'bad_password',
                                      'unknown_user', 'captcha') END,
       created_at
FROM (
  SELECT 1 + CRC32(CONCAT(n, 'lu')) % 20000 AS user_id,
         CRC32(CONCAT(n, 'ls')) % 100 < 94 AS success,
         CRC32(CONCAT(n, 'lh')) % 100 < 75 AS home,
         CRC32(CONCAT(n, 'lr')) AS r,
         @now - INTERVAL (CRC32(CONCAT(n, 'lt')) % 604800) SECOND AS created_at
  FROM seq WHERE n < 40000
) AS l
ORDER BY created_at;

INSERT INTO login_attempts (user_id, username, ip, success, reason, created_at)
SELECT NULL, CONCAT('user', LPAD(1 + CRC32(CONCAT(n, 'bu')) % 20000, 5, '0')),
       IF(n < 14, '203.0.113.77', '198.51.100.23'), FALSE, 'bad_password',
       @now - INTERVAL (CRC32(CONCAT(n, 'bt')) % 240) SECOND
FROM seq WHERE n < 20;

-- API requests: the last hour from 400 clients, a few of them much busier.
INSERT INTO access_log (ip, method, path, status, duration_ms, created_at)
SELECT CONCAT(ELT(1 + CRC32(CONCAT(c, 'o')) % 10, '36', '58', '101', '112', '113', '117', '120', '183', '218', '223'),
              '.', CRC32(CONCAT(c, 'b')) % 256, '.', CRC32(CONCAT(c, 'c')) % 256, '.', 1 + CRC32(CONCAT(c, 'd')) % 254),
       ELT(1 + pth, 'GET', 'GET', 'GET', 'GET', 'POST', 'GET', 'POST', 'POST', 'POST', 'POST'),
       ELT(1 + pth, '/api/v1/products', '/api/v1/products/{id}', '/api/v1/wallet', '/api/v1/wallet/transactions',
           '/api/v1/orders', '/api/v1/orders', '/api/v1/payments', '/api/v1/group-buys/{id}/join',
           '/api/v1/auth/login', '/api/v1/wallet/withdraw'),
       CASE WHEN s < 940 THEN 200 WHEN s < 965 THEN 201 WHEN s < 977 THEN 400 WHEN s < 987 THEN 401
            WHEN s < 995 THEN 404 ELSE 500 END,
       GREATEST(1, ROUND(45 * EXP(0.7 * z))),
       created_at
FROM (
  SELECT FLOOR(POW(CRC32(CONCAT(n, 'ac')) / 4294967296, 3) * 400) AS c,
         CRC32(CONCAT(n, 'ap')) % 10 AS pth,
         CRC32(CONCAT(n, 'as')) % 1000 AS s,
         SQRT(-2 * LN((CRC32(CONCAT(n, 'z1')) + 0.5) / 4294967296))
           * COS(2 * PI() * CRC32(CONCAT(n, 'z2')) / 4294967296) AS z,
         @now - INTERVAL (CRC32(CONCAT(n, 'at')) % 3600) SECOND AS created_at
  FROM seq WHERE n < 30000
) AS a
ORDER BY created_at;

DROP TABLE seq;
ANALYZE TABLE users, wallets, transactions, products, group_buys, orders, payments, login_attempts, access_log;
