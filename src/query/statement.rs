//! InfluxQL statements as far as routing needs them: split a `q` into statements, and tell a
//! read (sent to one cluster) from a schema change (sent through the log to every cluster) from
//! what fluxroute refuses.
//!
//! This is not an InfluxQL parser: the clusters parse. It finds statement boundaries (`;`
//! outside strings, quoted identifiers and comments), reads the leading keywords, and for a
//! schema change finds the database it acts on, keeping the rest of the text as written.

use serde::{Deserialize, Serialize};

/// What a statement asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `SELECT` (without `INTO`), `SHOW …`, `EXPLAIN …`: answered by one cluster.
    Read(String),
    /// A schema change every cluster applies in log order.
    Ddl(Ddl),
}

/// Why a statement is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a statement fluxroute routes (user management, continuous queries, `KILL QUERY`…).
    #[error("statement not supported through fluxroute (run it on each cluster): {0}")]
    Unsupported(String),
    /// `SELECT … INTO` writes on the one cluster that answers it.
    #[error("SELECT ... INTO would write on one cluster only; write the points through /write instead: {0}")]
    SelectInto(String),
    /// A schema change that names no database and has no `db` parameter.
    #[error("database name required")]
    DatabaseRequired,
    /// A schema change fluxroute could not read the database name of.
    #[error("error parsing query: found {found}, expected {expected}")]
    Malformed {
        /// What was found.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// The kinds of schema change that travel through the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DdlKind {
    /// `CREATE DATABASE <db> [WITH …]`.
    CreateDatabase,
    /// `DROP DATABASE <db>`.
    DropDatabase,
    /// `CREATE RETENTION POLICY <rp> ON <db> …`.
    CreateRetentionPolicy,
    /// `ALTER RETENTION POLICY <rp> ON <db> …`.
    AlterRetentionPolicy,
    /// `DROP RETENTION POLICY <rp> ON <db>`.
    DropRetentionPolicy,
    /// `DROP MEASUREMENT <m>` in the request's `db`.
    DropMeasurement,
    /// `DROP SERIES …` in the request's `db`.
    DropSeries,
    /// `DELETE …` in the request's `db`.
    Delete,
}

/// A schema change: its database, and its text with that database's name cut out so that each
/// cluster gets the statement under its own name for the database (routes may rename).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ddl {
    /// What it is.
    pub kind: DdlKind,
    /// The database it acts on (as clients name it).
    pub db: String,
    /// The text before the database name, or the whole text when the name is not in it.
    pub head: String,
    /// The text after the database name (empty when the name is not in it).
    pub tail: String,
    /// Whether the text names the database (between `head` and `tail`).
    pub names_db: bool,
}

impl Ddl {
    /// `CREATE DATABASE "<db>"`.
    pub fn create_database(db: &str) -> Ddl {
        Ddl {
            kind: DdlKind::CreateDatabase,
            db: db.to_owned(),
            head: "CREATE DATABASE ".to_owned(),
            tail: String::new(),
            names_db: true,
        }
    }

    /// The statement as a cluster that stores the database as `db_on_cluster` runs it.
    pub fn render(&self, db_on_cluster: &str) -> String {
        if self.names_db {
            format!("{}{}{}", self.head, quote_ident(db_on_cluster), self.tail)
        } else {
            self.head.clone()
        }
    }

    /// The record payload.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record payload written by [`Ddl::to_payload`].
    ///
    /// # Errors
    /// The payload is not a schema change of this version.
    pub fn from_payload(payload: &[u8]) -> Result<Ddl, String> {
        serde_json::from_slice(payload).map_err(|e| format!("undecodable schema change: {e}"))
    }
}

