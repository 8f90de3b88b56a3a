"""Where the CPU of a read goes under concurrency: CPU time and context switches per request of
our server and of the bare baseline (bench/baseline.py), at 1 and 8 connections, on SQLite with
1,000 spaces, read from /proc while the load process (bench/load.py) runs. Each GIL hand-over
between request threads is a context switch on a 2-core machine whose other core runs the load:
a request that releases the GIL more often (one SQLite statement step, one log write, one stat
each) costs more CPU when eight threads take turns. Prints one line per endpoint, concurrency
and server, and writes switches.json to bench/results/ (or --out).

    python -m bench.switches [--smoke] [--endpoints item,options] [--spaces 1000] [--out FOLDER]
"""
import argparse
import glob
import tempfile
from pathlib import Path

from bench import api, lib


def switches(pid):
    """(voluntary, involuntary) context switches of every thread of `pid` so far."""
    voluntary = involuntary = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(path) as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary += int(line.split()[1])
        except FileNotFoundError:       # a thread that ended meanwhile
            pass
    return voluntary, involuntary


def measure(pid, url, requests, concurrency, seconds):
    """{rps, cpu_us, voluntary, involuntary} per request of one load run."""
    voluntary, involuntary = switches(pid)
    cpu, _ = lib.proc_stat(pid)
    done = lib.load(url, requests, concurrency, count=20000, seconds=seconds)
    voluntary2, involuntary2 = switches(pid)
    cpu2, _ = lib.proc_stat(pid)
    count = done["requests"]
    return {"rps": round(done["rps"]), "cpu_us": round(1e6 * (cpu2 - cpu) / count),
            "voluntary": round((voluntary2 - voluntary) / count, 2),
            "involuntary": round((involuntary2 - involuntary) / count, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (make test): OPTIONS, 20 spaces")
    parser.add_argument("--endpoints", default="item,where,first_page,options")
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--out", help="folder for switches.json (default bench/results)")
    args = parser.parse_args()
    results = {}
    seconds = 0.5 if args.smoke else 4
    if args.smoke:
        args.endpoints, args.spaces = "options", 20
    with tempfile.TemporaryDirectory(prefix="bench-switches-") as folder:
        with api.seeded(f"sqlite:///{folder}/var/pixstor.db", args.spaces, folder) as (server, token, baseline, data):
            for endpoint in args.endpoints.split(","):
                ours = api.requests_for(endpoint, *data, {"Authorization": f"Bearer {token}"}, "o", 0)
                bare = api.requests_for(endpoint, *data, {}, "b", 0)
                for concurrency in (1, 8):
                    rows = results.setdefault(endpoint, {}).setdefault(str(concurrency), {})
                    for who, pid, target, requests in (("ours", server.process.pid, server.url, ours),
                                                       ("baseline", baseline.process.pid, baseline.url, bare)):
                        lib.load(target, requests, concurrency, count=200)      # warm-up
                        row = rows[who] = measure(pid, target, requests, concurrency, seconds)
                        print(f"{endpoint:<10} c={concurrency} {who:<8} {row['rps']:6d} req/s  CPU {row['cpu_us']:5d} us"
                              f"/request  context switches per request: {row['voluntary']:6.2f} voluntary, "
                              f"{row['involuntary']:5.2f} involuntary", flush=True)
                    print(f"{endpoint:<10} c={concurrency} ratio ours/baseline: CPU per request "
                          f"{rows['ours']['cpu_us'] / max(rows['baseline']['cpu_us'], 1):.2f}x, context switches "
                          f"{rows['ours']['voluntary'] / max(rows['baseline']['voluntary'], 0.01):.2f}x", flush=True)
    out = Path(args.out) if args.out else lib.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    print(f"results: {lib.save('switches', {'spaces': args.spaces, 'results': results}, out)}")


if __name__ == "__main__":
    main()
