"""bench.api: requests per second and latency of the API against the bare Bottle + Peewee
baseline (bench/baseline.py) on the same database file, under the same waitress settings, at 1
and 8 connections from a load process of its own (bench/load.py), with 1,000 and 100,000
spaces seeded through the models. Then what a server costs at rest and under load: CPU while
idle, peak memory with 8 concurrent logins, and resident memory over a mixed load.

    python -m bench.api [--smoke] [--postgres] [--soak SECONDS] [--out FOLDER]

Prints one line per measurement and the ratios; writes api.json and api.png to bench/results/
(or --out).
"""
import argparse
import contextlib
import json
import random
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import lib
from tests.harness import Server, postgres_database

ENDPOINTS = ("item", "where", "first_page", "options", "post")
TARGETS = {"item": 0.8, "where": 0.8, "first_page": 0.7, "options": 0.5}     # ours / baseline req/s
GROWTH_TARGET = 1.2      # p50 at the large size / p50 at the small one


def seed(url, count):
    """`count` ACTIVE spaces on profile mmfs1-sas1 and exposer mmfs1 (as populate made them),
    written through the models. Returns (ids, names, profile id, exposer id)."""
    from service import db
    from service.models import Exposer, Profile, Space, SpaceExposer, database
    db.open_database(url)
    with database.connection_context():
        profile = Profile.get(Profile.name == "mmfs1-sas1")
        exposer = Exposer.get(Exposer.name == "mmfs1", Exposer.type == "gpfsnative")
        ids = [str(uuid.uuid4()) for _ in range(count)]
        rows = [dict(id=ids[n], name=f"s{n:06d}", relativepath=f"projects/p{n % 100}/s{n:06d}", profile=profile.id,
                     size=1 << 30, fileset=f"sas1-s{n:06d}", path=f"/mmfs1/projects/p{n % 100}/s{n:06d}",
                     status="ACTIVE") for n in range(count)]
        with database.atomic():
            for chunk in range(0, count, 500):
                Space.insert_many(rows[chunk:chunk + 500]).execute()
                SpaceExposer.insert_many([{"space": i, "exposer": exposer.id}
                                          for i in ids[chunk:chunk + 500]]).execute()
    database.close()
    return ids, [r["name"] for r in rows], profile.id, exposer.id


def requests_for(endpoint, ids, names, profile, exposer, headers, tag, count):
    """[method, path, headers, body] for one endpoint: ids and names picked at random, POSTs each
    for a space of its own."""
    pick = random.Random(7)
    if endpoint == "item":
        return [["GET", f"/spaces/{pick.choice(ids)}", headers, ""] for _ in range(200)]
    if endpoint == "where":
        return [["GET", "/spaces/?where=" + json.dumps({"name": pick.choice(names)}).replace(" ", ""), headers, ""]
                for _ in range(200)]
    if endpoint == "first_page":
        return [["GET", "/spaces/", headers, ""]]
    if endpoint == "options":
        return [["OPTIONS", "/spaces/", headers, ""]]
    post_headers = dict(headers, **{"Content-Type": "application/json"})
    return [["POST", "/spaces/", post_headers, json.dumps({
        "name": f"{tag}{n}", "relativepath": f"new/{tag}/{n}", "profile": f"/profiles/{profile}",
        "exposers": [f"/exposers/{exposer}"], "size": 1 << 30})] for n in range(count)]


def measure(url, endpoint, data, headers, concurrency, settings, tag):
    ids, names, profile, exposer = data
    if endpoint == "post":
        count = settings["posts"]
        reqs = requests_for(endpoint, ids, names, profile, exposer, headers, f"{tag}c{concurrency}x", count)
        lib.load(url, reqs[:10], concurrency, count=10)       # warm-up
        return lib.load(url, reqs[10:], concurrency, count=count - 10)
    reqs = requests_for(endpoint, ids, names, profile, exposer, headers, tag, 0)
    lib.load(url, reqs, concurrency, count=settings["warmup"])
    return lib.load(url, reqs, concurrency, count=settings["count"], seconds=settings["seconds"])


def run_size(kind, size, settings, folder):
    """Our server and the baseline on one database of `size` spaces: {endpoint: {concurrency: ...}}."""
    drop = None
    if kind == "postgresql":
        url, drop = postgres_database()
        if url is None:
            raise SystemExit(f"--postgres: {drop}")
    else:
        url = f"sqlite:///{folder}/var/pixstor.db"
    try:
        with seeded(url, size, folder) as (server, token, baseline, data):
            results = {}
            for endpoint in ENDPOINTS:
                for concurrency in (1, 8):
                    ours = measure(server.url, endpoint, data, {"Authorization": f"Bearer {token}"}, concurrency,
                                   settings, "o")
                    base = measure(baseline.url, endpoint, data, {}, concurrency, settings, "b")
                    row = {"ours": {"rps": round(ours["rps"], 1), **lib.summary(ours["latencies"])},
                           "baseline": {"rps": round(base["rps"], 1), **lib.summary(base["latencies"])},
                           "ratio": lib.ratio(ours["rps"], base["rps"])}
                    results.setdefault(endpoint, {})[str(concurrency)] = row
                    row["_latencies"] = (ours["latencies"], base["latencies"])
                    print(f"  {kind} {size:>7} spaces  {endpoint:<10} c={concurrency}: ours {ours['rps']:7.1f} req/s "
                          f"p50 {row['ours']['p50_ms']:6.2f} ms p99 {row['ours']['p99_ms']:6.2f} ms | baseline "
                          f"{base['rps']:7.1f} req/s p50 {row['baseline']['p50_ms']:6.2f} ms | ratio "
                          f"{row['ratio']:.2f}x", flush=True)
            return results
    finally:
        if drop:
            drop()


