"""Stopping the server (SIGTERM, what `systemctl stop` sends) under load loses nothing.

Eight clients read and write while the server is stopped and started again, many times in a
row; after each stop the SQLite files must be intact (header, integrity_check), the log clean,
and every write the server acknowledged must still be there at the end.
"""
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from tests.harness import (CJ, CLI, Server, cj_body, make_model, postgres_database, redis_queue, require,
                           wait_for, wait_status)

CLIENTS = 8
CYCLES = 8


def _refs(session, url):
    profile = session.get(url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
    exposer = session.get(url + "/exposers/").json()
    return profile["collection"]["items"][0]["href"], exposer["collection"]["items"][0]["href"]


def _client(number, srv, token, refs, stop, acknowledged, errors):
    """Create spaces and read lists until told to stop; remember every 202."""
    session = requests.Session()
    session.auth = (token, "")
    profile, exposer = refs
    count = 0
    while not stop.is_set():
        count += 1
        name = f"c{number}-{count}-{time.monotonic_ns()}"
        try:
            resp = session.post(srv.url + "/spaces/", headers=CJ, timeout=10, json=cj_body(
                name=name, relativepath=f"load/{name}", exposers=exposer, profile=profile, size=1 << 20))
            if resp.status_code == 202:
                acknowledged.append(resp.json()["collection"]["items"][0]["href"])
            elif resp.status_code >= 500:
                errors.append(f"POST {resp.status_code}: {resp.text[:200]}")
            listing = session.get(srv.url + "/spaces/", params={"max_results": 5}, timeout=10)
            if listing.status_code >= 500:
                errors.append(f"GET {listing.status_code}: {listing.text[:200]}")
        except requests.ConnectionError:
            return   # the server went away mid-request: that request was not acknowledged


def _load_then_stop(srv, acknowledged, errors):
    stop = threading.Event()
    session = srv.session()
    token, refs = session.auth[0], _refs(session, srv.url)
    clients = [threading.Thread(target=_client, args=(n, srv, token, refs, stop, acknowledged, errors))
               for n in range(CLIENTS)]
    for client in clients:
        client.start()
    start = len(acknowledged)
    wait_for(lambda: len(acknowledged) >= start + 2 * CLIENTS, timeout=30, what="writes under load")
    srv.process.send_signal(signal.SIGTERM)
    code = srv.process.wait(timeout=60)
    stop.set()
    for client in clients:
        client.join(timeout=30)
    srv.log_file.close()
    return code


def _sqlite_intact(path):
    with open(path, "rb") as f:
        assert f.read(16) == b"SQLite format 3\x00", f"{path}: header overwritten"
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",), path


@pytest.mark.parametrize("topology", ["embedded", "postgres-redis"])
def test_sigterm_under_load_loses_nothing(tmp_path, topology):
    database = queue = None
    cleanups = []
    if topology == "postgres-redis":
        database, drop = postgres_database()
        require(database, drop)
        queue, flush = redis_queue()
        require(queue, flush)
        cleanups += [drop, flush]
    srv = Server(tmp_path, database=database, queue=queue)
    try:
        srv.start()
        acknowledged, errors = [], []
        for cycle in range(CYCLES):
            if cycle:
                srv.serve()
            code = _load_then_stop(srv, acknowledged, errors)
            log = srv.log()
            assert code == 0, f"cycle {cycle}: exit {code}\n{log[-3000:]}"
            assert "Traceback" not in log and "Bad file descriptor" not in log, log[-3000:]
            if topology == "embedded":
                _sqlite_intact(tmp_path / "var" / "pixstor.db")
                _sqlite_intact(tmp_path / "var" / "queue.db")
        assert errors == []
        assert len(acknowledged) > CYCLES * CLIENTS
        srv.serve()
        session = srv.session()
        missing = [href for href in acknowledged if session.get(srv.url + href).status_code != 200]
        assert missing == []
    finally:
        srv.stop()
        for cleanup in cleanups:
            cleanup()


def test_worker_stops_gracefully_on_sigterm(tmp_path):
    srv = Server(tmp_path, worker=False).start()
    try:
        worker = subprocess.Popen([CLI, "--config", str(srv.config), "worker"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        session = srv.session()
        model = make_model(srv.mountpoint / "model")
        resp = session.post(srv.url + "/templates/", headers=CJ, json=cj_body(
            name="t", type="filesystemtemplate", template_location=str(model)))
        assert wait_status(session, resp.headers["Location"], timeout=30) == "ACTIVE"   # the worker runs
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0, out
        assert "Traceback" not in out
    finally:
        srv.stop()
