//! `/query` and `/api/v2/query`: reads passed on to one cluster by [`crate::query`], schema
//! changes enqueued on every partition so that every cluster applies them in log order.

use super::*;

pub(super) async fn query(
    State(ingest): State<Arc<Ingest>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run_query(&ingest, &method, q.as_deref(), &headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response_in(Dialect::V1),
    }
}

async fn run_query(
    ingest: &Ingest,
    method: &Method,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let mut p = params(raw_query);
    let pretty = p.get("pretty").cloned();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && is_form {
        let raw = body::read_raw(body, content_length(headers), MAX_QUERY_BODY_BYTES).await?;
        for (k, v) in form_urlencoded::parse(&raw) {
            p.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    let user = p.get("u").map(String::as_str);
    let password = p.get("p").map(String::as_str);
    let q = p
        .get("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or(ApiError::MissingQuery)?;
    let db = p.get("db").map_or("", String::as_str);
    let statements = statement::split(q);
    if statements.is_empty() {
        return Err(ApiError::MissingQuery);
    }
    let mut reads = Vec::new();
    let mut changes = Vec::new();
    // influxd runs statements in order: one that needs a database and has none fails in its
    // results (`database not found: `), and those after it are "not executed".
    let mut failed_at = None;
    for (i, s) in statements.iter().enumerate() {
        match statement::classify(s, db) {
            Ok(Statement::Read(r)) => reads.push(r),
            Ok(Statement::Ddl(d)) => changes.push(d),
            Err(statement::Refusal::DatabaseRequired) => {
                failed_at = Some(i);
                break;
            }
            Err(e) => return Err(ApiError::Query(e.to_string())),
        }
    }
    if !reads.is_empty() && (!changes.is_empty() || failed_at.is_some()) {
        return Err(ApiError::Query(
            "a query may not mix reads and schema changes: send the schema changes apart".into(),
        ));
    }
    let auth = ingest.auth();
    if !reads.is_empty() {
        if db.is_empty() {
            auth.authenticate(user, password, headers)?;
        } else {
            auth.authorize(user, password, headers, db)?;
        }
        let passed = query::PASSED_PARAMS
            .iter()
            .filter_map(|&k| p.get(k).map(|v| (k.to_owned(), v.clone())))
            .chain(pretty.map(|v| ("pretty".to_owned(), v)))
            .collect();
        let after = headers
            .get(AFTER_HEADER)
            .map(|v| {
                v.to_str()
                    .map_err(|_| format!("invalid {AFTER_HEADER}: not text"))
                    .and_then(Position::parse)
            })
            .transpose()
            .map_err(ApiError::Query)?;
        let read = query::Read {
            q: reads.join(";\n"),
            db: db.to_owned(),
            params: passed,
            statements: reads.len(),
            after,
            flux: None,
        };
        return Ok(ingest.queries.read(&read).await);
    }
    auth.authenticate(user, password, headers)?;
    for d in &changes {
        auth.authorize(user, password, headers, &d.db)?;
    }
    if !ingest.accepting.load(Ordering::SeqCst) {
        return Err(ingest.overloaded());
    }
    // A schema change goes to every partition so each drain applies it after the writes before
    // it and before the writes behind it.
    let partitions = ingest.producer.partitions();
    let records = changes
        .iter()
        .flat_map(|d| {
            let payload = bytes::Bytes::from(d.to_payload());
            (0..partitions).map(move |partition| OutgoingRecord {
                partition,
                meta: RecordMeta::ddl(d.db.clone()),
                payload: payload.clone(),
            })
        })
        .collect();
    let written = ingest.enqueue(records).await?;
    let routes = ingest.routes();
    for d in &changes {
        ingest.schema.applied(d, &written, &routes);
    }
    let mut resp = schema_change_answer(
        &statements,
        changes.len(),
        failed_at,
        *method == Method::GET,
    );
    with_position(&mut resp, &written);
    Ok(resp)
}

/// influxd's answer to schema changes, in its key order: each statement's id; a statement sent
/// with GET gets influxd's deprecation warning; the one that failed for want of a database its
/// error, and those after it `not executed`.
fn schema_change_answer(
    statements: &[&str],
    done: usize,
    failed_at: Option<usize>,
    get: bool,
) -> Response {
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let results: Vec<String> = (0..statements.len())
        .map(|i| match failed_at {
            Some(f) if i == f => {
                format!(r#"{{"statement_id":{i},"error":"database not found: "}}"#)
            }
            Some(f) if i > f => format!(r#"{{"statement_id":{i},"error":"not executed"}}"#),
            _ if get && i < done => {
                let warning = format!(
                    "deprecated use of '{}' in a read only context, please use a POST request instead",
                    statements[i]
                );
                format!(
                    r#"{{"statement_id":{i},"messages":[{{"level":"warning","text":{}}}]}}"#,
                    text(&warning)
                )
            }
            _ => format!(r#"{{"statement_id":{i}}}"#),
        })
        .collect();
    crate::query::results_answer(&results)
}

/// `POST /api/v2/query`: a Flux query, passed on to one cluster that holds its bucket's
/// database (chosen as reads are), for clusters that serve Flux.
pub(super) async fn flux_query(
    State(ingest): State<Arc<Ingest>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let p = params(q.as_deref());
        let auth = ingest.auth();
        let (user, password) = (
            p.get("u").map(String::as_str),
            p.get("p").map(String::as_str),
        );
        auth.authenticate(user, password, &headers)?;
        let raw = body::read_raw(body, content_length(&headers), MAX_QUERY_BODY_BYTES).await?;
        let db = query::flux_bucket(&raw).unwrap_or_default();
        if !db.is_empty() {
            auth.authorize(user, password, &headers, &db)?;
        }
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let read = query::Read {
            q: String::new(),
            db,
            params: Vec::new(),
            statements: 1,
            after: None,
            flux: Some(query::Flux {
                body: raw,
                content_type: text(header::CONTENT_TYPE),
                accept: text(header::ACCEPT),
            }),
        };
        Ok::<_, ApiError>(ingest.queries.read(&read).await)
    };
    match run.await {
        Ok(resp) => resp,
        Err(e) => e.into_response_in(Dialect::V2),
    }
}
