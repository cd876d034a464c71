"""With a tiny queue, an overloaded server refuses with retryable errors (HTTP 503 + Retry-After,
gRPC UNAVAILABLE), keeps its memory bounded, loses nothing it acknowledged, and recovers."""

import threading
import time
import urllib.error
import urllib.request

import grpc

from conftest import read_spans
from otlp_requests import make_request, make_span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_overload_is_refused_retryably_and_memory_stays_bounded(start_server):
    server = start_server("--queue-size", "1MiB", "--flush-interval", "100ms")
    payload_spans = 1000
    results = {"ok": 0, "503": 0, "retry_after": set(), "unavailable": 0, "grpc_ok": 0, "other": []}
    lock = threading.Lock()

    def http_client():
        for _ in range(25):
            body = make_request([make_span(name="load", attributes={"k": "v" * 40}) for _ in range(payload_spans)])
            request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=body, method="POST",
                                             headers={"Content-Type": "application/x-protobuf"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    with lock:
                        results["ok"] += 1
            except urllib.error.HTTPError as error:
                with lock:
                    if error.code == 503:
                        results["503"] += 1
                        results["retry_after"].add(error.headers.get("Retry-After"))
                    else:
                        results["other"].append(error.code)

    def grpc_client():
        with grpc.insecure_channel(server.grpc_endpoint) as channel:
            export = channel.unary_unary(EXPORT, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            for _ in range(25):
                body = make_request([make_span(name="load", attributes={"k": "v" * 40}) for _ in range(payload_spans)])
                try:
                    export(body, timeout=30)
                    with lock:
                        results["grpc_ok"] += 1
                except grpc.RpcError as error:
                    with lock:
                        if error.code() == grpc.StatusCode.UNAVAILABLE:
                            results["unavailable"] += 1
                        else:
                            results["other"].append(error.code())

    threads = [threading.Thread(target=http_client) for _ in range(6)] + [threading.Thread(target=grpc_client) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    print(results, f"peak RSS {server.peak_rss_bytes() >> 20} MiB")
    assert results["other"] == []
    assert results["503"] > 0 and results["retry_after"] == {"1"}
    assert results["unavailable"] > 0
    assert results["ok"] > 0 and results["grpc_ok"] > 0
    peak = server.peak_rss_bytes()
    assert peak < 300 << 20, f"peak RSS {peak >> 20} MiB"

    # Recovered: once the backlog is flushed, requests succeed again, as a client retrying after
    # Retry-After sees.
    body = make_request([make_span(name="after") for _ in range(10)])
    deadline = time.time() + 20
    while True:
        request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=body, method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
                break
        except urllib.error.HTTPError as error:
            assert error.code == 503 and time.time() < deadline, "not recovered 20 s after the load stopped"
            time.sleep(float(error.headers["Retry-After"]))
    assert server.stop() == 0
    acknowledged = (results["ok"] + results["grpc_ok"]) * payload_spans + 10
    assert read_spans(server.data).num_rows == acknowledged
