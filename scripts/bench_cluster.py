#!/usr/bin/env python3
"""Scaling benchmark of `tracegap check --cluster`: one Ballista executor versus two, on this
machine, over one data directory, with the local analysis as the baseline of the same run.

    python3 scripts/bench_cluster.py --data /var/tmp/tg/1m [--runs 3] [--scheduling-policy pull|push]
                                     [--bin target/release/tracegap]

Every executor runs one task at a time (--concurrency 1), so "one versus two executors" is one
core versus two. Prints the wall time of each setup (median of --runs), the ratios, and the
per-check times of the analysis (from the debug log), which docs/cluster.md turns into an
estimate for bigger clusters. Standard library only."""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"a cluster process exited early ({process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} not listening after {timeout}s")


def start_cluster(binary, executors, concurrency, directory, policy):
    port = free_port()
    logs = open(directory / "cluster.log", "ab")
    processes = [subprocess.Popen([binary, "cluster", "scheduler", "--bind", f"127.0.0.1:{port}",
                                   "--scheduling-policy", policy],
                                  stdout=logs, stderr=subprocess.STDOUT)]
    wait_for_port(port, processes[0])
    for index in range(executors):
        flight, grpc = free_port(), free_port()
        work = directory / f"work-{executors}-{index}"
        work.mkdir(exist_ok=True)
        process = subprocess.Popen([binary, "cluster", "executor", "--scheduler", f"127.0.0.1:{port}",
                                    "--bind", f"127.0.0.1:{flight}", "--grpc-port", str(grpc),
                                    "--external-host", "127.0.0.1", "--work-directory", str(work),
                                    "--concurrency", str(concurrency), "--scheduling-policy", policy], stdout=logs, stderr=subprocess.STDOUT)
        processes.append(process)
        wait_for_port(flight, process)
    time.sleep(2)  # registration with the scheduler
    return f"df://127.0.0.1:{port}", processes


CHECK_LINE = re.compile(r"(?:check|view)=(\S+) seconds=([0-9.]+)")


def run_check(binary, data, cluster=None):
    command = [binary, "check", "--data", str(data), "--settle", "0s", "--format", "json"]
    if cluster:
        command += ["--cluster", cluster]
    environment = dict(os.environ, TRACEGAP_LOG="tracegap_analyze=debug")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"check failed ({result.returncode}): {result.stderr[-3000:]}")
    stages = {name: float(seconds) for name, seconds in CHECK_LINE.findall(re.sub(r"\x1b\[[0-9;]*m", "", result.stderr))}
    return elapsed, stages, len(result.stdout)


def measure(label, runs, run):
    times, stages = [], {}
    for _ in range(runs):
        elapsed, stage_times, _ = run()
        times.append(elapsed)
        stages = stage_times
    median = statistics.median(times)
    print(f"{label:<40} {median:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
    return median, stages


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scheduling-policy", choices=("pull", "push"), default="pull")
    parser.add_argument("--bin", default=os.environ.get("TRACEGAP_BIN", "/var/tmp/tracegap-target/release/tracegap"))
    args = parser.parse_args()
    data = args.data.resolve()
    spans = subprocess.run([args.bin, "sql", "--data", str(data), "--settle", "0s", "SELECT count(*) AS n FROM spans"],
                           capture_output=True, text=True, check=True).stdout
    print(f"data: {data}\n{spans.strip()}\n", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="tracegap-bench-cluster-") as directory:
        directory = Path(directory)
        results["local"] = measure("local (all cores, baseline)", args.runs, lambda: run_check(args.bin, data))
        for executors, concurrency in ((1, 1), (2, 1), (1, 2)):
            url, processes = start_cluster(args.bin, executors, concurrency, directory, args.scheduling_policy)
            try:
                label = f"cluster ({args.scheduling_policy}): {executors} executor(s) x {concurrency} task(s)"
                results[(executors, concurrency)] = measure(label, args.runs, lambda: run_check(args.bin, data, url))
            finally:
                for process in processes:
                    process.kill()
                    process.wait()
    one, two, local = results[(1, 1)][0], results[(2, 1)][0], results["local"][0]
    print(f"\nscaling, 1 executor / 2 executors (1 task each): {one / two:.2f}x")
    print(f"cluster overhead, 1 executor x 2 tasks / local: {results[(1, 2)][0] / local:.2f}x")
    print("\nper check and view, seconds (local | 1x1 | 2x1 | 1x2):")
    names = sorted(set(results["local"][1]) | set(results[(1, 1)][1]))
    for name in names:
        row = [results[key][1].get(name, float("nan")) for key in ("local", (1, 1), (2, 1), (1, 2))]
        print(f"  {name:<24} " + " | ".join(f"{value:7.2f}" for value in row))


if __name__ == "__main__":
    main()
