//! Operator control of clusters — pause, reroute mode, replay requests — shared by every
//! fluxroute instance of a deployment.
//!
//! Each cluster has one [`ClusterControl`] state. An admin action computes the new state,
//! publishes it through the [`ControlStore`] (Kafka: a compacted control topic every instance
//! follows, so a pause given to one instance stops the cluster's drain on all of them; embedded:
//! a local file), and applies it locally. Drains and reroutes follow the state through `watch`
//! channels. The state survives restarts: it is read back before the drains start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::queue;

pub mod kafka;

/// Whether a cluster's writes go to its standby.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RerouteMode {
    /// Reroute after `reroute_after` of outage (the default).
    #[default]
    Auto,
    /// Reroute now, whatever the cluster's health.
    On,
    /// Never reroute.
    Off,
}

impl RerouteMode {
    /// The mode as written (`auto`, `on`, `off`).
    pub fn as_str(self) -> &'static str {
        match self {
            RerouteMode::Auto => "auto",
            RerouteMode::On => "on",
            RerouteMode::Off => "off",
        }
    }

    /// Parses `true` / `false` / `auto` (and `on` / `off`).
    pub fn parse(s: &str) -> Option<RerouteMode> {
        match s {
            "true" | "on" => Some(RerouteMode::On),
            "false" | "off" => Some(RerouteMode::Off),
            "auto" => Some(RerouteMode::Auto),
            _ => None,
        }
    }
}

/// A request to re-deliver a cluster's records from a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// Distinguishes requests (the time it was made, in ms); each is applied once.
    pub id: i64,
    /// Replay records appended at or after this time (ms since the epoch).
    pub since_ms: i64,
}

/// The operator's wishes for one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterControl {
    /// Paused for maintenance: the drain stops, the queue buffers.
    #[serde(default)]
    pub paused: bool,
    /// Reroute mode.
    #[serde(default)]
    pub reroute: RerouteMode,
    /// The latest replay request.
    #[serde(default)]
    pub replay: Option<ReplayRequest>,
}

/// Control failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such cluster.
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    /// The state could not be published.
    #[error("publishing the control state: {0}")]
    Publish(#[from] queue::Error),
}

/// Where control state is shared and kept.
#[async_trait]
pub trait ControlStore: Send + Sync + std::fmt::Debug {
    /// Publishes a cluster's new state durably.
    ///
    /// # Errors
    /// When the store refuses.
    async fn publish(&self, cluster: &str, state: &ClusterControl) -> Result<(), queue::Error>;

    /// Reads every cluster's latest state.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn load(&self) -> Result<BTreeMap<String, ClusterControl>, queue::Error>;

    /// Applies states published by other instances to `control` until `cancel`.
    async fn follow(&self, control: Arc<Control>, cancel: tokio_util::sync::CancellationToken);
}

/// Every cluster's control state, published to followers.
#[derive(Debug)]
pub struct Control {
    clusters: std::sync::RwLock<BTreeMap<String, watch::Sender<ClusterControl>>>,
    store: Arc<dyn ControlStore>,
}

impl Control {
    /// Control for `clusters`, starting from `initial` states (from [`ControlStore::load`]).
    pub fn new(
        clusters: impl IntoIterator<Item = String>,
        initial: &BTreeMap<String, ClusterControl>,
        store: Arc<dyn ControlStore>,
    ) -> Control {
        let clusters = clusters
            .into_iter()
            .map(|c| {
                let state = initial.get(&c).cloned().unwrap_or_default();
                (c, watch::channel(state).0)
            })
            .collect();
        Control {
            clusters: std::sync::RwLock::new(clusters),
            store,
        }
    }

    fn sender(&self, cluster: &str) -> Option<watch::Sender<ClusterControl>> {
        let map = self
            .clusters
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(cluster).cloned()
    }

