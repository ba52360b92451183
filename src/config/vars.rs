//! `${VAR}` expansion in string values, with the variables passed in (testable, no global
//! environment reads here).
//!
//! Expansion happens after TOML parsing, inside string values only, so every problem keeps the
//! line of the value it comes from. Keys, numbers and booleans are never expanded.
//!
//! Syntax: `${NAME}` is replaced by the variable's value (`NAME` is `[A-Za-z_][A-Za-z0-9_]*`);
//! `$${` is a literal `${`; any other `$` is kept as is. An unset variable, an unterminated `${`
//! or an invalid name is a problem.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::raw::{KeyPath, SpanProblem};

/// Expands `${VAR}` in `input`. Returns the expanded text, or every problem found in it.
pub(super) fn expand<'a>(
    input: &'a str,
    env: &HashMap<String, String>,
) -> Result<Cow<'a, str>, Vec<String>> {
    if !input.contains('$') {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            match tail.find('}') {
                None => {
                    errors.push(format!(
                        "unterminated `${{` in {input:?} (write `$${{` for a literal `${{`)"
                    ));
                    rest = "";
                }
                Some(end) => {
                    let name = &tail[..end];
                    if !is_var_name(name) {
                        errors.push(format!(
                            "invalid environment variable name {name:?} in `${{{name}}}` (use letters, digits and `_`; write `$${{` for a literal `${{`)"
                        ));
                    } else if let Some(value) = env.get(name) {
                        out.push_str(value);
                    } else {
                        errors.push(format!("environment variable {name} is not set"));
                    }
                    rest = &tail[end + 1..];
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        Err(errors)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Expands every string value in the document in place; problems carry the value's span.
///
/// Returns the paths of the values that could not be expanded, so that the caller can drop them
/// (a value with an unset variable is reported once, not again as an invalid value).
pub(super) fn expand_document(
    table: &mut DeTable<'_>,
    env: &HashMap<String, String>,
    problems: &mut Vec<SpanProblem>,
) -> Vec<KeyPath> {
    let mut path = KeyPath::default();
    let mut failed = Vec::new();
    expand_table(table, env, &mut path, problems, &mut failed);
    failed
}

fn expand_table(
    table: &mut DeTable<'_>,
    env: &HashMap<String, String>,
    path: &mut KeyPath,
    problems: &mut Vec<SpanProblem>,
    failed: &mut Vec<KeyPath>,
) {
    for (key, value) in table.iter_mut() {
        path.push_key(key.get_ref());
        let span = value.span();
        expand_value(value.get_mut(), span, env, path, problems, failed);
        path.pop();
    }
}

fn expand_value(
    value: &mut DeValue<'_>,
    span: Range<usize>,
    env: &HashMap<String, String>,
    path: &mut KeyPath,
    problems: &mut Vec<SpanProblem>,
    failed: &mut Vec<KeyPath>,
) {
    match value {
        DeValue::String(s) => match expand(s, env) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(expanded)) => *s = Cow::Owned(expanded),
            Err(errors) => {
                problems.extend(errors.into_iter().map(|message| SpanProblem {
                    span: Some(span.clone()),
                    message: format!("{path}: {message}"),
                }));
                failed.push(path.clone());
            }
        },
        DeValue::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push_index(index);
                let span = item.span();
                expand_value(item.get_mut(), span, env, path, problems, failed);
                path.pop();
            }
        }
        DeValue::Table(table) => expand_table(table, env, path, problems, failed),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}
