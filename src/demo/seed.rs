//! Seeds the demo shop: a year of users, their wallets, 30 days of transactions and
//! orders with a Beijing-time daily rhythm, a week of logins and the last hour of API
//! requests — about 300,000 rows, deterministic for a given seed and clock.
//!
//! Also home to the value generators the simulator shares (amounts, IPs, names), so that
//! live activity looks like the history it continues.

use std::path::Path;

use fastrand::Rng;
use rusqlite::{Connection, Transaction, params};

use super::schema;

/// The seed of the demo data.
pub(super) const SEED: u64 = 0x5EED_5409;
pub(super) const USERS: i64 = 20_000;
pub(super) const PRODUCTS: i64 = 300;
/// Transactions over the last 30 days (plus [`RECENT_TRANSACTIONS`]).
pub(super) const TRANSACTIONS: usize = 150_000;
/// Extra transactions in the last 15 minutes (never before today's Beijing midnight), so
/// the "today" and "last 10 minutes" queries have rows at any hour.
const RECENT_TRANSACTIONS: usize = 150;
const ORDERS: usize = 30_000;
const RECENT_ORDERS: usize = 40;
const GROUP_BUYS: usize = 1_500;
const LOGIN_ATTEMPTS: usize = 40_000;
const ACCESS_LOG: usize = 30_000;
/// Stock below this is "low" (the seeds' `find_low_stock(threshold=10)`).
pub(super) const LOW_STOCK: i64 = 10;
/// A single transaction above this is "large" (the seeds' large-transaction rule).
pub(super) const LARGE_TRANSACTION: f64 = 10_000.0;

pub(super) const DAY: i64 = 86_400;
const BEIJING_OFFSET: i64 = 8 * 3_600;

/// The Unix time of the last Beijing (UTC+8) midnight at or before `now`.
pub(super) fn today_start(now: i64) -> i64 {
    (now + BEIJING_OFFSET).div_euclid(DAY) * DAY - BEIJING_OFFSET
}

/// Creates the tables in the empty database `path` and fills them.
pub(super) fn create(path: &Path, now: i64) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    // A throw-away file until it is renamed into place: no journal, no fsync.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    let tx = conn.transaction()?;
    tx.execute_batch(schema::TABLES)?;
    let mut seeder = Seeder {
        rng: Rng::with_seed(SEED),
        now,
        ip_pool: ip_pool(),
    };
    seeder.users(&tx)?;
    seeder.wallets(&tx)?;
    seeder.transactions(&tx)?;
    seeder.products(&tx)?;
    seeder.group_buys(&tx)?;
    seeder.orders(&tx)?;
    seeder.login_attempts(&tx)?;
    seeder.access_log(&tx)?;
    tx.execute_batch(schema::INDEXES)?;
    tx.execute_batch("ANALYZE")?;
    tx.pragma_update(None, "user_version", schema::VERSION)?;
    tx.commit()?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.close().map_err(|(_, error)| error)
}

struct Seeder {
    rng: Rng,
    now: i64,
    ip_pool: Vec<String>,
}

impl Seeder {
    fn users(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let rng = &mut self.rng;
        let now = self.now;
        // A year of sign-ups, growing towards today.
        let mut created: Vec<i64> = (0..USERS)
            .map(|_| now - (rng.f64().powf(1.3) * 365.0 * DAY as f64) as i64)
            .collect();
        created.sort_unstable();
        let mut insert = tx.prepare(
            "INSERT INTO users (id, username, phone, level, status, created_at, last_login_at, deleted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (id, created_at) in (1..).zip(created) {
            let status = pick(rng, USER_STATUSES);
            let age = now - created_at;
            let last_login = match (status, rng.u32(0..100)) {
                ("active", 0..=34) => Some(now - rng.i64(0..DAY.min(age + 1))),
                ("active", 35..=84) => Some(now - rng.i64(0..(30 * DAY).min(age + 1))),
                (_, 0..=79) => Some(created_at + rng.i64(0..age.max(1))),
                _ => None,
            };
            let deleted = (rng.u32(0..100) == 0).then(|| now - rng.i64(0..age.max(1)));
            insert.execute(params![
                id,
                format!("user{id:05}"),
                phone(rng),
                pick(rng, USER_LEVELS),
                status,
                created_at,
                last_login,
                deleted.map(|d| d.max(created_at)),
            ])?;
        }
        Ok(())
    }

