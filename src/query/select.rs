//! Which cluster answers a read: pure, from what the drains and health checks know.
//!
//! Order of preference:
//! 1. **Fresh**: up, not paused, not replaying, lag at most `max_lag` — in configuration order,
//!    so that reads stay on one cluster while every cluster keeps up.
//! 2. **Behind**: up and delivering, but lagging more than `max_lag` — least lag first.
//! 3. **Last resort**: down, paused, replaying or catching up — least lag first; used only when
//!    nothing better exists.
//!
//! A cluster whose writes are rerouted to its standby is read from its standby instead (the
//! standby holds what the cluster misses), and the cluster itself becomes a last resort.
//! Every choice but a fresh one carries the lag it is known to have, for `X-Fluxroute-Stale`.

use std::time::Duration;

/// What is known of one cluster when a read arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Its name.
    pub name: String,
    /// The database a read of the request's database uses there (after route renames); `None`
    /// when no route sends the database to the cluster.
    pub db: Option<String>,
    /// Some endpoint is up and credentials are accepted.
    pub up: bool,
    /// An operator paused it.
    pub paused: bool,
    /// Its drain is replaying or catching up a backlog.
    pub replaying: bool,
    /// Seconds its drain is behind the queue.
    pub lag_seconds: f64,
    /// The standby its writes go to now, while a reroute is active.
    pub rerouted_to: Option<String>,
}

/// One cluster to try, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The cluster.
    pub cluster: String,
    /// The database to name in the read.
    pub db: String,
    /// `Some(lag seconds)` when the cluster is not known to be caught up.
    pub stale: Option<f64>,
    /// The rerouted cluster it stands in for, when it does.
    pub via: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Fresh,
    Behind,
    LastResort,
}

/// The clusters to try for a read of `db` (empty: a read without a database, which any cluster
/// answers), best first. Clusters no route sends `db` to are left out, unless they stand in for
/// one that is rerouted.
pub fn candidates(clusters: &[Facts], has_db: bool, max_lag: Duration) -> Vec<Choice> {
    let max_lag = max_lag.as_secs_f64();
    let tier = |f: &Facts| {
        if !f.up || f.paused || f.replaying || f.rerouted_to.is_some() {
            Tier::LastResort
        } else if f.lag_seconds > max_lag {
            Tier::Behind
        } else {
            Tier::Fresh
        }
    };
    let mut ranked: Vec<(Tier, usize, f64, Choice)> = Vec::new();
    let add = |ranked: &mut Vec<(Tier, usize, f64, Choice)>,
               t,
               order,
               f: &Facts,
               db: &str,
               via: Option<&str>| {
        if ranked.iter().any(|(_, _, _, c)| c.cluster == f.name) {
            return;
        }
        let lag = f.lag_seconds.max(0.0);
        ranked.push((
            t,
            order,
            lag,
            Choice {
                cluster: f.name.clone(),
                db: db.to_owned(),
                stale: (t != Tier::Fresh).then_some(lag),
                via: via.map(str::to_owned),
            },
        ));
    };
    for (order, f) in clusters.iter().enumerate() {
        let db = match (&f.db, has_db) {
            (Some(db), _) => db.as_str(),
            (None, false) => "",
            (None, true) => continue,
        };
        // The standby of a rerouted cluster holds its recent writes: it stands in, at the
        // cluster's place in the order.
        // Its own drain's lag is about its own routes, not about what the reroute sends it.
        if let Some(standby) = f
            .rerouted_to
            .as_ref()
            .and_then(|s| clusters.iter().find(|c| &c.name == s))
        {
            let t = if standby.up && !standby.paused {
                Tier::Fresh
            } else {
                Tier::LastResort
            };
            let standby = Facts {
                lag_seconds: 0.0,
                ..standby.clone()
            };
            add(&mut ranked, t, order, &standby, db, Some(&f.name));
        }
        add(&mut ranked, tier(f), order, f, db, None);
    }
    ranked.sort_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| match a.0 {
            Tier::Fresh => a.1.cmp(&b.1),
            _ => a.2.total_cmp(&b.2).then_with(|| a.1.cmp(&b.1)),
        })
    });
    ranked.into_iter().map(|(_, _, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, lag: f64) -> Facts {
        Facts {
            name: name.into(),
            db: Some("db".into()),
            up: true,
            paused: false,
            replaying: false,
            lag_seconds: lag,
            rerouted_to: None,
        }
    }

    fn order(c: &[Choice]) -> Vec<(&str, Option<f64>)> {
        c.iter().map(|c| (c.cluster.as_str(), c.stale)).collect()
    }

    const MAX: Duration = Duration::from_secs(10);

    #[test]
    fn fresh_clusters_in_configuration_order_then_the_least_behind() {
        let c = candidates(
            &[up("a", 3.0), up("b", 0.0), up("c", 50.0), up("d", 20.0)],
            true,
            MAX,
        );
        assert_eq!(
            order(&c),
            vec![
                ("a", None),
                ("b", None),
                ("d", Some(20.0)),
                ("c", Some(50.0))
            ]
        );
    }

    #[test]
    fn down_paused_or_replaying_only_as_a_last_resort() {
        let down = Facts {
            up: false,
            lag_seconds: 1.0,
            ..up("a", 0.0)
        };
        let paused = Facts {
            paused: true,
            ..up("b", 0.0)
        };
        let replaying = Facts {
            replaying: true,
            lag_seconds: 0.5,
            ..up("c", 0.0)
        };
        let behind = up("d", 500.0);
        let c = candidates(&[down, paused, replaying, behind], true, MAX);
        assert_eq!(
            order(&c),
            vec![
                ("d", Some(500.0)),
                ("b", Some(0.0)),
                ("c", Some(0.5)),
                ("a", Some(1.0))
            ]
        );
    }

    #[test]
    fn a_rerouted_cluster_is_read_from_its_standby() {
        let primary = Facts {
            up: false,
            rerouted_to: Some("s".into()),
            ..up("p", 30.0)
        };
        let standby = Facts {
            db: None,
            lag_seconds: 99.0,
            ..up("s", 0.0)
        };
        let other = up("o", 0.0);
        let c = candidates(&[primary, other, standby], true, MAX);
        assert_eq!(order(&c), vec![("s", None), ("o", None), ("p", Some(30.0))]);
        assert_eq!(
            c[0].db, "db",
            "the standby is read under the primary's database"
        );
        assert_eq!(c[0].via.as_deref(), Some("p"));
    }

    #[test]
    fn only_clusters_that_hold_the_database() {
        let elsewhere = Facts {
            db: None,
            ..up("x", 0.0)
        };
        let renamed = Facts {
            db: Some("copy".into()),
            ..up("y", 0.0)
        };
        let c = candidates(&[elsewhere.clone(), renamed.clone()], true, MAX);
        assert_eq!(order(&c), vec![("y", None)]);
        assert_eq!(c[0].db, "copy");
        // A read without a database (SHOW DATABASES) may go anywhere.
        let c = candidates(&[elsewhere, renamed], false, MAX);
        assert_eq!(order(&c), vec![("x", None), ("y", None)]);
        assert!(candidates(&[], true, MAX).is_empty());
    }
}
