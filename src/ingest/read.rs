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
    for s in &statements {
        match statement::classify(s, db).map_err(|e| ApiError::Query(e.to_string()))? {
            Statement::Read(r) => reads.push(r),
            Statement::Ddl(d) => changes.push(d),
        }
    }
    if !reads.is_empty() && !changes.is_empty() {
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
    let results: Vec<serde_json::Value> = (0..changes.len())
        .map(|i| serde_json::json!({ "statement_id": i }))
        .collect();
    let mut resp = (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "results": results })),
    )
        .into_response();
    with_position(&mut resp, &written);
    Ok(resp)
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
