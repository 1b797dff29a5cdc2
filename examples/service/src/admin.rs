//! Cache administration over HTTP: cachet's Actuator-style endpoint ([`cachet::http`])
//! mounted under `/admin`, behind a bearer token.
//!
//! cachet's routes check nothing themselves (clearing a cache is cheap for an attacker and
//! costly for the database): the application puts them behind its own authentication. Here
//! that is a shared secret from `SERVICE_ADMIN_TOKEN`, sent as `Authorization: Bearer ...`;
//! without the variable the routes are not mounted at all.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use cachet::CacheManager;

/// The secret an administrator sends as `Authorization: Bearer <token>`. Its `Debug`
/// never shows it.
///
/// ```
/// use cachet_service_example::AdminToken;
/// assert!(AdminToken::new("").is_none());
/// let token = AdminToken::new("s3cret").unwrap();
/// assert!(!format!("{token:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    /// A token, or `None` for an empty one (which would let anyone in).
    pub fn new(token: &str) -> Option<Self> {
        (!token.is_empty()).then(|| AdminToken(token.into()))
    }

    /// The token in `SERVICE_ADMIN_TOKEN`, if set and not empty.
    ///
    /// ```
    /// let token = cachet_service_example::AdminToken::from_env();
    /// # let _ = token;
    /// ```
    pub fn from_env() -> Option<Self> {
        std::env::var("SERVICE_ADMIN_TOKEN")
            .ok()
            .and_then(|t| Self::new(&t))
    }

    /// Whether an `Authorization` header value carries this token. Compared without an
    /// early exit, so the time taken does not tell how much of a guess was right.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let expected = self.0.as_bytes();
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// `app` with cachet's administration routes for `cache` under `/admin` (`GET
/// /admin/caches`, `GET /admin/caches/{name}`, `DELETE /admin/caches/{name}`, `DELETE
/// /admin/caches/{name}/{key}`), each answering 401 unless the request carries `token`.
///
/// ```
/// use cachet_service_example::{with_admin, AdminToken};
/// let cache = cachet::CacheManager::none();
/// let app = with_admin(axum::Router::new(), cache, AdminToken::new("s3cret").unwrap());
/// # let _ = app;
/// ```
pub fn with_admin(app: Router, cache: CacheManager, token: AdminToken) -> Router {
    let admin =
        cachet::http::router_for(cache).layer(middleware::from_fn_with_state(token, require_token));
    app.nest("/admin", admin)
}

/// Lets the request through only with the right bearer token.
async fn require_token(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if token.admits(authorization) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": "missing or wrong bearer token" })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::AdminToken;

    #[test]
    fn admits_only_the_exact_bearer_token() {
        let token = AdminToken::new("s3cret").unwrap();
        assert!(token.admits(Some(b"Bearer s3cret")));
        for wrong in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret ",
            b"Bearer S3cret",
            b"bearer s3cret",
            b"s3cret",
            b"Basic s3cret",
            b"",
        ] {
            assert!(
                !token.admits(Some(wrong)),
                "{:?}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert!(!token.admits(None));
    }
}
