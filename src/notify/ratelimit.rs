//! Per-target send budgets: a sliding window of send times plus an explicit pause after
//! the target answered "rate limited". Pure (times are passed in), so it is tested
//! without clocks.

use std::collections::VecDeque;

use crate::config::Rate;

/// Slack added to every window so our clock and the service's never disagree at the edge.
const WINDOW_SLACK_MS: i64 = 1_000;

/// The budget of one target (one robot, one phone number).
#[derive(Debug, Clone)]
pub struct Window {
    count: usize,
    per_ms: i64,
    sends: VecDeque<i64>,
    paused_until_ms: Option<i64>,
}

impl Window {
    pub fn new(rate: Rate) -> Self {
        let per_ms = i64::try_from(rate.per.as_millis()).unwrap_or(i64::MAX / 2) + WINDOW_SLACK_MS;
        Self {
            count: usize::try_from(rate.count).unwrap_or(usize::MAX).max(1),
            per_ms,
            sends: VecDeque::new(),
            paused_until_ms: None,
        }
    }

    /// The window length including the slack.
    pub fn per_ms(&self) -> i64 {
        self.per_ms
    }

    fn prune(&mut self, now_ms: i64) {
        while self
            .sends
            .front()
            .is_some_and(|&t| t <= now_ms - self.per_ms)
        {
            self.sends.pop_front();
        }
        if self.paused_until_ms.is_some_and(|until| until <= now_ms) {
            self.paused_until_ms = None;
        }
    }

    /// How many messages may be sent at `now_ms` (0 while paused).
    pub fn available(&mut self, now_ms: i64) -> usize {
        self.prune(now_ms);
        if self.paused_until_ms.is_some() {
            return 0;
        }
        self.count.saturating_sub(self.sends.len())
    }

    /// When at least one message may be sent again.
    pub fn next_free_ms(&mut self, now_ms: i64) -> i64 {
        self.prune(now_ms);
        if let Some(until) = self.paused_until_ms {
            return until;
        }
        if self.sends.len() < self.count {
            return now_ms;
        }
        let index = self.sends.len() - self.count;
        self.sends.get(index).map_or(now_ms, |&t| t + self.per_ms)
    }

    /// When at least `n` messages may be sent (capped at the window's size).
    pub fn ready_at_ms(&mut self, n: usize, now_ms: i64) -> i64 {
        self.prune(now_ms);
        let n = n.min(self.count);
        let start = self.paused_until_ms.unwrap_or(now_ms);
        let free = self.count.saturating_sub(self.sends.len());
        if free >= n {
            return start;
        }
        // The (n - free) oldest sends must leave the window.
        let index = n - free - 1;
        self.sends
            .get(index)
            .map_or(start, |&t| start.max(t + self.per_ms))
    }

    pub fn record(&mut self, at_ms: i64) {
        self.sends.push_back(at_ms);
    }

    pub fn pause_until(&mut self, until_ms: i64) {
        self.paused_until_ms = Some(self.paused_until_ms.map_or(until_ms, |p| p.max(until_ms)));
    }

    pub fn paused_until(&self) -> Option<i64> {
        self.paused_until_ms
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn window() -> Window {
        Window::new(Rate {
            count: 3,
            per: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_full_window_frees_a_slot_per_expired_send() {
        let mut w = window();
        assert_eq!(w.available(0), 3);
        for t in [0, 10_000, 20_000] {
            w.record(t);
        }
        assert_eq!(w.available(30_000), 0);
        assert_eq!(w.next_free_ms(30_000), 61_000, "60 s window plus 1 s slack");
        assert_eq!(w.available(61_000), 1);
        assert_eq!(w.available(81_000), 3);
    }

    #[test]
    fn ready_at_tells_when_n_slots_are_free() {
        let mut w = window();
        for t in [0, 10_000, 20_000] {
            w.record(t);
        }
        assert_eq!(w.ready_at_ms(1, 30_000), 61_000);
        assert_eq!(w.ready_at_ms(2, 30_000), 71_000);
        assert_eq!(
            w.ready_at_ms(9, 30_000),
            81_000,
            "capped at the window size"
        );
        assert_eq!(w.ready_at_ms(1, 90_000), 90_000);
    }

    #[test]
    fn a_pause_blocks_until_it_ends() {
        let mut w = window();
        w.pause_until(600_000);
        assert_eq!(w.available(1_000), 0);
        assert_eq!(w.next_free_ms(1_000), 600_000);
        w.pause_until(300_000);
        assert_eq!(
            w.paused_until(),
            Some(600_000),
            "a shorter pause does not shorten it"
        );
        assert_eq!(w.available(600_000), 3);
    }
}