/// `"name"`, with `"` and `\` escaped.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Splits `q` into statements at `;` outside strings, quoted identifiers and comments; empty
/// statements are left out. Each keeps its text as written (trimmed).
pub fn split(q: &str) -> Vec<&str> {
    let bytes = q.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_quoted(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(&bytes[i + 2..], b"*/").map_or(bytes.len(), |n| i + n + 4);
            }
            b';' => {
                push_trimmed(&mut out, &q[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push_trimmed(&mut out, &q[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !tokens(s).is_empty() {
        out.push(s);
    }
}

/// The index after the quoted run starting at `i` (or the end when unterminated).
fn skip_quoted(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// A token of a statement: a word, a quoted identifier, a string, or one punctuation byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

impl Token<'_> {
    fn is(&self, keyword: &str) -> bool {
        self.text.eq_ignore_ascii_case(keyword)
    }

    /// An identifier's value: unquoted as is, `"quoted"` with escapes removed.
    fn ident(&self) -> Option<String> {
        let t = self.text;
        if let Some(inner) = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    out.extend(chars.next());
                } else {
                    out.push(c);
                }
            }
            return Some(out);
        }
        let mut chars = t.chars();
        let first = chars.next()?;
        ((first.is_alphabetic() || first == '_') && chars.all(|c| c.is_alphanumeric() || c == '_'))
            .then(|| t.to_owned())
    }
}

/// The tokens of `s`, comments left out.
fn tokens(s: &str) -> Vec<Token<'_>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = memchr::memmem::find(&bytes[i + 2..], b"*/").map_or(bytes.len(), |n| i + n + 4);
            continue;
        }
        if c == b'"' || c == b'\'' {
            i = skip_quoted(bytes, i);
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
            {
                i += 1;
            }
        } else {
            i += 1;
            while i < bytes.len() && !s.is_char_boundary(i) {
                i += 1;
            }
        }
        out.push(Token {
            text: &s[start..i.min(s.len())],
            start,
            end: i.min(s.len()),
        });
    }
    out
}

