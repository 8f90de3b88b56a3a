"""Snapshot lifecycle (issue 13): expiry by the worker's scheduler, against a real server and
worker whose "now" the test sets (service.lifecycle: PIXSTOR_TEST_CLOCK_FILE)."""
import datetime

import pytest

from service import lifecycle
from tests.harness import CJ, Server, cj_body, data_of, wait_for, wait_status

FAST = {"PIXSTOR_QUEUE_HEARTBEAT": "1", "PIXSTOR_QUEUE_STALE_AFTER": "3"}
START = datetime.datetime(2026, 3, 2, 9, 30)     # a Monday, UTC


class Clock:
    """The scheduler's "now" for every process of a test."""

    def __init__(self, path, moment):
        self.path = path
        self.set(moment)

    def set(self, moment):
        self.moment = moment
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(moment.isoformat() + "Z")
        tmp.replace(self.path)      # a reader sees the old time or the new, never half a file

    def advance(self, **delta):
        self.set(self.moment + datetime.timedelta(**delta))


def stamp(moment):
    return moment.isoformat() + "Z"


@pytest.fixture
def clock(tmp_path):
    return Clock(tmp_path / "clock", START)


def start_server(tmp_path, clock, **kwargs):
    env = dict(FAST, **{lifecycle.CLOCK_FILE: str(clock.path)}, **kwargs.pop("env", {}))
    return Server(tmp_path, env=env, **kwargs).start()


@pytest.fixture
def srv(tmp_path, clock):
    server = start_server(tmp_path, clock)
    yield server
    server.stop()


def first_href(session, url, where):
    return session.get(url, params={"where": where}).json()["collection"]["items"][0]["href"]


def make_space(session, srv, name="s"):
    answer = session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
        name=name, relativepath=f"p/{name}", size=1 << 30,
        exposers=first_href(session, srv.url + "/exposers/", '{"type": "gpfsnative"}'),
        profile=first_href(session, srv.url + "/profiles/", '{"name": "mmfs1-sas1"}')))
    assert answer.status_code == 202, answer.text
    href = answer.json()["collection"]["items"][0]["href"]
    assert wait_status(session, srv.url + href) == "ACTIVE"
    return href


def make_snapshot(session, srv, space, name, **values):
    answer = session.post(srv.url + "/snapshots/", headers=CJ,
                          json=cj_body(name=name, type="gpfsspacesnapshot", space=space, **values))
    assert answer.status_code == 202, answer.text
    href = answer.json()["collection"]["items"][0]["href"]
    assert wait_status(session, srv.url + href) == "ACTIVE"
    return href


def details(answer):
    assert answer.status_code == 422, answer.text
    return answer.json()["collection"]["error"]["details"]


def test_expires_and_retain_for_are_checked_and_set(srv, clock):
    session = srv.session()
    space = make_space(session, srv)
    post = lambda **values: session.post(srv.url + "/snapshots/", headers=CJ, json=cj_body(  # noqa: E731
        name="bad", type="gpfsspacesnapshot", space=space, **values))
    assert "not a duration" in details(post(retain_for="7x"))["retain_for"]
    assert "not an ISO 8601 timestamp" in details(post(expires="tomorrow"))["expires"]
    assert "not in the future" in details(post(expires=stamp(START)))["expires"]
    assert details(post(expires=stamp(START + datetime.timedelta(days=1)), retain_for="1d")) == {
        "retain_for": "give expires or retain_for, not both"}

    week = make_snapshot(session, srv, space, "week", retain_for="7d")
    assert data_of(session.get(srv.url + week).json())["expires"] == stamp(START + datetime.timedelta(days=7))
    zoned = make_snapshot(session, srv, space, "zoned", expires="2026-12-01T01:00:00+01:00")
    assert data_of(session.get(srv.url + zoned).json())["expires"] == "2026-12-01T00:00:00Z"
    kept = make_snapshot(session, srv, space, "kept")
    assert data_of(session.get(srv.url + kept).json())["expires"] is None

    # PATCH extends, shortens or clears; retain_for is for creating only
    later = session.patch(srv.url + week, json={"expires": "2027-01-01T00:00:00Z"})
    assert later.status_code == 200, later.text
    assert data_of(later.json())["expires"] == "2027-01-01T00:00:00Z"
    assert "only on create" in details(session.patch(srv.url + week, json={"retain_for": "1d"}))["retain_for"]
    assert "not in the future" in details(session.patch(srv.url + week, json={"expires": stamp(START)}))["expires"]
    cleared = session.patch(srv.url + week, json={"expires": None})
    assert data_of(cleared.json())["expires"] is None
    found = session.get(srv.url + "/snapshots/", params={"where": '{"expires": {"$exists": true}}'})
    assert [data_of(found.json(), i)["name"] for i in range(len(found.json()["collection"]["items"]))] == ["zoned"]


def test_expired_snapshots_are_deleted_on_time_by_jobs_with_logs(srv, clock):
    session = srv.session()
    space = make_space(session, srv)
    soon = make_snapshot(session, srv, space, "soon", retain_for="1h")
    later = make_snapshot(session, srv, space, "later", retain_for="3h")
    kept = make_snapshot(session, srv, space, "kept")
    snapshots = srv.mountpoint / "p" / "s" / ".snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["kept", "later", "soon"]

    clock.advance(minutes=59)
    clock.advance(minutes=1)        # soon's expiry: the look that deletes it sees later's as not due
    assert wait_status(session, srv.url + soon, wanted=(), timeout=20) is None
    assert data_of(session.get(srv.url + later).json())["status"] == "ACTIVE"
    jobs = session.get(srv.url + "/jobs/", params={"where": f'{{"resource_id": "{soon.rsplit("/", 1)[1]}"}}',
                                                    "sort": "created"}).json()
    job = data_of(jobs, 1)
    assert (job["action"], job["owner"], job["status"]) == ("delete", "system:scheduler", "COMPLETED")
    log = session.get(srv.url + f"/jobs/{job['id']}/stderr").text
    assert "snapshot soon expired at 2026-03-02T10:30:00Z (now 2026-03-02T10:30:00Z)" in log

    clock.advance(hours=2)
    assert wait_status(session, srv.url + later, wanted=(), timeout=20) is None
    assert sorted(p.name for p in snapshots.iterdir()) == ["kept"]
    assert data_of(session.get(srv.url + kept).json())["status"] == "ACTIVE"
