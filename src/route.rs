//! Routing rules: from (database, retention policy, measurement) to destination clusters.
//!
//! Every rule whose globs all match adds its clusters (a database may be replicated to several
//! clusters); a rule may rename the database per destination. Pure: no I/O.

use std::collections::BTreeMap;

/// One routing rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Database globs.
    pub databases: Vec<glob::Pattern>,
    /// Retention policy globs (the default rp is matched as the empty string and by `*`).
    pub retention_policies: Vec<glob::Pattern>,
    /// Measurement globs.
    pub measurements: Vec<glob::Pattern>,
    /// Destination clusters.
    pub clusters: Vec<String>,
    /// Per destination cluster, the database name to write under instead.
    pub rename: BTreeMap<String, String>,
}

/// A destination of a write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    /// Cluster name.
    pub cluster: String,
    /// Database name on that cluster.
    pub db: String,
}

fn any_match(patterns: &[glob::Pattern], s: &str) -> bool {
    patterns.iter().any(|p| p.matches(s))
}

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    rules: Vec<Rule>,
}

impl RouteTable {
    /// A table of `rules`.
    pub fn new(rules: Vec<Rule>) -> RouteTable {
        RouteTable { rules }
    }

    /// Whether any rule can send writes of `db` somewhere; InfluxDB answers 404 `database not
    /// found` otherwise, and so does the ingest.
    pub fn covers_database(&self, db: &str) -> bool {
        self.rules.iter().any(|r| any_match(&r.databases, db))
    }

    /// The destinations of a line of `measurement` written to `db`/`rp`, sorted, without
    /// duplicates.
    pub fn destinations(&self, db: &str, rp: &str, measurement: &str) -> Vec<Destination> {
        let mut out: Vec<Destination> = self
            .rules
            .iter()
            .filter(|r| {
                any_match(&r.databases, db)
                    && any_match(&r.retention_policies, rp)
                    && any_match(&r.measurements, measurement)
            })
            .flat_map(|r| {
                r.clusters.iter().map(|c| Destination {
                    cluster: c.clone(),
                    db: r.rename.get(c).cloned().unwrap_or_else(|| db.to_owned()),
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
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

impl RouteTable {
    /// What `cluster` takes of records of `db`/`rp`.
    pub fn filter_for(&self, cluster: &str, db: &str, rp: &str) -> ClusterFilter {
        let mut rules = self.rules.iter().filter(|r| {
            any_match(&r.databases, db)
                && any_match(&r.retention_policies, rp)
                && r.clusters.iter().any(|c| c == cluster)
        });
        let Some(first) = rules.next() else {
            return ClusterFilter::Nothing;
        };
        let target = first
            .rename
            .get(cluster)
            .cloned()
            .unwrap_or_else(|| db.to_owned());
        let all = |r: &Rule| r.measurements.iter().any(|p| p.as_str() == "*");
        if all(first) || rules.any(all) {
            ClusterFilter::All { db: target }
        } else {
            ClusterFilter::ByMeasurement { db: target }
        }
    }

    /// Whether a line of `measurement` in `db`/`rp` goes to `cluster`.
    pub fn takes(&self, cluster: &str, db: &str, rp: &str, measurement: &str) -> bool {
        self.rules.iter().any(|r| {
            any_match(&r.databases, db)
                && any_match(&r.retention_policies, rp)
                && any_match(&r.measurements, measurement)
                && r.clusters.iter().any(|c| c == cluster)
        })
    }

    /// The database `cluster` stores `db` under, when any rule sends `db` there.
    pub fn database_on(&self, cluster: &str, db: &str) -> Option<String> {
        self.rules
            .iter()
            .find(|r| any_match(&r.databases, db) && r.clusters.iter().any(|c| c == cluster))
            .map(|r| {
                r.rename
                    .get(cluster)
                    .cloned()
                    .unwrap_or_else(|| db.to_owned())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<glob::Pattern> {
        p.iter().map(|s| glob::Pattern::new(s).unwrap()).collect()
    }

    fn table() -> RouteTable {
        RouteTable::new(vec![
            Rule {
                databases: pats(&["telegraf"]),
                retention_policies: pats(&["*"]),
                measurements: pats(&["*"]),
                clusters: vec!["a".into(), "b".into()],
                rename: BTreeMap::from([("b".to_string(), "telegraf_copy".to_string())]),
            },
            Rule {
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
        assert_eq!(
            t.destinations("telegraf", "", "cpu"),
            vec![
                Destination {
                    cluster: "a".into(),
                    db: "telegraf".into()
                },
                Destination {
                    cluster: "b".into(),
                    db: "telegraf_copy".into()
                },
            ]
        );
        assert_eq!(t.destinations("app_x", "autogen", "cpu"), vec![]);
        assert_eq!(t.destinations("app_x", "autogen", "http_req").len(), 1);
    }
}
