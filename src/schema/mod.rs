//! Schema views: what fluxroute knows of each cluster's databases and retention policies, so
//! that the ingest answers a write the way influxd would (404 `database not found`, 500
//! `retention policy not found`, 400 `points beyond retention policy`) instead of taking it
//! and dead-lettering it later.
//!
//! Owns: one view per cluster ([`view::KnownSchema`], or unknown), learned two ways:
//! - from the cluster: a [`Refresher`] per cluster runs `SHOW DATABASES` and `SHOW RETENTION
//!   POLICIES ON …` every `[schema] refresh_interval`, soon after a drain saw a database or
//!   retention policy missing, and whenever the cluster's health changes; a cluster that is
//!   down, never reached or failing to answer has an unknown view;
//! - from schema changes the ingest enqueued ([`SchemaViews::applied`]): their effect is shown
//!   at once, and kept over each refresh until the cluster's drain has committed past the
//!   change (then the cluster's own answer includes it);
//! - field types: `SHOW FIELD KEYS ON …` per database in each refresh (the default retention
//!   policy's fields), plus the fields a write the ingest accepted brings
//!   ([`SchemaViews::learned`]: the cluster creates them with that type on delivery); a drain
//!   that saw a field type conflict asks for a refresh.
//!
//! The ingest reads one [`Snapshot`] per request (one lock, an `Arc` clone) and decides with
//! [`view::decide`]; any unknown view leaves the write as it is today. Memory is bounded:
//! `max_databases` and `max_retention_policies` per cluster (what is beyond is counted in
//! `fluxroute_schema_dropped_total` and makes the view say less, never refuse more),
//! `max_fields` per cluster (a database whose fields are beyond it has unknown fields), and at
//! most [`MAX_PENDING`] unseen changes per cluster (beyond, the view is unknown until the drain
//! passes them).

pub mod view;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::admin::report::SchemaReport;
use crate::config::Endpoint;
use crate::health::ClusterHealth;
use crate::influx::ClusterClient;
use crate::metrics::SchemaMetrics;
use crate::query::position::Position;
use crate::query::statement::{quote_ident, Ddl};
use crate::queue::Queue;
use crate::route::RouteTable;

use self::view::{AgreedFields, Change, Decision, KnownSchema, Routed};
use crate::line_protocol::FieldType;

/// Schema changes held per cluster until seen applied; beyond, the view is unknown until the
/// drain passes them all.
pub const MAX_PENDING: usize = 256;
/// `SHOW RETENTION POLICIES` (or `SHOW FIELD KEYS`) statements sent in one request.
const POLICY_STATEMENTS_PER_QUERY: usize = 100;
/// Largest answer read from a cluster's `/query` for its schema.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Least time between two refreshes asked for by drains.
const MIN_HINTED_GAP: Duration = Duration::from_secs(1);

/// `[schema]`, as the views use it.
#[derive(Debug, Clone, Copy)]
pub struct SchemaSettings {
    /// Whether the ingest answers from the views at all.
    pub enabled: bool,
    /// Time between two refreshes of a cluster's view.
    pub refresh_interval: Duration,
    /// Databases held per cluster.
    pub max_databases: usize,
    /// Retention policies held per cluster (over all its databases).
    pub max_retention_policies: usize,
    /// Field types held per cluster (over all its databases and measurements).
    pub max_fields: usize,
}

/// One cluster as the ingest sees it.
#[derive(Debug, Clone)]
pub struct ClusterEntry {
    /// Its name.
    pub name: String,
    /// Whether its drain creates missing databases.
    pub create_databases: bool,
    /// Its view; `None` while unknown.
    pub schema: Option<Arc<KnownSchema>>,
}

/// Every cluster's view at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    enabled: bool,
    clusters: Vec<ClusterEntry>,
}

impl Snapshot {
    /// The decision on a write of `db`/`rp` (empty `rp`: the default policy): over the clusters
    /// the routes send `db` to, under their names for it.
    pub fn decide(&self, routes: &RouteTable, db: &str, rp: &str) -> Decision {
        self.decide_write(routes, db, rp).0
    }

