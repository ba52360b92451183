//! Network address types that parse once and cannot hold a bad value: [`Endpoint`] (an InfluxDB
//! base URL) and [`BrokerAddr`] (a Kafka `host:port`).

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// URL scheme of an [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The base URL of one InfluxDB node: scheme, host, port and an optional path prefix.
///
/// Parsed from `http[s]://host[:port][/prefix]`; no credentials, query or fragment. The
/// [`Display`](fmt::Display) form always names the port and never ends with `/`, e.g.
/// `http://127.0.0.1:8186` or `https://influx.example.com:443/influx`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// Parses and validates an endpoint URL.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with `text`.
    pub fn try_new(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            format!("{text:?} is not a URL; write e.g. \"http://127.0.0.1:8086\"")
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "{text:?}: scheme must be http or https, not {other:?}"
                ))
            }
        };
        if rest.contains(['?', '#']) {
            return Err(format!("{text:?}: a query or fragment is not allowed"));
        }
        if rest.chars().any(char::is_whitespace) {
            return Err(format!("{text:?}: whitespace is not allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "{text:?}: credentials in the URL are not allowed; use username/password (v1) or token (v2)"
            ));
        }
        let (host, port) = split_host_port(authority).map_err(|e| format!("{text:?}: {e}"))?;
        let port = match port {
            Some(port) => parse_port(port).map_err(|e| format!("{text:?}: {e}"))?,
            None => scheme.default_port(),
        };
        Ok(Self {
            scheme,
            host,
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path prefix, `""` or `/something` without a trailing `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URL of `suffix` on this endpoint, e.g. `endpoint.url("/write")`.
    pub fn url(&self, suffix: &str) -> String {
        format!("{self}{suffix}")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        write_host(f, &self.host)?;
        write!(f, ":{}{}", self.port, self.path)
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_new(s)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A Kafka bootstrap broker, `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BrokerAddr {
    host: String,
    port: u16,
}

impl BrokerAddr {
    /// Parses `host:port` (IPv6 as `[addr]:port`).
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with `text`.
    pub fn try_new(text: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(text).map_err(|e| format!("{text:?}: {e}"))?;
        let port = port.ok_or_else(|| format!("{text:?}: expected host:port"))?;
        let port = parse_port(port).map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Self { host, port })
    }

    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_host(f, &self.host)?;
        write!(f, ":{}", self.port)
    }
}

impl FromStr for BrokerAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_new(s)
    }
}

impl Serialize for BrokerAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn write_host(f: &mut fmt::Formatter<'_>, host: &str) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")
    } else {
        f.write_str(host)
    }
}

/// Splits `host[:port]` or `[v6][:port]`, checking the host.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), String> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (addr, rest) = bracketed
            .split_once(']')
            .ok_or("unclosed `[` in IPv6 address")?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("invalid IPv6 address {addr:?}"))?;
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':').ok_or("expected `:port` after `]`")?),
        };
        return Ok((addr.to_string(), port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err("host is empty".to_owned());
    }
    if host.contains(':') {
        return Err("an IPv6 address needs brackets, e.g. [::1]:8086".to_owned());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!("invalid host {host:?}"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("invalid port {port:?} (expected 1-65535)")),
        Ok(port) => Ok(port),
    }
}
