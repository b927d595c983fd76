//! A real Prometheus scrapes `lookout demo`: the business series are there and they move
//! while the simulator writes, and every demo query reports success.

use std::time::Duration;

use crate::support::lookout::HOST_ONLY_CONFIG;
use crate::support::{Lookout, Prometheus, poll_until};

#[test]
fn prometheus_sees_business_series_change() {
    let lookout = Lookout::start_with_args(HOST_ONLY_CONFIG, &["demo"]);
    let Some(prometheus) = Prometheus::scraping(&[("lookout", lookout.addr())]) else {
        return;
    };
    poll_until(Duration::from_secs(40), "shop series in Prometheus", || {
        let series = prometheus.query_vector("count({__name__=~\"shop_.+\"})");
        match series.first() {
            Some((_, n)) if *n >= 30.0 => Ok(()),
            other => Err(format!("{other:?}\n{}", lookout.logs())),
        }
    });
    // Every demo query reports, and none reports failure (an absent metric would make
    // the second check pass vacuously, hence the first).
    let reporting = prometheus.query_vector("count(lookout_query_success)");
    assert!(
        reporting.first().is_some_and(|(_, n)| *n >= 10.0),
        "demo queries reporting lookout_query_success: {reporting:?}"
    );
    let failing = prometheus.query_vector("lookout_query_success == 0");
    assert!(failing.is_empty(), "failing demo queries: {failing:?}");
    // The simulator inserts activity every second; queries refresh every 10–30 s.
    poll_until(
        Duration::from_secs(90),
        "a business series to change",
        || {
            let changed = prometheus.query_vector("sum(changes(shop_transactions_today[5m])) + sum(changes(shop_orders_today[5m])) + sum(changes(shop_users_active_24h[5m]))");
            match changed.first() {
                Some((_, n)) if *n > 0.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
}
