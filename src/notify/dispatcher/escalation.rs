//! The escalator: once a second, every incident that is firing unacknowledged and whose
//! next step is due (`after` its first notification) gets that step — its latest
//! notification queued for the step's channels, in the transaction that records the
//! step ([`Outbox::fire_step`]), so each step fires once, in order, restart or not. A
//! restart after the due time fires it on start. Also keeps `lookout_incidents_open`.

use std::sync::Arc;
use std::time::Duration;

use super::Dispatcher;
use crate::outbox::Outbox;
use crate::outbox::now_ms;

impl Dispatcher {
    pub(super) async fn escalate(self: Arc<Self>) {
        loop {
            self.escalate_due(&self.outbox, now_ms()).await;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = self.shutdown.wait() => return,
            }
        }
    }

    async fn escalate_due(&self, outbox: &Outbox, now: i64) {
        let incidents = match outbox.open_incidents().await {
            Ok(incidents) => incidents,
            Err(error) => {
                tracing::warn!(%error, "cannot read open incidents");
                return;
            }
        };
        self.metrics.set_incidents_open(incidents.len());
        let channels = self.channels.load_full();
        for incident in incidents.iter().filter(|i| !i.acked) {
            let Some(step) = channels
                .config()
                .receivers
                .get(&incident.receiver)
                .and_then(|r| r.escalate.get(incident.steps_done))
            else {
                continue;
            };
            let due = incident.opened_at_ms
                + i64::try_from(step.after.as_millis()).unwrap_or(i64::MAX / 4);
            if due > now {
                continue;
            }
            match outbox
                .fire_step(incident.id, incident.steps_done, step.channels.clone(), now)
                .await
            {
                Ok(true) => {
                    let number = incident.steps_done + 1;
                    tracing::info!(incident = incident.id, receiver = %incident.receiver, step = number, channels = ?step.channels, summary = %incident.summary, "escalating: not acknowledged");
                    self.metrics.escalated(&incident.receiver, number);
                    self.wake(&step.channels);
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, incident = incident.id, "cannot fire an escalation step")
                }
            }
        }
    }
}
