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
    # posix: each snapshot with the modes its entries had (.{name}.modes), deleted along with it
    assert sorted(p.name for p in snapshots.iterdir()) == [
        ".kept.modes", ".later.modes", ".soon.modes", "kept", "later", "soon"]

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
    assert sorted(p.name for p in snapshots.iterdir()) == [".kept.modes", "kept"]
    assert data_of(session.get(srv.url + kept).json())["status"] == "ACTIVE"


# Snapshot policies ---------------------------------------------------------------------------

def make_policy(session, srv, name="hourly", schedule="0 * * *", **values):
    answer = session.post(srv.url + "/snapshotpolicies/", headers=CJ,
                          json=cj_body(name=name, schedule=schedule, prefix=name, **values))
    assert answer.status_code == 202, answer.text
    href = answer.json()["collection"]["items"][0]["href"]
    assert wait_status(session, srv.url + href) == "ACTIVE"
    return href


def apply_policies(session, srv, space, *policies):
    answer = session.patch(srv.url + space, json={"snapshot_policies": list(policies)})
    assert answer.status_code == 200, answer.text
    assert data_of(answer.json())["snapshot_policies"] == list(policies)


def slot(hour, day=2):
    return f"{datetime.datetime(2026, 3, day) + datetime.timedelta(hours=hour):%Y%m%dT%H%MZ}"


def policy_snapshots(session, srv, policy):
    found = session.get(srv.url + "/snapshots/", params={
        "where": f'{{"policy": "{policy.rsplit("/", 1)[1]}"}}', "sort": "name", "max_results": 100}).json()
    return {data_of(found, i)["name"]: data_of(found, i)["status"] for i in range(len(found["collection"]["items"]))}


def wait_policy_snapshots(session, srv, policy, names, timeout=20):
    """Until the policy's snapshots are exactly `names`, all ACTIVE."""
    wanted = {name: "ACTIVE" for name in names}
    wait_for(lambda: policy_snapshots(session, srv, policy) == wanted, timeout=timeout,
             what=f"the snapshots of {policy} to be {sorted(names)}")


def test_policies_are_validated_and_spaces_list_them(srv, clock):
    session = srv.session("operator1", "operator-pass")
    post = lambda **values: session.post(srv.url + "/snapshotpolicies/", headers=CJ,  # noqa: E731
                                         json=cj_body(**{"name": "p", "prefix": "p", **values}))
    assert "four cron fields" in details(post(schedule="0 * *", retain_count=3))["schedule"]
    assert "from 0 to 59" in details(post(schedule="60 * * *", retain_count=3))["schedule"]
    assert "from 0 to 7" in details(post(schedule="0 0 * 8", retain_count=3))["schedule"]
    assert "not a duration" in details(post(schedule="0 * * *", retain_duration="3 days"))["retain_duration"]
    assert "without retention" in details(post(schedule="*/15 8-18 * 1-5"))["retain_count"]
    policy = make_policy(session, srv, schedule="*/15  8-18 * 1-5", retain_duration="2d")
    assert data_of(session.get(srv.url + policy).json())["schedule"] == "*/15 8-18 * 1-5"

    space = make_space(session, srv)
    template = [d["name"] for d in session.get(srv.url + "/spaces/").json()["collection"]["template"]["data"]]
    assert "snapshot_policies" not in template
    apply_policies(session, srv, space, policy)
    refused = session.delete(srv.url + policy)
    assert refused.status_code == 409 and "applies to spaces s" in refused.json()["collection"]["error"]["message"]
    assert session.delete(srv.url + policy, params={"force": "true"}).status_code == 202
    assert wait_status(session, srv.url + policy, wanted=()) is None
    assert data_of(session.get(srv.url + space).json())["snapshot_policies"] == []


