"""`tracegap import` and `tracegap check FILE…` on dumps: formats detected from content,
compression, directories and globs, bad records reported with their place and skipped, exit codes,
and the --fail-under gate on a dump."""

import gzip
import json
import subprocess
from pathlib import Path

import pyarrow

from conftest import BINARY

EXTERNAL = Path(__file__).resolve().parents[2] / "testdata" / "external"


def tracegap(*args):
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=300)


def count_spans(data):
    result = tracegap("sql", "--data", str(data), "--settle", "0s", "SELECT count(*) AS n FROM all_spans")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split("|")[-2].strip())


def test_a_bad_line_is_reported_with_file_and_line_and_the_rest_is_imported(tmp_path):
    lines = (EXTERNAL / "jaeger-ui" / "otlp2jaeger-multi-in.json.txt").read_text().splitlines()
    assert len(lines) >= 2
    broken = lines[:1] + ['{"resourceSpans": [ this is not json'] + lines[1:]
    dump = tmp_path / "dump.jsonl.gz"
    dump.write_bytes(gzip.compress(("\n".join(broken) + "\n").encode()))
    data = tmp_path / "data"

    result = tracegap("import", "--data", str(data), str(dump))
    assert result.returncode == 1, result.stderr
    assert f"{dump}:2: invalid OTLP JSON: " in result.stderr
    assert "1 bad records" in result.stderr
    assert "ETA" not in result.stderr, "no progress bar when stderr is not a terminal"
    assert count_spans(data) == 4

    again = tracegap("import", "--skip-bad", "--quiet", "--data", str(tmp_path / "other"), str(dump))
    assert again.returncode == 0, again.stderr


def test_zstd_jaeger_and_a_directory_of_zipkin_files_are_detected_and_imported(tmp_path):
    jaeger = (EXTERNAL / "jaeger-ui" / "oltp2jaeger-multi-out.json").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "trace.json.zst").write_bytes(pyarrow.compress(jaeger, codec="zstd", asbytes=True))
    for name in ["yelp.json", "skew.json"]:
        (tmp_path / "in" / name).write_bytes((EXTERNAL / "zipkin" / name).read_bytes())
    data = tmp_path / "data"
    result = tracegap("import", "--data", str(data), str(tmp_path / "in"))
    assert result.returncode == 0, result.stderr
    assert "imported 24 spans from 3 of 3 files" in result.stderr
    assert count_spans(data) == 24


def test_a_truncated_protobuf_dump_keeps_the_records_before_the_cut(tmp_path):
    dump = tmp_path / "corpus.bin"
    made = tracegap("generate", "--traces", "300", "--format", "otlp-proto", "-o", str(dump))
    assert made.returncode == 0, made.stderr
    whole = dump.read_bytes()
    dump.write_bytes(whole[:-10])
    data = tmp_path / "data"
    result = tracegap("import", "--data", str(data), str(dump))
    assert result.returncode == 1
    assert "record 3 at byte" in result.stderr and "cut short" in result.stderr, result.stderr
    assert count_spans(data) > 0


def test_an_unknown_format_is_named_and_skipped(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, these are not traces\n")
    result = tracegap("import", "--data", str(tmp_path / "data"), str(junk))
    assert result.returncode == 1
    assert f"{junk}: format not recognised" in result.stderr


def test_check_on_a_dump_is_a_ci_gate(tmp_path):
    healthy = EXTERNAL / "zipkin" / "yelp.json"
    passed = tracegap("check", "--fail-under", "0.99", "--format", "json", str(healthy))
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["summary"]["judged_traces"] == 1

    corpus = tmp_path / "corpus.jsonl"
    made = tracegap("generate", "--traces", "500", "-o", str(corpus))
    assert made.returncode == 0, made.stderr
    failed = tracegap("check", "--fail-under", "0.99", "--format", "json", str(tmp_path / "*.jsonl"))
    assert failed.returncode == 1, failed.stderr
    summary = json.loads(failed.stdout)["summary"]
    assert 0.5 < summary["completeness"] < 0.99
    assert "is under --fail-under 0.99" in failed.stderr