@contextlib.contextmanager
def seeded(url, size, folder):
    """Our server (without a worker) and the baseline on one database of `size` spaces seeded
    through the models: yields (server, an admin token, baseline, seed's answer)."""
    server = Server(folder, database=url, worker=False)
    baseline = None
    try:
        init = server.cli("init")
        server.admin_password = init.stdout.split("password ", 1)[1].split()[0]
        data = seed(url, size)
        server.serve()
        token = server.token()
        baseline = lib.Baseline(url)
        yield server, token, baseline, data
    finally:
        if baseline:
            baseline.stop()
        server.stop()


def idle_and_logins(settings, folder):
    """CPU of a server (with its embedded worker) at rest, and its peak memory while 8 clients
    log in at once."""
    server = Server(folder)
    try:
        server.start()
        pid = server.process.pid
        time.sleep(settings["settle"])
        cpu0, _ = lib.proc_stat(pid)
        start = time.monotonic()
        time.sleep(settings["idle"])
        cpu1, rss = lib.proc_stat(pid)
        idle = (cpu1 - cpu0) / (time.monotonic() - start) * 100
        before = lib.peak_rss(pid)
        body = f"grant_type=password&username=admin&password={server.admin_password}"
        login = ["POST", "/oauth2/token", {"Content-Type": "application/x-www-form-urlencoded"}, body]
        # 503 is a login that waited too long for a hash slot (auth.hash_concurrency): by design
        one = lib.load(server.url, [login], 1, count=settings["logins"], ok=[200, 503])
        eight = lib.load(server.url, [login], 8, count=8 * settings["logins"], ok=[200, 503])
        return {"idle_cpu_percent": round(idle, 3), "idle_seconds": settings["idle"], "rss_at_rest_mib": rss >> 20,
                "peak_rss_before_logins_mib": before >> 20, "peak_rss_after_8_concurrent_logins_mib":
                lib.peak_rss(pid) >> 20, "login_c1": {"rps": round(one["rps"], 2), **lib.summary(one["latencies"])},
                "login_c8": {"rps": round(eight["rps"], 2), **lib.summary(eight["latencies"])}}
    finally:
        server.stop()


def soak(seconds, folder):
    """Resident memory of a server (with its worker) over `seconds` of mixed load at 8
    connections: reads of every kind and a create in every 25 requests."""
    server = Server(folder)
    try:
        server.start()
        url = f"sqlite:///{folder}/var/pixstor.db"
        data = seed(url, 1000)
        token = server.token()
        headers = {"Authorization": f"Bearer {token}"}
        post = requests_for("post", *data, headers, "soak", 1)[0]
        post = post[:3] + [post[3].replace("soak0", "soak{n}").replace("new/soak/0", "new/soak/{n}"), "unique"]
        reads = [r for e in ("item", "where", "first_page", "options") for r in requests_for(e, *data, headers, "s", 0)]
        pick = random.Random(3)
        mixed = [post if n % 25 == 0 else pick.choice(reads) for n in range(2500)]   # a create in every 25
        spec = {"url": server.url, "requests": mixed, "concurrency": 8, "count": None, "seconds": seconds}
        # its answer (every latency) goes to a file: a pipe left unread while sampling would fill
        answer = open(Path(folder) / "soak-load.json", "w+")
        process = subprocess.Popen([lib.PYTHON, "-m", "bench.load"], cwd=lib.ROOT, stdin=subprocess.PIPE,
                                   stdout=answer, stderr=subprocess.PIPE, text=True)
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
        samples = []
        start = time.monotonic()
        while process.poll() is None:
            samples.append((round(time.monotonic() - start, 1), lib.proc_stat(server.process.pid)[1] >> 20))
            time.sleep(max(1.0, seconds / 120))
        process.wait()
        err = process.stderr.read()
        answer.seek(0)
        out = answer.read()
        answer.close()
        if process.returncode:
            raise RuntimeError(f"soak load failed: {err[-2000:]}")
        done = json.loads(out)
        # growth after the first tenth (caches and pools fill first)
        settled = [rss for t, rss in samples if t >= seconds / 10] or [samples[-1][1]]
        return {"seconds": seconds, "requests": done["requests"], "rps": round(done["rps"], 1),
                "rss_mib": samples, "rss_growth": round(settled[-1] / settled[0], 3)}
    finally:
        server.stop()


