//! The HTTP client for InfluxDB clusters: write a batch, probe an endpoint, create a database;
//! and [`classify`], the one pure function that turns a cluster's answer into what the drain
//! does next.
//!
//! Writes always carry `precision=ns` (the ingest normalized every timestamp) and, when the
//! cluster is configured for it, a gzip body. v1 clusters get `/write?db=&rp=` with `u`/`p`; v2
//! clusters get `/api/v2/write?org=&bucket=db[/rp]` with `Authorization: Token`.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_ENCODING, RETRY_AFTER};

use crate::config::{ClusterAuth, ClusterConfig, Endpoint};

mod outcome;

pub use outcome::{classify, Outcome, ReasonClass, RetryClass, WriteError};

/// Most bytes of an error body kept for dead letters and logs.
const MAX_ERROR_BODY_BYTES: usize = 4096;

/// A cluster's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, when given in seconds.
    pub retry_after: Option<Duration>,
    /// The error text (`error` of a v1 body, `message` of a v2 body, else the raw body), capped.
    pub error: String,
}

/// Errors of the cluster client itself (not the cluster's answers).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client for cluster {cluster}: {source}")]
    Build {
        /// Cluster name.
        cluster: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// A TLS file named by the cluster's config could not be used.
    #[error("cluster {cluster}: {what} {}: {reason}", path.display())]
    TlsFile {
        /// Cluster name.
        cluster: String,
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// HTTP client for one cluster's endpoints.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    http: reqwest::Client,
    auth: ClusterAuth,
    timeout: Duration,
    health_timeout: Duration,
    gzip: bool,
}

impl ClusterClient {
    /// A client for `cluster`.
    ///
    /// # Errors
    /// [`ClientError::Build`] when TLS roots cannot be loaded.
    pub fn from_config(cluster: &ClusterConfig) -> Result<ClusterClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cluster.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30));
        let read = |what: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| ClientError::TlsFile {
                cluster: cluster.name.clone(),
                what,
                path: path.to_owned(),
                reason: e.to_string(),
            })
        };
        let invalid =
            |what: &'static str, path: &std::path::Path, e: reqwest::Error| ClientError::TlsFile {
                cluster: cluster.name.clone(),
                what,
                path: path.to_owned(),
                reason: e.to_string(),
            };
        if let Some(ca) = &cluster.tls.ca {
            // The bundle replaces the built-in roots: only this CA is trusted for the cluster.
            let certs = reqwest::Certificate::from_pem_bundle(&read("CA bundle", ca)?)
                .map_err(|e| invalid("CA bundle", ca, e))?;
            if certs.is_empty() {
                return Err(ClientError::TlsFile {
                    cluster: cluster.name.clone(),
                    what: "CA bundle",
                    path: ca.clone(),
                    reason: "no PEM certificate in the file".into(),
                });
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &cluster.tls.client_cert {
            let mut pem = read("client certificate", cert)?;
            pem.push(b'\n');
            pem.extend(read("client key", key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| invalid("client certificate and key", cert, e))?;
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|source| ClientError::Build {
            cluster: cluster.name.clone(),
            source,
        })?;
        Ok(ClusterClient {
            http,
            auth: cluster.auth.clone(),
            timeout: cluster.timeout,
            health_timeout: cluster.health_timeout,
            gzip: cluster.gzip,
        })
    }

    fn write_url(&self, endpoint: &Endpoint, db: &str, rp: &str) -> reqwest::Url {
        let mut params: Vec<(&str, String)> = Vec::with_capacity(5);
        let path = match &self.auth {
            ClusterAuth::V1 { credentials } => {
                params.push(("db", db.to_owned()));
                if !rp.is_empty() {
                    params.push(("rp", rp.to_owned()));
                }
                params.push(("precision", "ns".to_owned()));
                if let Some(c) = credentials {
                    params.push(("u", c.username.clone()));
                    params.push(("p", c.password.expose().to_owned()));
                }
                "/write"
            }
            ClusterAuth::V2 { org, .. } => {
                params.push(("org", org.clone()));
                let bucket = if rp.is_empty() {
                    db.to_owned()
                } else {
                    format!("{db}/{rp}")
                };
                params.push(("bucket", bucket));
                params.push(("precision", "ns".to_owned()));
                "/api/v2/write"
            }
        };
        let base = endpoint.url(path);
        reqwest::Url::parse_with_params(&base, &params).unwrap_or_else(|_| {
            reqwest::Url::parse("http://invalid.invalid/").expect("static URL parses")
        })
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            ClusterAuth::V2 { token, .. } => {
                req.header("Authorization", format!("Token {}", token.expose()))
            }
            ClusterAuth::V1 { .. } => req,
        }
    }

    /// Writes normalized lines (nanosecond timestamps) to `db`/`rp` on `endpoint`: plain lines,
    /// or with `members`, concatenated gzip members of such lines (sent as they are to a gzip
    /// cluster, decompressed for the others).
    ///
    /// # Errors
    /// [`WriteError`] when there is no answer (connect, timeout, TLS, a broken connection), or
    /// members that do not decompress for a cluster without gzip (as a refusal).
    pub async fn write(
        &self,
        endpoint: &Endpoint,
        db: &str,
        rp: &str,
        lines: &Bytes,
        members: bool,
    ) -> Result<Answer, WriteError> {
        let mut req = self
            .http
            .post(self.write_url(endpoint, db, rp))
            .timeout(self.timeout);
        req = match (self.gzip, members) {
            (true, true) => req.header(CONTENT_ENCODING, "gzip").body(lines.clone()),
            (true, false) => req
                .header(CONTENT_ENCODING, "gzip")
                .body(crate::gzip::compress(lines)),
            (false, false) => req.body(lines.clone()),
            (false, true) => match crate::gzip::decompress(lines) {
                Ok(plain) => req.body(plain),
                // Sent as they are: the cluster refuses them and the batch is dead-lettered
                // with its answer, as any batch the cluster cannot read.
                Err(e) => {
                    tracing::warn!(error = %e, "queued members do not decompress");
                    req.header(CONTENT_ENCODING, "gzip").body(lines.clone())
                }
            },
        };
        let tls = endpoint.url("/").starts_with("https:");
        let no_answer = |e: &reqwest::Error| WriteError::from_client(endpoint.to_string(), e, tls);
        let resp = self
            .authorize(req)
            .send()
            .await
            .map_err(|e| no_answer(&e))?;
        answer(resp).await.map_err(|e| no_answer(&e))
    }

    /// Probes `endpoint` (`/ping` for v1, `/health` for v2).
    ///
    /// # Errors
    /// Why the endpoint is not healthy.
    pub async fn probe(&self, endpoint: &Endpoint) -> Result<(), String> {
        let path = match self.auth {
            ClusterAuth::V1 { .. } => "/ping",
            ClusterAuth::V2 { .. } => "/health",
        };
        let resp = self
            .http
            .get(endpoint.url(path))
            .timeout(self.health_timeout)
            .send()
            .await
            .map_err(|e| format!("probing {endpoint}: {}", error_chain(&e)))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("probing {endpoint}: status {}", resp.status()))
        }
    }

    /// Sends `CREATE DATABASE "<db>"` (v1 clusters; v2 buckets are not created).
    ///
    /// # Errors
    /// A transport failure, or a refusal as text.
    pub async fn create_database(&self, endpoint: &Endpoint, db: &str) -> Result<Answer, String> {
        if matches!(self.auth, ClusterAuth::V2 { .. }) {
            return Err(format!(
                "cannot create bucket {db:?} on a v2 cluster; create it there"
            ));
        }
        let statement = format!(
            "CREATE DATABASE {}",
            crate::query::statement::quote_ident(db)
        );
        self.run_statement(endpoint, "", &statement).await
    }

    /// Runs a schema change on `endpoint` in database `db` (empty: none). The answer's `error`
    /// is the statement's error when the cluster answers 200 with an error in its results.
    /// 2.x clusters take no InfluxQL schema changes: they answer a refusal.
    ///
    /// # Errors
    /// A transport failure.
    pub async fn run_statement(
        &self,
        endpoint: &Endpoint,
        db: &str,
        statement: &str,
    ) -> Result<Answer, String> {
        if matches!(self.auth, ClusterAuth::V2 { .. }) {
            return Ok(Answer {
                status: 400,
                retry_after: None,
                error: "InfluxDB 2.x clusters take no InfluxQL schema changes; apply it there"
                    .into(),
            });
        }
        let params: &[(&str, &str)] = if db.is_empty() { &[] } else { &[("db", db)] };
        let resp = tokio::time::timeout(self.timeout, self.query(endpoint, statement, params))
            .await
            .map_err(|_| format!("running a statement on {endpoint}: no answer in time"))??;
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .map_err(|_| format!("reading the answer of {endpoint}: no answer in time"))?
            .map_err(|e| format!("reading the answer of {endpoint}: {}", error_chain(&e)))?;
        let statement_error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/results/0/error")
                    .and_then(|e| e.as_str().map(str::to_owned))
            });
        let error = match statement_error {
            Some(e) => e,
            None if (200..300).contains(&status) => String::new(),
            None => error_text(&body),
        };
        Ok(Answer {
            status,
            retry_after: None,
            error,
        })
    }
}

