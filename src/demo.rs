//! `tracegap serve --demo`: live synthetic shop traffic with every kind of break, sent as a real
//! OTLP/HTTP client to the server's own port, so a newcomer sees a populated dashboard at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tokio::sync::watch;
use tracegap_analyze::session::now_nano;
use tracegap_corpus::{CorpusOptions, generate};

/// How far back the first burst of demo traffic starts, so the charts have a history.
const BACKFILL: Duration = Duration::from_secs(10 * 60);

/// Sends `traces_per_second` generated traces per second to the OTLP/HTTP listener at `address`
/// until `stopped` turns true. The first burst covers the last ten minutes.
pub async fn run_demo(address: SocketAddr, traces_per_second: usize, mut stopped: watch::Receiver<bool>) {
    // A wildcard listen address is reached on loopback.
    let target = if address.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port())
    } else {
        address
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = match format!("http://{target}/v1/traces").parse() {
        Ok(uri) => uri,
        Err(error) => {
            tracing::warn!(%error, "demo traffic: bad target address");
            return;
        }
    };
    let traces_per_second = traces_per_second.max(1);
    let mut tick: u64 = 0;
    let mut from = now_nano() - BACKFILL.as_nanos() as i64;
    tracing::info!(%target, traces_per_second, "demo traffic: sending synthetic traces with breaks");
    loop {
        let now = now_nano();
        let seconds = ((now - from) as f64 / 1e9).max(0.0);
        let traces = ((seconds * traces_per_second as f64) as usize).max(1);
        let options = CorpusOptions {
            seed: (now as u64) ^ tick.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            traces,
            start_nano: from as u64,
            interval_nano: ((now - from).max(1) as u64 / traces as u64).max(1),
            traces_per_request: 50,
            keep_labels: false,
            ..CorpusOptions::default()
        };
        let mut bodies = Vec::new();
        generate(&options, |request| bodies.push(Bytes::from(request.encode_to_vec())));
        for body in bodies {
            let request = match http::Request::post(uri.clone())
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(Full::new(body))
            {
                Ok(request) => request,
                Err(_) => continue,
            };
            match client.request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    if !status.is_success() {
                        tracing::debug!(%status, "demo traffic: request refused");
                    }
                }
                Err(error) => tracing::debug!(%error, "demo traffic: request failed"),
            }
        }
        tick += 1;
        from = now;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}