def plot(results, path, sizes):
    plt = lib.pyplot()
    first = results["sqlite"]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for axis, endpoint in zip(axes.flat, ENDPOINTS):
        for size, style in zip(sizes, ("-", "--")):
            for who, index, colour in (("ours", 0, "tab:blue"), ("baseline", 1, "tab:grey")):
                latencies = sorted(first[str(size)][endpoint]["8"]["_latencies"][index])
                ys = [n / len(latencies) for n in range(1, len(latencies) + 1)]
                axis.plot([v * 1000 for v in latencies], ys, style, color=colour, label=f"{who}, {size:,} spaces")
        axis.set_xscale("log")
        axis.set_title(f"{endpoint}: latency CDF, 8 connections")
        axis.set_xlabel("ms")
        axis.legend(fontsize=7)
    axis = axes.flat[5]
    for endpoint in ENDPOINTS:
        axis.plot(sizes, [first[str(s)][endpoint]["1"]["ours"]["p50_ms"] for s in sizes], "o-", label=endpoint)
    axis.set_xscale("log")
    axis.set_title("ours: p50 at 1 connection, by spaces")
    axis.set_xlabel("spaces")
    axis.set_ylabel("ms")
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (make test)")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (127.0.0.1:5432)")
    parser.add_argument("--soak", type=float, help="seconds of mixed load for the memory check (default 600)")
    parser.add_argument("--out", help="folder for api.json and api.png (default bench/results)")
    parser.add_argument("--sizes", help="two numbers of spaces, e.g. 1000,100000 (the default)")
    args = parser.parse_args()
    if args.smoke:
        sizes, settings = (20, 200), {"count": 60, "seconds": 1, "warmup": 5, "posts": 20, "settle": 1,
                                      "idle": 1, "logins": 1}
    else:
        sizes, settings = (1000, 100000), {"count": 20000, "seconds": 4, "warmup": 100, "posts": 400,
                                           "settle": 10, "idle": 30, "logins": 4}
    if args.sizes:
        sizes = tuple(int(n) for n in args.sizes.split(","))
    soak_seconds = args.soak if args.soak is not None else (3 if args.smoke else 600)
    results = {}
    print("bench.api: ours / bare Bottle+Peewee baseline, same database, same waitress settings", flush=True)
    for kind in ("sqlite", "postgresql") if args.postgres else ("sqlite",):
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
                results.setdefault(kind, {})[str(size)] = run_size(kind, size, settings, folder)
    summary = {}
    for kind, by_size in results.items():
        small, large = (by_size[str(s)] for s in sizes)
        for endpoint in ENDPOINTS:
            growth = lib.ratio(large[endpoint]["1"]["ours"]["p50_ms"], small[endpoint]["1"]["ours"]["p50_ms"])
            base_growth = lib.ratio(large[endpoint]["1"]["baseline"]["p50_ms"],
                                    small[endpoint]["1"]["baseline"]["p50_ms"])
            row = {"ratio_c1": {str(s): by_size[str(s)][endpoint]["1"]["ratio"] for s in sizes},
                   "ratio_c8": {str(s): by_size[str(s)][endpoint]["8"]["ratio"] for s in sizes},
                   "p50_growth": growth, "baseline_p50_growth": base_growth}
            if endpoint in TARGETS:
                row["target_ratio"] = TARGETS[endpoint]
            if endpoint != "options":
                row["target_p50_growth"] = GROWTH_TARGET
            summary.setdefault(kind, {})[endpoint] = row
            print(f"{kind} {endpoint:<10} ratio ours/baseline req/s at 8 connections: "
                  + ", ".join(f"{s:,} spaces {row['ratio_c8'][str(s)]:.2f}x" for s in sizes)
                  + f"; p50 {sizes[1]:,}/{sizes[0]:,} ratio {growth:.2f}x (baseline {base_growth:.2f}x)")
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as folder:
        resources = idle_and_logins(settings, folder)
    print(f"idle server: {resources['idle_cpu_percent']:.2f} % of a core over {settings['idle']} s; peak RSS "
          f"{resources['peak_rss_after_8_concurrent_logins_mib']} MiB with 8 concurrent logins "
          f"(login p50 {resources['login_c1']['p50_ms']:.0f} ms alone)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        memory = soak(soak_seconds, folder)
    print(f"mixed load for {soak_seconds:.0f} s ({memory['requests']} requests): RSS ratio end/start "
          f"{memory['rss_growth']:.2f}x", flush=True)
    out = Path(args.out) if args.out else lib.RESULTS
    plot(results, out / "api.png" if out.mkdir(parents=True, exist_ok=True) is None else None, sizes)
    for by_size in results.values():
        for by_endpoint in by_size.values():
            for by_concurrency in by_endpoint.values():
                for row in by_concurrency.values():
                    row.pop("_latencies", None)
    saved = lib.save("api", {"sizes": sizes, "settings": settings, "summary": summary, "results": results,
                             "resources": resources, "soak": memory}, out)
    print(f"results: {saved}")


if __name__ == "__main__":
    main()
