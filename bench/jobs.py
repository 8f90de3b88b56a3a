"""bench.jobs: how fast storage jobs run through the queue, against the same job bodies run
back to back in one process (no API, no queue, no runner).

- sequential: POST a space, wait until it is ACTIVE, again; against one job body alone;
- burst: 100 creates POSTed at once (8 connections from a load process), with and without a
  small template; throughput from the first POST to the last job finished, against the
  in-process throughput of the same bodies; queue wait (job started - created) per job;
- configurations: the embedded worker (SQLite queue, `serve`), and Redis with 1 and 2
  `pixstor-mgmt worker` processes beside a `serve --no-worker`.

    python -m bench.jobs [--smoke] [--no-redis] [--out FOLDER]
"""
import argparse
import contextlib
import datetime
import json
import tempfile
import time
import uuid
from pathlib import Path

import requests

from bench import lib
from tests.harness import Server, make_model, redis_queue, wait_for

TEMPLATE_FILES = 20      # small files in the template's model, beside the walkthrough's folders


def model(root):
    root = make_model(root)
    for n in range(TEMPLATE_FILES):
        (root / "published" / f"readme{n}.txt").write_text("x" * 4096)
    return root


def in_process(count, with_template, folder):
    """Seconds per job body: `count` space creates run back to back, in this process."""
    from service import config, context, db, tasks
    from service.models import Exposer, Profile, Space, SpaceExposer, SpaceTemplate, Template, database
    from service.populate import populate
    from service.tasks.runner import HANDLERS
    folder = Path(folder)
    (folder / "mmfs1").mkdir()
    (folder / "templates").mkdir()
    settings = config.load(None, environ={
        "PIXSTOR_DATABASE_URL": f"sqlite:///{folder}/db.sqlite", "PIXSTOR_QUEUE_URL": f"sqlite:///{folder}/q.sqlite",
        "PIXSTOR_STORAGE_FILESYSTEMS": json.dumps([{"name": "mmfs1", "mountpoint": str(folder / "mmfs1"),
                                                    "pools": ["sas1", "sata1"]}]),
        "PIXSTOR_STORAGE_TEMPLATE_STORE": str(folder / "templates"),
        "PIXSTOR_STORAGE_TEMPLATE_SOURCES": json.dumps([str(folder / "models")])})
    context.setup(settings)
    db.open_database(settings.database.url)
    db.create_tables(say=lambda *_: None)
    tasks.configure(settings)
    with database.connection_context():
        list(populate(context.driver(), settings))
        profile = Profile.get(Profile.name == "mmfs1-sas1")
        exposer = Exposer.get(Exposer.name == "mmfs1")
        template = None
        if with_template:
            template = Template.create(name="t", type="filesystemtemplate",
                                       template_location=str(model(folder / "models" / "t")), status="NEW")
            HANDLERS[("templates", "create")](template, {})
            template = Template.get_by_id(template.id)
        spaces = []
        for n in range(count):
            space = Space.create(name=f"p{n}", relativepath=f"projects/p{n}", profile=profile, size=1 << 30,
                                 status="INPROGRESS")
            SpaceExposer.create(space=space, exposer=exposer)
            if template:
                SpaceTemplate.create(space=space, template=template)
            spaces.append(space)
        start = time.perf_counter()
        for space in spaces:
            HANDLERS[("spaces", "create")](space, {})
        elapsed = time.perf_counter() - start
    database.close()
    return elapsed / count


def posix_scale(existing, creates, folder):
    """Seconds per fileset create (create, quota, securing, usage: the storage part of a space create) on
    the posix driver with `existing` filesets already there: the median of `creates`."""
    from types import SimpleNamespace

    from service.storage import get_driver
    from service.storage.access import Access
    mountpoint = Path(folder) / "mmfs1"
    mountpoint.mkdir()
    driver = get_driver(SimpleNamespace(driver="posix", filesystems=[SimpleNamespace(
        name="mmfs1", mountpoint=str(mountpoint), pools=["sas1"])], keep_setid=False))
    fs = driver.discover()[0]
    for n in range(existing):
        driver.create_fileset(fs, f"sas1-old{n}", str(mountpoint / "projects" / f"p{n % 100}" / f"old{n}"), "sas1")
    times = []
    for n in range(creates):
        start = time.perf_counter()
        name = f"sas1-new{n}"
        driver.create_fileset(fs, name, str(mountpoint / "projects" / f"p{n % 100}" / f"new{n}"), "sas1")
        driver.set_quota(fs, name, 10 << 30, 9 << 30)
        driver.secure_fileset(fs, name, Access(mode=0o2770), every_file=True)
        driver.usage(fs, name)
        times.append(time.perf_counter() - start)
    return lib.pct(times, 50)      # the median: each create waits on a few fsyncs, which vary


