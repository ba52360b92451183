//! What one cluster holds, as far as the ingest's answers need it, and the decisions taken from
//! the views of the clusters a write goes to. Pure: no I/O.
//!
//! A cluster's view is either unknown (never reached, down, the last refresh failed) or a
//! [`KnownSchema`]: its databases and, per database, its retention policies and the field types
//! of each measurement in its default retention policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::line_protocol::{FieldMap, FieldType, StoredFields};
use crate::query::statement::DdlKind;

/// A retention policy as `SHOW RETENTION POLICIES` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicyInfo {
    /// Its name.
    pub name: String,
    /// How long points are kept; zero keeps them forever.
    pub duration: Duration,
    /// Whether writes without `rp` go to it.
    pub default: bool,
}

/// One database of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseSchema {
    /// Its retention policies; `None` while not known (beyond the cap, or changed by a
    /// statement the cluster has not been seen to apply yet).
    pub retention_policies: Option<Vec<RetentionPolicyInfo>>,
    /// The field types of each measurement in the default retention policy (`SHOW FIELD
    /// KEYS`); `None` while not known (beyond the cap, or changed by a statement the cluster
    /// has not been seen to apply yet).
    pub fields: Option<Arc<FieldMap>>,
}

impl DatabaseSchema {
    /// The stored fields a write naming `rp` (empty: the default) is checked against: those of
    /// the default policy, when `rp` names it.
    pub fn fields_for(&self, rp: &str) -> Option<&Arc<FieldMap>> {
        let fields = self.fields.as_ref()?;
        if rp.is_empty() {
            return Some(fields);
        }
        match self.policy("")? {
            Some(p) if p.name == rp => Some(fields),
            _ => None,
        }
    }

    /// Learns a field the cluster creates when it takes a write; at most `budget` fields are
    /// added (what is beyond is left unknown). Returns the fields added.
    pub fn learn(&mut self, measurement: &[u8], key: &[u8], ty: FieldType, budget: usize) -> usize {
        let Some(fields) = self.fields.as_mut() else {
            return 0;
        };
        if fields.stored(measurement, key).is_some() || budget == 0 {
            return 0;
        }
        Arc::make_mut(fields)
            .entry(measurement.to_vec())
            .or_default()
            .insert(key.to_vec(), ty);
        1
    }
    /// The policy a write naming `rp` (empty: the default) goes to (`Some(None)`: there is
    /// none); `None` while the policies are not known.
    pub fn policy(&self, rp: &str) -> Option<Option<&RetentionPolicyInfo>> {
        let policies = self.retention_policies.as_ref()?;
        Some(if rp.is_empty() {
            policies.iter().find(|p| p.default)
        } else {
            policies.iter().find(|p| p.name == rp)
        })
    }
}

/// A cluster's schema as last learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownSchema {
    /// Its databases, by the name they have on the cluster.
    pub databases: BTreeMap<String, DatabaseSchema>,
    /// Whether every database of the cluster is held (false when the cap cut some off): a
    /// database absent from an incomplete view may still exist.
    pub complete: bool,
}

/// What a schema change that passed through the log does to a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The database exists from now on (its retention policies are not known yet).
    CreateDatabase,
    /// The database is gone.
    DropDatabase,
    /// The database's retention policies changed: not known until seen on the cluster.
    RetentionPolicies,
    /// Measurements or series were dropped or deleted: the field types are not known until
    /// seen on the cluster.
    Fields,
}

impl Change {
    /// The change a schema statement makes to a view, if any.
    pub fn of(kind: DdlKind) -> Option<Change> {
        match kind {
            DdlKind::CreateDatabase => Some(Change::CreateDatabase),
            DdlKind::DropDatabase => Some(Change::DropDatabase),
            DdlKind::CreateRetentionPolicy
            | DdlKind::AlterRetentionPolicy
            | DdlKind::DropRetentionPolicy => Some(Change::RetentionPolicies),
            DdlKind::DropMeasurement | DdlKind::DropSeries | DdlKind::Delete => {
                Some(Change::Fields)
            }
        }
    }
}

