//! The admin API described as an OpenAPI 3 document (`GET /admin/v1/openapi.json`).

use super::*;

/// The admin API as an OpenAPI 3 document, built from the same table as the module docs.
pub fn openapi_document() -> Value {
    let cluster =
        json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } });
    let ok = |what: &str| json!({ "200": { "description": what }, "401": { "description": "missing or invalid bearer token" } });
    let action = |summary: &str, extra: Option<Value>| {
        let mut params = vec![cluster.clone()];
        params.extend(extra);
        json!({ "post": { "summary": summary, "parameters": params, "responses": {
            "200": { "description": "the cluster's new control state" },
            "400": { "description": "bad argument" },
            "401": { "description": "missing or invalid bearer token" },
            "404": { "description": "unknown cluster" },
            "503": { "description": "the action could not be shared with the other instances" } } } })
    };
    json!({
        "openapi": "3.0.3",
        "info": { "title": "fluxroute admin API", "version": env!("CARGO_PKG_VERSION") },
        "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } } },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/": { "get": { "summary": "status page (HTML; polls /admin/v1/status)", "security": [], "responses": { "200": { "description": "text/html" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "security": [], "responses": { "200": { "description": "text format" } } } },
            "/admin/v1/status": { "get": { "summary": "clusters, queue, version and uptime", "responses": ok("status") } },
            "/admin/v1/config": { "get": { "summary": "running configuration, secrets redacted", "responses": ok("config") } },
            "/admin/v1/openapi.json": { "get": { "summary": "this document", "responses": ok("OpenAPI document") } },
            "/admin/v1/clusters/{name}/pause": action("pause the cluster's drain on every instance", None),
            "/admin/v1/clusters/{name}/resume": action("resume the cluster's drain", None),
            "/admin/v1/clusters/{name}/replay": action("re-deliver the cluster's records since a time",
                Some(json!({ "name": "since", "in": "query", "required": true, "schema": { "type": "string", "format": "date-time" } }))),
            "/admin/v1/reload": { "post": { "summary": "re-read the config file; 400 with the problems when invalid", "responses": ok("what was reloaded") } },
            "/admin/v1/dead-letters": { "get": { "summary": "refused batches, oldest first, paged by id", "parameters": [
                { "name": "cluster", "in": "query", "schema": { "type": "string" } },
                { "name": "reason", "in": "query", "schema": { "type": "string" } },
                { "name": "from", "in": "query", "schema": { "type": "integer" } },
                { "name": "limit", "in": "query", "schema": { "type": "integer" } } ], "responses": ok("a page of dead letters and the next id") } },
            "/admin/v1/dead-letters/replay": { "post": { "summary": "re-enqueue matching dead letters", "parameters": [
                { "name": "cluster", "in": "query", "schema": { "type": "string" } },
                { "name": "reason", "in": "query", "schema": { "type": "string" } } ], "responses": ok("counts replayed") } },
            "/admin/v1/dead-letters/purge": { "post": { "summary": "delete dead letters below an id (all by default)", "parameters": [
                { "name": "before", "in": "query", "schema": { "type": "integer" } } ], "responses": ok("purged") } },
            "/admin/v1/dead-letters": { "get": { "summary": "refused batches, oldest first, paged by id", "parameters": [
                { "name": "cluster", "in": "query", "schema": { "type": "string" } },
                { "name": "reason", "in": "query", "schema": { "type": "string" } },
                { "name": "from", "in": "query", "schema": { "type": "integer" } },
                { "name": "limit", "in": "query", "schema": { "type": "integer" } } ], "responses": ok("a page of dead letters and the next id") } },
            "/admin/v1/dead-letters/replay": { "post": { "summary": "re-enqueue matching dead letters", "parameters": [
                { "name": "cluster", "in": "query", "schema": { "type": "string" } },
                { "name": "reason", "in": "query", "schema": { "type": "string" } } ], "responses": ok("counts replayed") } },
            "/admin/v1/dead-letters/purge": { "post": { "summary": "delete dead letters below an id (all by default)", "parameters": [
                { "name": "before", "in": "query", "schema": { "type": "integer" } } ], "responses": ok("purged") } },
            "/admin/v1/clusters/{name}/reroute": action("force rerouting to the standby on/off, or automatic",
                Some(json!({ "name": "enabled", "in": "query", "required": true, "schema": { "type": "string", "enum": ["true", "false", "auto"] } }))),
        }
    })
}

pub(super) async fn openapi() -> Response {
    axum::Json(openapi_document()).into_response()
}
