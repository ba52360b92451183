//! Cluster health: per endpoint, active probes plus passive write outcomes through rise/fall
//! thresholds; a cluster is Up while any endpoint is Up. The state machine ([`EndpointHealth`],
//! [`ClusterHealth`]) is pure; [`probe_loop`] is the thin async part. State is published through
//! a `watch` channel the drain follows.
//!
//! Detection time of a dead or hung endpoint is at most `fall × interval` (each probe times out
//! after `health_timeout < interval`), sooner under write load since failed writes count too.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Endpoint;
use crate::influx::ClusterClient;

/// One endpoint's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    up: bool,
    ok_streak: u32,
    fail_streak: u32,
    rise: u32,
    fall: u32,
    last_error: Option<String>,
}

impl EndpointHealth {
    /// A new endpoint, assumed Up until `fall` failures say otherwise.
    pub fn new(rise: u32, fall: u32) -> EndpointHealth {
        EndpointHealth {
            up: true,
            ok_streak: 0,
            fail_streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
            last_error: None,
        }
    }

    /// Whether the endpoint is Up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The last failure seen.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Records an outcome; returns the new state when it changed.
    pub fn observe(&mut self, result: Result<(), &str>) -> Option<bool> {
        match result {
            Ok(()) => {
                self.fail_streak = 0;
                self.ok_streak = self.ok_streak.saturating_add(1);
                if !self.up && self.ok_streak >= self.rise {
                    self.up = true;
                    return Some(true);
                }
            }
            Err(e) => {
                self.ok_streak = 0;
                self.fail_streak = self.fail_streak.saturating_add(1);
                self.last_error = Some(e.to_owned());
                if self.up && self.fail_streak >= self.fall {
                    self.up = false;
                    return Some(false);
                }
            }
        }
        None
    }
}

/// What the drain needs to know about its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// Per endpoint: Up?
    pub endpoints_up: Vec<bool>,
    /// Set when the cluster refused our credentials (401/403): paused until restart.
    pub misconfigured: Option<String>,
}

impl ClusterState {
    /// Whether the drain may write: some endpoint is Up and credentials are accepted.
    pub fn is_up(&self) -> bool {
        self.misconfigured.is_none() && self.endpoints_up.iter().any(|&u| u)
    }

    /// The index of an Up endpoint to use, spreading by `seed`.
    pub fn pick_endpoint(&self, seed: usize) -> Option<usize> {
        let n = self.endpoints_up.len();
        (0..n)
            .map(|i| (seed + i) % n.max(1))
            .find(|&i| self.endpoints_up[i])
    }
}

/// The health of one cluster: endpoint state machines and the published [`ClusterState`].
#[derive(Debug)]
pub struct ClusterHealth {
    cluster: String,
    endpoints: std::sync::Mutex<Vec<EndpointHealth>>,
    state: watch::Sender<ClusterState>,
}

impl ClusterHealth {
    /// Health for a cluster of `endpoints` endpoints.
    pub fn new(cluster: &str, endpoints: usize, rise: u32, fall: u32) -> ClusterHealth {
        let (state, _) = watch::channel(ClusterState {
            endpoints_up: vec![true; endpoints],
            misconfigured: None,
        });
        ClusterHealth {
            cluster: cluster.to_owned(),
            endpoints: std::sync::Mutex::new(vec![EndpointHealth::new(rise, fall); endpoints]),
            state,
        }
    }

    /// Follows the cluster's state.
    pub fn subscribe(&self) -> watch::Receiver<ClusterState> {
        self.state.subscribe()
    }

    /// The current state.
    pub fn current(&self) -> ClusterState {
        self.state.borrow().clone()
    }

    /// Feeds a probe or write outcome of endpoint `index`.
    pub fn observe(&self, index: usize, result: Result<(), &str>) {
        let changed = {
            let Ok(mut eps) = self.endpoints.lock() else {
                return;
            };
            let Some(ep) = eps.get_mut(index) else { return };
            ep.observe(result)
        };
        if let Some(up) = changed {
            if up {
                tracing::info!(cluster = %self.cluster, endpoint = index, "endpoint up");
            } else {
                tracing::warn!(cluster = %self.cluster, endpoint = index, error = ?result.err(), "endpoint down");
            }
            self.state.send_modify(|s| {
                let was = s.is_up();
                if let Some(e) = s.endpoints_up.get_mut(index) {
                    *e = up;
                }
                if was != s.is_up() {
                    tracing::warn!(cluster = %self.cluster, up = s.is_up(), "cluster state changed");
                }
            });
        }
    }

    /// Marks the cluster misconfigured (credentials refused): the drain pauses.
    pub fn set_misconfigured(&self, reason: &str) {
        self.state.send_if_modified(|s| {
            if s.misconfigured.is_none() {
                tracing::error!(cluster = %self.cluster, %reason, "cluster refused credentials; paused as misconfigured");
                s.misconfigured = Some(reason.to_owned());
                true
            } else {
                false
            }
        });
    }

    /// Last errors per endpoint.
    pub fn last_errors(&self) -> Vec<Option<String>> {
        self.endpoints
            .lock()
            .map(|eps| {
                eps.iter()
                    .map(|e| e.last_error().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Probes endpoint `index` of a cluster every `interval` until cancelled (one loop per
/// endpoint, so a hung endpoint never delays another's probes).
///
/// # Cancel safety
/// Runs until `cancel` fires; dropping it mid-probe is harmless.
pub async fn probe_loop(
    client: ClusterClient,
    endpoint: Endpoint,
    index: usize,
    health: std::sync::Arc<ClusterHealth>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let r = tokio::select! {
            () = cancel.cancelled() => return,
            r = client.probe(&endpoint) => r,
        };
        health.observe(index, r.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut h = EndpointHealth::new(2, 3);
        assert!(h.is_up());
        assert_eq!(h.observe(Err("a")), None);
        assert_eq!(h.observe(Err("b")), None);
        assert_eq!(h.observe(Err("c")), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.last_error(), Some("c"));
        assert_eq!(h.observe(Ok(())), None);
        assert_eq!(h.observe(Err("d")), None);
        assert_eq!(h.observe(Ok(())), None);
        assert_eq!(h.observe(Ok(())), Some(true));
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut h = EndpointHealth::new(1, 2);
        h.observe(Err("x"));
        h.observe(Ok(()));
        assert_eq!(h.observe(Err("y")), None);
        assert_eq!(h.observe(Err("z")), Some(false));
    }

    #[test]
    fn cluster_is_up_while_any_endpoint_is() {
        let c = ClusterHealth::new("c", 2, 1, 1);
        let rx = c.subscribe();
        c.observe(0, Err("down"));
        assert!(rx.borrow().is_up());
        assert_eq!(rx.borrow().pick_endpoint(0), Some(1));
        c.observe(1, Err("down"));
        assert!(!rx.borrow().is_up());
        assert_eq!(rx.borrow().pick_endpoint(0), None);
        c.observe(0, Ok(()));
        assert!(rx.borrow().is_up());
        c.set_misconfigured("401 authorization failed");
        assert!(!rx.borrow().is_up());
    }
}
