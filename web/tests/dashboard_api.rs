//! The dashboard's routes over a generated corpus: every answer carries the security headers,
//! the API agrees with itself and with the snapshot, user SQL stays read-only, the token is
//! enforced, and /metrics is valid Prometheus text.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tracegap_analyze::{AnalysisOptions, load_catalog};
use tracegap_corpus::{CorpusOptions, generate};
use tracegap_ingest::Source;
use tracegap_ingest::parquet_files::{SPANS_DIRECTORY, write_partitioned};
use tracegap_ingest::span_batch::{BatchContext, build_span_batch};
use tracegap_web::{SnapshotCache, WebConfig, WebState, Window, router};

struct Dashboard {
    _data: tempfile::TempDir,
    router: Router,
}

fn corpus(traces: usize) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let context = BatchContext { receive_time_nano: 0, source: Source::Import, gts_keys: Arc::new(Default::default()) };
    let mut batches = Vec::new();
    generate(&CorpusOptions { traces, keep_labels: false, ..CorpusOptions::default() }, |request| {
        batches.extend(build_span_batch(&request, &context).unwrap().batch);
    });
    write_partitioned(&batches, &data.path().join(SPANS_DIRECTORY), "test", false).unwrap();
    data
}

fn dashboard(token: Option<&str>) -> Dashboard {
    let data = corpus(300);
    let catalog = Arc::new(load_catalog(None).unwrap());
    let options = AnalysisOptions::batch(data.path());
    let config = WebConfig {
        default_window: Window::Range { since: None, until: None },
        metrics_window: Window::Range { since: None, until: None },
        token: token.map(str::to_owned),
        sql_max_rows: 25,
        ..WebConfig::default()
    };
    let state = WebState::new(config, SnapshotCache::new(options, catalog, Duration::from_secs(600)), None);
    Dashboard { _data: data, router: router(state) }
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

async fn get(router: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn json(router: &Router, uri: &str) -> Value {
    let (status, _, body) = get(router, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

async fn sql(router: &Router, query: &str) -> (StatusCode, Value) {
    let body = serde_json::json!({ "query": query }).to_string();
    let request =
        Request::post("/api/sql").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    let (status, _, body) = send(router, request).await;
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_with_the_security_headers() {
    let dashboard = dashboard(None);
    for uri in [
        "/",
        "/findings",
        "/traces/abc",
        "/service-map",
        "/checks",
        "/sql",
        "/assets/app.js",
        "/assets/style.css",
        "/api/overview",
        "/api/findings",
        "/api/service-map",
        "/api/checks",
        "/metrics",
        "/api/traces/not-hex",
    ] {
        let (_, headers, _) = get(&dashboard.router, uri).await;
        let policy = headers.get(header::CONTENT_SECURITY_POLICY).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(policy.as_deref(), Some(tracegap_web::security::CONTENT_SECURITY_POLICY), "{uri}");
        assert!(!policy.unwrap().contains("unsafe-inline"));
        assert_eq!(headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff", "{uri}");
    }
    let (status, headers, body) = get(&dashboard.router, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains(r#"<script src="/assets/app.js"></script>"#));
    assert!(!page.contains("http://") && !page.contains("https://"), "no asset from elsewhere");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_agrees_with_itself() {
    let dashboard = dashboard(None);
    let router = &dashboard.router;
    let overview = json(router, "/api/overview").await;
    let judged = overview["judged_traces"].as_i64().unwrap();
    let broken = overview["broken_traces"].as_i64().unwrap();
    assert!(judged > 300 && broken > 0 && broken < judged, "{judged} judged, {broken} broken");
    let completeness = overview["completeness"].as_f64().unwrap();
    assert!((completeness - (judged - broken) as f64 / judged as f64).abs() < 1e-9);
    let by_check = overview["findings_by_check"].as_array().unwrap();
    assert_eq!(by_check.len(), load_catalog(None).unwrap().checks.len());
    let worst: Vec<f64> = overview["worst_services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["completeness"].as_f64().unwrap())
        .collect();
    assert!(!worst.is_empty() && worst.windows(2).all(|pair| pair[0] <= pair[1]), "{worst:?}");

    // Findings: the per-check counts of the overview, filtered and paginated.
    let all = json(router, "/api/findings?page_size=1").await;
    let total: u64 = by_check.iter().map(|row| row["findings"].as_u64().unwrap()).sum();
    assert_eq!(all["total"].as_u64().unwrap(), total);
    let orphans = by_check.iter().find(|row| row["check"] == "orphaned_span").unwrap()["findings"].as_u64().unwrap();
    assert!(orphans > 2);
    let first = json(router, "/api/findings?check=orphaned_span&page_size=2&page=1").await;
    let second = json(router, "/api/findings?check=orphaned_span&page_size=2&page=2").await;
    assert_eq!(first["total"].as_u64().unwrap(), orphans);
    assert_eq!(first["pages"].as_u64().unwrap(), orphans.div_ceil(2));
    assert_eq!(first["findings"].as_array().unwrap().len(), 2);
    assert_ne!(first["findings"][0], second["findings"][0]);
    assert!(first["findings"].as_array().unwrap().iter().all(|f| f["check"] == "orphaned_span"));
    let (status, _, body) = get(router, "/api/findings?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("from"), "the error names the parameter");

    // A trace: its spans, its findings, the orphan's span among them.
    let orphan = &first["findings"][0];
    let trace_id = orphan["trace_id"].as_str().unwrap();
    let trace = json(router, &format!("/api/traces/{trace_id}")).await;
    assert_eq!(trace["trace_id"], trace_id);
    let spans = trace["spans"].as_array().unwrap();
    assert!(spans.iter().any(|span| span["span_id"] == orphan["span_id"]));
    assert!(spans.iter().all(|span| span["trace_id"] == trace_id));
    assert!(spans.iter().any(|span| span["attributes"].is_object()), "attributes travel as an object");
    assert!(
        trace["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "orphaned_span" && f["span_id"] == orphan["span_id"])
    );
    assert!(trace["checks"].as_array().unwrap().iter().any(|c| c["id"] == "orphaned_span" && c["fix"].is_string()));
    assert_eq!(get(router, "/api/traces/0123456789abcdef0123456789abcdef").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(router, "/api/traces/xyz").await.0, StatusCode::BAD_REQUEST);

    // The other half of an unpropagated call is named as related, both ways.
    let dropped = json(router, "/api/findings?check=unpropagated_call&page_size=500").await;
    let with_half = dropped["findings"].as_array().unwrap().iter().find(|f| f["related_trace_id"].is_string()).unwrap();
    let trace = json(router, &format!("/api/traces/{}", with_half["trace_id"].as_str().unwrap())).await;
    assert!(trace["related"].as_array().unwrap().iter().any(|r| r["trace_id"] == with_half["related_trace_id"]));
    let half = json(router, &format!("/api/traces/{}", with_half["related_trace_id"].as_str().unwrap())).await;
    assert!(half["related"].as_array().unwrap().iter().any(|r| r["trace_id"] == with_half["trace_id"]));

    // The service map's broken edge, and its dropped calls.
    let map = json(router, "/api/service-map").await;
    let edge = map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["caller"] == "frontend" && e["callee"] == "checkout")
        .unwrap();
    let dropped_on_edge = edge["dropped"].as_u64().unwrap();
    assert!(dropped_on_edge > 0 && edge["propagation_rate"].as_f64().unwrap() < 1.0);
    assert!(map["nodes"].as_array().unwrap().iter().any(|n| n["service"] == "checkout"));
    let calls = json(router, "/api/edges?caller=frontend&callee=checkout").await;
    let calls = calls["dropped_calls"].as_array().unwrap();
    assert_eq!(calls.len() as u64, dropped_on_edge);
    assert!(calls.iter().all(|c| c["caller"] == "frontend" && c["callee"] == "checkout"));
    let unpropagated_from_frontend =
        dropped["findings"].as_array().unwrap().iter().filter(|f| f["service"] == "frontend").count() as u64;
    assert!(unpropagated_from_frontend >= dropped_on_edge);

    let checks = json(router, "/api/checks").await;
    assert!(checks["checks"].as_array().unwrap().iter().all(|c| c["meaning"].is_string() && c["causes"].is_array()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sql_box_is_read_only_and_row_limited() {
    let dashboard = dashboard(None);
    let router = &dashboard.router;
    let (status, result) = sql(router, "SELECT count(*) AS spans FROM spans").await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["columns"], serde_json::json!(["spans"]));
    assert!(result["rows"][0][0].as_str().unwrap().parse::<u64>().unwrap() > 1000);
    let (status, result) = sql(router, "SELECT check, count(*) FROM findings GROUP BY check").await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert!(!result["rows"].as_array().unwrap().is_empty(), "findings are queryable");
    let (status, result) = sql(router, "SELECT name FROM spans").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["rows"].as_array().unwrap().len(), 25);
    assert_eq!(result["truncated"], true);
    for statement in [
        "DROP TABLE spans",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO findings VALUES (1)",
        "COPY spans TO '/tmp/stolen.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT 1; DROP VIEW spans",
        "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        let (status, result) = sql(router, statement).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{statement}: {result}");
        assert!(result["error"].as_str().unwrap().contains("refused"), "{statement}: {result}");
    }
    let (status, result) = sql(router, "SELECT nonsense FROM spans").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(result["error"].as_str().unwrap().contains("nonsense"));
    assert_eq!(sql(router, "SELECT count(*) FROM spans").await.0, StatusCode::OK, "spans still there");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_page_api_and_scrape() {
    let dashboard = dashboard(Some("s3cret token"));
    let router = &dashboard.router;
    for uri in ["/", "/findings", "/api/overview", "/api/checks", "/metrics", "/assets/app.js"] {
        let (status, headers, _) = get(router, uri).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(headers.get(header::WWW_AUTHENTICATE).is_some());
        let wrong = Request::get(uri).header(header::AUTHORIZATION, "Bearer s3cret").body(Body::empty()).unwrap();
        assert_eq!(send(router, wrong).await.0, StatusCode::UNAUTHORIZED, "{uri}");
        let right = Request::get(uri).header(header::AUTHORIZATION, "Bearer s3cret token").body(Body::empty()).unwrap();
        assert_eq!(send(router, right).await.0, StatusCode::OK, "{uri}");
    }
    // A page opened with ?token= sets a cookie holding the token's digest, then drops it from the URL.
    let (status, headers, _) = get(router, "/findings?check=orphaned_span&token=s3cret%20token").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers.get(header::LOCATION).unwrap(), "/findings?check=orphaned_span");
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("s3cret"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = Request::get("/api/overview").header(header::COOKIE, &pair).body(Body::empty()).unwrap();
    assert_eq!(send(router, with_cookie).await.0, StatusCode::OK);
    // The API does not take the token in its URL (it would end up in logs and histories).
    assert_eq!(get(router, "/api/overview?token=s3cret%20token").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(router, "/?token=wrong").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_prometheus_text_that_matches_the_api() {
    let dashboard = dashboard(None);
    let router = &dashboard.router;
    let (status, headers, body) = get(router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    let overview = json(router, "/api/overview").await;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("tracegap_"), "{line}");
    }
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|line| line.starts_with(series)).unwrap_or_else(|| panic!("{series} missing"));
        line.rsplit_once(' ').unwrap().1.parse().unwrap()
    };
    assert_eq!(value("tracegap_completeness_ratio{window=\"all\"} "), overview["completeness"].as_f64().unwrap());
    assert_eq!(value("tracegap_traces{window=\"all\",state=\"broken\"} "), overview["broken_traces"].as_f64().unwrap());
    for row in overview["findings_by_check"].as_array().unwrap() {
        let series = format!("tracegap_findings{{window=\"all\",check=\"{}\"}} ", row["check"].as_str().unwrap());
        assert_eq!(value(&series), row["findings"].as_f64().unwrap());
    }
    assert!(value("tracegap_service_completeness_ratio{window=\"all\",service=\"frontend\"} ") < 1.0);
    assert!(
        value("tracegap_edge_calls{window=\"all\",caller=\"frontend\",callee=\"checkout\",outcome=\"dropped\"} ") > 0.0
    );
}
