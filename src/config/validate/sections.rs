//! The tables other than clusters and routes: ingest (users, TLS), queue (embedded, Kafka),
//! admin, log, shutdown.

use super::*;

impl Ctx<'_> {
    pub(super) fn ingest(&mut self, raw: Option<Spanned<RawIngest>>) -> IngestConfig {
        let (_, raw) = section(raw);
        let users = self.users(raw.users.unwrap_or_default());
        IngestConfig {
            listen: self.socket_addr("ingest.listen", &raw.listen, d::INGEST_LISTEN),
            max_body_bytes: self.nonzero_usize(
                "ingest.max_body_bytes",
                &raw.max_body_bytes,
                d::MAX_BODY_BYTES,
            ),
            max_concurrent_requests: self.nonzero_usize(
                "ingest.max_concurrent_requests",
                &raw.max_concurrent_requests,
                d::MAX_CONCURRENT_REQUESTS,
            ),
            enqueue_timeout: self.duration(
                "ingest.enqueue_timeout",
                &raw.enqueue_timeout,
                d::ENQUEUE_TIMEOUT,
                false,
            ),
            retry_after: self.duration(
                "ingest.retry_after",
                &raw.retry_after,
                d::RETRY_AFTER,
                false,
            ),
            body_read_timeout: self.duration(
                "ingest.body_read_timeout",
                &raw.body_read_timeout,
                d::BODY_READ_TIMEOUT,
                false,
            ),
            http: HttpLimits {
                header_read_timeout: self.duration(
                    "ingest.header_read_timeout",
                    &raw.header_read_timeout,
                    d::HEADER_READ_TIMEOUT,
                    false,
                ),
                max_connections: self.nonzero_usize(
                    "ingest.max_connections",
                    &raw.max_connections,
                    d::MAX_CONNECTIONS,
                ),
                max_header_bytes: self.header_bytes(&raw.max_header_bytes),
            },
            tls: self.tls("ingest.tls", raw.tls),
            users,
        }
    }

    /// `ingest.max_header_bytes`: at least 8 KiB, the smallest head buffer the HTTP server takes.
    pub(super) fn header_bytes(&mut self, field: &Field<u64>) -> NonZeroUsize {
        const MIN: u64 = 8 * 1024;
        if let Some(f) = field {
            if *f.get_ref() < MIN {
                self.report(
                    Some(f.span()),
                    "ingest.max_header_bytes",
                    format!("must be at least {MIN}"),
                );
                return d::MAX_HEADER_BYTES;
            }
        }
        self.nonzero_usize("ingest.max_header_bytes", field, d::MAX_HEADER_BYTES)
    }

    /// A listener's `[*.tls]` table: `cert` and `key` required, `client_ca` optional.
    pub(super) fn tls(&mut self, table: &str, raw: Option<Spanned<RawTls>>) -> Option<TlsConfig> {
        let raw = raw?;
        let span = raw.span();
        let raw = raw.into_inner();
        let cert = self.non_empty(&format!("{table}.cert"), raw.cert);
        let key = self.non_empty(&format!("{table}.key"), raw.key);
        let client_ca = self.non_empty(&format!("{table}.client_ca"), raw.client_ca);
        if cert.is_none() {
            self.missing(Some(span.clone()), table, "cert");
        }
        if key.is_none() {
            self.missing(Some(span), table, "key");
        }
        Some(TlsConfig {
            cert: PathBuf::from(cert?.into_inner()),
            key: PathBuf::from(key?.into_inner()),
            client_ca: client_ca.map(|c| PathBuf::from(c.into_inner())),
        })
    }

    /// A cluster's `tls_ca`, `tls_cert` and `tls_key`; they need an `https://` endpoint.
    pub(super) fn cluster_tls(
        &mut self,
        table: &str,
        span: Range<usize>,
        raw: &RawCluster,
        endpoints: &[Endpoint],
    ) -> ClusterTls {
        let ca = self.non_empty(&format!("{table}.tls_ca"), raw.tls_ca.clone());
        let cert = self.non_empty(&format!("{table}.tls_cert"), raw.tls_cert.clone());
        let key = self.non_empty(&format!("{table}.tls_key"), raw.tls_key.clone());
        let given = [&ca, &cert, &key]
            .into_iter()
            .flatten()
            .map(Spanned::span)
            .next();
        if let Some(given) = given {
            if !endpoints.is_empty() && !endpoints.iter().any(|e| e.scheme() == Scheme::Https) {
                self.report(
                    Some(given),
                    table,
                    "tls_ca, tls_cert and tls_key apply to https:// endpoints, and this cluster has none",
                );
            }
        }
        let client_cert = match (cert, key) {
            (Some(cert), Some(key)) => Some((
                PathBuf::from(cert.into_inner()),
                PathBuf::from(key.into_inner()),
            )),
            (Some(_), None) => {
                self.missing(Some(span), table, "tls_key");
                None
            }
            (None, Some(_)) => {
                self.missing(Some(span), table, "tls_cert");
                None
            }
            (None, None) => None,
        };
        ClusterTls {
            ca: ca.map(|c| PathBuf::from(c.into_inner())),
            client_cert,
        }
    }

    pub(super) fn users(&mut self, raw: Vec<Spanned<RawUser>>) -> Vec<User> {
        let mut names: HashMap<String, Range<usize>> = HashMap::new();
        let mut tokens: Vec<(String, String, Range<usize>)> = Vec::new();
        let mut users = Vec::with_capacity(raw.len());
        for (i, user) in raw.into_iter().enumerate() {
            let table = format!("ingest.users[{i}]");
            let span = user.span();
            let user: RawUser = user.into_inner();
            let name_path = format!("{table}.name");
            let name = match self.non_empty(&name_path, user.name.clone()) {
                Some(name) => {
                    if name.get_ref().contains(':') {
                        self.report(Some(name.span()), &name_path, "must not contain `:`");
                    }
                    if let Some(first) = names.get(name.get_ref()) {
                        self.report(
                            Some(name.span()),
                            &name_path,
                            format!(
                                "duplicate user name {:?} (first on line {})",
                                name.get_ref(),
                                self.lines.line(first.start)
                            ),
                        );
                    } else {
                        names.insert(name.get_ref().clone(), name.span());
                    }
                    name.into_inner()
                }
                None => {
                    if user.name.is_none() {
                        self.missing(Some(span.clone()), &table, "name");
                    }
                    String::new()
                }
            };
            let has_credential = user.password.is_some() || user.token.is_some();
            let rejected_credential = self.rejected.contains(&format!("{table}.password"))
                || self.rejected.contains(&format!("{table}.token"));
            if !has_credential && !rejected_credential {
                self.report(
                    Some(span.clone()),
                    &table,
                    "needs a `password` or a `token` (or both)",
                );
            }
            let password = self.secret(&format!("{table}.password"), user.password);
            let token_span = user.token.as_ref().map(Spanned::span);
            let token = self.secret(&format!("{table}.token"), user.token);
            if let (Some(token), Some(token_span)) = (&token, token_span) {
                if let Some((other, _, _)) = tokens.iter().find(|(_, t, _)| t == token.expose()) {
                    self.report(
                        Some(token_span),
                        &format!("{table}.token"),
                        format!("the same token as user {other:?}; tokens identify users and must be unique"),
                    );
                } else {
                    tokens.push((name.clone(), token.expose().to_owned(), token_span));
                }
            }
            let databases = self.globs(
                Some(span),
                &table,
                "databases",
                user.databases,
                Some(d::USER_DATABASES),
            );
            users.push(User {
                name,
                password,
                token,
                databases,
            });
        }
        users
    }

    pub(super) fn queue(&mut self, raw: Option<Spanned<RawQueue>>) -> QueueConfig {
        let (_, raw) = section(raw);
        QueueConfig {
            backend: raw.backend.map_or(d::QUEUE_BACKEND, Spanned::into_inner),
            embedded: self.embedded(raw.embedded),
            kafka: self.kafka(raw.kafka),
        }
    }

    pub(super) fn embedded(&mut self, raw: Option<Spanned<RawEmbedded>>) -> EmbeddedConfig {
        let (_, raw) = section(raw);
        let dir = self.non_empty("queue.embedded.dir", raw.dir).map_or_else(
            || PathBuf::from(d::EMBEDDED_DIR),
            |dir| PathBuf::from(dir.into_inner()),
        );
        EmbeddedConfig {
            dir,
            fsync: raw.fsync.map_or(d::EMBEDDED_FSYNC, Spanned::into_inner),
            fsync_interval: self.duration(
                "queue.embedded.fsync_interval",
                &raw.fsync_interval,
                d::EMBEDDED_FSYNC_INTERVAL,
                false,
            ),
            partitions: self.nonzero_u32(
                "queue.embedded.partitions",
                &raw.partitions,
                d::EMBEDDED_PARTITIONS,
                u32::MAX,
            ),
            max_record_bytes: self.nonzero_usize(
                "queue.embedded.max_record_bytes",
                &raw.max_record_bytes,
                d::EMBEDDED_MAX_RECORD_BYTES,
            ),
            retention: self.retention(raw.retention),
        }
    }

    pub(super) fn retention(&mut self, raw: Option<Spanned<RawRetention>>) -> RetentionConfig {
        let (_, raw) = section(raw);
        RetentionConfig {
            policy: raw.policy.map_or(d::RETENTION_POLICY, Spanned::into_inner),
            max_bytes: raw.max_bytes.map_or(0, Spanned::into_inner),
            max_age: self.duration(
                "queue.embedded.retention.max_age",
                &raw.max_age,
                Duration::ZERO,
                true,
            ),
        }
    }

    pub(super) fn kafka(&mut self, raw: Option<Spanned<RawKafka>>) -> KafkaConfig {
        let (_, raw) = section(raw);
        let brokers = match self.list("queue.kafka.brokers", raw.brokers, "") {
            Some(items) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, item)| match BrokerAddr::try_new(item.get_ref()) {
                    Ok(addr) => Some(addr),
                    Err(e) => {
                        self.report(Some(item.span()), &format!("queue.kafka.brokers[{i}]"), e);
                        None
                    }
                })
                .collect(),
            None => d::KAFKA_BROKERS
                .iter()
                .filter_map(|b| BrokerAddr::try_new(b).ok())
                .collect(),
        };
        let topic = match raw.topic {
            Some(topic) => match check_topic(topic.get_ref()) {
                Ok(()) => topic.into_inner(),
                Err(e) => {
                    self.report(Some(topic.span()), "queue.kafka.topic", e);
                    d::KAFKA_TOPIC.to_owned()
                }
            },
            None => d::KAFKA_TOPIC.to_owned(),
        };
        let max_record_bytes = self.nonzero_usize(
            "queue.kafka.max_record_bytes",
            &raw.max_record_bytes,
            d::KAFKA_MAX_RECORD_BYTES,
        );
        let max_record_bytes = match &raw.max_record_bytes {
            Some(field) if max_record_bytes.get() < d::KAFKA_MIN_RECORD_BYTES => {
                self.report(
                    Some(field.span()),
                    "queue.kafka.max_record_bytes",
                    format!("must be at least {}", d::KAFKA_MIN_RECORD_BYTES),
                );
                d::KAFKA_MAX_RECORD_BYTES
            }
            _ => max_record_bytes,
        };
        let mut properties = BTreeMap::new();
        if let Some(raw_properties) = raw.properties {
            for (key, value) in raw_properties.into_inner() {
                let path = child("queue.kafka.properties", key.get_ref());
                if let Some((_, why)) = RESERVED_KAFKA_PROPERTIES
                    .iter()
                    .find(|(k, _)| *k == key.get_ref())
                {
                    self.report(
                        Some(key.span()),
                        &path,
                        format!("cannot be set here: {why}"),
                    );
                    continue;
                }
                if let Some(problem) = weakens_tls_verification(key.get_ref(), &value.get_ref().0) {
                    self.report(Some(value.span()), &path, problem);
                    continue;
                }
                properties.insert(key.into_inner(), value.into_inner().0);
            }
        }
        let insecure_skip_verify = match raw.insecure_skip_verify {
            Some(flag) if *flag.get_ref() => {
                let tls = properties.get("security.protocol").is_some_and(|p| {
                    p.eq_ignore_ascii_case("ssl") || p.eq_ignore_ascii_case("sasl_ssl")
                });
                if !tls {
                    self.report(
                        Some(flag.span()),
                        "queue.kafka.insecure_skip_verify",
                        "only applies to TLS connections: set [queue.kafka.properties] \
                         security.protocol = \"SSL\" or \"SASL_SSL\"",
                    );
                }
                for (k, v) in INSECURE_TLS_PROPERTIES {
                    properties.insert((*k).to_owned(), (*v).to_owned());
                }
                true
            }
            _ => false,
        };
        KafkaConfig {
            brokers,
            topic,
            partitions: self.nonzero_u32(
                "queue.kafka.partitions",
                &raw.partitions,
                d::KAFKA_PARTITIONS,
                i32::MAX.unsigned_abs(),
            ),
            replication_factor: self.nonzero_u32(
                "queue.kafka.replication_factor",
                &raw.replication_factor,
                d::KAFKA_REPLICATION_FACTOR,
                u32::from(i16::MAX.unsigned_abs()),
            ),
            max_record_bytes,
            linger: self.duration("queue.kafka.linger", &raw.linger, d::KAFKA_LINGER, true),
            produce_timeout: self.duration(
                "queue.kafka.produce_timeout",
                &raw.produce_timeout,
                d::KAFKA_PRODUCE_TIMEOUT,
                false,
            ),
            insecure_skip_verify,
            properties: KafkaProperties::new(properties),
        }
    }

    pub(super) fn admin(&mut self, raw: Option<Spanned<RawAdmin>>) -> AdminConfig {
        let (span, raw) = section(raw);
        let listen_span = raw.listen.as_ref().map(Spanned::span).or(span);
        let listen = self.socket_addr("admin.listen", &raw.listen, d::ADMIN_LISTEN);
        let token_given = raw.token.is_some() || self.rejected.contains("admin.token");
        let token = self.secret("admin.token", raw.token);
        if !token_given && !listen.ip().is_loopback() {
            self.report(
                listen_span,
                "admin.listen",
                format!("{listen} is not a loopback address, so `admin.token` is required"),
            );
        }
        let tls = self.tls("admin.tls", raw.tls);
        AdminConfig { listen, token, tls }
    }

    pub(super) fn log(&mut self, raw: Option<Spanned<RawLog>>) -> LogConfig {
        let (_, raw) = section(raw);
        LogConfig {
            format: raw.format.map_or(d::LOG_FORMAT, Spanned::into_inner),
            level: self
                .non_empty("log.level", raw.level)
                .map_or_else(|| d::LOG_LEVEL.to_owned(), Spanned::into_inner),
        }
    }

    pub(super) fn query(&mut self, raw: Option<Spanned<RawQuery>>) -> QueryConfig {
        let (_, raw) = section(raw);
        QueryConfig {
            max_lag: self.duration("query.max_lag", &raw.max_lag, d::QUERY_MAX_LAG, true),
            timeout: self.duration("query.timeout", &raw.timeout, d::QUERY_TIMEOUT, false),
            after_timeout: self.duration(
                "query.after_timeout",
                &raw.after_timeout,
                d::QUERY_AFTER_TIMEOUT,
                true,
            ),
        }
    }

    pub(super) fn schema(&mut self, raw: Option<Spanned<RawSchema>>) -> SchemaConfig {
        let (_, raw) = section(raw);
        SchemaConfig {
            enabled: raw.enabled.map_or(d::SCHEMA_ENABLED, Spanned::into_inner),
            refresh_interval: self.duration(
                "schema.refresh_interval",
                &raw.refresh_interval,
                d::SCHEMA_REFRESH_INTERVAL,
                false,
            ),
            max_databases: self.nonzero_usize(
                "schema.max_databases",
                &raw.max_databases,
                d::SCHEMA_MAX_DATABASES,
            ),
            max_retention_policies: self.nonzero_usize(
                "schema.max_retention_policies",
                &raw.max_retention_policies,
                d::SCHEMA_MAX_RETENTION_POLICIES,
            ),
            max_fields: self.nonzero_usize(
                "schema.max_fields",
                &raw.max_fields,
                d::SCHEMA_MAX_FIELDS,
            ),
        }
    }

    pub(super) fn shutdown(&mut self, raw: Option<Spanned<RawShutdown>>) -> ShutdownConfig {
        let (_, raw) = section(raw);
        ShutdownConfig {
            grace: self.duration("shutdown.grace", &raw.grace, d::SHUTDOWN_GRACE, false),
        }
    }
}