    /// [`Snapshot::decide`], with the field types every cluster of the write holds alike when
    /// the write is taken and every cluster's fields are known.
    pub fn decide_write(
        &self,
        routes: &RouteTable,
        db: &str,
        rp: &str,
    ) -> (Decision, Option<AgreedFields>) {
        if !self.enabled {
            return (Decision::Accept { keep: None }, None);
        }
        let names: Vec<(String, &ClusterEntry)> = self
            .clusters
            .iter()
            .filter_map(|c| routes.database_on(&c.name, db).map(|d| (d, c)))
            .collect();
        let routed: Vec<Routed<'_>> = names
            .iter()
            .map(|(db, c)| Routed {
                schema: c.schema.as_deref(),
                db,
                create_databases: c.create_databases,
            })
            .collect();
        let decision = view::decide(&routed, rp);
        let fields = match decision {
            Decision::Accept { .. } => view::stored_fields(&routed, rp),
            Decision::DatabaseNotFound | Decision::RetentionPolicyNotFound => None,
        };
        (decision, fields)
    }
}

/// A schema change accepted by the ingest and not yet seen applied on the cluster.
#[derive(Debug, Clone)]
struct Pending {
    db: String,
    change: Change,
    position: Position,
}

/// What is kept of one cluster between refreshes.
#[derive(Debug)]
struct ClusterState {
    name: String,
    create_databases: bool,
    /// The view as the cluster last answered it.
    fetched: Option<KnownSchema>,
    pending: Vec<Pending>,
    /// Set when more than [`MAX_PENDING`] changes were pending: unknown until passed.
    barrier: Option<Position>,
    refreshed_at: Option<Instant>,
    error: Option<String>,
    /// Field types held in `fetched`.
    fields_held: usize,
}

impl ClusterState {
    /// The view the ingest uses: the cluster's answer with the pending changes on top.
    fn view(&self, max_databases: usize) -> Option<KnownSchema> {
        if self.barrier.is_some() {
            return None;
        }
        let mut v = self.fetched.clone()?;
        for p in &self.pending {
            v.apply(&p.db, p.change, max_databases);
        }
        Some(v)
    }
}

#[derive(Debug)]
struct State {
    settings: SchemaSettings,
    clusters: Vec<ClusterState>,
}

/// A refresh's result.
#[derive(Debug)]
pub struct Refreshed {
    /// The cluster's view.
    pub schema: KnownSchema,
    /// The drain's committed positions read before the schema was (`None`: not readable).
    pub committed: Option<Vec<(u32, Option<i64>)>>,
    /// Databases beyond the cap.
    pub dropped_databases: usize,
    /// Retention policies beyond the cap.
    pub dropped_policies: usize,
    /// Field types beyond the cap.
    pub dropped_fields: usize,
}

/// Every cluster's schema view: written by the refreshers and by the ingest's schema changes,
/// read by the ingest once per write.
#[derive(Debug)]
pub struct SchemaViews {
    current: RwLock<Arc<Snapshot>>,
    state: Mutex<State>,
    metrics: SchemaMetrics,
}

impl SchemaViews {
    /// No clusters yet (they come with [`SchemaViews::set_clusters`]).
    pub fn new(settings: SchemaSettings, metrics: SchemaMetrics) -> SchemaViews {
        SchemaViews {
            current: RwLock::new(Arc::new(Snapshot::default())),
            state: Mutex::new(State {
                settings,
                clusters: Vec::new(),
            }),
            metrics,
        }
    }

    /// The metrics, for the ingest's answers.
    pub fn metrics(&self) -> &SchemaMetrics {
        &self.metrics
    }

