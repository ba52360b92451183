//! Rerouting a down cluster's writes to its standby.
//!
//! When a cluster with a `standby` has been Down for `reroute_after`, a reroute drain starts: its
//! consumer group (`fluxroute-reroute-<cluster>`) is seeded at the down cluster's committed
//! positions, and it delivers the lines the down cluster's routes take into the standby, until
//! the cluster is Up again. The cluster's own group never moved meanwhile, so on recovery it
//! replays exactly what it missed; lines the standby got twice are harmless (fixed timestamps).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{group_name, reroute_group_name, Drain, DrainKind};
use crate::config::ClusterConfig;
use crate::control::{ClusterControl, RerouteMode};
use crate::health::ClusterHealth;
use crate::influx::ClusterClient;
use crate::metrics::DrainMetrics;
use crate::queue::Queue;
use crate::route::RouteTable;

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
    /// The standby's operator control (a paused standby pauses the reroute into it).
    pub standby_control: Option<watch::Receiver<ClusterControl>>,
    /// Told whether the reroute is active.
    pub active: watch::Sender<bool>,
}

impl Reroute {
    /// Watches the primary until `cancel`, rerouting during its outages (after
    /// `reroute_after`), or as the operator forces it (`control`: on / off / auto).
    pub async fn run(
        self,
        mut control: watch::Receiver<ClusterControl>,
        cancel: CancellationToken,
        grace: Duration,
    ) {
        let name = self.primary.name.clone();
        let gauge = self.metrics.reroute_active.with_label_values(&[&name]);
        let active = |on: bool| {
            gauge.set(i64::from(on));
            self.active.send_replace(on);
        };
        active(false);
        let mut state = self.primary_health.subscribe();
        let mut down_since: Option<tokio::time::Instant> = None;
        let mut running: Option<(CancellationToken, tokio::task::JoinHandle<()>)> = None;
        loop {
            let up = state.borrow_and_update().is_up();
            down_since = if up {
                None
            } else {
                down_since.or_else(|| Some(tokio::time::Instant::now()))
            };
            let mode = control.borrow_and_update().reroute;
            let due = down_since.map(|t| t + self.primary.reroute_after);
            let want = match mode {
                RerouteMode::On => true,
                RerouteMode::Off => false,
                RerouteMode::Auto => due.is_some_and(|d| tokio::time::Instant::now() >= d),
            };
            if want && running.is_none() {
                match self.start(&name, grace, &cancel).await {
                    Ok(r) => {
                        tracing::warn!(cluster = %name, standby = %self.standby.name, ?mode, "rerouting the cluster's writes to its standby");
                        active(true);
                        running = Some(r);
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %name, error = %e, "starting the reroute; retrying")
                    }
                }
            } else if !want {
                if let Some((stop, handle)) = running.take() {
                    stop.cancel();
                    let _ = handle.await;
                    active(false);
                    tracing::info!(cluster = %name, "reroute stopped");
                }
            }
            let wake = match (want, running.is_some(), mode, due) {
                // Waiting for reroute_after to pass, or retrying a failed start.
                (false, _, RerouteMode::Auto, Some(d)) => d,
                (true, false, _, _) => tokio::time::Instant::now() + Duration::from_secs(1),
                _ => tokio::time::Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                r = state.changed() => if r.is_err() { break },
                r = control.changed() => if r.is_err() { break },
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        if let Some((stop, handle)) = running.take() {
            stop.cancel();
            let _ = handle.await;
        }
        active(false);
    }

    /// Seeds the reroute group at the primary's committed positions and starts its drain.
    async fn start(
        &self,
        name: &str,
        grace: Duration,
        cancel: &CancellationToken,
    ) -> Result<(CancellationToken, tokio::task::JoinHandle<()>), crate::queue::Error> {
        let positions = self.queue.group_positions(&group_name(name)).await?;
        let positions: Vec<(u32, i64)> = positions
            .into_iter()
            .filter_map(|(p, o)| Some((p, o?)))
            .collect();
        self.queue
            .seed_group(&reroute_group_name(name), &positions)
            .await?;
        let mut drain = Drain::new(
            Arc::clone(&self.standby),
            DrainKind::Reroute {
                from: name.to_owned(),
            },
            self.routes.clone(),
            Arc::clone(&self.queue),
            self.standby_client.clone(),
            Arc::clone(&self.standby_health),
            self.metrics.clone(),
        );
        if let Some(c) = &self.standby_control {
            drain = drain.with_control(c.clone());
        }
        let stop = cancel.child_token();
        let token = stop.clone();
        let owner = name.to_owned();
        let handle = tokio::spawn(async move {
            if let Err(e) = drain.run(token, grace).await {
                tracing::error!(cluster = %owner, error = %e, "reroute drain failed");
            }
        });
        Ok((stop, handle))
    }
}
