//! Clusters (names, endpoints, auth, TLS, health and batching) and the routes that name them.

use super::*;

impl Ctx<'_> {
    pub(super) fn clusters(&mut self, raw: Vec<Spanned<RawCluster>>) -> Clusters {
        let mut first_by_name: HashMap<String, Range<usize>> = HashMap::new();
        let mut complete = !self.rejected.contains("clusters");
        let mut standbys = Vec::new();
        let mut clusters = Vec::with_capacity(raw.len());
        for (i, cluster) in raw.into_iter().enumerate() {
            let table = format!("clusters[{i}]");
            let span = cluster.span();
            let raw: RawCluster = cluster.into_inner();
            let name_path = format!("{table}.name");
            let name = match &raw.name {
                Some(name) => {
                    if let Err(e) = check_cluster_name(name.get_ref()) {
                        self.report(Some(name.span()), &name_path, e);
                    }
                    if let Some(first) = first_by_name.get(name.get_ref()) {
                        self.report(
                            Some(name.span()),
                            &name_path,
                            format!(
                                "duplicate cluster name {:?} (first on line {})",
                                name.get_ref(),
                                self.lines.line(first.start)
                            ),
                        );
                    } else {
                        first_by_name.insert(name.get_ref().clone(), name.span());
                    }
                    name.get_ref().clone()
                }
                None => {
                    complete = false;
                    self.missing(Some(span.clone()), &table, "name");
                    String::new()
                }
            };
            if let Some(standby) = &raw.standby {
                standbys.push((format!("{table}.standby"), name.clone(), standby.clone()));
            }
            clusters.push(self.cluster(&table, span, name, raw));
        }
        let names: HashSet<String> = first_by_name.into_keys().collect();
        for (path, name, standby) in standbys {
            if standby.get_ref() == &name {
                self.report(
                    Some(standby.span()),
                    &path,
                    "a cluster cannot be its own standby",
                );
            } else if complete && !names.contains(standby.get_ref()) {
                self.report(
                    Some(standby.span()),
                    &path,
                    format!("unknown cluster {:?}{}", standby.get_ref(), known(&names)),
                );
            }
        }
        Clusters {
            clusters,
            names,
            complete,
        }
    }

    /// One cluster's settings, defaults filled in.
    fn cluster(
        &mut self,
        table: &str,
        span: Range<usize>,
        name: String,
        raw: RawCluster,
    ) -> ClusterConfig {
        let auth = self.cluster_auth(table, span.clone(), &raw);
        let endpoints = self.endpoints(table, span.clone(), raw.endpoints.clone());
        let tls = self.cluster_tls(table, span, &raw, &endpoints);
        let health_interval = self.duration(
            &format!("{table}.health_interval"),
            &raw.health_interval,
            d::HEALTH_INTERVAL,
            false,
        );
        let health_timeout = self.duration(
            &format!("{table}.health_timeout"),
            &raw.health_timeout,
            d::HEALTH_TIMEOUT,
            false,
        );
        if health_timeout > health_interval {
            let span = raw
                .health_timeout
                .as_ref()
                .or(raw.health_interval.as_ref())
                .map(Spanned::span);
            self.report(
                span,
                &format!("{table}.health_timeout"),
                format!(
                    "{} is longer than health_interval ({})",
                    humantime::format_duration(health_timeout),
                    humantime::format_duration(health_interval)
                ),
            );
        }
        ClusterConfig {
            name,
            auth,
            endpoints,
            standby: raw.standby.map(Spanned::into_inner),
            reroute_after: self.duration(
                &format!("{table}.reroute_after"),
                &raw.reroute_after,
                d::REROUTE_AFTER,
                false,
            ),
            timeout: self.duration(
                &format!("{table}.timeout"),
                &raw.timeout,
                d::CLUSTER_TIMEOUT,
                false,
            ),
            batch_max_lines: self.nonzero_usize(
                &format!("{table}.batch_max_lines"),
                &raw.batch_max_lines,
                d::BATCH_MAX_LINES,
            ),
            batch_max_bytes: self.nonzero_usize(
                &format!("{table}.batch_max_bytes"),
                &raw.batch_max_bytes,
                d::BATCH_MAX_BYTES,
            ),
            batch_linger: self.duration(
                &format!("{table}.batch_linger"),
                &raw.batch_linger,
                d::BATCH_LINGER,
                true,
            ),
            max_in_flight: self.nonzero_usize(
                &format!("{table}.max_in_flight"),
                &raw.max_in_flight,
                d::MAX_IN_FLIGHT,
            ),
            create_databases: raw
                .create_databases
                .map_or(d::CREATE_DATABASES, Spanned::into_inner),
            catchup_rate: NonZeroU64::new(
                raw.catchup_rate
                    .map_or(d::CATCHUP_RATE, Spanned::into_inner),
            ),
            gzip: raw.gzip.map_or(d::GZIP, Spanned::into_inner),
            health_interval,
            health_timeout,
            health_rise: self.nonzero_u32(
                &format!("{table}.health_rise"),
                &raw.health_rise,
                d::HEALTH_RISE,
                u32::MAX,
            ),
            health_fall: self.nonzero_u32(
                &format!("{table}.health_fall"),
                &raw.health_fall,
                d::HEALTH_FALL,
                u32::MAX,
            ),
            tls,
        }
    }

    pub(super) fn cluster_auth(
        &mut self,
        table: &str,
        span: Range<usize>,
        raw: &RawCluster,
    ) -> ClusterAuth {
        let api = raw.api.as_ref().map_or(d::CLUSTER_API, |a| *a.get_ref());
        let (foreign, other): (&[(&str, &Field<String>)], &str) = match api {
            ClusterApi::V1 => (&[("org", &raw.org), ("token", &raw.token)], "v2"),
            ClusterApi::V2 => (
                &[("username", &raw.username), ("password", &raw.password)],
                "v1",
            ),
        };
        for (key, field) in foreign {
            if let Some(field) = field {
                self.report(
                    Some(field.span()),
                    &format!("{table}.{key}"),
                    format!("only for api = \"{other}\" clusters (this one is api = \"{api}\")"),
                );
            }
        }
        match api {
            ClusterApi::V1 => {
                let username = self.non_empty(&format!("{table}.username"), raw.username.clone());
                let password = self.secret(&format!("{table}.password"), raw.password.clone());
                let credentials = match (username, password) {
                    (Some(username), Some(password)) => Some(BasicAuth {
                        username: username.into_inner(),
                        password,
                    }),
                    (None, None) => None,
                    (Some(_), None) if raw.password.is_none() => {
                        self.missing(Some(span), table, "password");
                        None
                    }
                    (None, Some(_)) if raw.username.is_none() => {
                        self.missing(Some(span), table, "username");
                        None
                    }
                    _ => None,
                };
                ClusterAuth::V1 { credentials }
            }
            ClusterApi::V2 => {
                let org = self.non_empty(&format!("{table}.org"), raw.org.clone());
                let token = self.secret(&format!("{table}.token"), raw.token.clone());
                if raw.org.is_none() {
                    self.missing(Some(span.clone()), table, "org");
                }
                if raw.token.is_none() {
                    self.missing(Some(span), table, "token");
                }
                ClusterAuth::V2 {
                    org: org.map(Spanned::into_inner).unwrap_or_default(),
                    token: token.unwrap_or_default(),
                }
            }
        }
    }

    pub(super) fn endpoints(
        &mut self,
        table: &str,
        span: Range<usize>,
        raw: List<String>,
    ) -> Vec<Endpoint> {
        let path = format!("{table}.endpoints");
        let was_present = raw.is_some();
        let Some(items) = self.list(&path, raw, "") else {
            if !was_present {
                self.missing(Some(span), table, "endpoints");
            }
            return Vec::new();
        };
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match Endpoint::try_new(item.get_ref()) {
                Ok(endpoint) if endpoints.contains(&endpoint) => {
                    self.report(
                        Some(item.span()),
                        &item_path,
                        format!("duplicate endpoint {endpoint}"),
                    );
                }
                Ok(endpoint) => endpoints.push(endpoint),
                Err(e) => self.report(Some(item.span()), &item_path, e),
            }
        }
        endpoints
    }

    pub(super) fn routes(
        &mut self,
        raw: Vec<Spanned<RawRoute>>,
        clusters: &Clusters,
    ) -> Vec<RouteConfig> {
        let check_names = clusters.complete && !self.rejected.contains("clusters");
        let mut routes = Vec::with_capacity(raw.len());
        for (i, route) in raw.into_iter().enumerate() {
            let table = format!("routes[{i}]");
            let span = route.span();
            let raw: RawRoute = route.into_inner();
            let databases =
                self.globs(Some(span.clone()), &table, "databases", raw.databases, None);
            let retention_policies = self.globs(
                Some(span.clone()),
                &table,
                "retention_policies",
                raw.retention_policies,
                Some(d::ROUTE_RETENTION_POLICIES),
            );
            let measurements = self.globs(
                Some(span.clone()),
                &table,
                "measurements",
                raw.measurements,
                Some(d::ROUTE_MEASUREMENTS),
            );
            let path = format!("{table}.clusters");
            let was_present = raw.clusters.is_some();
            let mut names: Vec<String> = Vec::new();
            match self.list(&path, raw.clusters, "") {
                Some(items) => {
                    for (j, item) in items.into_iter().enumerate() {
                        let item_path = format!("{path}[{j}]");
                        if names.contains(item.get_ref()) {
                            self.report(
                                Some(item.span()),
                                &item_path,
                                format!("cluster {:?} is listed twice", item.get_ref()),
                            );
                        } else if check_names && !clusters.names.contains(item.get_ref()) {
                            self.report(
                                Some(item.span()),
                                &item_path,
                                format!(
                                    "unknown cluster {:?}{}",
                                    item.get_ref(),
                                    known(&clusters.names)
                                ),
                            );
                        } else {
                            names.push(item.into_inner());
                        }
                    }
                }
                None if !was_present => self.missing(Some(span), &table, "clusters"),
                None => {}
            }
            let mut rename = BTreeMap::new();
            for (cluster, database) in raw.rename.map(Spanned::into_inner).unwrap_or_default() {
                let entry_path = child(&format!("{table}.rename"), cluster.get_ref());
                let listed = names.contains(cluster.get_ref())
                    || !check_names
                    || self.rejected.contains(&path);
                if !listed {
                    self.report(
                        Some(cluster.span()),
                        &entry_path,
                        format!(
                            "{:?} is not one of this route's clusters",
                            cluster.get_ref()
                        ),
                    );
                    continue;
                }
                if database.get_ref().is_empty() {
                    self.report(
                        Some(database.span()),
                        &entry_path,
                        "database name must not be empty",
                    );
                    continue;
                }
                rename.insert(cluster.into_inner(), database.into_inner());
            }
            routes.push(RouteConfig {
                databases,
                retention_policies,
                measurements,
                clusters: names,
                rename,
            });
        }
        routes
    }
}

/// ", known clusters: a, b" (sorted), or ", no clusters are defined".
pub(super) fn known(names: &HashSet<String>) -> String {
    if names.is_empty() {
        return " (no clusters are defined)".to_owned();
    }
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    format!(" (known clusters: {})", names.join(", "))
}

pub(super) fn check_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{name:?} may contain only letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// Kafka's topic name rules.
pub(super) fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 249 {
        return Err(format!("{topic:?} must be 1 to 249 characters long"));
    }
    if topic == "." || topic == ".." {
        return Err(format!("{topic:?} is not a valid topic name"));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{topic:?} may contain only ASCII letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}
