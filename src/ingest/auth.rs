//! Write authentication: who is writing, and may they write this database.
//!
//! Accepted forms, as InfluxDB accepts them: v1 query parameters `u` and `p`, `Authorization:
//! Basic`, `Authorization: Token <user>:<password>` (1.8's v2 compatibility) and `Authorization:
//! Token <token>` (v2). Secrets are compared in constant time and never logged.

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::User;

/// Credentials as presented by a request.
#[derive(PartialEq, Eq)]
enum Credentials {
    Password { user: String, password: String },
    Token(String),
}

/// Checks credentials against the configured users. With no users, auth is off.
#[derive(Debug, Default, Clone)]
pub struct Authenticator {
    users: Vec<User>,
}

fn secret_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Authenticator {
    /// An authenticator for `users`; empty means every request is allowed.
    pub fn new(users: Vec<User>) -> Authenticator {
        Authenticator { users }
    }

    /// Whether writes need credentials.
    pub fn is_enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// Authenticates a request and authorizes a write to `db`.
    ///
    /// # Errors
    /// [`ApiError::CredentialsMissing`] or [`ApiError::AuthorizationFailed`] (401), and
    /// [`ApiError::Forbidden`] (403) when the user may not write `db`.
    pub fn authorize(
        &self,
        query_user: Option<&str>,
        query_password: Option<&str>,
        headers: &HeaderMap,
        db: &str,
    ) -> Result<(), ApiError> {
        let user = self.authenticate(query_user, query_password, headers)?;
        match user {
            None => Ok(()),
            Some(u) if u.may_write(db) => Ok(()),
            Some(u) => Err(ApiError::Forbidden {
                user: u.name.clone(),
                db: db.to_owned(),
            }),
        }
    }

    /// Finds the user a request's credentials name; `Ok(None)` when auth is off.
    ///
    /// # Errors
    /// 401 errors as [`Authenticator::authorize`].
    pub fn authenticate(
        &self,
        query_user: Option<&str>,
        query_password: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<&User>, ApiError> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let creds =
            credentials(query_user, query_password, headers).ok_or(ApiError::CredentialsMissing)?;
        // Check every user so timing does not reveal which names exist.
        let mut found = None;
        for u in &self.users {
            let ok = match &creds {
                Credentials::Password { user, password } => {
                    u.name == *user
                        && u.password
                            .as_ref()
                            .is_some_and(|p| secret_eq(p.expose(), password))
                }
                Credentials::Token(t) => {
                    let by_token = u.token.as_ref().is_some_and(|k| secret_eq(k.expose(), t));
                    // InfluxDB 1.8 also takes `Token user:password`.
                    let by_password = t.split_once(':').is_some_and(|(name, pw)| {
                        u.name == name
                            && u.password
                                .as_ref()
                                .is_some_and(|p| secret_eq(p.expose(), pw))
                    });
                    by_token | by_password
                }
            };
            if ok && found.is_none() {
                found = Some(u);
            }
        }
        found.map(Some).ok_or(ApiError::AuthorizationFailed)
    }
}

fn credentials(
    query_user: Option<&str>,
    query_password: Option<&str>,
    headers: &HeaderMap,
) -> Option<Credentials> {
    if let Some(user) = query_user.filter(|u| !u.is_empty()) {
        return Some(Credentials::Password {
            user: user.to_owned(),
            password: query_password.unwrap_or_default().to_owned(),
        });
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        return Some(Credentials::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    if scheme.eq_ignore_ascii_case("token") {
        return Some(Credentials::Token(rest.to_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use axum::http::HeaderValue;

    fn auth() -> Authenticator {
        Authenticator::new(vec![
            User {
                name: "telegraf".into(),
                password: Some(Secret::new("s3cret")),
                token: Some(Secret::new("tok-1")),
                databases: vec![glob::Pattern::new("metrics*").unwrap()],
            },
            User {
                name: "admin".into(),
                password: Some(Secret::new("pw")),
                token: None,
                databases: vec![glob::Pattern::new("*").unwrap()],
            },
        ])
    }

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn off_without_users() {
        let a = Authenticator::default();
        assert_eq!(a.authorize(None, None, &HeaderMap::new(), "x"), Ok(()));
    }

    #[test]
    fn query_params_and_basic() {
        let a = auth();
        assert_eq!(
            a.authorize(
                Some("telegraf"),
                Some("s3cret"),
                &HeaderMap::new(),
                "metrics"
            ),
            Ok(())
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:pw")
        );
        assert_eq!(
            a.authorize(None, None, &with_auth(&basic), "anything"),
            Ok(())
        );
        assert_eq!(
            a.authorize(
                Some("telegraf"),
                Some("wrong"),
                &HeaderMap::new(),
                "metrics"
            ),
            Err(ApiError::AuthorizationFailed)
        );
    }

    #[test]
    fn tokens_both_forms() {
        let a = auth();
        assert_eq!(
            a.authorize(None, None, &with_auth("Token tok-1"), "metrics_a"),
            Ok(())
        );
        assert_eq!(
            a.authorize(None, None, &with_auth("Token admin:pw"), "x"),
            Ok(())
        );
        assert_eq!(
            a.authorize(None, None, &with_auth("Token admin:bad"), "x"),
            Err(ApiError::AuthorizationFailed)
        );
        assert_eq!(
            a.authorize(None, None, &with_auth("Token nope"), "x"),
            Err(ApiError::AuthorizationFailed)
        );
    }

    #[test]
    fn missing_and_forbidden() {
        let a = auth();
        assert_eq!(
            a.authorize(None, None, &HeaderMap::new(), "m"),
            Err(ApiError::CredentialsMissing)
        );
        assert_eq!(
            a.authorize(None, None, &with_auth("Token tok-1"), "other"),
            Err(ApiError::Forbidden {
                user: "telegraf".into(),
                db: "other".into()
            })
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", auth());
        assert!(!s.contains("s3cret") && !s.contains("tok-1"));
    }
}