@contextlib.contextmanager
def service(folder, mode):
    """A server (and workers) in `mode`: embedded, redis-1 or redis-2. Yields (server, admin session)."""
    release = None
    queue = None
    if mode.startswith("redis"):
        queue, release = redis_queue()
        if queue is None:
            raise SystemExit(f"Redis: {release} (or run with --no-redis)")
    server = Server(folder, queue=queue, worker=(mode == "embedded"))
    try:
        server.start()
        with contextlib.ExitStack() as workers:
            for n in range(int(mode.split("-")[1]) if mode.startswith("redis") else 0):
                workers.enter_context(server.standalone_worker(f"worker{n}"))
            session = server.session()
            yield server, session
    finally:
        server.stop()
        if release:
            release()


def references(server, session, with_template):
    url = server.url
    profile = session.get(url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
    exposer = session.get(url + "/exposers/", params={"where": '{"type": "gpfsnative", "name": "mmfs1"}'}).json()
    refs = {"profile": profile["collection"]["items"][0]["href"],
            "exposers": [exposer["collection"]["items"][0]["href"]]}
    if with_template:
        root = model(server.folder / "models" / "t")
        made = session.post(url + "/templates/", json={"name": "t", "type": "filesystemtemplate",
                                                        "template_location": str(root)})
        assert made.status_code == 202, made.text
        wait_for(lambda: session.get(made.headers["Location"]).json()["collection"]["items"][0]["data"][0]["value"]
                 == "ACTIVE", timeout=60, what="template")
        refs["templates"] = [made.json()["collection"]["items"][0]["href"]]
    return refs


def body(refs, name):
    return json.dumps(dict(refs, name=name, relativepath=f"projects/{name}", size=1 << 30))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.rstrip("Z"))


def jobs_of(session, url, count):
    """The last `count` create jobs, as {created, started, finished} datetimes."""
    found = []
    page = 1
    while len(found) < count:
        answer = session.get(url + "/jobs/", params={"where": '{"action": "create", "resource_type": "spaces"}',
                                                     "sort": "-created", "max_results": 1000, "page": page}).json()
        items = answer["collection"]["items"]
        if not items:
            break
        for item in items:
            data = {d["name"]: d["value"] for d in item["data"]}
            found.append({k: parse_time(data[k]) for k in ("created", "started", "finished")} | {
                "status": data["status"]})
        page += 1
    return found[:count]


def burst(server, session, refs, count, tag):
    """POST `count` creates at once; (seconds until all ACTIVE, jobs)."""
    token = session.auth[0]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    posts = [["POST", "/spaces/", headers, body(refs, f"{tag}{n}")] for n in range(count)]
    start = time.perf_counter()
    lib.load(server.url, posts, 8, count=count)

    def done():
        answer = session.get(server.url + "/spaces/", params={
            "where": json.dumps({"name": {"$regex": f"^{tag}[0-9]+$"}, "status": {"$in": ["ACTIVE", "ERRORED"]}}),
            "max_results": 1})
        return int(answer.headers["X-Total-Count"]) >= count
    wait_for(done, timeout=600, interval=0.05, what=f"{count} creates")
    elapsed = time.perf_counter() - start
    jobs = jobs_of(session, server.url, count)
    errored = [j for j in jobs if j["status"] != "COMPLETED"]
    if errored:
        raise RuntimeError(f"{len(errored)} create jobs did not complete")
    return elapsed, jobs