    fn wallets(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut insert = tx.prepare(
            "INSERT INTO wallets (id, user_id, address, balance, frozen_balance, status, created_at, updated_at)
             SELECT ?1, id, ?2, ?3, ?4, ?5, created_at, ?6 FROM users WHERE id = ?1",
        )?;
        let rng = &mut self.rng;
        for id in 1..=USERS {
            let balance = match rng.u32(0..1000) {
                0..=149 => 0.0,
                150..=164 => money(rng.f64().mul_add(240_000.0, 10_001.0)),
                _ => money(lognormal(rng, 300.0, 1.3).clamp(0.01, 9_999.0)),
            };
            let frozen = if balance > 0.0 && rng.u32(0..100) < 6 {
                money(balance * rng.f64().mul_add(0.45, 0.05))
            } else {
                0.0
            };
            let updated = self.now - rng.i64(0..30 * DAY);
            insert.execute(params![
                id,
                address(rng),
                balance,
                frozen,
                pick(rng, WALLET_STATUSES),
                updated
            ])?;
        }
        Ok(())
    }

    fn transactions(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = self.now;
        let rng = &mut self.rng;
        let recent_from = (now - 900).max(today_start(now));
        let mut times: Vec<i64> = (0..TRANSACTIONS)
            .map(|_| activity_time(rng, now, 30 * DAY))
            .collect();
        times.extend((0..RECENT_TRANSACTIONS).map(|_| rng.i64(recent_from..=now)));
        times.sort_unstable();
        let mut insert = tx.prepare(
            "INSERT INTO transactions
               (wallet_id, counterparty_wallet_id, type, amount, fee, status, tx_hash, created_at, confirmed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for created_at in times {
            let kind = tx_type(rng);
            let amount = tx_amount(rng, kind);
            let age = now - created_at;
            let status = match (age, rng.u32(0..1000)) {
                (0..=119, 0..=449) => "pending",
                (_, 0..=24) => "failed",
                _ => "confirmed",
            };
            let confirmed_at =
                (status == "confirmed").then(|| (created_at + rng.i64(5..600)).min(now));
            let counterparty = (kind == "transfer").then(|| rng.i64(1..=USERS));
            let hash = (kind != "transfer" && status != "failed").then(|| tx_hash(rng));
            let fee = if kind == "withdraw" { 1.0 } else { 0.0 };
            insert.execute(params![
                rng.i64(1..=USERS),
                counterparty,
                kind,
                amount,
                fee,
                status,
                hash,
                created_at,
                confirmed_at
            ])?;
        }
        Ok(())
    }

    fn products(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut insert = tx.prepare(
            "INSERT INTO products (id, sku, name, category, price, stock, status, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let rng = &mut self.rng;
        for id in 1..=PRODUCTS {
            let (name, category) = PRODUCT_NAMES[rng.usize(..PRODUCT_NAMES.len())];
            let size = PRODUCT_SIZES[rng.usize(..PRODUCT_SIZES.len())];
            // Every 25th product is running low, so the low-stock queries have rows.
            let stock = if id % 25 == 7 {
                rng.i64(0..LOW_STOCK)
            } else {
                rng.i64(30..1_000)
            };
            let status = if id % 25 == 7 || rng.u32(0..100) >= 5 {
                "on_sale"
            } else {
                "off_shelf"
            };
            insert.execute(params![
                id,
                format!("SKU-{id:05}"),
                format!("{name} {size}"),
                category,
                money(lognormal(rng, 40.0, 0.8).clamp(3.0, 800.0)),
                stock,
                status,
                self.now - rng.i64(0..7 * DAY),
            ])?;
        }
        Ok(())
    }

    fn group_buys(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = self.now;
        let rng = &mut self.rng;
        let mut times: Vec<i64> = (0..GROUP_BUYS)
            .map(|_| activity_time(rng, now, 30 * DAY))
            .collect();
        times.sort_unstable();
        let mut insert = tx.prepare(
            "INSERT INTO group_buys (product_id, required_count, current_count, status, created_at, expire_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for created_at in times {
            let required = rng.i64(3..=10);
            let expire_at = created_at + DAY;
            let (status, current) = if expire_at > now {
                ("open", rng.i64(1..required))
            } else if rng.u32(0..100) < 65 {
                ("success", required)
            } else {
                ("failed", rng.i64(1..required))
            };
            insert.execute(params![
                rng.i64(1..=PRODUCTS),
                required,
                current,
                status,
                created_at,
                expire_at
            ])?;
        }
        // Expired but not yet processed: the job that closes them runs behind.
        for _ in 0..3 {
            let expire_at = now - rng.i64(60..900);
            insert.execute(params![
                rng.i64(1..=PRODUCTS),
                5,
                rng.i64(1..5),
                "open",
                expire_at - DAY,
                expire_at
            ])?;
        }
        Ok(())
    }

    fn orders(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = self.now;
        let prices: Vec<f64> = {
            let mut statement = tx.prepare("SELECT price FROM products ORDER BY id")?;
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let rng = &mut self.rng;
        let recent_from = (now - 900).max(today_start(now));
        let mut times: Vec<i64> = (0..ORDERS)
            .map(|_| activity_time(rng, now, 30 * DAY))
            .collect();
        times.extend((0..RECENT_ORDERS).map(|_| rng.i64(recent_from..=now)));
        times.sort_unstable();
        let mut order = tx.prepare(
            "INSERT INTO orders (user_id, product_id, quantity, amount, status, created_at, paid_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut payment = tx.prepare(
            "INSERT INTO payments (order_id, method, amount, status, error_code, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for created_at in times {
            let product = rng.usize(..prices.len());
            let quantity = pick(rng, &[(1, 70), (2, 20), (3, 10)]);
            let amount = money(prices.get(product).copied().unwrap_or(10.0) * quantity as f64);
            let age = now - created_at;
            let roll = rng.u32(0..100);
            let status = match age {
                a if a < 1_800 => {
                    if roll < 25 {
                        "pending_payment"
                    } else {
                        "paid"
                    }
                }
                a if a < 2 * 3_600 => match roll {
                    0..=2 => "pending_payment", // overdue: the cancel job has not run yet
                    3..=14 => "cancelled",
                    _ => "paid",
                },
                a if a < 2 * DAY => match roll {
                    0..=11 => "cancelled",
                    12..=14 => "refunded",
                    15..=34 => "paid",
                    _ => "shipped",
                },
                _ => match roll {
                    0..=11 => "cancelled",
                    12..=16 => "refunded",
                    _ => "completed",
                },
            };
            let paid = !matches!(status, "pending_payment" | "cancelled");
            let paid_at = paid.then(|| (created_at + rng.i64(20..900)).min(now));
            let updated_at = paid_at.unwrap_or(created_at);
            order.execute(params![
                rng.i64(1..=USERS),
                product as i64 + 1,
                quantity,
                amount,
                status,
                created_at,
                paid_at,
                updated_at
            ])?;
            let order_id = tx.last_insert_rowid();
            let method = payment_method(rng);
            let failed_first = rng.u32(0..100) < if paid { 6 } else { 40 };
            if (failed_first && status != "pending_payment")
                || (status == "cancelled" && roll % 2 == 0)
            {
                let at = created_at + rng.i64(10..60);
                payment.execute(params![
                    order_id,
                    method,
                    amount,
                    "failed",
                    payment_error(rng),
                    at.min(now)
                ])?;
            }
            if let Some(at) = paid_at {
                payment.execute(params![
                    order_id,
                    method,
                    amount,
                    "success",
                    None::<&str>,
                    at
                ])?;
            }
        }
        Ok(())
    }

    fn login_attempts(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = self.now;
        let rng = &mut self.rng;
        let mut times: Vec<i64> = (0..LOGIN_ATTEMPTS)
            .map(|_| activity_time(rng, now, 7 * DAY))
            .collect();
        times.sort_unstable();
        let mut insert = tx.prepare(
            "INSERT INTO login_attempts (user_id, username, ip, success, reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for created_at in times {
            let user = rng.i64(1..=USERS);
            let success = rng.u32(0..100) < 94;
            let ip = if rng.u32(0..100) < if success { 80 } else { 50 } {
                home_ip(user)
            } else {
                random_ip(rng)
            };
            let reason = (!success).then(|| login_failure(rng));
            insert.execute(params![
                user,
                format!("user{user:05}"),
                ip,
                success,
                reason,
                created_at
            ])?;
        }
        // A password-guessing run in the last few minutes, and a slower one.
        for (ip, attempts) in [("203.0.113.77", 14), ("198.51.100.23", 6)] {
            for _ in 0..attempts {
                let user = rng.i64(1..=USERS);
                insert.execute(params![
                    None::<i64>,
                    format!("user{user:05}"),
                    ip,
                    false,
                    "bad_password",
                    now - rng.i64(0..240)
                ])?;
            }
        }
        Ok(())
    }

    fn access_log(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let now = self.now;
        let rng = &mut self.rng;
        let mut times: Vec<i64> = (0..ACCESS_LOG).map(|_| now - rng.i64(0..3_600)).collect();
        times.sort_unstable();
        let mut insert = tx.prepare(
            "INSERT INTO access_log (ip, method, path, status, duration_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for created_at in times {
            let (method, path) = pick(rng, ACCESS_PATHS);
            insert.execute(params![
                pool_ip(rng, &self.ip_pool),
                method,
                path,
                http_status(rng),
                lognormal(rng, 45.0, 0.7).round() as i64,
                created_at
            ])?;
        }
        Ok(())
    }
}

// ---- generators shared with the simulator ----

pub(super) const USER_LEVELS: &[(&str, u32)] = &[
    ("normal", 6_000),
    ("vip", 2_500),
    ("star_1", 600),
    ("star_2", 400),
    ("star_3", 250),
    ("star_4", 130),
    ("star_5", 70),
    ("director", 50),
];
const USER_STATUSES: &[(&str, u32)] = &[("active", 90), ("inactive", 8), ("banned", 2)];
const WALLET_STATUSES: &[(&str, u32)] = &[("active", 95), ("frozen", 4), ("closed", 1)];

const PRODUCT_NAMES: &[(&str, &str)] = &[
    ("阳光玫瑰葡萄", "水果"),
    ("赣南脐橙", "水果"),
    ("海南贵妃芒", "水果"),
    ("云南蓝莓", "水果"),
    ("烟台红富士苹果", "水果"),
    ("丹东草莓", "水果"),
    ("智利车厘子", "水果"),
    ("新疆哈密瓜", "水果"),
    ("有机菠菜", "蔬菜"),
    ("山东大葱", "蔬菜"),
    ("云南小番茄", "蔬菜"),
    ("有机西兰花", "蔬菜"),
    ("五常大米", "粮油"),
    ("东北黑木耳", "干货"),
    ("宁夏枸杞", "干货"),
    ("内蒙古羊排", "肉禽"),
    ("散养土鸡蛋", "蛋奶"),
    ("鲜牛奶", "蛋奶"),
    ("舟山带鱼", "水产"),
    ("阳澄湖大闸蟹", "水产"),
    ("厄瓜多尔白虾", "水产"),
    ("西湖龙井", "茶饮"),
    ("云南普洱", "茶饮"),
    ("土蜂蜜", "滋补"),
];
const PRODUCT_SIZES: &[&str] = &[
    "500g",
    "1kg",
    "2kg",
    "2.5kg",
    "5kg",
    "礼盒装",
    "家庭装",
    "12枚",
];

pub(super) const ACCESS_PATHS: &[((&str, &str), u32)] = &[
    (("GET", "/api/v1/products"), 30),
    (("GET", "/api/v1/products/{id}"), 25),
    (("GET", "/api/v1/wallet"), 12),
    (("GET", "/api/v1/wallet/transactions"), 8),
    (("POST", "/api/v1/orders"), 6),
    (("GET", "/api/v1/orders"), 6),
    (("POST", "/api/v1/payments"), 4),
    (("POST", "/api/v1/group-buys/{id}/join"), 3),
    (("POST", "/api/v1/auth/login"), 4),
    (("POST", "/api/v1/wallet/withdraw"), 2),
];

/// Picks one of `items` with probability proportional to its weight.
pub(super) fn pick<T: Copy>(rng: &mut Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.u32(0..total.max(1));
    for &(item, weight) in items {
        if roll < weight {
            return item;
        }
        roll -= weight;
    }
    items
        .first()
        .map(|&(item, _)| item)
        .expect("pick is only called with non-empty tables")
}

/// A standard normal variate (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal variate with the given median and shape.
pub(super) fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Rounds to cents.
pub(super) fn money(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

pub(super) fn tx_type(rng: &mut Rng) -> &'static str {
    pick(rng, &[("deposit", 45), ("withdraw", 25), ("transfer", 30)])
}

/// An everyday amount for a transaction of `kind`; one in 500 is large (10,000–40,000).
pub(super) fn tx_amount(rng: &mut Rng, kind: &str) -> f64 {
    if rng.u32(0..500) == 0 {
        return money(rng.f64().mul_add(30_000.0, LARGE_TRANSACTION + 1.0));
    }
    let (median, sigma, min) = match kind {
        "deposit" => (250.0, 1.1, 10.0),
        "withdraw" => (200.0, 1.0, 10.0),
        _ => (80.0, 1.2, 1.0),
    };
    money(lognormal(rng, median, sigma).clamp(min, 9_500.0))
}

pub(super) fn payment_method(rng: &mut Rng) -> &'static str {
    pick(
        rng,
        &[("wallet", 40), ("alipay", 30), ("wechat", 25), ("card", 5)],
    )
}

pub(super) fn payment_error(rng: &mut Rng) -> &'static str {
    pick(
        rng,
        &[
            ("INSUFFICIENT_BALANCE", 40),
            ("GATEWAY_TIMEOUT", 25),
            ("RISK_REJECTED", 15),
            ("USER_CANCELLED", 20),
        ],
    )
}

pub(super) fn login_failure(rng: &mut Rng) -> &'static str {
    pick(
        rng,
        &[("bad_password", 80), ("unknown_user", 12), ("captcha", 8)],
    )
}

pub(super) fn http_status(rng: &mut Rng) -> i64 {
    pick(
        rng,
        &[
            (200, 940),
            (201, 25),
            (400, 12),
            (401, 10),
            (404, 8),
            (500, 5),
        ],
    )
}

pub(super) fn phone(rng: &mut Rng) -> String {
    let prefix = pick(
        rng,
        &[(138, 3), (139, 3), (186, 2), (135, 2), (177, 1), (150, 2)],
    );
    format!("{prefix}{:08}", rng.u32(0..100_000_000))
}

/// A TRON-style USDT (TRC-20) address.
pub(super) fn address(rng: &mut Rng) -> String {
    const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out = String::with_capacity(34);
    out.push('T');
    for _ in 0..33 {
        out.push(char::from(BASE58[rng.usize(..BASE58.len())]));
    }
    out
}

pub(super) fn tx_hash(rng: &mut Rng) -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rng.u64(..),
        rng.u64(..),
        rng.u64(..),
        rng.u64(..)
    )
}