    /// The views now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |s| Arc::clone(&s))
    }

    /// The clusters of the running configuration, as (name, creates databases), all unknown
    /// until refreshed (at start and after a reload). A cluster kept by a reload keeps the
    /// schema changes it has not been seen to apply.
    pub fn set_clusters(&self, clusters: &[(String, bool)], settings: SchemaSettings) {
        for (name, _) in clusters {
            self.metrics.start_cluster(name);
        }
        self.update(|state| {
            state.settings = settings;
            let mut old = std::mem::take(&mut state.clusters);
            state.clusters = clusters
                .iter()
                .map(|(name, create_databases)| {
                    let kept = old
                        .iter()
                        .position(|c| &c.name == name)
                        .map(|i| old.swap_remove(i));
                    let (pending, barrier) =
                        kept.map_or((Vec::new(), None), |c| (c.pending, c.barrier));
                    ClusterState {
                        name: name.clone(),
                        create_databases: *create_databases,
                        fetched: None,
                        pending,
                        barrier,
                        refreshed_at: None,
                        error: Some("not refreshed yet".into()),
                        fields_held: 0,
                    }
                })
                .collect();
        });
    }

    /// Notes a schema change the ingest enqueued at `position`: every cluster `routes` send its
    /// database to shows its effect until its drain is seen past it.
    pub fn applied(&self, ddl: &Ddl, position: &Position, routes: &RouteTable) {
        let Some(change) = Change::of(ddl.kind) else {
            return;
        };
        self.update(|state| {
            for c in &mut state.clusters {
                let Some(db) = routes.database_on(&c.name, &ddl.db) else {
                    continue;
                };
                if c.barrier.is_some() || c.pending.len() >= MAX_PENDING {
                    let barrier = c.barrier.get_or_insert_with(Position::default);
                    for p in c.pending.drain(..) {
                        barrier.merge(&p.position);
                    }
                    barrier.merge(position);
                    continue;
                }
                c.pending.push(Pending {
                    db,
                    change,
                    position: position.clone(),
                });
            }
        });
    }

    /// Notes the fields a write of `db`/`rp` the ingest accepted brings (unescaped measurement,
    /// unescaped key, type): every known cluster the routes send it to shows them from now on
    /// (it creates them on delivery) until its next refresh; at most `max_fields` per cluster.
    pub fn learned(
        &self,
        routes: &RouteTable,
        db: &str,
        rp: &str,
        fields: &[(Vec<u8>, Vec<u8>, FieldType)],
    ) {
        if fields.is_empty() {
            return;
        }
        // Published only when a cluster's view changed: a stream of fields beyond the cap
        // costs a lock, not a new snapshot.
        self.update_if(|state| {
            let max = state.settings.max_fields;
            let mut added = 0;
            for c in &mut state.clusters {
                let Some(name) = routes.database_on(&c.name, db) else {
                    continue;
                };
                let Some(d) = c.fetched.as_mut().and_then(|s| s.databases.get_mut(&name)) else {
                    continue;
                };
                if d.fields_for(rp).is_none() {
                    continue;
                }
                for (m, k, ty) in fields {
                    let n = d.learn(m, k, *ty, max.saturating_sub(c.fields_held));
                    c.fields_held += n;
                    added += n;
                }
            }
            added > 0
        });
    }

    /// A cluster's view is unknown from now on (down, or its refresh failed).
    pub fn forget(&self, cluster: &str, why: &str) {
        self.update(|state| {
            if let Some(c) = state.clusters.iter_mut().find(|c| c.name == cluster) {
                if c.fetched.is_some() || c.error.as_deref() != Some(why) {
                    c.fetched = None;
                    c.error = Some(why.to_owned());
                }
            }
        });
    }

    /// Takes a refresh of `cluster`'s view.
    pub fn refreshed(&self, cluster: &str, result: Result<Refreshed, String>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .refreshes
            .with_label_values(&[cluster, outcome])
            .inc();
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%cluster, error = %e, "schema refresh failed; view unknown");
                return self.forget(cluster, &e);
            }
        };
        for (kind, n) in [
            ("database", r.dropped_databases),
            ("retention_policy", r.dropped_policies),
            ("field", r.dropped_fields),
        ] {
            self.metrics
                .dropped
                .with_label_values(&[cluster, kind])
                .inc_by(n as u64);
        }
        self.metrics
            .databases
            .with_label_values(&[cluster])
            .set(i64::try_from(r.schema.databases.len()).unwrap_or(i64::MAX));
        self.metrics
            .retention_policies
            .with_label_values(&[cluster])
            .set(i64::try_from(r.schema.retention_policies()).unwrap_or(i64::MAX));
        self.metrics
            .fields
            .with_label_values(&[cluster])
            .set(i64::try_from(r.schema.fields()).unwrap_or(i64::MAX));
        self.update(|state| {
            let Some(c) = state.clusters.iter_mut().find(|c| c.name == cluster) else {
                return;
            };
            if let Some(committed) = &r.committed {
                c.pending.retain(|p| !p.position.passed_by(committed));
                if c.barrier.as_ref().is_some_and(|b| b.passed_by(committed)) {
                    c.barrier = None;
                }
            }
            c.fields_held = r.schema.fields();
            c.fetched = Some(r.schema);
            c.refreshed_at = Some(Instant::now());
            c.error = None;
        });
    }

    /// The status report's summary of `cluster` (`None` when the views are off).
    pub fn report(&self, cluster: &str) -> Option<SchemaReport> {
        let snapshot = self.snapshot();
        if !snapshot.enabled {
            return None;
        }
        let entry = snapshot.clusters.iter().find(|c| c.name == cluster)?;
        let state = self.state.lock().ok()?;
        let c = state.clusters.iter().find(|c| c.name == cluster)?;
        let schema = entry.schema.as_deref();
        Some(SchemaReport {
            known: schema.is_some(),
            databases: schema.map_or(0, |s| s.databases.len()),
            retention_policies: schema.map_or(0, KnownSchema::retention_policies),
            measurements: schema.map_or(0, KnownSchema::measurements),
            fields: schema.map_or(0, KnownSchema::fields),
            complete: schema.is_some_and(|s| s.complete),
            age_seconds: c.refreshed_at.map(|t| t.elapsed().as_secs_f64()),
            pending_changes: c.pending.len(),
            error: match (&c.error, c.barrier.is_some()) {
                (Some(e), _) => Some(e.clone()),
                (None, true) => Some("too many schema changes not yet applied".into()),
                (None, false) => None,
            },
        })
    }

    /// Changes the state and publishes the views that follow from it.
    fn update(&self, change: impl FnOnce(&mut State)) {
        self.update_if(|state| {
            change(state);
            true
        });
    }

    /// Changes the state and, when `change` says it changed a view, publishes the views.
    fn update_if(&self, change: impl FnOnce(&mut State) -> bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !change(&mut state) {
            return;
        }
        let max = state.settings.max_databases;
        let snapshot = Snapshot {
            enabled: state.settings.enabled,
            clusters: state
                .clusters
                .iter()
                .map(|c| ClusterEntry {
                    name: c.name.clone(),
                    create_databases: c.create_databases,
                    schema: c.view(max).map(Arc::new),
                })
                .collect(),
        };
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(snapshot);
        }
    }
}