def sequential(server, session, refs, count, tag):
    """Seconds from POST to ACTIVE, one create at a time."""
    latencies = []
    for n in range(count):
        start = time.perf_counter()
        made = session.post(server.url + "/spaces/", data=body(refs, f"{tag}{n}"),
                            headers={"Content-Type": "application/json"})
        assert made.status_code == 202, made.text
        location = made.headers["Location"]
        while True:
            status = session.get(location).json()["collection"]["items"][0]["data"][0]["value"]
            if status in ("ACTIVE", "ERRORED"):
                break
            time.sleep(0.002)
        latencies.append(time.perf_counter() - start)
        assert status == "ACTIVE"
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    count, sequential_count = (6, 3) if args.smoke else (100, 20)
    modes = ["embedded"] + ([] if args.no_redis else ["redis-1", "redis-2"])
    results = {"count": count, "in_process": {}, "modes": {}}
    existing = 200 if args.smoke else 10000
    with tempfile.TemporaryDirectory(prefix="bench-posix-") as empty, \
            tempfile.TemporaryDirectory(prefix="bench-posix-") as full:
        alone, crowded = posix_scale(0, 50, empty), posix_scale(existing, 50, full)
    results["posix_create"] = {"existing": existing, "seconds_with_none": round(alone, 5),
                               f"seconds_with_{existing}": round(crowded, 5), "ratio": lib.ratio(crowded, alone),
                               "target_ratio": 1.2}
    print(f"bench.jobs: posix fileset create with {existing:,} filesets / with none: {crowded * 1000:.2f} ms / "
          f"{alone * 1000:.2f} ms: ratio {crowded / alone:.2f}x", flush=True)
    print("bench.jobs: space creates through the queue / the same job bodies back to back in-process", flush=True)
    for with_template in (False, True):
        key = "template" if with_template else "plain"
        with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
            per_job = in_process(count, with_template, folder)
        results["in_process"][key] = {"seconds_per_job": round(per_job, 5), "jobs_per_second": round(1 / per_job, 2)}
        print(f"  in-process {key}: {per_job * 1000:.1f} ms per job body, {1 / per_job:.1f} jobs/s", flush=True)
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder, service(folder, mode) as (server, session):
            row = results["modes"].setdefault(mode, {})
            plain = references(server, session, False)
            latencies = sequential(server, session, plain, sequential_count, "seq")
            body_alone = results["in_process"]["plain"]["seconds_per_job"]
            row["sequential"] = {**lib.summary(latencies), "ratio_to_body": lib.ratio(lib.pct(latencies, 50),
                                                                                       body_alone)}
            print(f"  {mode}: sequential POST->ACTIVE p50 {row['sequential']['p50_ms']:.1f} ms = "
                  f"{row['sequential']['ratio_to_body']:.2f}x the job body alone", flush=True)
            for with_template in (False, True):
                key = "template" if with_template else "plain"
                refs = references(server, session, True) if with_template else plain
                elapsed, jobs = burst(server, session, refs, count, f"b{key[0]}")
                waits = [(j["started"] - j["created"]).total_seconds() for j in jobs]
                rate = count / elapsed
                base = results["in_process"][key]["jobs_per_second"]
                row[f"burst_{key}"] = {"seconds": round(elapsed, 3), "jobs_per_second": round(rate, 2),
                                       "ratio_to_in_process": lib.ratio(rate, base),
                                       "queue_wait_p50_s": round(lib.pct(waits, 50), 3),
                                       "queue_wait_p99_s": round(lib.pct(waits, 99), 3),
                                       "queue_wait_p99_target_s": count / 10,
                                       "_waits": waits}
                print(f"  {mode}: burst of {count} ({key}): {rate:.1f} jobs/s = {rate / base:.2f}x in-process; "
                      f"queue wait p50 {lib.pct(waits, 50):.2f} s p99 {lib.pct(waits, 99):.2f} s", flush=True)
    if "redis-2" in results["modes"]:
        one, two = results["modes"]["redis-1"], results["modes"]["redis-2"]
        results["redis_scaling"] = {k: lib.ratio(two[f"burst_{k}"]["jobs_per_second"], one[f"burst_{k}"]["jobs_per_second"])
                                    for k in ("plain", "template")}
        print("  2 Redis worker processes / 1: " + ", ".join(f"{k} {v:.2f}x" for k, v in results["redis_scaling"].items()))
    for mode, row in results["modes"].items():
        print(f"{mode}: ratio burst/in-process {row['burst_plain']['ratio_to_in_process']:.2f}x plain, "
              f"{row['burst_template']['ratio_to_in_process']:.2f}x template; ratio sequential/body "
              f"{row['sequential']['ratio_to_body']:.2f}x")
    out = Path(args.out) if args.out else lib.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "jobs.png")
    for row in results["modes"].values():
        for key in ("burst_plain", "burst_template"):
            row[key].pop("_waits", None)
    print(f"results: {lib.save('jobs', results, out)}")


def plot(results, path):
    plt = lib.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    modes = list(results["modes"])
    width = 0.35
    for offset, key in ((-width / 2, "plain"), (width / 2, "template")):
        left.bar([n + offset for n in range(len(modes))],
                 [results["modes"][m][f"burst_{key}"]["jobs_per_second"] for m in modes], width, label=f"burst, {key}")
        left.axhline(results["in_process"][key]["jobs_per_second"], linestyle="--",
                     color="tab:blue" if key == "plain" else "tab:orange", label=f"in-process, {key}")
    left.set_xticks(range(len(modes)), modes)
    left.set_ylabel("jobs/s")
    left.set_title(f"burst of {results['count']} creates: throughput")
    left.legend(fontsize=8)
    for mode in modes:
        waits = sorted(results["modes"][mode]["burst_plain"]["_waits"])
        right.plot(waits, [n / len(waits) for n in range(1, len(waits) + 1)], label=mode)
    right.set_xlabel("queue wait (started - created), s")
    right.set_title("queue wait in the burst (no template): CDF")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
