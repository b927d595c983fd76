//! Keeps the demo shop alive: every tick, one short write transaction with a little of
//! everything (sign-ups, logins, API requests, wallet transactions settling, orders and
//! payments, group buys, restocking), background jobs that run every minute or two, and
//! from time to time a burst that the alert rules are written for.
//!
//! Bursts come in turn: transaction and payment failures (with the order-cancel and
//! group-buy jobs stalled, so overdue orders and expired group buys pile up), large
//! transactions, a login flood from one address (over 1,000 requests a minute), and a
//! run on stock. A write transaction never lasts longer than one tick's worth of inserts,
//! so the exporter's read-only connections (WAL) are never blocked.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastrand::Rng;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension as _, Transaction, TransactionBehavior, params,
};

use super::seed::{self, DAY, LOW_STOCK, PRODUCTS, pick};
use crate::shutdown::Shutdown;

/// How the simulator behaves; [`Default`] is what `lookout demo` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorSettings {
    /// Time between two rounds of activity.
    pub tick: Duration,
    /// Mean time between two bursts (each 0.5–1.5× this apart); `None` disables bursts.
    pub burst_every: Option<Duration>,
    /// How long a failure burst or a login flood lasts.
    pub burst_duration: Duration,
    /// Seed of the random choices; `None` seeds from the clock.
    pub seed: Option<u64>,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            burst_every: Some(Duration::from_secs(4 * 60)),
            burst_duration: Duration::from_secs(2 * 60),
            seed: None,
        }
    }
}

/// Starts the simulator with the default settings on its own thread; it stops within
/// about 50 ms of `stop` firing.
pub fn spawn_simulator(db_path: PathBuf, stop: Shutdown) -> JoinHandle<()> {
    spawn_simulator_with(db_path, SimulatorSettings::default(), stop)
}

/// Starts the simulator with `settings` on its own thread.
pub fn spawn_simulator_with(
    db_path: PathBuf,
    settings: SimulatorSettings,
    stop: Shutdown,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("demo-simulator".to_owned())
        .spawn(move || run(&db_path, &settings, &stop))
        .expect("the OS can start one more thread")
}

/// Consecutive failed ticks after which the simulator gives up.
const MAX_FAILED_TICKS: u32 = 30;
/// The longest the thread sleeps without looking at the shutdown signal.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Requests per second from the flooding address (the rule: > 1000 a minute).
const FLOOD_REQUESTS_PER_SECOND: f64 = 25.0;

fn run(path: &Path, settings: &SimulatorSettings, stop: &Shutdown) {
    let mut conn = match open(path) {
        Ok(conn) => conn,
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "demo simulator cannot open the database");
            return;
        }
    };
    let mut sim = match Simulator::new(&conn, settings) {
        Ok(sim) => sim,
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "demo simulator cannot read the database");
            return;
        }
    };
    tracing::info!(path = %path.display(), "demo activity simulator started");
    let mut failures = 0;
    let mut next = Instant::now();
    while !stop.is_triggered() {
        match sim.tick(&mut conn) {
            Ok(()) => failures = 0,
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, "demo simulator: a round of activity failed");
                if failures >= MAX_FAILED_TICKS {
                    tracing::error!(%error, "demo simulator stops after {failures} failed rounds");
                    return;
                }
            }
        }
        next += settings.tick;
        let now = Instant::now();
        if next < now {
            next = now; // fell behind: do not try to catch up
        }
        while !stop.is_triggered() {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(STOP_POLL));
        }
    }
    tracing::info!("demo activity simulator stopped");
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    // Never create: a missing file is an error, not a new empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -512)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Burst {
    Failures,
    Large,
    LoginFlood,
    LowStock,
}

impl Burst {
    const ORDER: [Burst; 4] = [
        Self::Failures,
        Self::Large,
        Self::LoginFlood,
        Self::LowStock,
    ];

    fn describe(self) -> &'static str {
        match self {
            Self::Failures => "transaction and payment failures",
            Self::Large => "large transactions",
            Self::LoginFlood => "login flood from one address",
            Self::LowStock => "run on stock",
        }
    }
}