/// Classifies one statement; `db` is the request's `db` parameter (empty when absent).
///
/// # Errors
/// [`Refusal`] for statements fluxroute does not route.
pub fn classify(statement: &str, db: &str) -> Result<Statement, Refusal> {
    let t = tokens(statement);
    let word = |i: usize, k: &str| t.get(i).is_some_and(|tok| tok.is(k));
    let unsupported = || Refusal::Unsupported(statement.to_owned());
    if word(0, "SELECT") {
        return if t.iter().any(|tok| tok.is("INTO")) {
            Err(Refusal::SelectInto(statement.to_owned()))
        } else {
            Ok(Statement::Read(statement.to_owned()))
        };
    }
    if word(0, "SHOW") || word(0, "EXPLAIN") {
        return Ok(Statement::Read(statement.to_owned()));
    }
    let named_at = |kind: DdlKind, at: usize, expected: &'static str| {
        let tok = t.get(at).ok_or_else(|| Refusal::Malformed {
            found: "EOF".into(),
            expected,
        })?;
        let name = tok.ident().ok_or_else(|| Refusal::Malformed {
            found: tok.text.to_owned(),
            expected,
        })?;
        Ok(Statement::Ddl(Ddl {
            kind,
            db: name,
            head: statement[..tok.start].to_owned(),
            tail: statement[tok.end..].to_owned(),
            names_db: true,
        }))
    };
    let in_request_db = |kind: DdlKind| {
        if db.is_empty() {
            return Err(Refusal::DatabaseRequired);
        }
        Ok(Statement::Ddl(Ddl {
            kind,
            db: db.to_owned(),
            head: statement.to_owned(),
            tail: String::new(),
            names_db: false,
        }))
    };
    let retention_policy = |kind: DdlKind| {
        // <verb> RETENTION POLICY <rp> ON <db> …
        if !word(4, "ON") {
            let found = t.get(4).map_or("EOF", |tok| tok.text).to_owned();
            return Err(Refusal::Malformed {
                found,
                expected: "ON",
            });
        }
        named_at(kind, 5, "identifier")
    };
    match (t.first().map(|x| x.text.to_ascii_uppercase()), t.get(1)) {
        (Some(v), Some(second)) if v == "CREATE" && second.is("DATABASE") => {
            named_at(DdlKind::CreateDatabase, 2, "identifier")
        }
        (Some(v), Some(second)) if v == "DROP" && second.is("DATABASE") => {
            named_at(DdlKind::DropDatabase, 2, "identifier")
        }
        (Some(v), Some(second))
            if ["CREATE", "ALTER", "DROP"].contains(&v.as_str())
                && second.is("RETENTION")
                && word(2, "POLICY") =>
        {
            retention_policy(match v.as_str() {
                "CREATE" => DdlKind::CreateRetentionPolicy,
                "ALTER" => DdlKind::AlterRetentionPolicy,
                _ => DdlKind::DropRetentionPolicy,
            })
        }
        (Some(v), Some(second)) if v == "DROP" && second.is("MEASUREMENT") => {
            in_request_db(DdlKind::DropMeasurement)
        }
        (Some(v), Some(second)) if v == "DROP" && second.is("SERIES") => {
            in_request_db(DdlKind::DropSeries)
        }
        (Some(v), Some(_)) if v == "DELETE" => in_request_db(DdlKind::Delete),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddl(s: &str, db: &str) -> Ddl {
        match classify(s, db) {
            Ok(Statement::Ddl(d)) => d,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        assert_eq!(
            split("SELECT * FROM \"a;b\" WHERE t = 'x;y'; SHOW DATABASES;;  "),
            vec!["SELECT * FROM \"a;b\" WHERE t = 'x;y'", "SHOW DATABASES"]
        );
        assert_eq!(
            split("SELECT 1 -- a; comment\n; /* x;y */ SHOW MEASUREMENTS"),
            vec!["SELECT 1 -- a; comment", "/* x;y */ SHOW MEASUREMENTS"]
        );
        assert_eq!(
            split("SELECT 'it\\'s;' FROM m"),
            vec!["SELECT 'it\\'s;' FROM m"]
        );
        assert!(split(" ; -- only a comment").is_empty());
    }

    #[test]
    fn reads_go_to_one_cluster() {
        for s in [
            "select * from cpu",
            "SHOW DATABASES",
            "show field keys from cpu",
            "EXPLAIN ANALYZE SELECT mean(v) FROM m",
            "/* c */ SELECT 1",
        ] {
            assert_eq!(classify(s, ""), Ok(Statement::Read(s.to_owned())), "{s}");
        }
        assert!(matches!(
            classify("SELECT * INTO b FROM a", "db"),
            Err(Refusal::SelectInto(_))
        ));
        // `into` inside a string or identifier is not the keyword.
        assert!(matches!(
            classify("SELECT * FROM \"into\" WHERE t = 'into'", "db"),
            Ok(Statement::Read(_))
        ));
    }

    #[test]
    fn schema_changes_keep_their_text_around_the_database() {
        let d = ddl("CREATE DATABASE telegraf WITH DURATION 7d NAME week", "");
        assert_eq!(d.kind, DdlKind::CreateDatabase);
        assert_eq!(d.db, "telegraf");
        assert_eq!(
            d.render("t2"),
            "CREATE DATABASE \"t2\" WITH DURATION 7d NAME week"
        );
        let d = ddl("create database \"my \\\"db\"", "");
        assert_eq!(d.db, "my \"db");
        assert_eq!(d.render("my \"db"), "create database \"my \\\"db\"");
        let d = ddl("DROP DATABASE x", "other");
        assert_eq!((d.kind, d.db.as_str()), (DdlKind::DropDatabase, "x"));
        let d = ddl(
            "CREATE RETENTION POLICY week ON telegraf DURATION 7d REPLICATION 1 DEFAULT",
            "",
        );
        assert_eq!(d.kind, DdlKind::CreateRetentionPolicy);
        assert_eq!(
            d.render("copy"),
            "CREATE RETENTION POLICY week ON \"copy\" DURATION 7d REPLICATION 1 DEFAULT"
        );
        assert_eq!(
            ddl("alter retention policy week on db duration 1d", "").kind,
            DdlKind::AlterRetentionPolicy
        );
        assert_eq!(
            ddl("DROP RETENTION POLICY \"week\" ON db", "").kind,
            DdlKind::DropRetentionPolicy
        );
    }

    #[test]
    fn schema_changes_in_the_request_database() {
        for (s, kind) in [
            ("DROP MEASUREMENT cpu", DdlKind::DropMeasurement),
            ("DROP SERIES FROM cpu WHERE host = 'a'", DdlKind::DropSeries),
            ("DELETE FROM cpu WHERE time < now() - 1d", DdlKind::Delete),
        ] {
            let d = ddl(s, "telegraf");
            assert_eq!((d.kind, d.db.as_str()), (kind, "telegraf"));
            assert_eq!(d.render("renamed"), s, "the text is sent as written");
            assert_eq!(classify(s, ""), Err(Refusal::DatabaseRequired));
        }
    }

    #[test]
    fn refusals() {
        for s in [
            "CREATE USER a WITH PASSWORD 'x'",
            "GRANT ALL TO a",
            "KILL QUERY 3",
            "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT 1 END",
            "DROP SHARD 1",
        ] {
            assert!(
                matches!(classify(s, "db"), Err(Refusal::Unsupported(_))),
                "{s}"
            );
        }
        assert!(matches!(
            classify("CREATE DATABASE", ""),
            Err(Refusal::Malformed { .. })
        ));
        assert!(matches!(
            classify("CREATE DATABASE 1abc", ""),
            Err(Refusal::Malformed { .. })
        ));
        assert!(matches!(
            classify("DROP RETENTION POLICY rp db", ""),
            Err(Refusal::Malformed { .. })
        ));
    }

    #[test]
    fn payloads_round_trip() {
        let d = ddl("DROP MEASUREMENT cpu", "db");
        assert_eq!(Ddl::from_payload(&d.to_payload()), Ok(d));
        assert!(Ddl::from_payload(b"{").is_err());
    }
}
