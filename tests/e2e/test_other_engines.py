"""The span files open in other engines (pyarrow, DuckDB) with the schema documented in
docs/schema.md, so the documentation and the files cannot drift apart."""

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import urllib.request

from conftest import BINARY
from otlp_requests import make_request, make_span

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def documented_columns():
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (.+?) \| .+ \|$", SCHEMA_DOC.read_text(), re.MULTILINE)
    return [(name, kind.strip()) for name, kind in rows]


def test_schema_matches_the_documentation_in_pyarrow_and_duckdb(start_server):
    server = start_server()
    request = urllib.request.Request(f"{server.http_endpoint}/v1/traces", data=make_request([make_span() for _ in range(5)]),
                                     method="POST", headers={"Content-Type": "application/x-protobuf"})
    urllib.request.urlopen(request, timeout=10).read()
    assert server.stop() == 0

    documented = documented_columns()
    assert len(documented) > 50
    dataset = ds.dataset(str(server.data / "spans"), format="parquet", partitioning="hive")
    schema = dataset.schema
    assert [field.name for field in schema] == [name for name, _ in documented]
    for name, kind in documented:
        if kind.startswith("`") and "(partition)" not in kind:
            assert f"`{schema.field(name).type}`" == kind, name
        elif kind == "attribute map":
            assert str(schema.field(name).type).startswith("map<string, struct<string: string, int: int64")
    files = sorted(server.data.joinpath("spans").rglob("*.parquet"))
    metadata = pq.read_metadata(files[0]).metadata
    assert metadata[b"tracegap.schema_version"] == b"5"

    glob = str(server.data / "spans" / "**" / "*.parquet")
    connection = duckdb.connect()
    described = connection.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()
    assert [row[0] for row in described] == [name for name, _ in documented]
    count, routes = connection.execute(
        f"SELECT count(*), count(DISTINCT trace_id) FROM read_parquet('{glob}', hive_partitioning = true) "
        "WHERE service_name = 'bad-input-test' AND kind = 'SERVER'").fetchone()
    assert count == 5 and routes == 5


def test_the_checks_sql_gives_the_same_findings_on_duckdb(tmp_path):
    """`tracegap bench check` runs the views and checks on DuckDB over the same Parquet: every
    check must find as many findings there as in tracegap, on a corpus with every kind of break."""
    data = tmp_path / "corpus"
    subprocess.run([str(BINARY), "generate", "--traces", "1500", "--data", str(data)], check=True,
                   capture_output=True, timeout=300)
    result = subprocess.run([str(BINARY), "bench", "check", "--data", str(data), "--python", sys.executable],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"tracegap / DuckDB time: [0-9.]+x", result.stdout), result.stdout
    counts = {check: (tracegap, duckdb_count) for check, tracegap, duckdb_count
              in re.findall(r"^([a-z_0-9]+) +(\d+) +(\d+) ", result.stdout, re.MULTILINE)}
    assert {"orphaned_span", "missing_parent", "unpropagated_call", "premature_end", "broken_b3", "broken_gts",
            "invalid_id", "duplicate_span_id", "clock_skew"} <= set(counts), result.stdout
    for check, (tracegap, duckdb_count) in counts.items():
        assert tracegap == duckdb_count, f"{check}: {result.stdout}"
        assert int(tracegap) > 0, f"{check} found nothing on the corpus: {result.stdout}"
