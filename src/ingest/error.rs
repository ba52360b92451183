//! The one error type of the ingest API, rendered as InfluxDB renders it.
//!
//! v1 endpoints answer `{"error": "<message>"}` with the message also in `X-Influxdb-Error`;
//! v2 endpoints answer `{"code": "<code>", "message": "<message>"}`. Status codes follow InfluxDB
//! 1.8 (v1) and 2.x (v2); the integration tests check them against a real `influxd`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Which API dialect an error is rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// InfluxDB 1.x: `{"error": …}`.
    V1,
    /// InfluxDB 2.x: `{"code": …, "message": …}`.
    V2,
}

/// Everything the ingest API can answer other than success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// `/write` without `db`.
    DatabaseRequired,
    /// `/api/v2/write` without `bucket`.
    BucketRequired,
    /// `precision` not one InfluxDB accepts.
    InvalidPrecision(String),
    /// `consistency` not one of any/one/quorum/all.
    InvalidConsistency,
    /// No route covers the database, or no cluster it goes to has it (and none creates it).
    DatabaseNotFound(String),
    /// No cluster the write goes to has the named retention policy (influxd answers 500).
    RetentionPolicyNotFound(String),
    /// Auth is on and the request carries no credentials.
    CredentialsMissing,
    /// The credentials match no user.
    AuthorizationFailed,
    /// The user may not write to the database.
    Forbidden {
        /// Authenticated user.
        user: String,
        /// Database asked for.
        db: String,
    },
    /// Raw or decompressed body above `max_body_bytes`.
    BodyTooLarge,
    /// The body could not be read or decompressed.
    BadBody(String),
    /// The body did not arrive within `body_read_timeout`.
    BodyTimeout,
    /// Not one line of the body is valid (v1), or any line is invalid (v2).
    Parse(String),
    /// Some lines were invalid; the valid ones were enqueued.
    PartialWrite {
        /// InfluxDB's message.
        message: String,
        /// How many lines were dropped.
        dropped: usize,
    },
    /// Too many requests in flight: shed before reading the body.
    Overloaded {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// The queue did not acknowledge in time; nothing of the request is acknowledged.
    QueueUnavailable {
        /// Sent as `Retry-After`.
        retry_after: Duration,
        /// Why.
        reason: String,
    },
    /// A `/query` fluxroute does not take, and why.
    Query(String),
    /// `/query` without `q`.
    MissingQuery,
    /// Wrong method on a known path.
    MethodNotAllowed,
    /// Unknown path.
    NotFound,
}

impl ApiError {
    /// The HTTP status InfluxDB answers with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::DatabaseRequired
            | ApiError::BucketRequired
            | ApiError::InvalidPrecision(_)
            | ApiError::InvalidConsistency
            | ApiError::BadBody(_)
            | ApiError::Parse(_)
            | ApiError::PartialWrite { .. }
            | ApiError::Query(_)
            | ApiError::MissingQuery => StatusCode::BAD_REQUEST,
            ApiError::CredentialsMissing | ApiError::AuthorizationFailed => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::DatabaseNotFound(_) | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded { .. } | ApiError::QueueUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::RetentionPolicyNotFound(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The v2 error code (`invalid`, `unauthorized`, …).
    fn v2_code(&self) -> &'static str {
        match self.status_code() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::REQUEST_TIMEOUT => "request timeout",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::BAD_REQUEST => "invalid",
            _ => "internal error",
        }
    }

    /// The message, worded as InfluxDB words it.
    pub fn message(&self) -> String {
        match self {
            ApiError::DatabaseRequired => "database is required".into(),
            ApiError::BucketRequired => "bucket is required".into(),
            ApiError::InvalidPrecision(p) => {
                format!("invalid precision {p:?} (use n, u, ms, s, m or h)")
            }
            ApiError::InvalidConsistency => "invalid consistency level".into(),
            ApiError::DatabaseNotFound(db) => format!("database not found: {db:?}"),
            ApiError::RetentionPolicyNotFound(rp) => format!("retention policy not found: {rp}"),
            ApiError::CredentialsMissing => "unable to parse authentication credentials".into(),
            ApiError::AuthorizationFailed => "authorization failed".into(),
            ApiError::Forbidden { user, db } => {
                format!("{user:?} user is not authorized to write to database {db:?}")
            }
            ApiError::BodyTooLarge => "Request Entity Too Large".into(),
            ApiError::BodyTimeout => "timed out reading the request body".into(),
            ApiError::BadBody(m)
            | ApiError::Parse(m)
            | ApiError::PartialWrite { message: m, .. } => m.clone(),
            ApiError::Overloaded { .. } => "too many write requests in flight; retry later".into(),
            ApiError::QueueUnavailable { reason, .. } => {
                format!("write not acknowledged by the queue: {reason}")
            }
            ApiError::Query(m) => m.clone(),
            ApiError::MissingQuery => "missing required parameter \"q\"".into(),
            ApiError::MethodNotAllowed => "method not allowed".into(),
            ApiError::NotFound => "404 page not found".into(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Overloaded { retry_after }
            | ApiError::QueueUnavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Renders the error in `dialect`.
    pub fn into_response_in(self, dialect: Dialect) -> Response {
        let status = self.status_code();
        let message = self.message();
        let mut resp = match dialect {
            // Exactly as influxd's Go JSON encoder writes it, newline included.
            Dialect::V1 => {
                let mut body = Vec::with_capacity(message.len() + 16);
                body.extend_from_slice(b"{\"error\":");
                crate::line_protocol::append_json_string(message.as_bytes(), &mut body);
                body.extend_from_slice(b"}\n");
                (
                    status,
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response()
            }
            Dialect::V2 => (
                status,
                axum::Json(serde_json::json!({ "code": self.v2_code(), "message": message })),
            )
                .into_response(),
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&sanitize_header(&message)) {
            h.insert("X-Influxdb-Error", v);
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"InfluxDB\""),
            );
        }
        if let ApiError::PartialWrite { dropped, .. } = &self {
            h.insert("X-Fluxroute-Dropped", HeaderValue::from(*dropped));
        }
        if let Some(after) = self.retry_after() {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

/// Header values cannot hold newlines or control bytes; InfluxDB's multi-line errors are joined.
fn sanitize_header(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(char::is_ascii)
        .collect();
    out.truncate(4096);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_in(Dialect::V1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let r = ApiError::Overloaded {
            retry_after: Duration::from_millis(1500),
        }
        .into_response_in(Dialect::V1);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let r = ApiError::CredentialsMissing.into_response_in(Dialect::V2);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"InfluxDB\""
        );
    }

    #[test]
    fn error_header_has_no_newlines() {
        let r = ApiError::Parse("unable to parse 'a': x\nunable to parse 'b': y".into())
            .into_response_in(Dialect::V1);
        let h = r.headers()["X-Influxdb-Error"].to_str().unwrap();
        assert!(!h.contains('\n'));
        assert!(h.contains("unable to parse 'b'"));
    }

    #[test]
    fn messages_match_influxdb_wording() {
        assert_eq!(
            ApiError::DatabaseNotFound("x".into()).message(),
            "database not found: \"x\""
        );
        let rp = ApiError::RetentionPolicyNotFound("zz".into());
        assert_eq!(rp.message(), "retention policy not found: zz");
        assert_eq!(rp.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            ApiError::Forbidden {
                user: "u".into(),
                db: "d".into()
            }
            .message(),
            "\"u\" user is not authorized to write to database \"d\""
        );
    }
}
