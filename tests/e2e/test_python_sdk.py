"""The OpenTelemetry Python SDK's own OTLP exporters send to a running `tracegap serve`; every span
is read back from the Parquet files and compared field by field with what the SDK recorded."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from conftest import attribute_dict, read_spans_exact, received_id

EVERY_TYPE = {
    "string": "text with ünïcödé and \"quotes\" <b>",
    "bool": True,
    "int": -1234567890123,
    "double": 3.25,
    "strings": ["a", "b", ""],
    "bools": [True, False],
    "ints": [1, -2, 3],
    "doubles": [0.5, -1.5],
    "http.request.header.traceparent": ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"],
    "peer.service": "inventory",
}


def record_spans(exporter):
    """Creates spans of every shape with a provider exporting both to `exporter` and to memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "e2e-service", "service.instance.id": "e2e-1", "host.name": "test-host",
        "gts.global_tx_id": "gtx-77",
    }))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e.scope", "1.2.3")

    with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER, attributes=EVERY_TYPE) as root:
        root.add_event("cache.miss", {"key": "order:1", "attempt": 2, "ratio": 0.5, "hit": False})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}) as child:
            child.set_status(Status(StatusCode.ERROR, "connection reset"))
        linked_context = root.get_span_context()
    with tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER,
                                      links=[Link(linked_context, {"messaging.operation": "process", "n": 1})]):
        pass
    remote = SpanContext(trace_id=0x0af7651916cd43dd8448eb211c80319c, span_id=0xb7ad6b7169203331,
                         is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span("POST /pay", context=trace.set_span_in_context(NonRecordingSpan(remote)),
                                      kind=SpanKind.SERVER):
        with tracer.start_as_current_span("internal step"):
            pass
    for index in range(300):
        with tracer.start_as_current_span(f"bulk-{index}", kind=SpanKind.INTERNAL, attributes={"index": index}):
            pass
    provider.force_flush()
    provider.shutdown()
    return memory.get_finished_spans()


def compare(recorded, data, source):
    table = read_spans_exact(data)
    assert table is not None, "no Parquet written"
    rows = {received_id(row, "span_id"): row for row in table.to_pylist()}
    assert len(rows) == len(recorded) == table.num_rows
    for span in recorded:
        row = rows[format(span.context.span_id, "016x")]
        assert row["trace_id"].hex() == format(span.context.trace_id, "032x")
        assert row["span_id"] == span.context.span_id
        # Ids of the normal length are stored once, normalised: the raw columns are null.
        assert row["trace_id_raw"] is None and row["span_id_raw"] is None and row["parent_span_id_raw"] is None
        if span.parent is None:
            assert row["parent_span_id"] is None
        else:
            assert row["parent_span_id"] == span.parent.span_id
            assert row["parent_is_remote"] == span.parent.is_remote
        assert row["name"] == span.name
        assert row["kind"] == span.kind.name
        assert row["start_time"] == span.start_time
        assert row["end_time"] == span.end_time
        assert row["duration_nano"] == span.end_time - span.start_time
        assert row["flags"] & 0x100, "the Python exporter says whether the parent is remote"
        assert row["parent_is_remote"] == (span.parent is not None and span.parent.is_remote)
        assert row["status_code"] == span.status.status_code.name
        assert row["status_message"] == (span.status.description or "")
        assert attribute_dict(row["attributes"]) == {k: list(v) if isinstance(v, tuple) else v for k, v in span.attributes.items()}
        assert attribute_dict(row["resource_attributes"]) == dict(span.resource.attributes)
        assert row["scope_name"] == span.instrumentation_scope.name
        assert row["scope_version"] == span.instrumentation_scope.version
        assert [(e["name"], e["time"], attribute_dict(e["attributes"])) for e in row["events"]] == [
            (e.name, e.timestamp, dict(e.attributes)) for e in span.events]
        assert [(received_id(l, "trace_id"), received_id(l, "span_id"), attribute_dict(l["attributes"])) for l in row["links"]] == [
            (format(l.context.trace_id, "032x"), format(l.context.span_id, "016x"), dict(l.attributes)) for l in span.links]
        # The checks' copy of each link: its ids and OpenTracing reference type (none set here).
        assert [(l["trace_id"].hex(), format(l["span_id"], "016x"), l["ref_type"]) for l in row["linked_spans"]] == [
            (format(l.context.trace_id, "032x"), format(l.context.span_id, "016x"), None) for l in span.links]
        assert row["service_name"] == "e2e-service"
        assert row["service_instance_id"] == "e2e-1"
        assert row["host_name"] == "test-host"
        assert row["gts_global_tx_id"] == "gtx-77"
        assert row["source"] == source
    root = next(r for r in rows.values() if r["name"] == "GET /orders/{id}")
    assert root["header_traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert root["peer_service"] == "inventory"
    db = next(r for r in rows.values() if r["name"] == "SELECT orders")
    assert db["db_system"] == "postgresql"


def test_python_http_protobuf_exporter(start_server):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server = start_server()
    recorded = record_spans(OTLPSpanExporter(endpoint=f"{server.http_endpoint}/v1/traces"))
    assert server.stop() == 0, server.output()
    compare(recorded, server.data, "http")


def test_python_grpc_exporter_with_gzip(start_server):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

    server = start_server()
    recorded = record_spans(OTLPSpanExporter(endpoint=server.grpc_endpoint, insecure=True, compression=Compression.Gzip))
    assert server.stop() == 0, server.output()
    compare(recorded, server.data, "grpc")


def test_python_http_exporter_with_gzip(start_server):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server = start_server()
    recorded = record_spans(OTLPSpanExporter(endpoint=f"{server.http_endpoint}/v1/traces", compression=Compression.Gzip))
    assert server.stop() == 0, server.output()
    compare(recorded, server.data, "http")
