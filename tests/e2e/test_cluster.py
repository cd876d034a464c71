"""The checks on a real Apache DataFusion Ballista cluster: `tracegap cluster scheduler` and two
`tracegap cluster executor` processes on loopback. Results must equal the local analysis, and an
executor killed during a query must end the query (done, or a clear error), never hang it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ARTIFACTS, BINARY, free_port, wait_for_port

# Every wait is bounded: a hang fails the test instead of stalling CI.
QUERY_TIMEOUT = 300

class Cluster:
    """A scheduler and its executors, each a separate `tracegap cluster` process."""

    def __init__(self, directory: Path, executors: int = 2):
        self.directory = directory
        self.processes = {}
        self.logs = {}
        self.port = free_port()
        self._start("scheduler", "scheduler", "--bind", f"127.0.0.1:{self.port}",
                    "--executor-timeout", "6s", "--expire-interval", "1s")
        wait_for_port(self.port, self.processes["scheduler"])
        for index in range(1, executors + 1):
            self.add_executor(f"executor-{index}")

    def _start(self, name, *args):
        log = open(self.directory / f"{name}.log", "wb")
        self.logs[name] = log
        self.processes[name] = subprocess.Popen([str(BINARY), "cluster", *args], stdout=log, stderr=subprocess.STDOUT,
                                                env={"TRACEGAP_LOG": "info", "PATH": "/usr/bin:/bin"})

    def add_executor(self, name):
        flight, grpc = free_port(), free_port()
        work = self.directory / name
        work.mkdir()
        self._start(name, "executor", "--scheduler", f"127.0.0.1:{self.port}", "--bind", f"127.0.0.1:{flight}",
                    "--grpc-port", str(grpc), "--external-host", "127.0.0.1", "--work-directory", str(work),
                    "--concurrency", "2", "--heartbeat-interval", "1s")
        # Under the default pull scheduling only the Flight port listens; the executor registers
        # with its first request for work.
        wait_for_port(flight, self.processes[name])

    @property
    def url(self) -> str:
        return f"df://127.0.0.1:{self.port}"

    def kill(self, name):
        self.processes[name].kill()
        self.processes[name].wait(timeout=30)

    def log(self, name) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def wait_for_log(self, name, text, timeout) -> bool:
        """Whether `text` appears in the process's log within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        for log in self.logs.values():
            log.close()
        keep = ARTIFACTS / "cluster"
        keep.mkdir(parents=True, exist_ok=True)
        for name in self.processes:
            shutil.copy(self.directory / f"{name}.log", keep / f"{self.directory.name}-{name}.log")


@pytest.fixture
def workspace():
    with tempfile.TemporaryDirectory(prefix="tracegap-cluster-") as directory:
        yield Path(directory)


@pytest.fixture
def cluster(workspace):
    started = Cluster(workspace)
    yield started
    started.stop()


def generate(data: Path, traces: int):
    subprocess.run([str(BINARY), "generate", "--traces", str(traces), "--data", str(data)], check=True,
                   capture_output=True, timeout=QUERY_TIMEOUT)


def check(data: Path, *extra):
    return subprocess.run([str(BINARY), "check", "--data", str(data), "--settle", "0s", "--format", "json", *extra],
                          capture_output=True, text=True, timeout=QUERY_TIMEOUT)


def comparable(report: dict) -> dict:
    """The analysis' results, findings in a fixed order (the cluster may return rows in another)."""
    findings = sorted(json.dumps(finding, sort_keys=True) for finding in report["findings"])
    return {"summary": report["summary"], "findings": findings}


def test_cluster_results_are_identical_to_local_analysis(cluster, workspace):
    data = workspace / "data"
    generate(data, 1500)
    local = check(data)
    assert local.returncode == 0, local.stderr
    on_cluster = check(data, "--cluster", cluster.url)
    assert on_cluster.returncode == 0, on_cluster.stderr + cluster.log("scheduler")[-3000:]
    local_report, cluster_report = json.loads(local.stdout), json.loads(on_cluster.stdout)
    # The corpus has every kind of break: the comparison covers every check.
    by_check = local_report["summary"]["findings_by_check"]
    assert all(by_check[check] > 0 for check in ("orphaned_span", "missing_parent", "unpropagated_call",
                                                 "broken_b3", "broken_gts", "premature_end")), by_check
    assert comparable(cluster_report) == comparable(local_report)
    # Both executors did work: the plan really was distributed.
    for name in ("executor-1", "executor-2"):
        assert "task" in cluster.log(name).lower(), cluster.log(name)[-2000:]

    # Span files written before schema version 5 have no `linked_spans`: locally it is derived from
    # `links` as the files are read, on the cluster in the span views; the results stay the same
    # (without it, the spans with links looked like spans without, and `premature_end` found none).
    old = workspace / "old-data"
    for file in (data / "spans").rglob("*.parquet"):
        table = pq.ParquetFile(file).read().drop_columns(["linked_spans"])
        metadata = dict(table.schema.metadata or {})
        metadata[b"tracegap.schema_version"] = b"4"
        target = old / file.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(metadata), target)
    for extra in ((), ("--cluster", cluster.url)):
        from_old_files = check(old, *extra)
        assert from_old_files.returncode == 0, from_old_files.stderr
        assert comparable(json.loads(from_old_files.stdout)) == comparable(local_report), extra

    # The report runs on the cluster too, with the same figures.
    local_html, cluster_html = workspace / "local.html", workspace / "cluster.html"
    made_local = subprocess.run([str(BINARY), "report", "--data", str(data), "--settle", "0s", "-o", str(local_html)],
                                capture_output=True, text=True, timeout=QUERY_TIMEOUT)
    made_on_cluster = subprocess.run([str(BINARY), "report", "--data", str(data), "--settle", "0s", "-o",
                                      str(cluster_html), "--cluster", cluster.url],
                                     capture_output=True, text=True, timeout=QUERY_TIMEOUT)
    assert made_local.returncode == 0 and made_on_cluster.returncode == 0, made_on_cluster.stderr
    summary_line = lambda text: text.strip().splitlines()[-1].split("(", 1)[1]
    assert summary_line(made_on_cluster.stderr) == summary_line(made_local.stderr)
    assert cluster_html.stat().st_size > 10_000