/// First octets of Chinese broadband and mobile address blocks.
const FIRST_OCTETS: &[u8] = &[
    36, 39, 42, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120,
    121, 122, 123, 124, 125, 175, 180, 182, 183, 218, 219, 220, 221, 222, 223,
];

fn ip_from(bits: u64) -> String {
    let first = FIRST_OCTETS[(bits % FIRST_OCTETS.len() as u64) as usize];
    let [_, _, _, _, _, b, c, d] = bits.to_be_bytes();
    format!("{first}.{b}.{c}.{}", d.max(1))
}

pub(super) fn random_ip(rng: &mut Rng) -> String {
    ip_from(rng.u64(..))
}

/// The address user `id` usually logs in from.
pub(super) fn home_ip(id: i64) -> String {
    // splitmix64
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ip_from(z ^ (z >> 31))
}

/// The clients behind the API traffic: the same 400 addresses every run.
pub(super) fn ip_pool() -> Vec<String> {
    let mut rng = Rng::with_seed(SEED ^ 0x1F);
    (0..400).map(|_| random_ip(&mut rng)).collect()
}

/// A client from `pool`, a few of them much busier than the rest.
pub(super) fn pool_ip<'p>(rng: &mut Rng, pool: &'p [String]) -> &'p str {
    let at = (rng.f64().powi(3) * pool.len() as f64) as usize;
    pool.get(at)
        .or(pool.first())
        .map_or("127.0.0.1", String::as_str)
}