impl ClusterClient {
    /// Sends a query to `endpoint`'s `/query` (InfluxQL; on a 2.x cluster its 1.x-compatible
    /// API) with the cluster's own credentials; `params` go in the URL (influxd reads `pretty`
    /// from there only) and `q` in a form body. Returns once the answer's head is in: the body
    /// is the caller's to stream.
    ///
    /// # Errors
    /// The request could not be sent or no answer came (connect, TLS, a broken connection).
    pub async fn query(
        &self,
        endpoint: &Endpoint,
        q: &str,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Response, String> {
        // InfluxDB 1.x reads `u`/`p` from the URL only, not from a form body.
        let mut params = params.to_vec();
        if let ClusterAuth::V1 {
            credentials: Some(c),
        } = &self.auth
        {
            params.push(("u", c.username.as_str()));
            params.push(("p", c.password.expose()));
        }
        let url = reqwest::Url::parse_with_params(&endpoint.url("/query"), &params)
            .map_err(|e| format!("building the /query URL of {endpoint}: {e}"))?;
        self.authorize(self.http.post(url).form(&[("q", q)]))
            .send()
            .await
            .map_err(|e| format!("querying {endpoint}: {}", error_chain(&e)))
    }
}

impl ClusterClient {
    /// Sends a Flux query to `endpoint`'s `/api/v2/query` (2.x, or 1.8 with Flux enabled) with
    /// the cluster's credentials (a 2.x token; 1.x `Token user:password`). Returns once the
    /// answer's head is in.
    ///
    /// # Errors
    /// The request could not be sent or no answer came.
    pub async fn flux(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
        content_type: Option<&str>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, String> {
        let mut url = endpoint.url("/api/v2/query");
        if let ClusterAuth::V2 { org, .. } = &self.auth {
            url = reqwest::Url::parse_with_params(&url, &[("org", org)])
                .map_err(|e| format!("building the /api/v2/query URL of {endpoint}: {e}"))?
                .into();
        }
        let mut req = self.http.post(url).body(body);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(a) = accept {
            req = req.header(reqwest::header::ACCEPT, a);
        }
        req = match &self.auth {
            ClusterAuth::V1 {
                credentials: Some(c),
            } => req.header(
                "Authorization",
                format!("Token {}:{}", c.username, c.password.expose()),
            ),
            _ => self.authorize(req),
        };
        req.send()
            .await
            .map_err(|e| format!("querying {endpoint}: {}", error_chain(&e)))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

async fn answer(resp: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = resp.bytes().await?;
    let error = if (200..300).contains(&status) {
        String::new()
    } else {
        error_text(&body)
    };
    Ok(Answer {
        status,
        retry_after,
        error,
    })
}

/// The error text of a v1 (`{"error"}`) or v2 (`{"message"}`) body, else the body itself.
fn error_text(body: &[u8]) -> String {
    let parsed: Option<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .or_else(|| v.pointer("/results/0/error"))
                .and_then(|e| e.as_str().map(str::to_owned))
        });
    let mut s = parsed.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if s.len() > MAX_ERROR_BODY_BYTES {
        let mut cut = MAX_ERROR_BODY_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_reads_both_dialects() {
        assert_eq!(error_text(br#"{"error":"boom"}"#), "boom");
        assert_eq!(error_text(br#"{"code":"invalid","message":"bad"}"#), "bad");
        assert_eq!(error_text(b"plain\n"), "plain");
    }
}
