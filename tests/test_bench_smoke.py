"""A smoke run of every benchmark (bench/README.md): each finishes, prints its ratios and
writes its JSON results and its plot. The speed targets are measured by `make bench`, never
asserted here."""
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "bench").glob("job_pickup.py")) + sorted((ROOT / "bench").glob("list_queries.py"))
MODULES = ["switches"]      # run as modules (they start servers from tests.harness)


def redis_up():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_micro_benchmarks(script):
    result = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"ratio [^ ]* ?[0-9.]+x", result.stdout), result.stdout


@pytest.mark.parametrize("name", MODULES)
def test_module_micro_benchmarks(name, tmp_path):
    result = subprocess.run([sys.executable, "-m", f"bench.{name}", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"ratio [^\n]* [0-9.]+x", result.stdout), result.stdout
    assert json.loads((tmp_path / f"{name}.json").read_text())["benchmark"] == name


@pytest.mark.parametrize("name", ["api", "jobs", "ansible"])
def test_benchmark_smoke(name, tmp_path):
    extra = ["--no-redis"] if name == "jobs" and not redis_up() else []
    result = subprocess.run([sys.executable, "-m", f"bench.{name}", "--smoke", "--out", str(tmp_path), *extra],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"ratio[^\n]* [0-9.]+x", result.stdout), result.stdout
    document = json.loads((tmp_path / f"{name}.json").read_text())
    assert document["benchmark"] == name and document["machine"]["cores"] >= 1
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
