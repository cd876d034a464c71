"""A success response means the spans are durable: kill -9 the server while clients send, restart
it, and every acknowledged span is in Parquet, once, in files that all open."""

import threading
import time
import urllib.error
import urllib.request

import grpc
import pyarrow.parquet as pq
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from conftest import read_spans, received_id
from otlp_requests import make_request, make_span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def http_sender(server, acknowledged, stop, lock):
    while not stop.is_set():
        spans = [make_span(name="crash-test") for _ in range(50)]
        request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=make_request(spans), method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status == 200:
                    with lock:
                        acknowledged.update(span.span_id.hex() for span in spans)
        except (urllib.error.URLError, ConnectionError, OSError):
            return


def grpc_sender(server, acknowledged, stop, lock):
    with grpc.insecure_channel(server.grpc_endpoint) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        while not stop.is_set():
            spans = [make_span(name="crash-test") for _ in range(50)]
            try:
                response = ExportTraceServiceResponse()
                response.ParseFromString(export(make_request(spans), timeout=10))
            except grpc.RpcError:
                return
            assert not response.HasField("partial_success")
            with lock:
                acknowledged.update(span.span_id.hex() for span in spans)


@pytest.mark.parametrize("flush_interval", ["30s", "200ms"])
def test_kill_9_loses_no_acknowledged_span(start_server, flush_interval):
    server = start_server("--flush-interval", flush_interval)
    acknowledged, stop, lock = set(), threading.Event(), threading.Lock()
    threads = [threading.Thread(target=sender, args=(server, acknowledged, stop, lock))
               for sender in (http_sender, http_sender, grpc_sender, grpc_sender)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    server.kill()  # SIGKILL, while requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    with lock:
        acknowledged_at_kill = set(acknowledged)
    assert len(acknowledged_at_kill) > 1000

    restarted = start_server("--flush-interval", flush_interval, data=server.data)
    assert restarted.stop() == 0, restarted.output()

    files = sorted(server.data.joinpath("spans").rglob("*.parquet"))
    assert files
    for path in files:
        pq.read_table(path)  # every file is complete and readable
    assert not list(server.data.joinpath("spans").rglob("*.tmp"))
    ids = read_spans(server.data).select(["span_id", "span_id_raw"]).to_pylist()
    stored = [received_id(row, "span_id") for row in ids]
    assert len(stored) == len(set(stored)), "a span was written twice"
    missing = acknowledged_at_kill - set(stored)
    assert not missing, f"{len(missing)} acknowledged spans lost"
    assert not list(server.data.joinpath("wal").glob("*.wal")), "the log is emptied after a clean stop"


def test_sigterm_flushes_everything_and_exits_zero(start_server):
    server = start_server("--flush-interval", "1h")
    request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=make_request([make_span() for _ in range(10)]),
                                     method="POST", headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert read_spans(server.data) is None  # still only in the log
    assert server.stop() == 0
    assert read_spans(server.data).num_rows == 10
    assert "stopped cleanly" in server.output()
