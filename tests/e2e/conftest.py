"""Fixtures of the end-to-end tests: a real `tracegap serve` process on free loopback ports."""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("TRACEGAP_BIN", REPO / "target" / "release" / "tracegap"))
ARTIFACTS = Path(os.environ.get("TRACEGAP_ARTIFACTS", REPO / "test-artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tracegap serve exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not listening after {timeout}s")


class Server:
    """A running `tracegap serve`."""

    def __init__(self, data: Path, extra_args=()):
        self.data = data
        self.extra_args = list(extra_args)
        self.process = None
        self.start()

    def start(self):
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.web_port = free_port()
        self.log_path = self.data.parent / f"{self.data.name}-server-{self.grpc_port}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--data", str(self.data),
             "--grpc-address", f"127.0.0.1:{self.grpc_port}",
             "--http-address", f"127.0.0.1:{self.http_port}",
             "--web-address", f"127.0.0.1:{self.web_port}", *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.grpc_port, self.process)
        wait_for_port(self.http_port, self.process)
        wait_for_port(self.web_port, self.process)

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self) -> int:
        """SIGTERM: the server flushes everything to Parquet and exits 0."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=30)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="tracegap-e2e-") as directory:
        yield Path(directory) / "data"


@pytest.fixture
def start_server(data_dir):
    servers = []

    def start(*extra_args, data=None):
        server = Server(data or data_dir, extra_args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.kill()


def read_spans(data: Path):
    """The span table as a pyarrow Table (hive partitions included)."""
    spans = data / "spans"
    if not any(spans.rglob("*.parquet")):
        return None
    return ds.dataset(str(spans), format="parquet", partitioning="hive").to_table()


def received_id(row: dict, column: str) -> str:
    """An id as received, in hex: its raw column, or, where that is null (an id of the normal
    length, stored once), the normalised id's bytes; "" for a root's parent."""
    raw = row[f"{column}_raw"]
    if raw is not None:
        return raw.hex()
    value = row[column]
    if value is None:
        return ""
    return value.hex() if isinstance(value, bytes) else format(value, "016x")


def spans_by_id(data: Path) -> dict:
    """Rows of the span table keyed by span id as received (hex)."""
    table = read_spans(data)
    if table is None:
        return {}
    return {received_id(row, "span_id"): row for row in table.to_pylist()}


def _without_timestamps(data_type):
    """The same type with every timestamp as int64 nanoseconds (pyarrow would round to µs)."""
    import pyarrow as pa

    if pa.types.is_timestamp(data_type):
        return pa.int64()
    if pa.types.is_struct(data_type):
        return pa.struct([pa.field(f.name, _without_timestamps(f.type), f.nullable) for f in data_type])
    if pa.types.is_list(data_type):
        return pa.list_(pa.field(data_type.value_field.name, _without_timestamps(data_type.value_type), data_type.value_field.nullable))
    return data_type


def read_spans_exact(data: Path):
    """The span table with timestamps as int64 ns, so nothing is rounded."""
    import pyarrow as pa

    table = read_spans(data)
    if table is None:
        return None
    schema = pa.schema([pa.field(f.name, _without_timestamps(f.type), f.nullable) for f in table.schema])
    return table.cast(schema)


def attribute_dict(pairs):
    """A stored attribute map as {key: python value}, arrays and lists decoded from their JSON."""
    import json

    result = {}
    for key, value in pairs or []:
        if value is None:
            result[key] = None
            continue
        if value["json"] is not None:
            result[key] = json.loads(value["json"])
            continue
        present = [name for name in ("string", "int", "double", "bool", "bytes") if value[name] is not None]
        result[key] = value[present[0]] if present else None
    return result
