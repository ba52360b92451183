//! The routing table as the drains and the ingest consult it: from (database, retention
//! policy, measurement) to destination clusters.
//!
//! Every rule whose globs all match adds its clusters (a database may be replicated to several
//! clusters); a rule may rename the database per destination. Matching itself is
//! [`RouteConfig`]'s; this module answers the questions a drain asks per record. Pure: no I/O.

use crate::config::RouteConfig;

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    rules: Vec<RouteConfig>,
}

/// Which lines of a (db, rp) record a cluster takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterFilter {
    /// None: no rule sends this db/rp to the cluster.
    Nothing,
    /// Every line, written under `db`.
    All {
        /// Database name on the cluster.
        db: String,
    },
    /// Only lines whose measurement matches a rule for the cluster, written under `db` (the
    /// rename of the first matching rule).
    ByMeasurement {
        /// Database name on the cluster.
        db: String,
    },
}

/// Whether a rule sends `db`/`rp` to `cluster`, whatever the measurement.
fn sends(rule: &RouteConfig, cluster: &str, db: &str, rp: &str) -> bool {
    rule.covers_database(db)
        && rule.retention_policies.iter().any(|p| p.matches(rp))
        && rule.clusters.iter().any(|c| c == cluster)
}

impl RouteTable {
    /// A table of `rules`, in file order.
    pub fn new(rules: Vec<RouteConfig>) -> RouteTable {
        RouteTable { rules }
    }

    /// Every database name or pattern the rules name, each once, in file order.
    pub fn databases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in self.rules.iter().flat_map(|r| &r.databases) {
            if !out.iter().any(|d| d == p.as_str()) {
                out.push(p.as_str().to_owned());
            }
        }
        out
    }

    /// Whether any rule can send writes of `db` somewhere; InfluxDB answers 404 `database not
    /// found` otherwise, and so does the ingest.
    pub fn covers_database(&self, db: &str) -> bool {
        self.rules.iter().any(|r| r.covers_database(db))
    }

    /// What `cluster` takes of records of `db`/`rp`.
    pub fn filter_for(&self, cluster: &str, db: &str, rp: &str) -> ClusterFilter {
        let mut rules = self.rules.iter().filter(|r| sends(r, cluster, db, rp));
        let Some(first) = rules.next() else {
            return ClusterFilter::Nothing;
        };
        let target = first.database_for(cluster, db).to_owned();
        let all = |r: &RouteConfig| r.measurements.iter().any(|p| p.as_str() == "*");
        if all(first) || rules.any(all) {
            ClusterFilter::All { db: target }
        } else {
            ClusterFilter::ByMeasurement { db: target }
        }
    }

    /// Whether a line of `measurement` in `db`/`rp` goes to `cluster`.
    pub fn takes(&self, cluster: &str, db: &str, rp: &str, measurement: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.matches(db, rp, measurement) && r.clusters.iter().any(|c| c == cluster))
    }

    /// The database `cluster` stores `db` under, when any rule sends `db` there.
    pub fn database_on(&self, cluster: &str, db: &str) -> Option<String> {
        self.rules
            .iter()
            .find(|r| r.covers_database(db) && r.clusters.iter().any(|c| c == cluster))
            .map(|r| r.database_for(cluster, db).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pats(p: &[&str]) -> Vec<glob::Pattern> {
        p.iter().map(|s| glob::Pattern::new(s).unwrap()).collect()
    }

    fn table() -> RouteTable {
        RouteTable::new(vec![
            RouteConfig {
                databases: pats(&["telegraf"]),
                retention_policies: pats(&["*"]),
                measurements: pats(&["*"]),
                clusters: vec!["a".into(), "b".into()],
                rename: BTreeMap::from([("b".to_string(), "telegraf_copy".to_string())]),
            },
            RouteConfig {
                databases: pats(&["app_*"]),
                retention_policies: pats(&["*"]),
                measurements: pats(&["http_*"]),
                clusters: vec!["a".into()],
                rename: BTreeMap::new(),
            },
        ])
    }

    #[test]
    fn coverage_is_by_database_only() {
        let t = table();
        assert!(t.covers_database("telegraf"));
        assert!(t.covers_database("app_x"));
        assert!(!t.covers_database("other"));
    }

    #[test]
    fn cluster_filters() {
        let t = table();
        assert_eq!(
            t.filter_for("b", "telegraf", ""),
            ClusterFilter::All {
                db: "telegraf_copy".into()
            }
        );
        assert_eq!(t.filter_for("b", "app_x", ""), ClusterFilter::Nothing);
        assert_eq!(
            t.filter_for("a", "app_x", "rp"),
            ClusterFilter::ByMeasurement { db: "app_x".into() }
        );
        assert!(t.takes("a", "app_x", "rp", "http_get"));
        assert!(!t.takes("a", "app_x", "rp", "cpu"));
        assert_eq!(t.database_on("b", "telegraf"), Some("telegraf_copy".into()));
        assert_eq!(t.database_on("b", "app_x"), None);
    }

    #[test]
    fn destinations_apply_globs_and_renames() {
        let t = table();
        let takers = |db, rp, m| {
            ["a", "b"]
                .into_iter()
                .filter(|c| t.takes(c, db, rp, m))
                .map(|c| (c, t.database_on(c, db)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            takers("telegraf", "", "cpu"),
            vec![
                ("a", Some("telegraf".to_owned())),
                ("b", Some("telegraf_copy".to_owned()))
            ]
        );
        assert_eq!(takers("app_x", "autogen", "cpu"), vec![]);
        assert_eq!(takers("app_x", "autogen", "http_req").len(), 1);
    }
}
