"""Every kind of bad input gets a precise error (or is stored as received for the checks), never
a crash, and never costs the good spans already accepted."""

import gzip
import json
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from conftest import read_spans_exact
from otlp_requests import make_request, make_span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMITS = ("--max-request-size", "256KiB", "--max-decompressed-size", "1MiB")


def post(server, body, content_type="application/x-protobuf", headers=None):
    request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def status_of(body) -> Status:
    status = Status()
    status.ParseFromString(body)
    return status


def grpc_export(server, payload, compression=None):
    with grpc.insecure_channel(server.grpc_endpoint, options=[("grpc.max_send_message_length", -1)]) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return export(payload, timeout=30, compression=compression)


@pytest.fixture
def server(start_server):
    return start_server(*LIMITS)


def test_http_malformed_protobuf_is_400_with_a_status_body(server):
    code, headers, body = post(server, b"\x0a\xff\xff\xff\x0f")
    assert code == 400
    assert headers["content-type"] == "application/x-protobuf"
    status = status_of(body)
    assert status.code == 3
    assert status.message.startswith("invalid OTLP protobuf ExportTraceServiceRequest: ")


def test_http_malformed_json_names_line_and_column(server):
    code, headers, body = post(server, b'{"resourceSpans": [\n {"scopeSpans": [{"spans": [{"name": 7}]}]}]}', "application/json")
    assert code == 400
    error = json.loads(body)
    assert error["code"] == 3
    assert "invalid type: integer `7`, expected a string at line 2 column" in error["message"]


def test_http_unsupported_media_type_is_415(server):
    code, _, body = post(server, b"hello", "text/plain")
    assert code == 415
    assert "unsupported Content-Type \"text/plain\"" in status_of(body).message


def test_http_oversized_body_is_413(server):
    code, _, body = post(server, make_request([make_span(name="x" * 300_000)]))
    assert code == 413
    assert "exceeds the limit of 262144 bytes" in status_of(body).message


def test_http_gzip_bomb_is_refused_at_the_decompressed_limit(server):
    bomb = gzip.compress(b"\0" * (50 << 20), compresslevel=9)
    assert len(bomb) < 256 << 10
    code, _, body = post(server, bomb, headers={"Content-Encoding": "gzip"})
    assert code == 413
    assert status_of(body).message == "decompressed body exceeds the limit of 1048576 bytes"


def test_http_corrupt_gzip_and_unknown_encoding(server):
    code, _, body = post(server, b"definitely not gzip", headers={"Content-Encoding": "gzip"})
    assert code == 400
    assert status_of(body).message.startswith("corrupt gzip body: ")
    code, _, body = post(server, make_request([make_span()]), headers={"Content-Encoding": "br"})
    assert code == 415
    assert "unsupported Content-Encoding \"br\"" in status_of(body).message


def test_http_invalid_utf8_rejects_that_span_alone(server):
    spans = [make_span(name="good one"), make_span(name="BADNAME!"), make_span(name="good two")]
    payload = make_request(spans).replace(b"BADNAME!", b"BAD\xffNAME")
    code, _, body = post(server, payload)
    assert code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(body)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == (
        "1 of 3 spans rejected: resource_spans[0].scope_spans[0].spans[1].name (byte 3): not valid UTF-8")
    assert server.stop() == 0
    names = sorted(read_spans_exact(server.data).column("name").to_pylist())
    assert names == ["good one", "good two"]


def test_http_json_with_a_non_hex_id_rejects_that_span_alone(server):
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "kept"},
        {"traceId": "not-hex-at-all!!", "spanId": "eee19b7ec3c1b175", "name": "dropped"},
    ]}]}]}).encode()
    code, _, response = post(server, body, "application/json")
    assert code == 200
    partial = json.loads(response)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert partial["errorMessage"].startswith(
        '1 of 2 spans rejected: resourceSpans[0].scopeSpans[0].spans[1].traceId: "not-hex-at-all!!" is not hex')
    assert server.stop() == 0
    assert read_spans_exact(server.data).column("name").to_pylist() == ["kept"]