impl KnownSchema {
    /// Retention policies held over every database.
    pub fn retention_policies(&self) -> usize {
        self.databases
            .values()
            .map(|d| d.retention_policies.as_ref().map_or(0, Vec::len))
            .sum()
    }

    /// Applies `change` to database `db` (its name on this cluster); at most `max_databases`
    /// are held (a database created beyond it leaves the view incomplete).
    pub fn apply(&mut self, db: &str, change: Change, max_databases: usize) {
        match change {
            Change::CreateDatabase => {
                if self.databases.contains_key(db) {
                    // `CREATE DATABASE ... WITH` may add a retention policy.
                    self.forget_policies(db);
                } else if self.databases.len() < max_databases {
                    self.databases
                        .insert(db.to_owned(), DatabaseSchema::default());
                } else {
                    self.complete = false;
                }
            }
            Change::DropDatabase => {
                self.databases.remove(db);
            }
            Change::RetentionPolicies => self.forget_policies(db),
            Change::Fields => {
                if let Some(d) = self.databases.get_mut(db) {
                    d.fields = None;
                }
            }
        }
    }

    /// Measurements held over every database.
    pub fn measurements(&self) -> usize {
        self.databases
            .values()
            .filter_map(|d| d.fields.as_deref())
            .map(FieldMap::len)
            .sum()
    }

    /// Fields held over every database.
    pub fn fields(&self) -> usize {
        self.databases
            .values()
            .filter_map(|d| d.fields.as_deref())
            .map(|f| f.values().map(|m| m.len()).sum::<usize>())
            .sum()
    }

    fn forget_policies(&mut self, db: &str) {
        if let Some(d) = self.databases.get_mut(db) {
            // The default policy may have changed: its fields with it.
            d.retention_policies = None;
            d.fields = None;
        }
    }
}

/// One cluster a write goes to, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Routed<'a> {
    /// Its view; `None` while unknown.
    pub schema: Option<&'a KnownSchema>,
    /// The database's name on it (routes may rename).
    pub db: &'a str,
    /// Whether its drain creates a missing database.
    pub create_databases: bool,
}

/// What the ingest does with a write, given the views of the clusters it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Take the write. With `keep`, points older than that before the receive time are
    /// dropped as influxd drops points beyond the retention policy's duration.
    Accept {
        /// How far back points are kept.
        keep: Option<Duration>,
    },
    /// No cluster has the database and none creates it: influxd's 404.
    DatabaseNotFound,
    /// The named retention policy exists on no cluster: influxd's 500.
    RetentionPolicyNotFound,
}