    /// Adds clusters that appeared in a reloaded configuration, with their stored state.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn add_clusters(
        &self,
        names: impl IntoIterator<Item = String>,
    ) -> Result<(), queue::Error> {
        let stored = self.store.load().await?;
        let mut map = self
            .clusters
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in names {
            let state = stored.get(&name).cloned().unwrap_or_default();
            map.entry(name).or_insert_with(|| watch::channel(state).0);
        }
        Ok(())
    }

    /// Follows `cluster`'s state.
    pub fn subscribe(&self, cluster: &str) -> Option<watch::Receiver<ClusterControl>> {
        self.sender(cluster).map(|s| s.subscribe())
    }

    /// `cluster`'s current state.
    pub fn get(&self, cluster: &str) -> Option<ClusterControl> {
        self.sender(cluster).map(|s| s.borrow().clone())
    }

    /// Applies a state published elsewhere (unknown clusters are ignored).
    pub fn apply(&self, cluster: &str, state: ClusterControl) {
        if let Some(s) = self.sender(cluster) {
            s.send_if_modified(|cur| {
                if *cur == state {
                    return false;
                }
                tracing::info!(%cluster, ?state, "control state changed");
                *cur = state;
                true
            });
        }
    }

    /// Changes `cluster`'s state with `f`, publishes it to every instance, applies it here.
    ///
    /// # Errors
    /// [`ControlError::UnknownCluster`], or [`ControlError::Publish`] when it could not be
    /// shared (then nothing changed).
    pub async fn update(
        &self,
        cluster: &str,
        f: impl FnOnce(&mut ClusterControl),
    ) -> Result<ClusterControl, ControlError> {
        let sender = self
            .sender(cluster)
            .ok_or_else(|| ControlError::UnknownCluster(cluster.to_owned()))?;
        let mut next = sender.borrow().clone();
        f(&mut next);
        self.store.publish(cluster, &next).await?;
        self.apply(cluster, next.clone());
        Ok(next)
    }
}

/// Control state in a JSON file (embedded backend: one instance).
#[derive(Debug)]
pub struct FileControlStore {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileControlStore {
    /// A store at `path` (created on first publish).
    pub fn new(path: PathBuf) -> FileControlStore {
        FileControlStore {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> queue::Error {
        queue::Error::Unavailable {
            context: format!("{what} {}", self.path.display()),
            source: Box::new(e),
        }
    }
}

#[async_trait]
impl ControlStore for FileControlStore {
    async fn publish(&self, cluster: &str, state: &ClusterControl) -> Result<(), queue::Error> {
        let _guard = self.lock.lock().await;
        let mut all = self.load().await?;
        all.insert(cluster.to_owned(), state.clone());
        let text = serde_json::to_vec_pretty(&all)
            .map_err(|e| queue::Error::Setup(format!("encoding control state: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        let path = self.path.clone();
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| queue::Error::Setup(format!("control store task failed: {e}")))?;
        res.map_err(|e| self.io_error("writing", e))
    }

    async fn load(&self) -> Result<BTreeMap<String, ClusterControl>, queue::Error> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| queue::Error::Setup(format!("reading {}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.io_error("reading", e)),
        }
    }

    async fn follow(&self, _control: Arc<Control>, cancel: tokio_util::sync::CancellationToken) {
        // One instance: every change is made here and already applied.
        cancel.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroute_modes_read_back_as_written() {
        for mode in [RerouteMode::Auto, RerouteMode::On, RerouteMode::Off] {
            assert_eq!(RerouteMode::parse(mode.as_str()), Some(mode));
            assert_eq!(
                serde_json::to_value(mode).expect("serializes"),
                serde_json::json!(mode.as_str())
            );
        }
    }

    #[tokio::test]
    async fn file_store_keeps_state_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.json");
        let store: Arc<dyn ControlStore> = Arc::new(FileControlStore::new(path.clone()));
        let control = Control::new(
            ["a".to_owned(), "b".to_owned()],
            &BTreeMap::new(),
            Arc::clone(&store),
        );
        let mut rx = control.subscribe("a").unwrap();
        control.update("a", |c| c.paused = true).await.unwrap();
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow_and_update().paused);
        control
            .update("b", |c| c.reroute = RerouteMode::On)
            .await
            .unwrap();
        assert!(matches!(
            control.update("zz", |c| c.paused = true).await,
            Err(ControlError::UnknownCluster(_))
        ));

        let reopened = FileControlStore::new(path);
        let loaded = reopened.load().await.unwrap();
        assert!(loaded["a"].paused);
        assert_eq!(loaded["b"].reroute, RerouteMode::On);
        let again = Control::new(["a".to_owned()], &loaded, Arc::new(reopened));
        assert!(again.get("a").unwrap().paused);
    }

    #[test]
    fn reroute_modes_parse() {
        assert_eq!(RerouteMode::parse("true"), Some(RerouteMode::On));
        assert_eq!(RerouteMode::parse("false"), Some(RerouteMode::Off));
        assert_eq!(RerouteMode::parse("auto"), Some(RerouteMode::Auto));
        assert_eq!(RerouteMode::parse("maybe"), None);
    }
}
