"""What the benchmarks share: the machine's description, the load process, our server and the
bare baseline as processes, their CPU and memory, percentiles, results (JSON) and plots."""
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))


def machine():
    """Where the numbers were measured."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), None)
    versions = {}
    for package in ("bottle", "peewee", "huey", "waitress", "argon2-cffi", "psycopg2-binary", "redis",
                    "ansible-core"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mib": memory, "kernel": platform.release(),
            "os": platform.platform(), "python": platform.python_version(), "packages": versions,
            "commit": _commit(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            # other work on the machine skews every number: the load when the results were saved
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]}


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


def pct(values, q):
    """The q-th percentile (0-100) of `values`, nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def summary(latencies):
    """p50/p90/p99/max in milliseconds."""
    return {f"p{q}_ms": round(pct(latencies, q) * 1000, 3) for q in (50, 90, 99)} | {
        "max_ms": round(max(latencies) * 1000, 3), "mean_ms": round(statistics.fmean(latencies) * 1000, 3)}


def load(url, requests, concurrency, count=None, seconds=None, ok=None):
    """Run the load process once; {requests, seconds, rps, latencies}."""
    spec = {"url": url, "requests": requests, "concurrency": concurrency, "count": count,
            "seconds": seconds or 3600, "ok": ok}
    done = subprocess.run([PYTHON, "-m", "bench.load"], input=json.dumps(spec), cwd=ROOT, capture_output=True,
                          text=True, timeout=(seconds or 600) + 120)
    if done.returncode:
        raise RuntimeError(f"load process failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def proc_stat(pid):
    """(CPU seconds used, RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def tree_pids(pid):
    """`pid` and its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo += [int(c) for c in children]
    return pids


def peak_rss(pid):
    """VmHWM: the peak resident set of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class Baseline:
    """The bare Bottle + Peewee app (bench/baseline.py) under the same waitress settings, on
    the same database file, as its own process."""

    def __init__(self, database_url, threads=8):
        from tests.harness import free_port, wait_for
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([PYTHON, "-m", "bench.baseline", database_url, str(self.port),
                                         str(threads)], cwd=ROOT)

        def up():
            assert self.process.poll() is None, "baseline exited"
            import requests
            try:
                return requests.get(self.url + "/ping", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(up, timeout=30, what="baseline server")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def save(name, results, out=None):
    """bench/results/NAME.json (or OUT/NAME.json): the results and the machine's description."""
    folder = Path(out) if out else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "machine": machine(), **results}
    (folder / f"{name}.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    return folder / f"{name}.json"


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def ratio(ours, base):
    return round(ours / base, 3) if base else None
