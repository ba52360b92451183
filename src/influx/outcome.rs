//! [`classify`]: the one place that reads a cluster's answer (or the lack of one) and decides
//! what the drain does next, with the bounded classes the metrics and dead letters carry.

use std::time::Duration;

use super::Answer;

/// Why a write got no answer from the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The connection could not be made (refused, unreachable, DNS).
    #[error("writing to {endpoint}: connecting: {detail}")]
    Connect {
        /// The endpoint written to.
        endpoint: String,
        /// The client's error chain.
        detail: String,
    },
    /// No complete answer within the cluster's `timeout`.
    #[error("writing to {endpoint}: timed out: {detail}")]
    Timeout {
        /// The endpoint written to.
        endpoint: String,
        /// The client's error chain.
        detail: String,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("writing to {endpoint}: TLS: {detail}")]
    Tls {
        /// The endpoint written to.
        endpoint: String,
        /// The client's error chain.
        detail: String,
    },
    /// The connection broke while the request or the answer was on the wire.
    #[error("writing to {endpoint}: {detail}")]
    Transport {
        /// The endpoint written to.
        endpoint: String,
        /// The client's error chain.
        detail: String,
    },
}

impl WriteError {
    /// Sorts a client error: `tls_suspected` is whether the endpoint is `https` (reqwest does
    /// not tell a failed handshake from another connect failure by type).
    pub(crate) fn from_client(endpoint: String, e: &reqwest::Error, tls_suspected: bool) -> Self {
        let detail = super::error_chain(e);
        if e.is_timeout() {
            WriteError::Timeout { endpoint, detail }
        } else if tls_suspected && is_tls_text(&detail) {
            WriteError::Tls { endpoint, detail }
        } else if e.is_connect() {
            WriteError::Connect { endpoint, detail }
        } else {
            WriteError::Transport { endpoint, detail }
        }
    }
}

fn is_tls_text(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate") || d.contains("tls") || d.contains("handshake")
}

/// The bounded class of a dead-lettered batch (the `reason` label of the dead-letter metrics
/// and the dead letter's `reason_class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonClass {
    /// A field's type differs from the type the cluster already holds.
    FieldTypeConflict,
    /// Points older than the retention policy keeps.
    BeyondRetention,
    /// The retention policy named by the write does not exist.
    RetentionPolicyNotFound,
    /// The database (or bucket) does not exist and is not created.
    DatabaseNotFound,
    /// The cluster could not parse the lines.
    Parse,
    /// Too large for the cluster even as a single line.
    TooLarge,
    /// A queue record fluxroute could not decode.
    Undecodable,
    /// Any other permanent rejection.
    Other,
}

impl ReasonClass {
    /// Every class, for series that exist at 0 from start-up.
    pub const ALL: [ReasonClass; 8] = [
        ReasonClass::FieldTypeConflict,
        ReasonClass::BeyondRetention,
        ReasonClass::RetentionPolicyNotFound,
        ReasonClass::DatabaseNotFound,
        ReasonClass::Parse,
        ReasonClass::TooLarge,
        ReasonClass::Undecodable,
        ReasonClass::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::FieldTypeConflict => "field_type_conflict",
            ReasonClass::BeyondRetention => "beyond_retention",
            ReasonClass::RetentionPolicyNotFound => "retention_policy_not_found",
            ReasonClass::DatabaseNotFound => "database_not_found",
            ReasonClass::Parse => "parse",
            ReasonClass::TooLarge => "too_large",
            ReasonClass::Undecodable => "undecodable",
            ReasonClass::Other => "other",
        }
    }
}

/// The bounded class of a retried write (the `reason` label of the retry metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// No answer: connect failure, timeout, TLS, broken connection.
    Transport,
    /// 429.
    Throttled,
    /// 503.
    Unavailable,
    /// Another 5xx.
    ServerError,
    /// Anything else retried.
    Other,
}

