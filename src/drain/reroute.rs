//! Rerouting a down cluster's writes to its standby.
//!
//! When a cluster with a `standby` has been Down for `reroute_after`, a reroute drain starts: its
//! consumer group (`fluxroute-reroute-<cluster>`) is seeded at the down cluster's committed
//! positions, and it delivers the lines the down cluster's routes take into the standby, until
//! the cluster is Up again. The cluster's own group never moved meanwhile, so on recovery it
//! replays exactly what it missed; lines the standby got twice are harmless (fixed timestamps).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{group_name, reroute_group_name, Drain, DrainKind};
use crate::config::ClusterConfig;
use crate::health::ClusterHealth;
use crate::influx::ClusterClient;
use crate::metrics::DrainMetrics;
use crate::queue::Queue;
use crate::route::RouteTable;

/// Waits until the cluster's Up-ness is `up`; `false` when the state is gone.
async fn wait(
    state: &mut tokio::sync::watch::Receiver<crate::health::ClusterState>,
    up: bool,
) -> bool {
    state.wait_for(|s| s.is_up() == up).await.is_ok()
}

/// What a reroute needs: the watched cluster, its standby, and the standby's delivery parts.
#[derive(Debug)]
pub struct Reroute {
    /// The cluster whose outages are covered.
    pub primary: Arc<ClusterConfig>,
    /// Its health.
    pub primary_health: Arc<ClusterHealth>,
    /// The standby cluster.
    pub standby: Arc<ClusterConfig>,
    /// The standby's health.
    pub standby_health: Arc<ClusterHealth>,
    /// The standby's client.
    pub standby_client: ClusterClient,
    /// Routing table.
    pub routes: RouteTable,
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// Metrics.
    pub metrics: DrainMetrics,
}

impl Reroute {
    /// Watches the primary until `cancel`, rerouting during its outages.
    pub async fn run(self, cancel: CancellationToken, grace: Duration) {
        let name = self.primary.name.clone();
        let active = self.metrics.reroute_active.with_label_values(&[&name]);
        active.set(0);
        let mut state = self.primary_health.subscribe();
        loop {
            // Wait for an outage, then for it to last `reroute_after`.
            tokio::select! {
                () = cancel.cancelled() => return,
                r = wait(&mut state, false) => if !r { return },
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = wait(&mut state, true) => continue,
                () = tokio::time::sleep(self.primary.reroute_after) => {}
            }
            let positions = match self.queue.group_positions(&group_name(&name)).await {
                Ok(p) => p
                    .into_iter()
                    .filter_map(|(p, o)| Some((p, o?)))
                    .collect::<Vec<_>>(),
                Err(e) => {
                    tracing::warn!(cluster = %name, error = %e, "reading positions for the reroute; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = self
                .queue
                .seed_group(&reroute_group_name(&name), &positions)
                .await
            {
                tracing::warn!(cluster = %name, error = %e, "seeding the reroute group; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            tracing::warn!(cluster = %name, standby = %self.standby.name, "cluster down past reroute_after; rerouting its writes to the standby");
            active.set(1);
            let drain = Drain::new(
                Arc::clone(&self.standby),
                DrainKind::Reroute { from: name.clone() },
                self.routes.clone(),
                Arc::clone(&self.queue),
                self.standby_client.clone(),
                Arc::clone(&self.standby_health),
                self.metrics.clone(),
            );
            let stop = cancel.child_token();
            let run = drain.run(stop.clone(), grace);
            tokio::pin!(run);
            tokio::select! {
                r = &mut run => {
                    if let Err(e) = r {
                        tracing::error!(cluster = %name, error = %e, "reroute drain failed");
                    }
                }
                _ = wait(&mut state, true) => {
                    stop.cancel();
                    if let Err(e) = run.await {
                        tracing::error!(cluster = %name, error = %e, "reroute drain failed");
                    }
                }
            }
            active.set(0);
            tracing::info!(cluster = %name, "reroute stopped");
            if cancel.is_cancelled() {
                return;
            }
        }
    }
}
