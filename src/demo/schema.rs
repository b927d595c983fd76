//! The demo shop's SQLite schema: tables, the indexes the demo queries rely on, and the
//! schema version kept in `PRAGMA user_version`.
//!
//! Times are Unix seconds (UTC) in INTEGER columns, money is USDT in REAL columns. The
//! indexes are created after the bulk load (faster than maintaining them row by row); each
//! one serves a demo query in `demo.yaml` as a covering or range index.

/// Bumped whenever the tables, the indexes or the seed change; an older file is rebuilt.
pub(super) const VERSION: i32 = 1;

/// The tables, created empty.
pub(super) const TABLES: &str = "
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT NOT NULL,
    phone          TEXT NOT NULL,
    level          TEXT NOT NULL,     -- normal, vip, star_1 … star_5, director
    status         TEXT NOT NULL,     -- active, inactive, banned
    created_at     INTEGER NOT NULL,
    last_login_at  INTEGER,
    deleted_at     INTEGER
);
CREATE TABLE wallets (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    currency        TEXT NOT NULL DEFAULT 'USDT',
    address         TEXT NOT NULL,
    balance         REAL NOT NULL DEFAULT 0,
    frozen_balance  REAL NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,    -- active, frozen, closed
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE TABLE transactions (
    id                      INTEGER PRIMARY KEY,
    wallet_id               INTEGER NOT NULL REFERENCES wallets (id),
    counterparty_wallet_id  INTEGER REFERENCES wallets (id),
    type                    TEXT NOT NULL,   -- deposit, withdraw, transfer
    amount                  REAL NOT NULL,
    fee                     REAL NOT NULL DEFAULT 0,
    status                  TEXT NOT NULL,   -- pending, confirmed, failed
    tx_hash                 TEXT,
    created_at              INTEGER NOT NULL,
    confirmed_at            INTEGER
);
CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    price       REAL NOT NULL,
    stock       INTEGER NOT NULL,
    status      TEXT NOT NULL,           -- on_sale, off_shelf
    updated_at  INTEGER NOT NULL
);
CREATE TABLE group_buys (
    id              INTEGER PRIMARY KEY,
    product_id      INTEGER NOT NULL REFERENCES products (id),
    required_count  INTEGER NOT NULL,
    current_count   INTEGER NOT NULL,
    status          TEXT NOT NULL,       -- open, success, failed
    created_at      INTEGER NOT NULL,
    expire_at       INTEGER NOT NULL
);
CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    product_id    INTEGER NOT NULL REFERENCES products (id),
    group_buy_id  INTEGER REFERENCES group_buys (id),
    quantity      INTEGER NOT NULL,
    amount        REAL NOT NULL,
    status        TEXT NOT NULL,   -- pending_payment, paid, shipped, completed, cancelled, refunded
    created_at    INTEGER NOT NULL,
    paid_at       INTEGER,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE payments (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    method      TEXT NOT NULL,       -- wallet, alipay, wechat, card
    amount      REAL NOT NULL,
    status      TEXT NOT NULL,       -- success, failed
    error_code  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE TABLE login_attempts (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER,
    username    TEXT NOT NULL,
    ip          TEXT NOT NULL,
    success     INTEGER NOT NULL,    -- 1 or 0
    reason      TEXT,                -- why a failed attempt failed
    created_at  INTEGER NOT NULL
);
CREATE TABLE access_log (
    id           INTEGER PRIMARY KEY,
    ip           TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
";

/// The indexes, created after the bulk load.
pub(super) const INDEXES: &str = "
CREATE INDEX users_level_status ON users (level, status) WHERE deleted_at IS NULL;
CREATE INDEX wallets_user ON wallets (user_id);
CREATE INDEX transactions_created ON transactions (created_at, type, status, amount);
CREATE INDEX transactions_wallet ON transactions (wallet_id, created_at);
CREATE INDEX products_status_stock ON products (status, stock);
CREATE INDEX group_buys_status_expire ON group_buys (status, expire_at);
CREATE INDEX orders_status_created ON orders (status, created_at);
CREATE INDEX orders_created ON orders (created_at, status, amount);
CREATE INDEX payments_method_status ON payments (method, status);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX login_attempts_success_created ON login_attempts (success, created_at, ip);
CREATE INDEX access_log_created ON access_log (created_at, ip);
";
