"""No single query can stall the API: $regex runs in linear time, and every request's queries
have a time budget after which they stop with a C+J error, the connection fine for the next."""
import sqlite3
import threading
import time
import uuid

import requests

from tests.harness import CJ, Server, cj_body, data_of, wait_status

CATASTROPHIC = {"where": '{"name": {"$regex": "^(a|a)*b$"}}'}   # 2^n steps for a backtracking engine


def test_a_catastrophic_regex_stalls_no_one(server):
    session = server.session()
    profile = session.get(server.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
    exposer = session.get(server.url + "/exposers/").json()
    resp = session.post(server.url + "/spaces/", headers=CJ, json=cj_body(
        name="a" * 60, relativepath="r/aaaa", size=1 << 20, profile=profile["collection"]["items"][0]["href"],
        exposers=exposer["collection"]["items"][0]["href"]))
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    answers = {}

    def hostile():
        start = time.perf_counter()
        answers["hostile"] = (session.get(server.url + "/spaces/", params=CATASTROPHIC, timeout=60),
                              time.perf_counter() - start)
    other = server.session("reader", "reader-pass")
    thread = threading.Thread(target=hostile)
    thread.start()
    latencies = []
    for _ in range(5):
        start = time.perf_counter()
        assert other.get(server.url + "/profiles/", timeout=60).status_code == 200
        latencies.append(time.perf_counter() - start)
    thread.join(timeout=60)
    resp, took = answers["hostile"]
    assert resp.status_code == 200 and resp.headers["X-Total-Count"] == "0"
    assert max(latencies) < 1.0, latencies
    assert took < 1.0


def test_a_request_past_its_budget_stops_with_503_and_the_next_one_works(tmp_path):
    srv = Server(tmp_path, env={"PIXSTOR_SERVER_QUERY_BUDGET": "1"}).start()
    try:
        # a million jobs, written straight into the database: enough for a scan to take seconds
        rows = ((str(uuid.uuid4()), "COMPLETED", "create", "spaces", str(n), "2026-01-01 00:00:00",
                 "x" * 40 + str(n), "", "", 0) for n in range(1_000_000))
        with sqlite3.connect(tmp_path / "var" / "pixstor.db") as connection:
            connection.executemany(
                "INSERT INTO job (id, status, action, resource_type, resource_id, created, message, stdout, "
                "stderr, attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        session = srv.session()
        start = time.perf_counter()
        resp = session.get(srv.url + "/jobs/", params={"where": '{"message": {"$regex": "y$"}}', "sort": "-message"})
        took = time.perf_counter() - start
        assert resp.status_code == 503, resp.text[:300]
        error = resp.json()["collection"]["error"]
        assert "longer than their budget of 1 s" in error["message"] and resp.headers["Retry-After"]
        assert took < 5
        fine = session.get(srv.url + "/profiles/")
        assert fine.status_code == 200 and data_of(fine.json())["name"].startswith("mmfs1-")
    finally:
        srv.stop()
