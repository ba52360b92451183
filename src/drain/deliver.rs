//! Writing one batch to a cluster until it is written, dead-lettered or cancelled: endpoint
//! choice, classification of the answer, splitting, database creation, retries with backoff.

use super::*;

/// Everything a delivery task needs.
#[derive(Debug)]
pub(super) struct Deliverer {
    pub(super) cluster: String,
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) client: ClusterClient,
    pub(super) health: Arc<ClusterHealth>,
    pub(super) dead_letters: Arc<dyn DeadLetterSink>,
    pub(super) create_databases: bool,
    pub(super) metrics: DrainMetrics,
    /// Told when the cluster says a database or retention policy is missing: its schema view
    /// is refreshed soon.
    pub(super) schema_hint: Arc<tokio::sync::Notify>,
}

pub(super) fn backoff(attempt: u32, after: Option<Duration>) -> Duration {
    let exp = MIN_BACKOFF
        .saturating_mul(1u32 << attempt.min(10))
        .min(MAX_BACKOFF);
    let jitter = rand::rng().random_range(0.5..1.0);
    exp.mul_f64(jitter).max(after.unwrap_or_default())
}

impl Deliverer {
    /// Waits until the cluster is Up; `false` when cancelled.
    pub(super) async fn wait_up(
        &self,
        state: &mut watch::Receiver<ClusterState>,
        cancel: &CancellationToken,
    ) -> Option<usize> {
        let mut seed = rand::rng().random_range(0..usize::MAX / 2);
        loop {
            if let Some(i) = state.borrow_and_update().pick_endpoint(seed) {
                return Some(i);
            }
            seed += 1;
            tokio::select! {
                () = cancel.cancelled() => return None,
                r = state.changed() => if r.is_err() { return None },
            }
        }
    }

    pub(super) async fn sleep(&self, d: Duration, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }

