//! Per-target send budgets: a sliding window of send times plus an explicit pause after
//! the target answered "rate limited". One `Window` per real target (one robot URL, one
//! phone number), shared by every channel that sends to it; the rate is passed in on
//! every call, so a reloaded `rate_limit` applies at once. Pure (times are passed in), so
//! it is tested without clocks.

use std::collections::VecDeque;

use crate::configfile::Rate;

/// Slack added to every window so our clock and the service's never disagree at the edge.
const WINDOW_SLACK_MS: i64 = 1_000;

/// The sends and pause of one target (one robot, one phone number).
#[derive(Debug, Clone, Default)]
pub struct Window {
    sends: VecDeque<i64>,
    /// The longest window any caller asked about: sends older than this are forgotten.
    longest_ms: i64,
    paused_until_ms: Option<i64>,
}

/// A rate as a window length (with slack) and a count.
fn limits(rate: Rate) -> (usize, i64) {
    let count = usize::try_from(rate.count).unwrap_or(usize::MAX).max(1);
    let per_ms = i64::try_from(rate.per.as_millis())
        .unwrap_or(i64::MAX / 2)
        .saturating_add(WINDOW_SLACK_MS);
    (count, per_ms)
}

impl Window {
    pub fn new() -> Self {
        Self::default()
    }

    /// A window as the outbox recorded it: its sends (oldest first) and pause.
    pub fn restored(sends: &[i64], paused_until_ms: Option<i64>) -> Self {
        let mut window = Window::new();
        sends.iter().for_each(|&at| window.record(at));
        if let Some(until) = paused_until_ms {
            window.pause_until(until);
        }
        window
    }

    /// The window length of `rate`, including the slack.
    pub fn per_ms(rate: Rate) -> i64 {
        limits(rate).1
    }

    /// Forgets what no window of up to `per_ms` can need, and an ended pause; returns
    /// the sends inside the last `per_ms`.
    fn recent(&mut self, now_ms: i64, per_ms: i64) -> usize {
        self.longest_ms = self.longest_ms.max(per_ms);
        let horizon = now_ms.saturating_sub(self.longest_ms);
        while self.sends.front().is_some_and(|&t| t <= horizon) {
            self.sends.pop_front();
        }
        if self.paused_until_ms.is_some_and(|until| until <= now_ms) {
            self.paused_until_ms = None;
        }
        let start = now_ms.saturating_sub(per_ms);
        self.sends.len() - self.sends.partition_point(|&t| t <= start)
    }

    /// How many messages may be sent at `now_ms` under `rate` (0 while paused).
    pub fn available(&mut self, now_ms: i64, rate: Rate) -> usize {
        let (count, per_ms) = limits(rate);
        let recent = self.recent(now_ms, per_ms);
        if self.paused_until_ms.is_some() {
            return 0;
        }
        count.saturating_sub(recent)
    }

    /// Spends one message of the budget if there is one; false otherwise. Checking and
    /// spending in one call keeps channels that share the target from overspending it.
    pub fn try_take(&mut self, now_ms: i64, rate: Rate) -> bool {
        let free = self.available(now_ms, rate) > 0;
        if free {
            self.record(now_ms);
        }
        free
    }

    /// When at least one message may be sent again.
    pub fn next_free_ms(&mut self, now_ms: i64, rate: Rate) -> i64 {
        self.ready_at_ms(1, now_ms, rate)
    }

    /// When at least `n` messages may be sent (capped at the window's size).
    pub fn ready_at_ms(&mut self, n: usize, now_ms: i64, rate: Rate) -> i64 {
        let (count, per_ms) = limits(rate);
        let recent = self.recent(now_ms, per_ms);
        let n = n.clamp(1, count);
        let start = self.paused_until_ms.unwrap_or(now_ms);
        let free = count.saturating_sub(recent);
        if free >= n {
            return start;
        }
        // The (n - free) oldest sends of the window must leave it.
        let oldest = self.sends.len() - recent;
        self.sends
            .get(oldest + (n - free - 1))
            .map_or(start, |&t| start.max(t.saturating_add(per_ms)))
    }

    pub fn record(&mut self, at_ms: i64) {
        // Send times arrive in order; a clock step back must not unsort the window.
        let at_ms = self.sends.back().map_or(at_ms, |&last| last.max(at_ms));
        self.sends.push_back(at_ms);
    }

    pub fn pause_until(&mut self, until_ms: i64) {
        self.paused_until_ms = Some(self.paused_until_ms.map_or(until_ms, |p| p.max(until_ms)));
    }

    /// The end of the pause, if one is in force at `now_ms`.
    pub fn paused_at(&self, now_ms: i64) -> Option<i64> {
        self.paused_until_ms.filter(|&until| until > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: Rate = Rate {
        count: 3,
        per: Duration::from_secs(60),
    };

    #[test]
    fn a_full_window_frees_a_slot_per_expired_send() {
        let mut w = Window::new();
        assert_eq!(w.available(0, RATE), 3);
        for t in [0, 10_000, 20_000] {
            w.record(t);
        }
        assert_eq!(w.available(30_000, RATE), 0);
        assert_eq!(
            w.next_free_ms(30_000, RATE),
            61_000,
            "60 s window plus 1 s slack"
        );
        assert_eq!(w.available(61_000, RATE), 1);
        assert_eq!(w.available(81_000, RATE), 3);
    }

    #[test]
    fn ready_at_tells_when_n_slots_are_free() {
        let mut w = Window::new();
        for t in [0, 10_000, 20_000] {
            w.record(t);
        }
        assert_eq!(w.ready_at_ms(1, 30_000, RATE), 61_000);
        assert_eq!(w.ready_at_ms(2, 30_000, RATE), 71_000);
        assert_eq!(
            w.ready_at_ms(9, 30_000, RATE),
            81_000,
            "capped at the window size"
        );
        assert_eq!(w.ready_at_ms(1, 90_000, RATE), 90_000);
    }

    #[test]
    fn a_pause_blocks_until_it_ends() {
        let mut w = Window::new();
        w.pause_until(600_000);
        assert_eq!(w.available(1_000, RATE), 0);
        assert_eq!(w.next_free_ms(1_000, RATE), 600_000);
        w.pause_until(300_000);
        assert_eq!(
            w.paused_at(1_000),
            Some(600_000),
            "a shorter pause does not shorten it"
        );
        assert_eq!(w.available(600_000, RATE), 3);
        assert_eq!(w.paused_at(600_000), None);
    }

    #[test]
    fn try_take_spends_only_what_is_free() {
        let mut w = Window::new();
        let taken = (0..5).filter(|i| w.try_take(i * 1_000, RATE)).count();
        assert_eq!(
            taken, 3,
            "two callers sharing the target cannot overspend it"
        );
        assert!(!w.try_take(10_000, RATE));
        assert!(w.try_take(61_000, RATE));
    }

    #[test]
    fn a_changed_rate_applies_to_the_sends_already_made() {
        let mut w = Window::new();
        for t in [0, 1_000, 2_000] {
            w.record(t);
        }
        let faster = Rate {
            count: 10,
            per: Duration::from_secs(60),
        };
        assert_eq!(w.available(3_000, RATE), 0);
        assert_eq!(
            w.available(3_000, faster),
            7,
            "a reload raising the rate counts at once"
        );
        let slower = Rate {
            count: 2,
            per: Duration::from_secs(3_600),
        };
        assert_eq!(
            w.available(120_000, slower),
            0,
            "an hour's window remembers the sends"
        );
        assert_eq!(w.available(120_000, RATE), 3);
    }
}
