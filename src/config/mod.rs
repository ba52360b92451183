//! Configuration: the TOML file, `${VAR}` expansion, validation and redaction.
//!
//! [`load`] and [`parse`] turn a file into a [`Config`] in four steps:
//!
//! 1. TOML syntax ([`toml::de::DeTable`], keeping the span of every key and value);
//! 2. `${VAR}` expansion inside string values, from a variable map passed in
//!    (`${VAR}` is the value, `$${` a literal `${`, an unset variable a problem);
//! 3. deserialization into raw serde types (`deny_unknown_fields`), reporting every unknown key
//!    and wrongly typed value rather than the first only;
//! 4. one validation pass: defaults (named constants in [`defaults`]), value checks and
//!    cross-references (routes name existing clusters, standbys exist...).
//!
//! Every problem found is reported at once in a [`ConfigError`], each with the line of the file
//! it concerns. A `Config` only exists when there were none, and is made of types that cannot
//! hold a bad value (`NonZeroUsize`, `Duration`, `SocketAddr`, [`Endpoint`], enums, compiled
//! globs). Passwords and tokens are [`Secret`]s, printed as `***` by `Debug`, `Display` and
//! serde; [`Config::redacted_json`] is the view shown to people.
//!
//! This module does no I/O besides [`load`] reading the file; it reads no environment itself
//! (the caller passes `std::env::vars().collect()`), binds no socket and creates no directory.

pub mod defaults;
mod endpoint;
mod model;
mod raw;
mod secret;
mod validate;
mod vars;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

pub use endpoint::{BrokerAddr, Endpoint, Scheme};
pub use model::{
    AdminConfig, BasicAuth, ClusterApi, ClusterAuth, ClusterConfig, ClusterTls, Config,
    Destination, EmbeddedConfig, Fsync, HttpLimits, IngestConfig, KafkaConfig, KafkaProperties,
    LogConfig, LogFormat, QueryConfig, QueueBackend, QueueConfig, RetentionConfig, RetentionPolicy,
    RouteConfig, SchemaConfig, ShutdownConfig, TlsConfig, User,
};
pub use secret::{is_sensitive_property, Secret};

use raw::{LineIndex, SpanProblem};

/// Everything wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file name (or other origin) the problems refer to.
    pub origin: String,
    /// Every problem, sorted by line (problems without a line first).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    /// One problem per line: `<origin>:<line>: <message>`, or `<origin>: <message>` when the
    /// problem has no line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match problem.line {
                Some(line) => write!(f, "{}:{}: {}", self.origin, line, problem.message)?,
                None => write!(f, "{}: {}", self.origin, problem.message)?,
            }
        }
        Ok(())
    }
}

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the file, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong, starting with the key's path, e.g.
    /// `clusters[1].timeout: invalid duration "10": ...`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads the file at `path` and [`parse`]s it, with `path` as the origin in messages.
///
/// # Errors
///
/// A [`ConfigError`] with every problem; a file that cannot be read is one problem without a
/// line.
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin, env),
        Err(e) => Err(ConfigError {
            origin,
            problems: vec![Problem {
                line: None,
                message: format!("cannot read the config file: {e}"),
            }],
        }),
    }
}

/// Parses and validates a config file's text. `origin` names the file in messages; `env` holds
/// the variables that `${VAR}` may name. An empty text is a valid config: all defaults, no
/// clusters, no routes.
///
/// # Errors
///
/// A [`ConfigError`] with every problem found: TOML syntax errors (then nothing else is
/// checked), otherwise unset variables, unknown keys, wrongly typed values and failed checks
/// together.
pub fn parse(
    text: &str,
    origin: &str,
    env: &HashMap<String, String>,
) -> Result<Config, ConfigError> {
    let lines = LineIndex::new(text);
    let fail = |problems: Vec<SpanProblem>| {
        let mut problems: Vec<Problem> = problems
            .into_iter()
            .map(|p| Problem {
                line: p.span.map(|span| lines.line(span.start)),
                message: p.message,
            })
            .collect();
        problems.sort_by_key(|p| p.line);
        ConfigError {
            origin: origin.to_owned(),
            problems,
        }
    };

    let (mut doc, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        return Err(fail(
            syntax_errors
                .into_iter()
                .map(|e| SpanProblem {
                    span: e.span(),
                    message: format!("TOML syntax: {}", e.message().trim_end()),
                })
                .collect(),
        ));
    }

    let mut problems = Vec::new();
    let unexpanded = vars::expand_document(doc.get_mut(), env, &mut problems);
    let rejected = unexpanded
        .iter()
        .map(|path| raw::reject(doc.get_mut(), path))
        .collect();
    let deserialized = raw::deserialize(doc, rejected);
    problems.extend(deserialized.problems);
    let Some(raw) = deserialized.raw else {
        return Err(fail(problems));
    };
    let (config, validation_problems) = validate::validate(raw, &deserialized.rejected, &lines);
    problems.extend(validation_problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(fail(problems))
    }
}

#[cfg(test)]
mod tests;