impl RetryClass {
    /// Every class, for series that exist at 0 from start-up.
    pub const ALL: [RetryClass; 5] = [
        RetryClass::Transport,
        RetryClass::Throttled,
        RetryClass::Unavailable,
        RetryClass::ServerError,
        RetryClass::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::Transport => "transport",
            RetryClass::Throttled => "throttled",
            RetryClass::Unavailable => "unavailable",
            RetryClass::ServerError => "server_error",
            RetryClass::Other => "other",
        }
    }

    fn of_status(status: u16) -> RetryClass {
        match status {
            429 => RetryClass::Throttled,
            503 => RetryClass::Unavailable,
            s if s >= 500 => RetryClass::ServerError,
            _ => RetryClass::Other,
        }
    }
}

/// What the drain does with a batch after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written: mark it done.
    Done,
    /// Too large for the cluster: split in halves and write each (a single line that is still
    /// too large is dead-lettered as [`ReasonClass::TooLarge`]).
    Split,
    /// The database is missing: create it, then write again.
    CreateDatabase,
    /// A permanent rejection: dead-letter the batch, then go on.
    DeadLetter {
        /// The bounded class.
        class: ReasonClass,
        /// The cluster's status and error text.
        reason: String,
    },
    /// Credentials or permissions are wrong: pause the cluster, dead-letter nothing.
    Misconfigured(String),
    /// Transient: retry after backoff (at least `after` when the cluster said so).
    Retry {
        /// The bounded class.
        class: RetryClass,
        /// Why.
        reason: String,
        /// The cluster's `Retry-After`.
        after: Option<Duration>,
    },
}

/// Classifies a cluster's answer to a write (`Err`: no answer).
pub fn classify(answer: Result<&Answer, &WriteError>, create_databases: bool) -> Outcome {
    let a = match answer {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Retry {
                class: RetryClass::Transport,
                reason: e.to_string(),
                after: None,
            }
        }
    };
    let text = || format!("{} {}", a.status, a.error);
    let dead = |class| Outcome::DeadLetter {
        class,
        reason: text(),
    };
    let e = a.error.as_str();
    match a.status {
        200..=299 => Outcome::Done,
        413 => Outcome::Split,
        404 if is_missing_database(e) => {
            if create_databases {
                Outcome::CreateDatabase
            } else {
                dead(ReasonClass::DatabaseNotFound)
            }
        }
        // Any other 404 is a wrong endpoint URL, not the data's fault.
        404 | 401 | 403 => Outcome::Misconfigured(text()),
        400 | 422 => dead(rejection_class(e)),
        // InfluxDB 1.x answers 500 for a retention policy that does not exist: a client mistake.
        500 if e.contains("retention policy not found") => {
            dead(ReasonClass::RetentionPolicyNotFound)
        }
        // influxd 1.x answers 500 for a series whose key holds invalid UTF-8 (its field index
        // cannot be saved), and keeps answering so: retrying would block the partition forever.
        500 if e.contains("invalid UTF-8") => dead(ReasonClass::Parse),
        s => Outcome::Retry {
            class: RetryClass::of_status(s),
            reason: text(),
            after: a.retry_after,
        },
    }
}

/// The class of a 400/422 by influxd's error text.
fn rejection_class(e: &str) -> ReasonClass {
    if e.contains("field type conflict") {
        ReasonClass::FieldTypeConflict
    } else if e.contains("beyond retention") {
        ReasonClass::BeyondRetention
    } else if e.contains("retention policy not found") {
        ReasonClass::RetentionPolicyNotFound
    } else if is_missing_database(e) {
        ReasonClass::DatabaseNotFound
    } else if e.contains("unable to parse") || e.contains("invalid UTF-8") {
        ReasonClass::Parse
    } else if e.contains("too large") || e.contains("Too Large") {
        ReasonClass::TooLarge
    } else {
        ReasonClass::Other
    }
}