/// Relative activity by Beijing hour: quiet at night, peaks at lunch and in the evening.
const DIURNAL: [f64; 24] = [
    0.30, 0.18, 0.10, 0.07, 0.06, 0.08, 0.17, 0.35, 0.55, 0.70, 0.76, 0.80, 0.78, 0.70, 0.72, 0.75,
    0.76, 0.72, 0.76, 0.86, 0.96, 1.00, 0.83, 0.50,
];

/// A moment in the last `span` seconds, more likely in busy hours.
fn activity_time(rng: &mut Rng, now: i64, span: i64) -> i64 {
    loop {
        let t = now - rng.i64(0..span);
        let hour = ((t + BEIJING_OFFSET).rem_euclid(DAY) / 3_600) as usize;
        if rng.f64() < DIURNAL.get(hour).copied().unwrap_or(1.0) {
            return t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_starts_at_beijing_midnight() {
        // 2024-01-01T15:59:59Z is 23:59:59 in Beijing; 16:00:00Z is the next midnight.
        assert_eq!(today_start(1_704_124_799), 1_704_038_400);
        assert_eq!(today_start(1_704_124_800), 1_704_124_800);
    }

    #[test]
    fn pick_follows_the_weights() {
        let mut rng = Rng::with_seed(1);
        let heads = (0..10_000)
            .filter(|_| pick(&mut rng, &[(true, 9), (false, 1)]))
            .count();
        assert!((8_700..9_300).contains(&heads), "{heads}");
    }

    #[test]
    fn generated_values_look_right() {
        let mut rng = Rng::with_seed(2);
        assert!(address(&mut rng).starts_with('T'));
        assert_eq!(address(&mut rng).len(), 34);
        assert_eq!(tx_hash(&mut rng).len(), 64);
        assert_eq!(phone(&mut rng).len(), 11);
        assert_eq!(home_ip(42), home_ip(42));
        for _ in 0..1_000 {
            let ip = random_ip(&mut rng);
            assert_eq!(ip.split('.').count(), 4, "{ip}");
            let amount = tx_amount(&mut rng, "deposit");
            assert!((1.0..=LARGE_TRANSACTION + 30_001.0).contains(&amount));
        }
    }
}
