"""`tracegap check` and `tracegap sql` on data received by `tracegap serve`: findings as JSON,
the --fail-under CI gate, pending traces, and read-only SQL."""

import json
import subprocess
import urllib.request
from pathlib import Path

from conftest import BINARY

FIXTURES = Path(__file__).resolve().parents[2] / "testdata" / "fixtures"


def send_fixture(server, name):
    request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=(FIXTURES / f"{name}.json").read_bytes(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def tracegap(*args):
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=120)


def test_check_reports_findings_and_gates_on_completeness(start_server):
    server = start_server()
    send_fixture(server, "orphaned_span")
    send_fixture(server, "missing_parent")
    assert server.stop() == 0
    data = str(server.data)

    result = tracegap("check", "--data", data, "--settle", "0s", "--format", "json", "--fail-under", "0.99")
    assert result.returncode == 1, result.stderr
    assert "completeness 0.1667 is under --fail-under 0.99" in result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    # 6 traces: the two orphans' traces and three of the four missing_parent traces are broken.
    assert (summary["judged_traces"], summary["broken_traces"], summary["pending_traces"]) == (6, 5, 0)
    assert summary["findings_by_check"]["orphaned_span"] == 2
    assert summary["findings_by_check"]["missing_parent"] == 3
    orphan = next(f for f in report["findings"] if f["check"] == "orphaned_span" and f["service"] == "cart")
    assert orphan["trace_id"] == "a" * 30 + "01"
    assert orphan["span_id"] == "0000000000000004"
    assert orphan["service"] == "cart"
    assert orphan["explanation"] == "parent 0000000000000003 not in trace of 3 spans"
    assert orphan["time"] == "2023-11-14T22:13:20.010000000Z"
    edges = {(e["caller"], e["callee"]): e for e in summary["edges"]}
    # The context reached cart (its span is an orphan under a lost hop): not a dropped call.
    edge = edges[("frontend", "cart")]
    assert (edge["calls"], edge["propagated"], edge["dropped"]) == (1, 0, 0)

    assert tracegap("check", "--data", data, "--settle", "0s", "--fail-under", "0.1").returncode == 0
    table = tracegap("check", "--data", data, "--settle", "0s")
    assert table.returncode == 0
    # Findings first, the overall completeness last, where a terminal leaves it in view.
    assert table.stdout.startswith("CHECK ")
    assert table.stdout.splitlines()[-1] == "completeness 16.67%: 1 of 6 judged traces complete, 5 broken, 0 pending"
    assert "orphaned_span: Orphaned span." in table.stdout and "  fix: " in table.stdout
    catalogue = {check["id"]: check for check in report["checks"]}
    assert catalogue["missing_parent"]["causes"][0].startswith("HTTP call made without the request context")

    # Received moments ago: with the default settle time, every trace is still pending.
    live = json.loads(tracegap("check", "--data", data, "--format", "json").stdout)["summary"]
    assert (live["judged_traces"], live["pending_traces"]) == (0, 6)


def test_sql_is_read_only(start_server):
    server = start_server()
    send_fixture(server, "orphaned_span")
    assert server.stop() == 0
    data = str(server.data)
    result = tracegap("sql", "--data", data, "--settle", "0s", "SELECT service_name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1")
    assert result.returncode == 0, result.stderr
    assert "| cart" in result.stdout and "| frontend" in result.stdout
    for statement in ["DROP VIEW spans", "CREATE TABLE t AS SELECT 1", "INSERT INTO findings VALUES (1)",
                      "COPY (SELECT 1) TO '/tmp/x.csv'", "SET datafusion.execution.batch_size = 1"]:
        refused = tracegap("sql", "--data", data, statement)
        assert refused.returncode == 2, statement
        assert "refused: only queries are allowed" in refused.stderr, refused.stderr
    findings = tracegap("sql", "--data", data, "--settle", "0s", "SELECT check, span_id FROM findings")
    assert "orphaned_span" in findings.stdout and "0000000000000004" in findings.stdout
    assert tracegap("check", "--since", "yesterday").returncode == 2


def test_bench_check_ends_quietly_when_its_reader_goes_away(tmp_path):
    """`tracegap bench check | head -3`: the lines after the reader left are dropped, with the
    command's own exit code, not a panic of `println!` on the broken pipe."""
    data = tmp_path / "data"
    assert tracegap("generate", "--traces", "200", "--data", str(data)).returncode == 0
    process = subprocess.Popen([str(BINARY), "bench", "check", "--data", str(data), "--no-duckdb"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Closed before the bench prints its first line: every line meets a broken pipe.
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert "panicked" not in stderr