/// Decides on a write to `rp` (empty: the default policy) from the views of the clusters it
/// goes to. Only what every cluster would refuse is refused: any unknown view, or a cluster
/// whose view cannot tell, leaves the write as it is (a cluster refusing it later dead-letters
/// it, as without views).
///
/// - the database is on no cluster (every view complete) and no cluster creates databases:
///   [`Decision::DatabaseNotFound`];
/// - every cluster has the database with known policies, and none has the named policy:
///   [`Decision::RetentionPolicyNotFound`];
/// - every cluster has the policy with a finite duration: points older than the longest
///   duration are dropped (those every cluster would drop).
pub fn decide(routed: &[Routed<'_>], rp: &str) -> Decision {
    const AS_TODAY: Decision = Decision::Accept { keep: None };
    if routed.is_empty() {
        return AS_TODAY;
    }
    let mut views = Vec::with_capacity(routed.len());
    for r in routed {
        let Some(schema) = r.schema else {
            return AS_TODAY;
        };
        views.push((schema, schema.databases.get(r.db)));
    }
    if views.iter().all(|(s, d)| d.is_none() && s.complete) {
        return if routed.iter().any(|r| r.create_databases) {
            AS_TODAY
        } else {
            Decision::DatabaseNotFound
        };
    }
    let mut policies = Vec::with_capacity(views.len());
    for (_, db) in &views {
        let Some(policy) = db.and_then(|d| d.policy(rp)) else {
            return AS_TODAY;
        };
        policies.push(policy);
    }
    if !rp.is_empty() && policies.iter().all(Option::is_none) {
        return Decision::RetentionPolicyNotFound;
    }
    let mut keep = Duration::ZERO;
    for p in policies {
        match p {
            Some(p) if !p.duration.is_zero() => keep = keep.max(p.duration),
            _ => return AS_TODAY,
        }
    }
    Decision::Accept { keep: Some(keep) }
}

/// The field types every cluster of a write holds alike: a field counts as stored only when each
/// cluster holds it with the same type (a point is dropped only where every cluster drops it).
#[derive(Debug, Clone, Default)]
pub struct AgreedFields {
    maps: Vec<Arc<FieldMap>>,
}

impl StoredFields for AgreedFields {
    fn stored(&self, measurement: &[u8], key: &[u8]) -> Option<FieldType> {
        let (first, rest) = self.maps.split_first()?;
        let t = first.stored(measurement, key)?;
        rest.iter()
            .all(|m| m.stored(measurement, key) == Some(t))
            .then_some(t)
    }
}

/// The stored field types a write to `rp` is checked against: `None` unless every cluster it
/// goes to has a known view holding the database with known fields for that policy.
pub fn stored_fields(routed: &[Routed<'_>], rp: &str) -> Option<AgreedFields> {
    if routed.is_empty() {
        return None;
    }
    let maps = routed
        .iter()
        .map(|r| {
            r.schema
                .and_then(|s| s.databases.get(r.db))
                .and_then(|d| d.fields_for(rp))
                .map(Arc::clone)
        })
        .collect::<Option<Vec<_>>>()?;
    Some(AgreedFields { maps })
}

/// Reads the answer to several `SHOW FIELD KEYS ON <db>` statements: one entry per statement
/// (each measurement's field types), an error for a statement that failed.
///
/// # Errors
/// The answer is not one.
pub fn parse_field_keys(body: &[u8]) -> Result<Vec<Result<FieldMap, String>>, String> {
    let results = results(body)?;
    Ok(results
        .iter()
        .map(|r| {
            if let Some(e) = r.get("error").and_then(|e| e.as_str()) {
                return Err(e.to_owned());
            }
            let mut out = FieldMap::new();
            let series = r.get("series").and_then(|s| s.as_array());
            for s in series.into_iter().flatten() {
                let name = s.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                let fields = out.entry(name.as_bytes().to_vec()).or_default();
                let values = s.get("values").and_then(|v| v.as_array());
                for row in values.into_iter().flatten() {
                    let text = |i: usize| row.get(i).and_then(|v| v.as_str());
                    let (Some(key), Some(ty)) = (text(0), text(1)) else {
                        return Err(format!("measurement {name:?}: unreadable field key"));
                    };
                    let ty = match ty {
                        "float" => FieldType::Float,
                        "integer" => FieldType::Integer,
                        "unsigned" => FieldType::Unsigned,
                        "string" => FieldType::String,
                        "boolean" => FieldType::Boolean,
                        other => return Err(format!("field {key:?}: unknown type {other:?}")),
                    };
                    fields.insert(key.as_bytes().to_vec(), ty);
                }
            }
            Ok(out)
        })
        .collect())
}

/// Reads `SHOW DATABASES`' answer: the names.
///
/// # Errors
/// The answer is not one, or carries an error.
pub fn parse_databases(body: &[u8]) -> Result<Vec<String>, String> {
    let results = results(body)?;
    let first = results
        .first()
        .ok_or_else(|| "SHOW DATABASES answered no result".to_owned())?;
    Ok(rows(first)?
        .iter()
        .filter_map(|row| row.first().and_then(|v| v.as_str()).map(str::to_owned))
        .collect())
}

/// Reads the answer to several `SHOW RETENTION POLICIES ON <db>` statements: one entry per
/// statement, an error for a statement that failed (a database dropped meanwhile).
///
/// # Errors
/// The answer is not one.
pub fn parse_retention_policies(
    body: &[u8],
) -> Result<Vec<Result<Vec<RetentionPolicyInfo>, String>>, String> {
    let results = results(body)?;
    Ok(results
        .iter()
        .map(|r| {
            let rows = rows(r)?;
            let columns = columns(r);
            let at = |name: &str| columns.iter().position(|c| c == name);
            let (Some(name), Some(duration), Some(default)) =
                (at("name"), at("duration"), at("default"))
            else {
                return if rows.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err("SHOW RETENTION POLICIES answered unexpected columns".into())
                };
            };
            rows.iter()
                .map(|row| {
                    let text = |i: usize| row.get(i).and_then(|v| v.as_str());
                    let name = text(name).ok_or("a retention policy without a name")?;
                    let duration = text(duration)
                        .and_then(|d| humantime::parse_duration(d).ok())
                        .ok_or_else(|| format!("retention policy {name:?}: unreadable duration"))?;
                    Ok(RetentionPolicyInfo {
                        name: name.to_owned(),
                        duration,
                        default: row.get(default).and_then(|v| v.as_bool()).unwrap_or(false),
                    })
                })
                .collect()
        })
        .collect())
}

fn results(body: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(e.to_owned());
    }
    match v.get("results") {
        Some(serde_json::Value::Array(r)) => Ok(r.clone()),
        _ => Err("answer without results".into()),
    }
}