fn is_missing_database(error: &str) -> bool {
    error.contains("database not found")
        || (error.contains("bucket") && error.contains("not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(status: u16, error: &str) -> Answer {
        Answer {
            status,
            retry_after: None,
            error: error.into(),
        }
    }

    #[test]
    fn success_and_split() {
        assert_eq!(classify(Ok(&a(204, "")), true), Outcome::Done);
        assert_eq!(classify(Ok(&a(200, "")), true), Outcome::Done);
        assert_eq!(
            classify(Ok(&a(413, "Request Entity Too Large")), true),
            Outcome::Split
        );
    }

    #[test]
    fn missing_database() {
        let nf = a(404, "database not found: \"x\"");
        assert_eq!(classify(Ok(&nf), true), Outcome::CreateDatabase);
        assert_eq!(
            classify(Ok(&nf), false),
            Outcome::DeadLetter {
                class: ReasonClass::DatabaseNotFound,
                reason: "404 database not found: \"x\"".into()
            }
        );
        assert!(matches!(
            classify(Ok(&a(404, "404 page not found")), true),
            Outcome::Misconfigured(_)
        ));
    }

    #[test]
    fn permanent_rejections_are_dead_lettered_by_class() {
        for (status, text, want) in [
            (400, "unable to parse 'x': missing fields", ReasonClass::Parse),
            (400, "partial write: field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type integer dropped=1", ReasonClass::FieldTypeConflict),
            (400, "partial write: points beyond retention policy dropped=3", ReasonClass::BeyondRetention),
            (400, "bucket \"b\" not found", ReasonClass::DatabaseNotFound),
            (400, "body too large", ReasonClass::TooLarge),
            (422, "unprocessable", ReasonClass::Other),
            (500, "retention policy not found: short", ReasonClass::RetentionPolicyNotFound),
            (500, "proto: field \"tsdb.MeasurementFields.Name\" contains invalid UTF-8", ReasonClass::Parse),
        ] {
            match classify(Ok(&a(status, text)), true) {
                Outcome::DeadLetter { class, reason } => {
                    assert_eq!(class, want, "{status} {text}");
                    assert_eq!(reason, format!("{status} {text}"));
                }
                other => panic!("{status} {text}: {other:?}"),
            }
        }
    }

    #[test]
    fn auth_failures_pause_never_dead_letter() {
        for status in [401, 403] {
            assert!(matches!(
                classify(Ok(&a(status, "authorization failed")), true),
                Outcome::Misconfigured(_)
            ));
        }
    }

    #[test]
    fn transient_failures_retry_by_class_honouring_retry_after() {
        let mut busy = a(503, "busy");
        busy.retry_after = Some(Duration::from_secs(7));
        assert_eq!(
            classify(Ok(&busy), true),
            Outcome::Retry {
                class: RetryClass::Unavailable,
                reason: "503 busy".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        for (status, want) in [
            (429, RetryClass::Throttled),
            (500, RetryClass::ServerError),
            (502, RetryClass::ServerError),
            (408, RetryClass::Other),
        ] {
            match classify(Ok(&a(status, "x")), true) {
                Outcome::Retry { class, .. } => assert_eq!(class, want, "{status}"),
                other => panic!("{status}: {other:?}"),
            }
        }
        let refused = WriteError::Connect {
            endpoint: "http://127.0.0.1:1".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(
            classify(Err(&refused), true),
            Outcome::Retry {
                class: RetryClass::Transport,
                reason: "writing to http://127.0.0.1:1: connecting: connection refused".into(),
                after: None
            }
        );
    }

    #[test]
    fn labels_are_distinct() {
        let mut r: Vec<_> = ReasonClass::ALL.iter().map(|c| c.as_str()).collect();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), ReasonClass::ALL.len());
        let mut t: Vec<_> = RetryClass::ALL.iter().map(|c| c.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        assert_eq!(t.len(), RetryClass::ALL.len());
    }
}
