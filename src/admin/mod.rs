//! The ops HTTP API on its own listener.
//!
//! Endpoints so far:
//! - `GET /metrics` — Prometheus text format; no auth (scrapers rarely carry tokens; it holds no
//!   secrets and no database names).
//! - `GET /admin/v1/config` — the running configuration with secrets redacted; `Authorization:
//!   Bearer <token>` when `[admin] token` is set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use subtle::ConstantTimeEq;

/// Shared state of the admin routes.
#[derive(Debug)]
pub struct Admin {
    registry: Registry,
    token: Option<String>,
    config_view: serde_json::Value,
}

impl Admin {
    /// Builds the admin API state.
    pub fn new(registry: Registry, token: Option<String>, config_view: serde_json::Value) -> Admin {
        Admin {
            registry,
            token,
            config_view,
        }
    }

    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
    }
}

/// The admin API's routes.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/admin/v1/config", get(config))
        .with_state(admin)
}

async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&admin.registry),
    )
        .into_response()
}

async fn config(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if !admin.is_authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({ "error": "missing or invalid bearer token" })),
        )
            .into_response();
    }
    axum::Json(admin.config_view.clone()).into_response()
}