def test_broken_ids_and_absurd_timestamps_are_stored_as_received(server):
    spans = [
        make_span(name="short ids", trace_id=bytes.fromhex("a1b2c3d4e5f60718"), span_id=b"\x01\x02\x03"),
        make_span(name="zero ids", trace_id=b"\0" * 16, span_id=b"\0" * 8, parent_span_id=b"\0" * 8),
        make_span(name="long ids", trace_id=b"\x11" * 20, span_id=b"\x22" * 12, parent_span_id=b"\x33" * 9),
        make_span(name="ends before it starts", start=2_000_000_000, end=1_000_000_000),
        make_span(name="no times", start=0, end=0),
        make_span(name="far future", start=2**64 - 1, end=2**64 - 1),
    ]
    code, _, body = post(server, make_request(spans))
    assert code == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(body)
    assert not response.HasField("partial_success")
    assert server.stop() == 0
    rows = {row["name"]: row for row in read_spans_exact(server.data).to_pylist()}
    short = rows["short ids"]
    assert short["trace_id_raw"].hex() == "a1b2c3d4e5f60718"
    assert short["trace_id"].hex() == "0000000000000000a1b2c3d4e5f60718"
    assert short["trace_id_low"] == 0xA1B2C3D4E5F60718
    assert short["span_id_raw"].hex() == "010203" and short["span_id"] == 0x010203
    zero = rows["zero ids"]
    assert zero["trace_id"] == b"\0" * 16 and zero["span_id"] == 0 and zero["parent_span_id"] == 0
    # Ids of the normal length are stored once, normalised: their raw columns are null.
    assert zero["trace_id_raw"] is None and zero["span_id_raw"] is None and zero["parent_span_id_raw"] is None
    long = rows["long ids"]
    assert long["trace_id_raw"] == b"\x11" * 20 and long["trace_id"] is None
    assert long["span_id"] is None and long["parent_span_id"] is None
    assert rows["ends before it starts"]["duration_nano"] == -1_000_000_000
    assert rows["no times"]["start_time"] == 0
    assert rows["far future"]["start_time"] == 2**63 - 1
    assert rows["far future"]["duration_nano"] == 0


def test_grpc_malformed_protobuf_is_invalid_argument(server):
    with pytest.raises(grpc.RpcError) as raised:
        grpc_export(server, b"\x0a\xff\xff\xff\x0f")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("invalid OTLP protobuf ExportTraceServiceRequest: ")


def test_grpc_oversized_and_bomb_messages_are_resource_exhausted(server):
    with pytest.raises(grpc.RpcError) as raised:
        grpc_export(server, make_request([make_span(name="x" * 300_000)]))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit of 262144 bytes" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        grpc_export(server, b"\0" * (8 << 20), compression=grpc.Compression.Gzip)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1048576" in raised.value.details()


def test_grpc_invalid_utf8_is_a_partial_success(server):
    payload = make_request([make_span(name="fine"), make_span(name="BADNAME!")]).replace(b"BADNAME!", b"\xc3\x28BADNAM")
    response = ExportTraceServiceResponse()
    response.ParseFromString(grpc_export(server, payload))
    assert response.partial_success.rejected_spans == 1
    assert "spans[1].name (byte 0): not valid UTF-8" in response.partial_success.error_message


def test_bad_requests_never_cost_accepted_spans(server):
    accepted = 0
    for round_number in range(5):
        spans = [make_span(name=f"good-{round_number}-{i}") for i in range(20)]
        assert post(server, make_request(spans))[0] == 200
        accepted += 20
        assert post(server, b"\x0a\xff\xff")[0] == 400
        assert post(server, b"{", "application/json")[0] == 400
        with pytest.raises(grpc.RpcError):
            grpc_export(server, b"\x12\x01")
    assert server.stop() == 0
    assert read_spans_exact(server.data).num_rows == accepted


def _field(number, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    def varint(value):
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _nested_request(levels: int) -> bytes:
    """A request whose one span has an attribute value nested `levels` arrays deep (built by hand:
    protobuf libraries refuse to build such messages)."""
    value = _field(1, b"bottom")  # AnyValue.string_value
    for _ in range(levels):
        value = _field(5, _field(1, value))  # AnyValue.array_value(ArrayValue.values)
    attribute = _field(1, b"nested") + _field(2, value)
    span = _field(1, bytes(range(1, 17))) + _field(2, bytes(range(1, 9))) + _field(5, b"deep") + _field(9, attribute)
    return _field(1, _field(2, _field(2, span)))


def test_deeply_nested_attribute_values_are_refused_not_a_crash(server):
    code, _, body = post(server, _nested_request(5000))
    assert code == 400
    assert "nested more than 100 levels" in status_of(body).message
    with pytest.raises(grpc.RpcError) as refused:
        grpc_export(server, _nested_request(20_000))  # under the 256 KiB limit
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested more than 100 levels" in refused.value.details()
    # Ordinary nesting is still accepted, and the server is still up.
    code, _, _ = post(server, _nested_request(10))
    assert code == 200
