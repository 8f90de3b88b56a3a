"""No overlapping spaces, by construction: racing creates of one path, or of a path and one
inside it, leave exactly one space — on the embedded topology (SQLite, SqliteHuey, the
worker in the API process) and on PostgreSQL + Redis with two API processes."""
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.harness import CJ, Server, cj_body, data_of, wait_status

THREADS = 20
# two groups of paths that overlap within the group: a space and one inside it; one path under many names
GROUPS = {"nested": ["race/a", "race/a/b"], "same": ["race/same"]}


def race(urls, token, refs, group, paths):
    """THREADS creates released at once, spread over the API processes `urls`; returns the answers."""
    start = threading.Barrier(THREADS)

    def create(n):
        body = cj_body(name=f"{group}{n}", relativepath=paths[n % len(paths)], exposers=refs["exposer"],
                       profile=refs["profile"], size=1 << 20)
        start.wait()
        return requests.post(urls[n % len(urls)] + "/spaces/", auth=(token, ""), headers=CJ, json=body, timeout=60)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(create, range(THREADS)))


def check_races(srv, urls):
    session = srv.session()
    refs = {
        "profile": session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
        ["collection"]["items"][0]["href"],
        "exposer": session.get(srv.url + "/exposers/", params={"where": '{"type": "gpfsnative"}'}).json()
        ["collection"]["items"][0]["href"],
    }
    winners = {}
    for group, paths in GROUPS.items():
        answers = race(urls, session.auth[0], refs, group, paths)
        codes = sorted(r.status_code for r in answers)
        assert codes == [202] + [409] * (THREADS - 1), [r.text for r in answers if r.status_code != 409]
        for answer in answers:
            if answer.status_code == 409:
                error = answer.json()["collection"]["error"]
                assert error["details"] == {"relativepath": "already in use"}, error
                assert f"space {group}" in error["message"], error
        accepted = next(r for r in answers if r.status_code == 202)
        assert wait_status(session, accepted.headers["Location"], timeout=30) == "ACTIVE"
        winners[group] = data_of(accepted.json())
    spaces = session.get(srv.url + "/spaces/", params={"max_results": 100}).json()["collection"]["items"]
    found = {d["name"]: d for d in (data_of({"collection": {"items": [item]}}) for item in spaces)}
    # the refused creates left nothing: no item (ERRORED or otherwise), no folder
    assert sorted(found) == sorted(w["name"] for w in winners.values())
    assert {d["status"] for d in found.values()} == {"ACTIVE"}
    nested = winners["nested"]["relativepath"]
    assert (srv.mountpoint / nested).is_dir()
    if nested == "race/a":
        assert list((srv.mountpoint / "race" / "a").iterdir()) == []
    else:   # race/a is the folder the space race/a/b was made in, and holds nothing else
        assert [p.name for p in (srv.mountpoint / "race" / "a").iterdir()] == ["b"]
    assert sorted(p.name for p in (srv.mountpoint / "race").iterdir()) == ["a", "same"]


def test_racing_creates_leave_one_space_per_path_embedded(server):
    check_races(server, [server.url])


def test_racing_creates_leave_one_space_per_path_on_postgresql_with_two_api_processes(tmp_path, postgres,
                                                                                       redis_url):
    srv = Server(tmp_path, database=postgres, queue=redis_url).start()
    try:
        with srv.api_process() as second:
            check_races(srv, [srv.url, second])
    finally:
        srv.stop()