/// The rows of a statement's result (none when it has no series).
fn rows(result: &serde_json::Value) -> Result<Vec<Vec<serde_json::Value>>, String> {
    if let Some(e) = result.get("error").and_then(|e| e.as_str()) {
        return Err(e.to_owned());
    }
    let values = result
        .pointer("/series/0/values")
        .and_then(|v| v.as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.as_array().cloned())
                .collect::<Vec<_>>()
        });
    Ok(values.unwrap_or_default())
}

fn columns(result: &serde_json::Value) -> Vec<String> {
    result
        .pointer("/series/0/columns")
        .and_then(|v| v.as_array())
        .map(|c| {
            c.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(name: &str, hours: u64, default: bool) -> RetentionPolicyInfo {
        RetentionPolicyInfo {
            name: name.into(),
            duration: Duration::from_secs(hours * 3600),
            default,
        }
    }

    fn known(dbs: &[(&str, Option<Vec<RetentionPolicyInfo>>)]) -> KnownSchema {
        KnownSchema {
            databases: dbs
                .iter()
                .map(|(n, p)| {
                    (
                        (*n).to_owned(),
                        DatabaseSchema {
                            retention_policies: p.clone(),
                            fields: None,
                        },
                    )
                })
                .collect(),
            complete: true,
        }
    }

    fn routed<'a>(schema: Option<&'a KnownSchema>, create: bool) -> Routed<'a> {
        Routed {
            schema,
            db: "d",
            create_databases: create,
        }
    }

    const AS_TODAY: Decision = Decision::Accept { keep: None };

    #[test]
    fn a_missing_database_is_refused_only_when_no_cluster_creates_it() {
        let empty = known(&[]);
        assert_eq!(
            decide(
                &[routed(Some(&empty), false), routed(Some(&empty), false)],
                ""
            ),
            Decision::DatabaseNotFound
        );
        assert_eq!(
            decide(
                &[routed(Some(&empty), false), routed(Some(&empty), true)],
                ""
            ),
            AS_TODAY
        );
        // One cluster unknown (down, never reached): as today.
        assert_eq!(
            decide(&[routed(Some(&empty), false), routed(None, false)], ""),
            AS_TODAY
        );
        // A view cut off by its cap cannot tell a database is missing.
        let mut partial = known(&[]);
        partial.complete = false;
        assert_eq!(decide(&[routed(Some(&partial), false)], ""), AS_TODAY);
        // One cluster has it: the write goes on (the other dead-letters, as today).
        let has = known(&[("d", Some(vec![rp("autogen", 0, true)]))]);
        assert_eq!(
            decide(
                &[routed(Some(&empty), false), routed(Some(&has), false)],
                ""
            ),
            AS_TODAY
        );
    }

    #[test]
    fn a_retention_policy_missing_everywhere_is_refused() {
        let a = known(&[(
            "d",
            Some(vec![rp("autogen", 0, true), rp("week", 168, false)]),
        )]);
        let b = known(&[("d", Some(vec![rp("autogen", 0, true)]))]);
        let both = [routed(Some(&a), false), routed(Some(&b), false)];
        assert_eq!(decide(&both, "nope"), Decision::RetentionPolicyNotFound);
        // On one cluster only: taken (the other refuses it later).
        assert_eq!(decide(&both, "week"), AS_TODAY);
        // Policies not known on one: as today.
        let unknown = known(&[("d", None)]);
        assert_eq!(
            decide(
                &[routed(Some(&a), false), routed(Some(&unknown), false)],
                "nope"
            ),
            AS_TODAY
        );
    }

    #[test]
    fn only_points_every_cluster_drops_are_dropped() {
        let a = known(&[("d", Some(vec![rp("autogen", 1, true), rp("r", 2, false)]))]);
        let b = known(&[("d", Some(vec![rp("autogen", 24, true), rp("r", 3, false)]))]);
        let forever = known(&[("d", Some(vec![rp("autogen", 0, true)]))]);
        let keep = |h: u64| Decision::Accept {
            keep: Some(Duration::from_secs(h * 3600)),
        };
        assert_eq!(decide(&[routed(Some(&a), true)], ""), keep(1));
        assert_eq!(
            decide(&[routed(Some(&a), true), routed(Some(&b), true)], ""),
            keep(24)
        );
        assert_eq!(
            decide(&[routed(Some(&a), true), routed(Some(&b), true)], "r"),
            keep(3)
        );
        assert_eq!(
            decide(&[routed(Some(&a), true), routed(Some(&forever), true)], ""),
            AS_TODAY
        );
        // The named policy missing on one cluster: nothing dropped here.
        assert_eq!(
            decide(&[routed(Some(&a), true), routed(Some(&forever), true)], "r"),
            AS_TODAY
        );
    }

    #[test]
    fn changes_through_the_log_apply_to_the_view() {
        let mut v = known(&[("d", Some(vec![rp("autogen", 0, true)]))]);
        v.apply("x", Change::CreateDatabase, 10);
        assert_eq!(v.databases["x"].retention_policies, None);
        v.apply("d", Change::RetentionPolicies, 10);
        assert_eq!(v.databases["d"].retention_policies, None);
        v.apply("d", Change::DropDatabase, 10);
        assert!(!v.databases.contains_key("d"));
        v.apply("y", Change::CreateDatabase, 1);
        assert!(!v.databases.contains_key("y"));
        assert!(!v.complete);
        assert_eq!(Change::of(DdlKind::Delete), Some(Change::Fields));
        assert_eq!(
            Change::of(DdlKind::AlterRetentionPolicy),
            Some(Change::RetentionPolicies)
        );
    }

    #[test]
    fn reads_influxd_answers() {
        // As influxd 1.6.7 answers.
        let dbs = br#"{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["_internal"],["d"]]}]}]}"#;
        assert_eq!(parse_databases(dbs).unwrap(), vec!["_internal", "d"]);
        let none = br#"{"results":[{"statement_id":0}]}"#;
        assert!(parse_databases(none).unwrap().is_empty());
        let rps = br#"{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true],["short","1h0m0s","1h0m0s",1,false]]}]},{"statement_id":1,"error":"database not found: x"}]}"#;
        let parsed = parse_retention_policies(rps).unwrap();
        assert_eq!(
            parsed[0],
            Ok(vec![rp("autogen", 0, true), rp("short", 1, false)])
        );
        assert_eq!(parsed[1], Err("database not found: x".to_owned()));
        assert!(parse_databases(br#"{"error":"boom"}"#).is_err());
        assert!(parse_databases(b"not json").is_err());
    }

    fn with_fields(default: &str, fields: &[(&str, &str, FieldType)]) -> KnownSchema {
        let mut map = FieldMap::new();
        for (m, k, t) in fields {
            map.entry(m.as_bytes().to_vec())
                .or_default()
                .insert(k.as_bytes().to_vec(), *t);
        }
        let mut v = known(&[("d", Some(vec![rp(default, 0, true), rp("x", 1, false)]))]);
        if let Some(d) = v.databases.get_mut("d") {
            d.fields = Some(Arc::new(map));
        }
        v
    }

    #[test]
    fn a_field_is_stored_only_where_every_cluster_holds_it_alike() {
        use FieldType::{Float, Integer};
        let a = with_fields("autogen", &[("m", "v", Float), ("m", "w", Float)]);
        let b = with_fields("autogen", &[("m", "v", Float), ("m", "w", Integer)]);
        let both = [routed(Some(&a), false), routed(Some(&b), false)];
        let s = stored_fields(&both, "").unwrap();
        assert_eq!(s.stored(b"m", b"v"), Some(Float));
        assert_eq!(s.stored(b"m", b"w"), None, "the clusters disagree");
        assert_eq!(s.stored(b"n", b"v"), None);
        // Naming the default policy is the same; another policy's fields are not known.
        assert!(stored_fields(&both, "autogen").is_some());
        assert!(stored_fields(&both, "x").is_none());
        // One cluster unknown, or its fields unknown: nothing is stored.
        assert!(stored_fields(&[routed(Some(&a), false), routed(None, false)], "").is_none());
        let mut c = a.clone();
        c.apply("d", Change::Fields, 10);
        assert!(stored_fields(&[routed(Some(&c), false)], "").is_none());
        let mut c = a.clone();
        c.apply("d", Change::RetentionPolicies, 10);
        assert!(stored_fields(&[routed(Some(&c), false)], "").is_none());
        assert!(stored_fields(&[], "").is_none());
        assert_eq!((a.measurements(), a.fields()), (1, 2));
    }

    #[test]
    fn accepted_fields_are_learned_within_the_budget() {
        let mut v = with_fields("autogen", &[("m", "v", FieldType::Float)]);
        let d = v.databases.get_mut("d").unwrap();
        assert_eq!(
            d.learn(b"m", b"v", FieldType::Integer, 5),
            0,
            "already held"
        );
        assert_eq!(d.learn(b"m", b"w", FieldType::Integer, 0), 0, "no budget");
        assert_eq!(d.learn(b"n", b"w", FieldType::String, 5), 1);
        let f = d.fields_for("").unwrap();
        assert_eq!(f.stored(b"n", b"w"), Some(FieldType::String));
        assert_eq!(f.stored(b"m", b"v"), Some(FieldType::Float));
        let mut unknown = DatabaseSchema::default();
        assert_eq!(unknown.learn(b"m", b"v", FieldType::Float, 5), 0);
    }

    #[test]
    fn reads_show_field_keys() {
        // As influxd 1.6.7 answers `SHOW FIELD KEYS ON d; SHOW FIELD KEYS ON nope`.
        let body = br#"{"results":[{"statement_id":0,"series":[{"name":"m","columns":["fieldKey","fieldType"],"values":[["b","boolean"],["i","integer"],["s","string"],["v","float"]]},{"name":"o","columns":["fieldKey","fieldType"],"values":[["x","float"]]}]},{"statement_id":1,"error":"database not found: nope"}]}"#;
        let parsed = parse_field_keys(body).unwrap();
        let d = parsed[0].as_ref().unwrap();
        assert_eq!(d.stored(b"m", b"b"), Some(FieldType::Boolean));
        assert_eq!(d.stored(b"m", b"i"), Some(FieldType::Integer));
        assert_eq!(d.stored(b"m", b"s"), Some(FieldType::String));
        assert_eq!(d.stored(b"o", b"x"), Some(FieldType::Float));
        assert_eq!(parsed[1], Err("database not found: nope".to_owned()));
        let empty = parse_field_keys(br#"{"results":[{"statement_id":0}]}"#).unwrap();
        assert_eq!(empty[0], Ok(FieldMap::new()));
    }
}