def test_one_executor_gives_the_local_results(workspace):
    # One executor runs a stage's tasks one after another, and a shuffle read then returns their
    # outputs one after another: sorted pieces, not a sorted whole. A plan that counted on the
    # span files' order through a shuffle (Ballista 55, statistics read) missed a quarter of the
    # `parent_cycle` loops of this corpus here, in a query that succeeded.
    data = workspace / "data"
    generate(data, 30000)
    local = check(data)
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["summary"]["findings_by_check"]["parent_cycle"] > 100
    cluster = Cluster(workspace, executors=1)
    try:
        on_cluster = check(data, "--cluster", cluster.url)
        assert on_cluster.returncode == 0, on_cluster.stderr + cluster.log("scheduler")[-3000:]
        assert comparable(json.loads(on_cluster.stdout)) == comparable(json.loads(local.stdout))
    finally:
        cluster.stop()


def test_an_unreachable_scheduler_is_a_clear_error(workspace):
    data = workspace / "data"
    generate(data, 20)
    result = check(data, "--cluster", f"df://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "no scheduler answers at 127.0.0.1" in result.stderr, result.stderr
    bad_url = check(data, "--cluster", "http://127.0.0.1:50050")
    assert bad_url.returncode == 2 and "expected df://HOST:PORT" in bad_url.stderr, bad_url.stderr


def test_killing_an_executor_during_a_query_never_hangs_it(cluster, workspace):
    data = workspace / "data"
    generate(data, 30000)
    local = check(data)
    assert local.returncode == 0, local.stderr
    started = time.monotonic()
    query = subprocess.Popen([str(BINARY), "check", "--data", str(data), "--settle", "0s", "--format", "json",
                              "--cluster", cluster.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Kill once the executor is running tasks of this query.
    deadline = time.monotonic() + 60
    while "task" not in cluster.log("executor-2").lower() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    assert query.poll() is None, "the query ended before the executor could be killed; use a bigger corpus"
    cluster.kill("executor-2")
    killed_after = time.monotonic() - started
    try:
        stdout, stderr = query.communicate(timeout=QUERY_TIMEOUT)
    except subprocess.TimeoutExpired:
        query.kill()
        pytest.fail(f"the query hung for {QUERY_TIMEOUT}s after an executor was killed")
    elapsed = time.monotonic() - started
    outcome = {"killed_after_seconds": round(killed_after, 1), "ended_after_seconds": round(elapsed, 1),
               "exit_code": query.returncode, "stderr_tail": stderr[-2000:]}
    (ARTIFACTS / "cluster").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "cluster" / "executor-killed.json").write_text(json.dumps(outcome, indent=2))
    assert "panicked" not in stderr
    # The scheduler saw the executor go. A query that failed fast on the dead executor can end
    # before the heartbeat expires (6 s), so wait for it, bounded.
    assert cluster.wait_for_log("scheduler", "heartbeat timed out", timeout=30), cluster.log("scheduler")[-3000:]
    if query.returncode == 0:
        # Ballista ran the lost tasks again on the executor left: the results are still right.
        assert comparable(json.loads(stdout)) == comparable(json.loads(local.stdout))
    else:
        # A clear error, naming the failure, from tracegap's error path (after the client's log
        # lines: Ballista's client logs its jobs on stderr).
        assert query.returncode == 2, stderr
        assert any(line.startswith("tracegap: error: ") for line in stderr.splitlines()), stderr
        assert any(word in stderr.lower() for word in ("executor", "fetch", "task", "connection")), stderr


@pytest.fixture
def s3_server(workspace):
    """moto's S3 server on loopback: a real S3 protocol peer, no cloud account."""
    port = free_port()
    log = open(workspace / "s3.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    yield f"http://127.0.0.1:{port}"
    process.kill()
    process.wait(timeout=30)
    log.close()


def test_the_cluster_reads_spans_from_s3(cluster, workspace, s3_server):
    import boto3

    data = workspace / "data"
    generate(data, 600)
    credentials = {"AWS_ACCESS_KEY_ID": "tracegap", "AWS_SECRET_ACCESS_KEY": "tracegap-secret",
                   "AWS_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    s3.create_bucket(Bucket="traces")
    uploaded = 0
    for path in sorted(data.rglob("*.parquet")):
        s3.upload_file(str(path), "traces", f"prod/{path.relative_to(data)}")
        uploaded += 1
    assert uploaded > 0
    local = check(data)
    assert local.returncode == 0, local.stderr
    # Only the client is given the endpoint and keys: it passes them to the executors with the job.
    environment = dict(os.environ, **credentials, AWS_ENDPOINT_URL=s3_server, AWS_ALLOW_HTTP="true")
    from_s3 = subprocess.run([str(BINARY), "check", "--data", "s3://traces/prod", "--settle", "0s", "--format", "json",
                              "--cluster", cluster.url], capture_output=True, text=True, timeout=QUERY_TIMEOUT,
                             env=environment)
    assert from_s3.returncode == 0, from_s3.stderr + cluster.log("executor-1")[-3000:]
    assert comparable(json.loads(from_s3.stdout)) == comparable(json.loads(local.stdout))
