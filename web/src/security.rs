//! What protects the dashboard: span data is attacker-controlled, so every response carries a
//! Content-Security-Policy that allows only the embedded script and style (no inline script, no
//! other origin), and, when a token is set, every page, API call and scrape requires it.
//!
//! A token is given as `Authorization: Bearer <token>` (API clients, Prometheus), or once as
//! `?token=<token>` on a page, which sets an HttpOnly, SameSite=Strict cookie holding the token's
//! SHA-256 (never the token itself) and redirects to the same page without it.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::WebState;

/// The dashboard's Content-Security-Policy: its own script and style, JSON from itself, nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const COOKIE: &str = "tracegap_token";

/// Adds the security headers and, when a token is configured, the token check.
pub fn secure(routes: Router<WebState>, state: WebState) -> Router<WebState> {
    routes.layer(middleware::from_fn_with_state(state, require_token)).layer(middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn require_token(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let Some(token) = state.config.token.as_deref() else {
        return next.run(request).await;
    };
    if bearer(request.headers()).is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
        || cookie(request.headers()).is_some_and(|given| same(given.as_bytes(), digest(token).as_bytes()))
    {
        return next.run(request).await;
    }
    // A page opened with ?token=: remember it in a cookie, then show the page without it.
    let query = request.uri().query().unwrap_or_default();
    let given = query.split('&').find_map(|pair| pair.strip_prefix("token="));
    if let Some(given) = given
        && same(percent_decode(given).as_bytes(), token.as_bytes())
        && !request.uri().path().starts_with("/api/")
    {
        let rest: Vec<&str> = query.split('&').filter(|pair| !pair.starts_with("token=")).collect();
        let location = if rest.is_empty() {
            request.uri().path().to_owned()
        } else {
            format!("{}?{}", request.uri().path(), rest.join("&"))
        };
        let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", digest(token));
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location), (header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".into())],
        )
            .into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"tracegap\"")],
        "tracegap: a token is required (Authorization: Bearer <token>, or ?token=<token> on a page)\n",
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// A query parameter value: `+` is a space (as forms and `URLSearchParams` encode it), then
/// percent-decoding.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secre", b"secret"));
        assert!(!same(b"secreT", b"secret"));
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(digest("x").len(), 64);
    }
}
