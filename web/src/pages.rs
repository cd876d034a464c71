//! The pages: one HTML shell for every path, and the embedded script and style that render what
//! the JSON API returns. The script builds the page with DOM calls and text nodes only, never
//! with markup from data, so span contents cannot become script.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::WebState;

/// The dashboard's script.
pub const APP_SCRIPT: &str = include_str!("../assets/app.js");
/// The dashboard's style.
pub const STYLE: &str = include_str!("../assets/style.css");

/// The page skeleton; `{head}` and `{body_end}` are filled by the dashboard and the report.
const SHELL: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tracegap</title>
<link rel="icon" href="data:,">
{head}
</head>
<body>
<header class="top">
  <a class="brand" href="/">tracegap</a>
  <nav id="nav"></nav>
  <div id="controls"></div>
</header>
<main id="main"><p class="muted">Loading…</p></main>
{body_end}
</body>
</html>
"#;

/// The HTML of a page with the given head and end-of-body parts.
pub fn shell(head: &str, body_end: &str) -> String {
    SHELL.replace("{head}", head).replace("{body_end}", body_end)
}

/// The page routes (each path renders its page in the browser) and the assets.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(page))
        .route("/findings", get(page))
        .route("/traces", get(page))
        .route("/traces/{trace_id}", get(page))
        .route("/service-map", get(page))
        .route("/checks", get(page))
        .route("/sql", get(page))
        .route("/assets/app.js", get(script))
        .route("/assets/style.css", get(style))
}

async fn page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(shell(r#"<link rel="stylesheet" href="/assets/style.css">"#, r#"<script src="/assets/app.js"></script>"#)),
    )
}

async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], APP_SCRIPT)
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLE)
}