def test_hourly_policy_keeping_3_over_a_day_leaves_the_3_newest(srv, clock):
    session = srv.session()
    space = make_space(session, srv)
    policy = make_policy(session, srv, retain_count=3)
    apply_policies(session, srv, space, policy)
    # the space's first look takes the latest slot, 09:00
    wait_policy_snapshots(session, srv, policy, [f"hourly-{slot(9)}"])
    for hour in range(10, 10 + 24):
        clock.set(datetime.datetime(2026, 3, 2) + datetime.timedelta(hours=hour))
        wait_policy_snapshots(session, srv, policy, [f"hourly-{slot(h)}" for h in range(max(9, hour - 2), hour + 1)])
    newest = [f"hourly-{slot(h)}" for h in (31, 32, 33)]
    assert sorted(p.name for p in (srv.mountpoint / "p" / "s" / ".snapshots").iterdir()) == sorted(
        newest + [f".{name}.modes" for name in newest])
    pruned = session.get(srv.url + "/jobs/", params={"where": '{"owner": "system:scheduler", "action": "delete"}'})
    assert pruned.headers["X-Total-Count"] == "22"


def test_retain_duration_sets_expires_and_a_missed_window_is_taken_once(tmp_path, clock):
    srv = start_server(tmp_path, clock, worker=False)
    try:
        session = srv.session()
        with srv.standalone_worker():
            space = make_space(session, srv)
            policy = make_policy(session, srv, retain_duration="5h")
            apply_policies(session, srv, space, policy)
            wait_policy_snapshots(session, srv, policy, [f"hourly-{slot(9)}"])
        first = session.get(srv.url + "/snapshots/", params={"where": '{"name": "hourly-%s"}' % slot(9)}).json()
        assert data_of(first)["expires"] == "2026-03-02T14:00:00Z"
        clock.set(datetime.datetime(2026, 3, 2, 13, 30))     # no worker from 10:00 to 13:00
        with srv.standalone_worker(name="back"):
            wait_policy_snapshots(session, srv, policy, [f"hourly-{slot(9)}", f"hourly-{slot(13)}"])
            clock.set(datetime.datetime(2026, 3, 2, 14, 0))    # 09:00 + 5h: expired; 14:00 taken
            wait_policy_snapshots(session, srv, policy, [f"hourly-{slot(13)}", f"hourly-{slot(14)}"])
    finally:
        srv.stop()


def active_names(session, srv, space):
    found = session.get(srv.url + "/snapshots/", params={
        "where": f'{{"space": "{space.rsplit("/", 1)[1]}", "status": "ACTIVE"}}', "max_results": 100}).json()
    return {data_of(found, i)["name"] for i in range(len(found["collection"]["items"]))}


def test_two_scaled_workers_never_take_a_scheduled_snapshot_twice(tmp_path, clock, postgres, redis_url):
    srv = start_server(tmp_path, clock, worker=False, database=postgres, queue=redis_url)
    try:
        session = srv.session()
        with srv.standalone_worker(name="w1") as w1, srv.standalone_worker(name="w2") as w2:
            spaces = [make_space(session, srv, name) for name in ("a", "b")]
            policy = make_policy(session, srv, retain_count=10)
            for space in spaces:
                apply_policies(session, srv, space, policy)
            for hour in range(9, 15):
                clock.set(datetime.datetime(2026, 3, 2, hour, 0))
                wanted = {f"hourly-{slot(h)}" for h in range(9, hour + 1)}
                for space in spaces:
                    wait_for(lambda: active_names(session, srv, space) == wanted, timeout=20,
                             what=f"{space} to have {sorted(wanted)}")
            assert w1.poll() is None and w2.poll() is None     # both looked all along
        creates = session.get(srv.url + "/jobs/", params={
            "where": '{"owner": "system:scheduler", "action": "create"}'})
        assert creates.headers["X-Total-Count"] == str(2 * 6)
        errored = session.get(srv.url + "/jobs/", params={"where": '{"status": "ERRORED"}'})
        assert errored.headers["X-Total-Count"] == "0"
    finally:
        srv.stop()