/// A wallet transaction waiting to settle.
struct PendingTx {
    id: i64,
    wallet: i64,
    counterparty: Option<i64>,
    kind: String,
    amount: f64,
    due: u64,
    /// Whether creating it moved money (the simulator's own) or not (seeded rows).
    moved_funds: bool,
}

/// An order whose buyer will try to pay at tick `due`.
struct PendingOrder {
    id: i64,
    amount: f64,
    due: u64,
}

struct Simulator {
    rng: Rng,
    tick: u64,
    tick_seconds: f64,
    burst_every: Option<Duration>,
    burst_duration: Duration,
    ip_pool: Vec<String>,
    max_user: i64,
    pending_tx: Vec<PendingTx>,
    pending_orders: Vec<PendingOrder>,
    next_burst: Option<Instant>,
    next_kind: usize,
    failing_until: Option<Instant>,
    flood: Option<(String, Instant)>,
}

impl Simulator {
    fn new(conn: &Connection, settings: &SimulatorSettings) -> rusqlite::Result<Self> {
        let mut rng = settings.seed.map_or_else(Rng::new, Rng::with_seed);
        let max_user: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM users", [], |row| {
                row.get(0)
            })?;
        let mut pending_tx = Vec::new();
        let mut statement = conn.prepare(
            "SELECT id, wallet_id, counterparty_wallet_id, type, amount FROM transactions
             WHERE created_at >= ?1 AND status = 'pending'",
        )?;
        let mut rows = statement.query([unix_now() - 3_600])?;
        while let Some(row) = rows.next()? {
            pending_tx.push(PendingTx {
                id: row.get(0)?,
                wallet: row.get(1)?,
                counterparty: row.get(2)?,
                kind: row.get(3)?,
                amount: row.get(4)?,
                due: rng.u64(1..=10),
                moved_funds: false,
            });
        }
        // The first burst comes within about a minute, so a newcomer sees an alert (and
        // the relay at work) soon after starting the demo.
        let next_burst = settings.burst_every.map(|every| {
            let first = Duration::from_secs(30) + Duration::from_secs_f64(20.0 * rng.f64());
            Instant::now() + every.mul_f64(rng.f64() + 0.5).min(first)
        });
        Ok(Self {
            rng,
            tick: 0,
            tick_seconds: settings.tick.as_secs_f64(),
            burst_every: settings.burst_every,
            burst_duration: settings.burst_duration,
            ip_pool: seed::ip_pool(),
            max_user: max_user.max(1),
            pending_tx,
            pending_orders: Vec::new(),
            next_burst,
            next_kind: 0,
            failing_until: None,
            flood: None,
        })
    }

    /// One round of activity in one short write transaction.
    fn tick(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        self.tick += 1;
        let now = unix_now();
        let instant = Instant::now();
        let burst = self.start_burst(instant);
        let failing = self.failing_until.is_some_and(|until| instant < until);
        if self
            .flood
            .as_ref()
            .is_some_and(|(_, until)| instant >= *until)
        {
            self.flood = None;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.sign_ups(&tx, now)?;
        self.logins(&tx, now)?;
        self.requests(&tx, now)?;
        self.new_transactions(&tx, now, failing)?;
        self.settle_transactions(&tx, now, failing)?;
        self.new_orders(&tx, now)?;
        self.pay_orders(&tx, now, failing)?;
        self.group_buys(&tx, now)?;
        self.restock(&tx, now)?;
        match burst {
            Some(Burst::Large) => self.large_transactions(&tx, now)?,
            Some(Burst::LowStock) => self.run_on_stock(&tx, now)?,
            _ => {}
        }
        // Background jobs. The cancel and settle jobs keep overdue orders and expired group
        // buys near zero; an incident (a failure burst) stalls them, so those build up.
        if self.tick % 10 == 0 && !failing {
            cancel_overdue_orders(&tx, now)?;
            close_expired_group_buys(&tx, now)?;
        }
        if self.tick % 60 == 0 {
            advance_orders(&tx, now)?;
        }
        if self.tick % 300 == 0 {
            prune(&tx, now)?;
        }
        tx.commit()
    }

    fn start_burst(&mut self, now: Instant) -> Option<Burst> {
        let every = self.burst_every?;
        if self.next_burst.is_some_and(|at| now < at) {
            return None;
        }
        self.next_burst = Some(now + every.mul_f64(self.rng.f64() + 0.5));
        let kind = Burst::ORDER[self.next_kind % Burst::ORDER.len()];
        self.next_kind += 1;
        match kind {
            Burst::Failures => self.failing_until = Some(now + self.burst_duration),
            Burst::LoginFlood => {
                let ip = format!("203.0.113.{}", self.rng.u8(2..250));
                self.flood = Some((ip, now + self.burst_duration));
            }
            Burst::Large | Burst::LowStock => {}
        }
        tracing::info!(burst = kind.describe(), "demo simulator: burst");
        Some(kind)
    }

    fn random_user(&mut self) -> i64 {
        self.rng.i64(1..=self.max_user)
    }

    fn sign_ups(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        if self.rng.u32(0..10) != 0 {
            return Ok(());
        }
        let level = if self.rng.u32(0..10) == 0 {
            "vip"
        } else {
            "normal"
        };
        tx.prepare_cached(
            "INSERT INTO users (username, phone, level, status, created_at, last_login_at)
             VALUES ('', ?1, ?2, 'active', ?3, ?3)",
        )?
        .execute(params![seed::phone(&mut self.rng), level, now])?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached("UPDATE users SET username = ?1 WHERE id = ?2")?
            .execute(params![format!("user{id:05}"), id])?;
        tx.prepare_cached(
            "INSERT INTO wallets (id, user_id, address, balance, frozen_balance, status, created_at, updated_at)
             VALUES (?1, ?1, ?2, 0, 0, 'active', ?3, ?3)",
        )?
        .execute(params![id, seed::address(&mut self.rng), now])?;
        self.max_user = self.max_user.max(id);
        Ok(())
    }

    fn logins(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        let mut insert = tx.prepare_cached(
            "INSERT INTO login_attempts (user_id, username, ip, success, reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for _ in 0..self.rng.usize(1..=3) {
            let user = self.random_user();
            let success = self.rng.u32(0..100) < 96;
            let ip = if self.rng.u32(0..100) < 85 {
                seed::home_ip(user)
            } else {
                seed::random_ip(&mut self.rng)
            };
            let reason = (!success).then(|| seed::login_failure(&mut self.rng));
            insert.execute(params![
                user,
                format!("user{user:05}"),
                ip,
                success,
                reason,
                now
            ])?;
            if success {
                tx.prepare_cached("UPDATE users SET last_login_at = ?1 WHERE id = ?2")?
                    .execute(params![now, user])?;
            }
        }
        if let Some((ip, _)) = &self.flood {
            // Credential stuffing: many usernames, one address.
            for _ in 0..2 {
                let user = self.rng.i64(1..=self.max_user);
                insert.execute(params![
                    None::<i64>,
                    format!("user{user:05}"),
                    ip,
                    false,
                    "bad_password",
                    now
                ])?;
            }
        }
        Ok(())
    }

    fn requests(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        let mut insert = tx.prepare_cached(
            "INSERT INTO access_log (ip, method, path, status, duration_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for _ in 0..self.rng.usize(5..=15) {
            let ip = seed::pool_ip(&mut self.rng, &self.ip_pool);
            let (method, path) = pick(&mut self.rng, seed::ACCESS_PATHS);
            let status = seed::http_status(&mut self.rng);
            let duration = seed::lognormal(&mut self.rng, 45.0, 0.7).round() as i64;
            insert.execute(params![ip, method, path, status, duration, now])?;
        }
        if let Some((ip, _)) = &self.flood {
            let count = (FLOOD_REQUESTS_PER_SECOND * self.tick_seconds).ceil() as usize;
            for _ in 0..count {
                let status = if self.rng.u32(0..10) == 0 { 429 } else { 401 };
                let duration = self.rng.i64(3..30);
                insert.execute(params![
                    ip,
                    "POST",
                    "/api/v1/auth/login",
                    status,
                    duration,
                    now
                ])?;
            }
        }
        Ok(())
    }

    fn new_transactions(
        &mut self,
        tx: &Transaction<'_>,
        now: i64,
        failing: bool,
    ) -> rusqlite::Result<()> {
        let count = pick(&mut self.rng, &[(0, 30), (1, 40), (2, 25), (3, 5)]);
        for _ in 0..count {
            let wallet = self.random_user();
            let Some((balance, status)) = wallet_state(tx, wallet)? else {
                continue;
            };
            if status != "active" {
                continue;
            }
            let mut kind = seed::tx_type(&mut self.rng);
            let mut amount = seed::tx_amount(&mut self.rng, kind);
            if kind != "deposit" && balance < amount {
                if balance >= 20.0 {
                    amount = seed::money(balance * self.rng.f64().mul_add(0.8, 0.1));
                } else {
                    kind = "deposit";
                }
            }
            let counterparty = (kind == "transfer").then(|| self.random_user());
            let id = insert_transaction(tx, wallet, counterparty, kind, amount, "pending", now)?;
            match kind {
                "withdraw" => move_funds(tx, wallet, -amount, amount, now)?,
                "transfer" => move_funds(tx, wallet, -amount, 0.0, now)?,
                _ => {}
            }
            self.pending_tx.push(PendingTx {
                id,
                wallet,
                counterparty,
                kind: kind.to_owned(),
                amount,
                due: self.tick + self.rng.u64(2..=20),
                moved_funds: true,
            });
        }
        if failing {
            // The chain node is timing out: new transactions fail at once.
            for _ in 0..3 {
                let wallet = self.random_user();
                let kind = seed::tx_type(&mut self.rng);
                let amount = seed::tx_amount(&mut self.rng, kind);
                let counterparty = (kind == "transfer").then(|| self.random_user());
                insert_transaction(tx, wallet, counterparty, kind, amount, "failed", now)?;
            }
        }
        Ok(())
    }

    fn settle_transactions(
        &mut self,
        tx: &Transaction<'_>,
        now: i64,
        failing: bool,
    ) -> rusqlite::Result<()> {
        let tick = self.tick;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_tx)
            .into_iter()
            .partition(|p| p.due <= tick);
        self.pending_tx = waiting;
        for p in due {
            let fails = self.rng.u32(0..100) < if failing { 60 } else { 2 };
            if fails {
                tx.prepare_cached("UPDATE transactions SET status = 'failed' WHERE id = ?1")?
                    .execute([p.id])?;
                if p.moved_funds {
                    match p.kind.as_str() {
                        "withdraw" => move_funds(tx, p.wallet, p.amount, -p.amount, now)?,
                        "transfer" => move_funds(tx, p.wallet, p.amount, 0.0, now)?,
                        _ => {}
                    }
                }
                continue;
            }
            let hash = (p.kind != "transfer").then(|| seed::tx_hash(&mut self.rng));
            tx.prepare_cached(
                "UPDATE transactions SET status = 'confirmed', confirmed_at = ?1,
                   tx_hash = COALESCE(tx_hash, ?2) WHERE id = ?3",
            )?
            .execute(params![now, hash, p.id])?;
            if p.moved_funds {
                match (p.kind.as_str(), p.counterparty) {
                    ("deposit", _) => move_funds(tx, p.wallet, p.amount, 0.0, now)?,
                    ("withdraw", _) => move_funds(tx, p.wallet, 0.0, -p.amount, now)?,
                    ("transfer", Some(to)) => move_funds(tx, to, p.amount, 0.0, now)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn large_transactions(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        for _ in 0..self.rng.usize(1..=3) {
            let wallet = self.random_user();
            let amount = seed::money(self.rng.f64().mul_add(200_000.0, 50_000.0));
            let balance = wallet_state(tx, wallet)?.map_or(0.0, |(balance, _)| balance);
            let kind = if balance >= amount {
                "withdraw"
            } else {
                "deposit"
            };
            let id = insert_transaction(tx, wallet, None, kind, amount, "confirmed", now)?;
            tx.prepare_cached("UPDATE transactions SET confirmed_at = ?1 WHERE id = ?2")?
                .execute(params![now, id])?;
            let delta = if kind == "deposit" { amount } else { -amount };
            move_funds(tx, wallet, delta, 0.0, now)?;
        }
        Ok(())
    }

    fn new_orders(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        if self.rng.u32(0..100) >= 50 {
            return Ok(());
        }
        let product = self.rng.i64(1..=PRODUCTS);
        let quantity = pick(&mut self.rng, &[(1_i64, 70), (2, 20), (3, 10)]);
        let found: Option<(f64, i64, String)> = tx
            .prepare_cached("SELECT price, stock, status FROM products WHERE id = ?1")?
            .query_row([product], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let Some((price, stock, status)) = found else {
            return Ok(());
        };
        if status != "on_sale" || stock < quantity {
            return Ok(());
        }
        tx.prepare_cached("UPDATE products SET stock = stock - ?1, updated_at = ?2 WHERE id = ?3")?
            .execute(params![quantity, now, product])?;
        let amount = seed::money(price * quantity as f64);
        let user = self.random_user();
        tx.prepare_cached(
            "INSERT INTO orders (user_id, product_id, quantity, amount, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'pending_payment', ?5, ?5)",
        )?
        .execute(params![user, product, quantity, amount, now])?;
        let id = tx.last_insert_rowid();
        // Most buyers pay within a minute; the rest abandon the order to the cancel job.
        if self.rng.u32(0..100) < 88 {
            self.pending_orders.push(PendingOrder {
                id,
                amount,
                due: self.tick + self.rng.u64(2..=60),
            });
        }
        Ok(())
    }

    fn pay_orders(
        &mut self,
        tx: &Transaction<'_>,
        now: i64,
        failing: bool,
    ) -> rusqlite::Result<()> {
        let tick = self.tick;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_orders)
            .into_iter()
            .partition(|o| o.due <= tick);
        self.pending_orders = waiting;
        for order in due {
            let method = seed::payment_method(&mut self.rng);
            let fails = self.rng.u32(0..100) < if failing { 50 } else { 3 };
            if fails {
                let still_pending: Option<i64> = tx
                    .prepare_cached(
                        "SELECT 1 FROM orders WHERE id = ?1 AND status = 'pending_payment'",
                    )?
                    .query_row([order.id], |row| row.get(0))
                    .optional()?;
                if still_pending.is_none() {
                    continue;
                }
                let error = if failing {
                    "GATEWAY_TIMEOUT"
                } else {
                    seed::payment_error(&mut self.rng)
                };
                insert_payment(
                    tx,
                    order.id,
                    method,
                    order.amount,
                    "failed",
                    Some(error),
                    now,
                )?;
                if self.rng.u32(0..100) < 60 {
                    self.pending_orders.push(PendingOrder {
                        due: tick + self.rng.u64(5..=30),
                        ..order
                    });
                }
                continue;
            }
            let paid = tx
                .prepare_cached(
                    "UPDATE orders SET status = 'paid', paid_at = ?1, updated_at = ?1
                     WHERE id = ?2 AND status = 'pending_payment'",
                )?
                .execute(params![now, order.id])?;
            if paid == 1 {
                insert_payment(tx, order.id, method, order.amount, "success", None, now)?;
            }
        }
        Ok(())
    }

    fn group_buys(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        if self.rng.u32(0..100) < 3 {
            let product = self.rng.i64(1..=PRODUCTS);
            let required = self.rng.i64(3..=8);
            let expire_at = now + self.rng.i64(5 * 60..=20 * 60);
            tx.prepare_cached(
                "INSERT INTO group_buys (product_id, required_count, current_count, status, created_at, expire_at)
                 VALUES (?1, ?2, 1, 'open', ?3, ?4)",
            )?
            .execute(params![product, required, now, expire_at])?;
        }
        if self.rng.u32(0..100) < 25 {
            tx.prepare_cached(
                "UPDATE group_buys
                 SET current_count = current_count + 1,
                     status = CASE WHEN current_count + 1 >= required_count THEN 'success' ELSE status END
                 WHERE id = (SELECT id FROM group_buys WHERE status = 'open' AND expire_at > ?1
                             ORDER BY expire_at LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![now, self.rng.i64(0..5)])?;
        }
        Ok(())
    }

    fn restock(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        if self.rng.u32(0..100) >= 2 {
            return Ok(());
        }
        tx.prepare_cached(
            "UPDATE products SET stock = stock + ?1, updated_at = ?2
             WHERE id = (SELECT id FROM products WHERE status = 'on_sale' AND stock < ?3
                         ORDER BY stock LIMIT 1)",
        )?
        .execute(params![self.rng.i64(50..=500), now, LOW_STOCK])?;
        Ok(())
    }

    fn run_on_stock(&mut self, tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
        let mut update = tx.prepare_cached(
            "UPDATE products SET stock = ?1, updated_at = ?2 WHERE id = ?3 AND status = 'on_sale'",
        )?;
        for _ in 0..self.rng.usize(3..=5) {
            update.execute(params![self.rng.i64(0..5), now, self.rng.i64(1..=PRODUCTS)])?;
        }
        Ok(())
    }
}

fn wallet_state(tx: &Transaction<'_>, wallet: i64) -> rusqlite::Result<Option<(f64, String)>> {
    tx.prepare_cached("SELECT balance, status FROM wallets WHERE id = ?1")?
        .query_row([wallet], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// Adds `balance` and `frozen` (either may be negative) to a wallet.
fn move_funds(
    tx: &Transaction<'_>,
    wallet: i64,
    balance: f64,
    frozen: f64,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE wallets
         SET balance = round(max(balance + ?1, 0), 2),
             frozen_balance = round(max(frozen_balance + ?2, 0), 2),
             updated_at = ?3
         WHERE id = ?4",
    )?
    .execute(params![balance, frozen, now, wallet])?;
    Ok(())
}

fn insert_transaction(
    tx: &Transaction<'_>,
    wallet: i64,
    counterparty: Option<i64>,
    kind: &str,
    amount: f64,
    status: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    let fee = if kind == "withdraw" { 1.0 } else { 0.0 };
    tx.prepare_cached(
        "INSERT INTO transactions (wallet_id, counterparty_wallet_id, type, amount, fee, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![wallet, counterparty, kind, amount, fee, status, now])?;
    Ok(tx.last_insert_rowid())
}

fn insert_payment(
    tx: &Transaction<'_>,
    order: i64,
    method: &str,
    amount: f64,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO payments (order_id, method, amount, status, error_code, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![order, method, amount, status, error, now])?;
    Ok(())
}

/// The cancel job: orders unpaid for 30 minutes are cancelled and their stock returned.
fn cancel_overdue_orders(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    let cancelled: Vec<(i64, i64)> = tx
        .prepare_cached(
            "UPDATE orders SET status = 'cancelled', updated_at = ?1
             WHERE status = 'pending_payment' AND created_at < ?1 - 1800
             RETURNING product_id, quantity",
        )?
        .query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut restock =
        tx.prepare_cached("UPDATE products SET stock = stock + ?1, updated_at = ?2 WHERE id = ?3")?;
    for (product, quantity) in cancelled {
        restock.execute(params![quantity, now, product])?;
    }
    Ok(())
}

/// Fulfilment: paid orders ship after a quarter of an hour, shipped ones complete after
/// two days.
fn advance_orders(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE orders SET status = 'shipped', updated_at = ?1
         WHERE status = 'paid' AND created_at < ?1 - 900",
    )?
    .execute([now])?;
    tx.prepare_cached(
        "UPDATE orders SET status = 'completed', updated_at = ?1
         WHERE status = 'shipped' AND created_at < ?1 - ?2",
    )?
    .execute([now, 2 * DAY])?;
    Ok(())
}

/// The group-buy job: expired open groups succeed or fail (and are refunded).
fn close_expired_group_buys(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE group_buys
         SET status = CASE WHEN current_count >= required_count THEN 'success' ELSE 'failed' END
         WHERE status = 'open' AND expire_at < ?1",
    )?
    .execute([now])?;
    Ok(())
}

/// Keeps the log tables bounded: two hours of API requests, eight days of logins.
fn prune(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM access_log WHERE created_at < ?1")?
        .execute([now - 2 * 3_600])?;
    tx.prepare_cached("DELETE FROM login_attempts WHERE success IN (0, 1) AND created_at < ?1")?
        .execute([now - 8 * DAY])?;
    Ok(())
}
