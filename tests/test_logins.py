"""Logins: throttled per user name and per address (across API processes), the same cost for
unknown users, no credentials in URLs or logs, revocation."""
import statistics
import subprocess
import time

import pytest
import requests

from tests.harness import CLI, Server, free_port, postgres_database, require, wait_for

FAST = {"PIXSTOR_AUTH_LOGIN_FAILURES": "3", "PIXSTOR_AUTH_LOCKOUT": "3", "PIXSTOR_AUTH_LOGIN_FAILURES_PER_ADDRESS": "6"}


def login(url, username, password):
    return requests.post(url + "/oauth2/token", timeout=30,
                         data={"grant_type": "password", "username": username, "password": password})


@pytest.fixture
def srv(tmp_path):
    """A server of its own per test: failures counted by one test must not lock another."""
    server = Server(tmp_path, env=FAST).start()
    yield server
    server.stop()


def test_a_user_name_is_locked_after_its_failures_and_free_again_after_the_lockout(srv):
    for _ in range(3):
        assert login(srv.url, "operator1", "wrong").status_code == 400
    locked = login(srv.url, "operator1", "operator-pass")   # even the right password waits
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 3
    assert "too many failed logins" in locked.json()["error_description"]
    assert login(srv.url, "reader", "reader-pass").status_code == 200   # other users are not locked
    ok = wait_for(lambda: login(srv.url, "operator1", "operator-pass").status_code == 200, timeout=10,
                  interval=0.5, what="the lockout to end")
    assert ok


def test_one_address_is_locked_after_its_failures_over_many_names(srv):
    for n in range(6):
        assert login(srv.url, f"nobody{n}", "wrong").status_code == 400
    resp = login(srv.url, "reader", "reader-pass")
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    wait_for(lambda: login(srv.url, "reader", "reader-pass").status_code == 200, timeout=10, interval=0.5,
             what="the address lockout to end")


def test_unknown_users_cost_what_wrong_passwords_cost(tmp_path):
    # room for 8 failures of one name (nothing is locked while measuring)
    server = Server(tmp_path, env={"PIXSTOR_AUTH_LOGIN_FAILURES": "20"}).start()
    try:
        def timed(username):
            start = time.perf_counter()
            assert login(server.url, username, "wrong-password").status_code == 400
            return time.perf_counter() - start
        login(server.url, "warm-up", "x")
        # taken in turns, so that what else the machine does weighs on both alike
        pairs = [(timed("operator1"), timed(f"ghost{n}")) for n in range(8)]
        known = statistics.median(k for k, _ in pairs)
        unknown = statistics.median(u for _, u in pairs)
        assert 0.5 < unknown / known < 2, (known, unknown)
    finally:
        server.stop()


def test_credentials_in_the_url_are_refused_and_never_logged(srv):
    resp = requests.post(srv.url + "/oauth2/token?username=admin&password=sekrit-in-url",
                         data={"grant_type": "password"}, timeout=30)
    assert resp.status_code == 400
    assert "must not be sent in the URL" in resp.json()["collection"]["error"]["message"]
    token = srv.token()
    assert requests.get(srv.url + f"/spaces/?access_token={token}", timeout=30).status_code == 400
    log = srv.log()
    assert "sekrit-in-url" not in log and token not in log
    assert "password=***" in log


def test_revoked_tokens_end_at_once(srv):
    token = srv.token("reader", "reader-pass")
    assert requests.get(srv.url + "/spaces/", auth=(token, ""), timeout=30).status_code == 200
    resp = requests.post(srv.url + "/oauth2/revoke", data={"token": token}, timeout=30)
    assert resp.status_code == 200 and resp.json() == {}
    assert requests.get(srv.url + "/spaces/", auth=(token, ""), timeout=30).status_code == 401
    assert requests.post(srv.url + "/oauth2/revoke", data={"token": token}, timeout=30).status_code == 200
    assert requests.post(srv.url + "/oauth2/revoke", data={}, timeout=30).status_code == 400


def test_throttling_holds_across_two_api_processes(tmp_path):
    database, drop = postgres_database()
    require(database, drop)
    server = Server(tmp_path, database=database, env=FAST)
    other = None
    try:
        server.start()
        port = free_port()
        other = subprocess.Popen([CLI, "--config", str(server.config), "serve", "--no-worker", "--port", str(port)],
                                 env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        second = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(second), timeout=20, what="the second API process")
        assert login(server.url, "operator1", "wrong").status_code == 400
        assert login(second, "operator1", "wrong").status_code == 400
        assert login(server.url, "operator1", "wrong").status_code == 400
        assert login(second, "operator1", "operator-pass").status_code == 429
    finally:
        if other:
            other.terminate()
            other.wait(timeout=30)
        server.stop()
        drop()


def _up(url):
    try:
        return requests.get(url + "/", timeout=1).status_code == 401
    except requests.ConnectionError:
        return False
