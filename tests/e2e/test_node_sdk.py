"""The OpenTelemetry JS SDK's OTLP/HTTP exporter, which sends OTLP JSON, against a running
`tracegap serve`: every span is compared field by field with what the SDK recorded."""

import json
import subprocess
from pathlib import Path

from conftest import attribute_dict, read_spans_exact, received_id

NODE_CLIENT = Path(__file__).parent / "node" / "send_spans.mjs"


def test_node_sdk_otlp_http_json_exporter(start_server):
    server = start_server()
    result = subprocess.run(["node", str(NODE_CLIENT), server.http_endpoint], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    recorded = json.loads(result.stdout)
    assert server.stop() == 0, server.output()

    table = read_spans_exact(server.data)
    rows = {received_id(row, "span_id"): row for row in table.to_pylist()}
    assert len(rows) == len(recorded) == 53
    for span in recorded:
        row = rows[span["spanId"]]
        assert received_id(row, "trace_id") == row["trace_id"].hex() == span["traceId"]
        assert received_id(row, "parent_span_id") == span["parentSpanId"]
        # The SDK's ids have the normal lengths: stored once, in the normalised columns.
        assert row["trace_id_raw"] is None and row["span_id_raw"] is None and row["parent_span_id_raw"] is None
        assert row["name"] == span["name"]
        assert row["kind"] == span["kind"]
        assert row["start_time"] == int(span["startNs"])
        assert row["end_time"] == int(span["endNs"])
        assert attribute_dict(row["attributes"]) == span["attributes"]
        assert [(e["name"], e["time"], attribute_dict(e["attributes"])) for e in row["events"]] == [
            (e["name"], int(e["timeNs"]), e["attributes"]) for e in span["events"]]
        assert [(received_id(l, "trace_id"), received_id(l, "span_id"), attribute_dict(l["attributes"])) for l in row["links"]] == [
            (l["traceId"], l["spanId"], l["attributes"]) for l in span["links"]]
        assert row["status_code"] == span["status"]["code"]
        assert row["status_message"] == span["status"]["message"]
        assert row["service_name"] == "node-service"
        assert row["scope_name"] == "node.scope"
        assert row["scope_version"] == "4.5.6"
        assert row["source"] == "http"
    root = next(r for r in rows.values() if r["name"] == "GET /cart")
    assert root["header_b3"] == "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
    # Integer attributes arrive as OTLP intValue, fractional ones as doubleValue.
    typed = {key: value for key, value in root["attributes"]}
    assert typed["int"]["int"] == 42 and typed["double"]["double"] == 2.5