    /// Dead-letters durably, retrying the sink until it takes the letter; `false` if cancelled.
    pub(super) async fn dead_letter(
        &self,
        letter: DeadLetter,
        lines: usize,
        cancel: &CancellationToken,
    ) -> bool {
        let class = letter.reason_class;
        tracing::warn!(cluster = %self.cluster, db = %letter.db, reason = %letter.reason, lines, "dead-lettering a batch");
        let mut attempt = 0;
        loop {
            match self.dead_letters.dead_letter(letter.clone()).await {
                Ok(()) => {
                    self.metrics
                        .dead_letters
                        .with_label_values(&[&self.cluster, class])
                        .inc();
                    self.metrics
                        .dead_letter_lines
                        .with_label_values(&[&self.cluster, class])
                        .inc_by(lines as u64);
                    self.metrics
                        .batches
                        .with_label_values(&[&self.cluster, "dead_lettered"])
                        .inc();
                    return true;
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.cluster, error = %e, "dead-letter sink refused; retrying");
                    attempt += 1;
                    if !self.sleep(backoff(attempt, None), cancel).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Writes `batch` until it is written or dead-lettered (or cancelled).
    pub(super) async fn deliver(
        self: Arc<Self>,
        batch: Batch,
        mut state: watch::Receiver<ClusterState>,
        cancel: CancellationToken,
    ) -> bool {
        let mut stack = vec![batch];
        while let Some(b) = stack.pop() {
            match self.write_one(&b, &mut state, &cancel).await {
                Some(None) => {}
                Some(Some((x, y))) => {
                    stack.push(y);
                    stack.push(x);
                }
                None => return false,
            }
        }
        true
    }

    /// One batch to its end: `Some(None)` finished, `Some(Some(halves))` to split, `None`
    /// cancelled.
    pub(super) async fn write_one(
        &self,
        b: &Batch,
        state: &mut watch::Receiver<ClusterState>,
        cancel: &CancellationToken,
    ) -> Option<Option<(Batch, Batch)>> {
        let mut attempt = 0u32;
        loop {
            let idx = self.wait_up(state, cancel).await?;
            let endpoint = &self.endpoints[idx];
            let started = Instant::now();
            let res = tokio::select! {
                () = cancel.cancelled() => return None,
                r = self.client.write(endpoint, &b.db, &b.rp, &b.lines, b.gzip) => r,
            };
            self.metrics
                .write_seconds
                .with_label_values(&[&self.cluster])
                .observe(started.elapsed().as_secs_f64());
            let status = res.as_ref().ok().map(|a| a.status);
            // Passive health: no answer or a server error counts against the endpoint.
            let healthy = matches!(status, Some(s) if s < 500);
            let err_text = match &res {
                Ok(a) => format!("{} {}", a.status, a.error),
                Err(e) => e.to_string(),
            };
            self.health
                .observe(idx, if healthy { Ok(()) } else { Err(&err_text) });
            match classify(res.as_ref(), self.create_databases) {
                Outcome::Done => {
                    self.metrics
                        .lines_written
                        .with_label_values(&[&self.cluster])
                        .inc_by(b.line_count as u64);
                    self.metrics
                        .batches
                        .with_label_values(&[&self.cluster, "written"])
                        .inc();
                    return Some(None);
                }
                Outcome::Split => match b.split() {
                    Some(halves) => return Some(Some(halves)),
                    None => {
                        let letter =
                            self.letter(b, status.unwrap_or(413), ReasonClass::TooLarge, err_text);
                        return self
                            .dead_letter(letter, b.line_count, cancel)
                            .await
                            .then_some(None);
                    }
                },
                Outcome::DeadLetter { class, reason } => {
                    if matches!(
                        class,
                        ReasonClass::DatabaseNotFound
                            | ReasonClass::RetentionPolicyNotFound
                            | ReasonClass::FieldTypeConflict
                    ) {
                        self.schema_hint.notify_one();
                    }
                    let letter = self.letter(b, status.unwrap_or(0), class, reason);
                    return self
                        .dead_letter(letter, b.line_count, cancel)
                        .await
                        .then_some(None);
                }
                Outcome::CreateDatabase => {
                    self.schema_hint.notify_one();
                    tracing::info!(cluster = %self.cluster, db = %b.db, "database missing; creating it");
                    match self.client.create_database(endpoint, &b.db).await {
                        Ok(a) if a.status == 401 || a.status == 403 => {
                            self.health
                                .set_misconfigured(&format!("{} {}", a.status, a.error));
                        }
                        Ok(a) if !(200..300).contains(&a.status) || !a.error.is_empty() => {
                            tracing::warn!(cluster = %self.cluster, db = %b.db, status = a.status, error = %a.error, "creating database refused");
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(cluster = %self.cluster, db = %b.db, error = %e, "creating database")
                        }
                    }
                    attempt += 1;
                    if attempt > 1 && !self.sleep(backoff(attempt, None), cancel).await {
                        return None;
                    }
                }
                Outcome::Misconfigured(reason) => {
                    self.health.set_misconfigured(&reason);
                    // Paused until the cluster is fixed; wait_up blocks while misconfigured.
                }
                Outcome::Retry {
                    class,
                    reason,
                    after,
                } => {
                    self.metrics
                        .retries
                        .with_label_values(&[&self.cluster, class.as_str()])
                        .inc();
                    tracing::debug!(cluster = %self.cluster, %reason, attempt, "write failed; retrying");
                    attempt += 1;
                    if !self.sleep(backoff(attempt, after), cancel).await {
                        return None;
                    }
                }
            }
        }
    }

    pub(super) fn letter(
        &self,
        b: &Batch,
        status: u16,
        class: ReasonClass,
        reason: String,
    ) -> DeadLetter {
        DeadLetter {
            cluster: self.cluster.clone(),
            db: b.db.clone(),
            rp: b.rp.clone(),
            status,
            reason_class: class.as_str(),
            reason,
            sources: b.sources.clone(),
            // Dead letters hold plain lines (members that do not decompress are kept as read).
            lines: b.plain_lines().unwrap_or_else(|_| b.lines.clone()),
        }
    }

    /// Applies a schema change on the cluster (every endpoint shares one cluster's meta):
    /// retried while the cluster does not answer or answers 5xx; a refusal (an InfluxQL error,
    /// e.g. dropping a retention policy the cluster does not have) is logged, counted and
    /// skipped, as the cluster would have answered it to a client.
    pub(super) async fn apply(
        self: Arc<Self>,
        statement: String,
        db: String,
        mut state: watch::Receiver<ClusterState>,
        cancel: CancellationToken,
    ) -> bool {
        let mut attempt = 0;
        loop {
            let Some(idx) = self.wait_up(&mut state, &cancel).await else {
                return false;
            };
            match self
                .client
                .run_statement(&self.endpoints[idx], &db, &statement)
                .await
            {
                Ok(a) if (200..300).contains(&a.status) && a.error.is_empty() => {
                    tracing::info!(cluster = %self.cluster, %db, %statement, "schema change applied");
                    return true;
                }
                Ok(a) if a.status == 401 || a.status == 403 => {
                    self.health
                        .set_misconfigured(&format!("{} {}", a.status, a.error));
                }
                Ok(a) if a.status < 500 => {
                    tracing::warn!(cluster = %self.cluster, %db, %statement, status = a.status, error = %a.error, "the cluster refused a schema change; skipped");
                    self.metrics
                        .batches
                        .with_label_values(&[&self.cluster, "ddl_refused"])
                        .inc();
                    return true;
                }
                Ok(a) => {
                    tracing::warn!(cluster = %self.cluster, %db, %statement, status = a.status, error = %a.error, "schema change failed; retrying");
                }
                Err(e) => {
                    self.health.observe(idx, Err(&e));
                    tracing::debug!(cluster = %self.cluster, %db, error = %e, "schema change failed; retrying");
                }
            }
            attempt += 1;
            if !self.sleep(backoff(attempt, None), &cancel).await {
                return false;
            }
        }
    }
}