/// `statement` on each database of `dbs`, as one query.
fn on_each(statement: &str, dbs: &[String]) -> String {
    dbs.iter()
        .map(|d| format!("{statement} {}", quote_ident(d)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Keeps one cluster's view: refreshes it on an interval, on a drain's hint, and when the
/// cluster's health changes; forgets it while the cluster is down.
#[derive(Debug)]
pub struct Refresher {
    /// The cluster.
    pub cluster: String,
    /// Its client.
    pub client: ClusterClient,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Its health.
    pub health: Arc<ClusterHealth>,
    /// The queue, for the drain's committed positions.
    pub queue: Arc<dyn Queue>,
    /// Where the view goes.
    pub views: Arc<SchemaViews>,
    /// Notified by the drain when the cluster refused a write for a missing database or
    /// retention policy, or for a field type conflict.
    pub hint: Arc<Notify>,
    /// How long the cluster may take to answer.
    pub timeout: Duration,
    /// Interval and caps.
    pub settings: SchemaSettings,
}

impl Refresher {
    /// Runs until `cancel`.
    ///
    /// # Cancel safety
    /// Meant to run as its own task; cancelling drops an unfinished refresh.
    pub async fn run(self, cancel: CancellationToken) {
        let mut health = self.health.subscribe();
        let mut seed = 0usize;
        let mut last = Instant::now();
        loop {
            let endpoint = health.borrow_and_update().pick_endpoint(seed);
            seed = seed.wrapping_add(1);
            if let Some(i) = endpoint.filter(|&i| i < self.endpoints.len()) {
                let result = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = self.refresh(&self.endpoints[i]) => r,
                };
                self.views.refreshed(&self.cluster, result);
                last = Instant::now();
            } else {
                self.views.forget(&self.cluster, "the cluster is down");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.settings.refresh_interval) => {}
                () = self.hint.notified() => {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep_until((last + MIN_HINTED_GAP).into()) => {}
                    }
                }
                r = health.changed() => if r.is_err() { return },
            }
        }
    }

    /// Reads the cluster's databases and their retention policies from `endpoint`.
    async fn refresh(&self, endpoint: &Endpoint) -> Result<Refreshed, String> {
        let committed = self
            .queue
            .group_positions(&crate::drain::group_name(&self.cluster))
            .await
            .ok();
        let mut names = view::parse_databases(&self.ask(endpoint, "SHOW DATABASES").await?)?;
        let dropped_databases = names.len().saturating_sub(self.settings.max_databases);
        names.truncate(self.settings.max_databases);
        let mut schema = KnownSchema {
            databases: Default::default(),
            complete: dropped_databases == 0,
        };
        let mut budget = self.settings.max_retention_policies;
        let mut dropped_policies = 0;
        for chunk in names.chunks(POLICY_STATEMENTS_PER_QUERY) {
            let q = on_each("SHOW RETENTION POLICIES ON", chunk);
            let mut answers =
                view::parse_retention_policies(&self.ask(endpoint, &q).await?)?.into_iter();
            for db in chunk {
                // A statement without an answer or with an error (dropped meanwhile): not known.
                let policies = answers.next().and_then(Result::ok).and_then(|p| {
                    if p.len() <= budget {
                        budget -= p.len();
                        Some(p)
                    } else {
                        dropped_policies += p.len();
                        None
                    }
                });
                schema.databases.insert(
                    db.clone(),
                    view::DatabaseSchema {
                        retention_policies: policies,
                        fields: None,
                    },
                );
            }
        }
        let dropped_fields = self.refresh_fields(endpoint, &names, &mut schema).await?;
        Ok(Refreshed {
            schema,
            committed,
            dropped_databases,
            dropped_policies,
            dropped_fields,
        })
    }

    /// Reads the field types of each database's default retention policy into `schema`, at
    /// most `max_fields` in all; returns the fields left out.
    async fn refresh_fields(
        &self,
        endpoint: &Endpoint,
        names: &[String],
        schema: &mut KnownSchema,
    ) -> Result<usize, String> {
        let mut budget = self.settings.max_fields;
        let mut dropped = 0;
        for chunk in names.chunks(POLICY_STATEMENTS_PER_QUERY) {
            let q = on_each("SHOW FIELD KEYS ON", chunk);
            let mut answers = view::parse_field_keys(&self.ask(endpoint, &q).await?)?.into_iter();
            for db in chunk {
                // A statement without an answer or with an error (dropped meanwhile): not known.
                let Some(fields) = answers.next().and_then(Result::ok) else {
                    continue;
                };
                let n: usize = fields.values().map(|m| m.len()).sum();
                if n > budget {
                    dropped += n;
                    continue;
                }
                budget -= n;
                if let Some(d) = schema.databases.get_mut(db) {
                    d.fields = Some(Arc::new(fields));
                }
            }
        }
        Ok(dropped)
    }

    /// Runs `q` on `endpoint` and reads the whole answer (capped).
    async fn ask(&self, endpoint: &Endpoint, q: &str) -> Result<Vec<u8>, String> {
        let read = async {
            let mut resp = self.client.query(endpoint, q, &[]).await?;
            let status = resp.status();
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| format!("reading the answer of {endpoint}: {e}"))?
            {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!(
                        "the answer of {endpoint} to {q:?} is over {MAX_ANSWER_BYTES} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                return Err(format!(
                    "{endpoint} answered {status} to {q:?}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(512)]).trim()
                ));
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| format!("{endpoint} did not answer {q:?} in time"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::query::statement::{self, Statement};
    use view::{DatabaseSchema, RetentionPolicyInfo};

    fn settings() -> SchemaSettings {
        SchemaSettings {
            enabled: true,
            refresh_interval: Duration::from_secs(30),
            max_databases: 10,
            max_retention_policies: 10,
            max_fields: 10,
        }
    }

    fn routes() -> RouteTable {
        let p = |s: &str| vec![glob::Pattern::new(s).unwrap()];
        RouteTable::new(vec![RouteConfig {
            databases: p("*"),
            retention_policies: p("*"),
            measurements: p("*"),
            clusters: vec!["a".into()],
            rename: Default::default(),
        }])
    }

    fn ddl(q: &str) -> Ddl {
        match statement::classify(q, "").unwrap() {
            Statement::Ddl(d) => d,
            Statement::Read(r) => panic!("{r}"),
        }
    }

    fn refreshed(dbs: &[&str], committed: Option<i64>) -> Result<Refreshed, String> {
        let autogen = RetentionPolicyInfo {
            name: "autogen".into(),
            duration: Duration::ZERO,
            default: true,
        };
        Ok(Refreshed {
            schema: KnownSchema {
                databases: dbs
                    .iter()
                    .map(|d| {
                        (
                            (*d).to_owned(),
                            DatabaseSchema {
                                retention_policies: Some(vec![autogen.clone()]),
                                fields: Some(Default::default()),
                            },
                        )
                    })
                    .collect(),
                complete: true,
            },
            committed: committed.map(|c| vec![(0, Some(c))]),
            dropped_databases: 0,
            dropped_policies: 0,
            dropped_fields: 0,
        })
    }

    fn views() -> SchemaViews {
        let v = SchemaViews::new(settings(), SchemaMetrics::new(&prometheus::Registry::new()));
        v.set_clusters(&[("a".into(), false)], settings());
        v
    }

    #[test]
    fn a_change_shows_until_the_drain_is_seen_past_it() {
        let (v, r) = (views(), routes());
        let decide = |db: &str| v.snapshot().decide(&r, db, "");
        assert_eq!(decide("x"), Decision::Accept { keep: None }, "unknown");
        v.refreshed("a", refreshed(&[], Some(0)));
        assert_eq!(decide("x"), Decision::DatabaseNotFound);
        v.applied(&ddl("CREATE DATABASE x"), &Position::of(&[(0, 5)]), &r);
        assert_eq!(decide("x"), Decision::Accept { keep: None });
        // The cluster has not applied it yet: still shown over its answer.
        v.refreshed("a", refreshed(&[], Some(5)));
        assert_eq!(decide("x"), Decision::Accept { keep: None });
        // Past it: the cluster's answer alone (policies known now).
        v.refreshed("a", refreshed(&["x"], Some(6)));
        assert_eq!(decide("x"), Decision::Accept { keep: None });
        assert_eq!(v.report("a").unwrap().pending_changes, 0);
        // A reload keeps unseen changes; the view is unknown until refreshed.
        v.applied(&ddl("DROP DATABASE x"), &Position::of(&[(0, 9)]), &r);
        assert_eq!(decide("x"), Decision::DatabaseNotFound);
        v.set_clusters(&[("a".into(), false)], settings());
        assert_eq!(decide("x"), Decision::Accept { keep: None });
        v.refreshed("a", refreshed(&["x"], Some(7)));
        assert_eq!(decide("x"), Decision::DatabaseNotFound);
        v.forget("a", "down");
        assert_eq!(decide("x"), Decision::Accept { keep: None });
        assert_eq!(v.report("a").unwrap().error.as_deref(), Some("down"));
    }

    #[test]
    fn too_many_unseen_changes_make_the_view_unknown_until_passed() {
        let (v, r) = (views(), routes());
        v.refreshed("a", refreshed(&[], Some(0)));
        for i in 0..=MAX_PENDING {
            let at = i64::try_from(i).unwrap();
            v.applied(&ddl("DROP DATABASE y"), &Position::of(&[(0, at)]), &r);
        }
        let decide = || v.snapshot().decide(&r, "y", "");
        assert_eq!(decide(), Decision::Accept { keep: None });
        v.refreshed("a", refreshed(&[], Some(10)));
        assert_eq!(decide(), Decision::Accept { keep: None });
        v.refreshed("a", refreshed(&[], Some(1000)));
        assert_eq!(decide(), Decision::DatabaseNotFound);
    }

    #[test]
    fn accepted_fields_are_stored_until_the_next_refresh_within_the_cap() {
        let (v, r) = (views(), routes());
        let stored = |m: &[u8], k: &[u8]| {
            let (_, f) = v.snapshot().decide_write(&r, "x", "");
            f.and_then(|f| crate::line_protocol::StoredFields::stored(&f, m, k))
        };
        let field = |k: &str| (b"m".to_vec(), k.as_bytes().to_vec(), FieldType::Float);
        v.learned(&r, "x", "", &[field("a")]);
        assert_eq!(stored(b"m", b"a"), None, "unknown view: nothing learned");
        v.refreshed("a", refreshed(&["x"], Some(0)));
        let many: Vec<_> = (0..12).map(|i| field(&format!("f{i}"))).collect();
        v.learned(&r, "x", "", &many);
        assert_eq!(stored(b"m", b"f0"), Some(FieldType::Float));
        assert_eq!(stored(b"m", b"f9"), Some(FieldType::Float));
        assert_eq!(stored(b"m", b"f10"), None, "beyond max_fields");
        assert_eq!(v.report("a").unwrap().fields, 10);
        // The cluster's answer replaces what was learned.
        v.refreshed("a", refreshed(&["x"], Some(0)));
        assert_eq!(stored(b"m", b"f0"), None);
        let Ok(Statement::Ddl(drop)) = statement::classify("DROP MEASUREMENT m", "x") else {
            panic!("a schema change");
        };
        v.applied(&drop, &Position::of(&[(0, 5)]), &r);
        v.learned(&r, "x", "", &[field("a")]);
        assert!(
            v.snapshot().decide_write(&r, "x", "").1.is_none(),
            "fields unknown"
        );
    }
}
