"""Hand-built OTLP requests for the tests, with the generated protobuf classes of opentelemetry-proto."""

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def make_span(name="op", trace_id=None, span_id=None, parent_span_id=b"", start=1_700_000_000_000_000_000,
              end=1_700_000_000_100_000_000, kind=Span.SPAN_KIND_SERVER, attributes=None):
    return Span(
        trace_id=os.urandom(16) if trace_id is None else trace_id,
        span_id=os.urandom(8) if span_id is None else span_id,
        parent_span_id=parent_span_id, name=name, kind=kind,
        start_time_unix_nano=start, end_time_unix_nano=end,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in (attributes or {}).items()],
    )


def make_request(spans, service="bad-input-test") -> bytes:
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]),
        scope_spans=[ScopeSpans(spans=spans)],
    )])
    return request.SerializeToString()
