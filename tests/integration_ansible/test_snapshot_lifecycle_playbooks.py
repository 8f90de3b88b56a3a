"""The snapshot lifecycle of pixstor.mgmt against a real server (issue 13, item 5), each new
option in check mode (no write) and for real (the writes the server logs, what is on disk),
then again (no change): pixstor_snapshot expires/retain_for, pixstor_snapshot_policy,
pixstor_space snapshot_policies and source_snapshot, pixstor_space_revert.

The tests of this file run in order on one server (module scope): each starts from what the
one before left."""
import datetime
import json

from tests.harness import wait_for

LYNX = "lively-lynx"


def explain(run):
    return "ansible-playbook exited %s\n%s" % (run.proc.returncode, run.output[-6000:])


def writes(run):
    """(method, collection or action path) of the run's writes, ids left out."""
    found = []
    for method, path, _ in run.writes:
        parts = path.split("?")[0].strip("/").split("/")
        found.append((method, "/%s/" % parts[0] + ("revert" if parts[-1] == "revert" else "")))
    return found


def step(playbook, tmp_path, name, check=False, **extra):
    results = tmp_path / ("%s.json" % name)
    run = playbook("snapshot_lifecycle.yml", check=check, step=name, results_file=str(results), **extra)
    return run, json.loads(results.read_text()) if results.exists() else None


def ok(playbook, tmp_path, name, check=False, **extra):
    run, result = step(playbook, tmp_path, name, check, **extra)
    assert run.proc.returncode == 0, explain(run)
    return run, result


def lynx_path(pixstor_server, name=LYNX):
    return pixstor_server.mountpoint / "projects" / name


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def test_a_snapshot_kept_for_7_days_expires_then_and_is_taken_once(playbook, pixstor_server, tmp_path):
    ok(playbook, tmp_path, "space")
    (lynx_path(pixstor_server) / "notes.txt").write_text("notes v1\n")
    before = utc_now()
    run, result = ok(playbook, tmp_path, "snapshot", retain_for="7d")
    after = utc_now()
    assert (writes(run), result["actions"]) == ([("POST", "/snapshots/")], ["create"]), explain(run)
    expires = datetime.datetime.strptime(result["snapshot"]["expires"], "%Y-%m-%dT%H:%M:%SZ")
    week = datetime.timedelta(days=7)
    assert before.replace(microsecond=0) + week <= expires <= after + week
    again, result = ok(playbook, tmp_path, "snapshot", retain_for="1h")
    assert (again.recap["changed"], again.writes, result["actions"]) == (0, [], []), explain(again)


def test_expires_in_check_mode_then_a_patch_then_the_same_time_otherwise_written(playbook, pixstor_server, tmp_path):
    run, result = ok(playbook, tmp_path, "snapshot", check=True, expires="2030-01-01T01:00:00+01:00")
    assert (run.recap["changed"], run.writes) == (1, []), explain(run)
    assert result["msg"] == "snapshot 'before' would be updated (expires 2030-01-01T00:00:00Z)"
    run, result = ok(playbook, tmp_path, "snapshot", expires="2030-01-01T01:00:00+01:00")
    assert (writes(run), result["job"]) == ([("PATCH", "/snapshots/")], None), explain(run)
    assert pixstor_server.items("snapshots", name="before")[0]["expires"] == "2030-01-01T00:00:00Z"
    again, _ = ok(playbook, tmp_path, "snapshot", expires="2030-01-01")
    assert (again.recap["changed"], again.writes) == (0, []), explain(again)
    cleared, result = ok(playbook, tmp_path, "snapshot", expires="")
    assert (writes(cleared), result["msg"]) == ([("PATCH", "/snapshots/")], "snapshot 'before' updated (expires removed)")
    assert pixstor_server.items("snapshots", name="before")[0]["expires"] is None


def test_a_policy_in_check_mode_then_made_then_left_alone_then_patched(playbook, pixstor_server, tmp_path):
    policy = dict(schedule="0 * * *", retain_count=3)
    run, result = ok(playbook, tmp_path, "policy", check=True, **policy)
    assert (run.recap["changed"], run.writes, result["actions"]) == (1, [], ["create"]), explain(run)
    assert pixstor_server.items("snapshotpolicies", name="hourly") == []
    run, result = ok(playbook, tmp_path, "policy", **policy)
    assert (writes(run), result["job"]["status"]) == ([("POST", "/snapshotpolicies/")], "COMPLETED"), explain(run)
    again, _ = ok(playbook, tmp_path, "policy", schedule=" 0  *  * * ", retain_count=3)
    assert (again.recap["changed"], again.writes) == (0, []), explain(again)
    run, result = ok(playbook, tmp_path, "policy", retain_count=0, retain_duration="2d", comment="every hour")
    assert (writes(run), result["job"]) == ([("PATCH", "/snapshotpolicies/")], None), explain(run)
    stored = pixstor_server.items("snapshotpolicies", name="hourly")[0]
    assert (stored["schedule"], stored["prefix"], stored["retain_count"], stored["retain_duration"]) == (
        "0 * * *", "hourly", None, "2d")


def test_a_space_lists_the_policy_whose_scheduler_snapshots_it_then_none(playbook, pixstor_server, tmp_path):
    run, result = ok(playbook, tmp_path, "space", check=True, snapshot_policies=["hourly"])
    assert (run.recap["changed"], run.writes, result["actions"]) == (1, [], ["update"]), explain(run)
    assert (result["diff"]["before"]["snapshot_policies"], result["diff"]["after"]["snapshot_policies"]) == (
        [], ["hourly"])
    run, result = ok(playbook, tmp_path, "space", snapshot_policies=["hourly"])
    assert (writes(run), result["job"]) == ([("PATCH", "/spaces/")], None), explain(run)
    policy = pixstor_server.items("snapshotpolicies", name="hourly")[0]
    space = pixstor_server.items("spaces", name=LYNX)[0]
    assert space["snapshot_policies"] == ["/snapshotpolicies/" + policy["id"]]
    again, _ = ok(playbook, tmp_path, "space", snapshot_policies=["/snapshotpolicies/" + policy["id"]])
    assert (again.recap["changed"], again.writes) == (0, []), explain(again)
    # the scheduler takes the space's latest hourly slot, named after it
    taken = lambda: [s for s in pixstor_server.items("snapshots", policy=policy["id"]) if s["status"] == "ACTIVE"]  # noqa: E731
    wait_for(lambda: len(taken()) == 1, timeout=60, what="the policy's first snapshot of " + LYNX)
    scheduled = taken()[0]
    slot = datetime.datetime.strptime(scheduled["name"], "hourly-%Y%m%dT%H%MZ")
    created = datetime.datetime.fromisoformat(scheduled["created"].rstrip("Z")).replace(tzinfo=None)
    assert (slot.minute, slot <= created < slot + datetime.timedelta(hours=1)) == (0, True), scheduled
    run, result = ok(playbook, tmp_path, "space", snapshot_policies=[])
    assert (writes(run), result["space"]["snapshot_policies"]) == ([("PATCH", "/spaces/")], []), explain(run)


def test_a_new_space_from_a_snapshot_in_check_mode_then_made_then_left_alone(playbook, pixstor_server, tmp_path):
    copy = dict(space_name="lynx-copy", source_snapshot="before", source_space=LYNX)
    run, result = ok(playbook, tmp_path, "space", check=True, **copy)
    assert (run.recap["changed"], run.writes, result["actions"]) == (1, [], ["create"]), explain(run)
    assert pixstor_server.items("spaces", name="lynx-copy") == []
    run, result = ok(playbook, tmp_path, "space", **copy)
    assert (writes(run), result["space"]["status"]) == ([("POST", "/spaces/")], "ACTIVE"), explain(run)
    snapshot = pixstor_server.items("snapshots", name="before", space=pixstor_server.items("spaces", name=LYNX)[0]["id"])[0]
    assert result["space"]["source_snapshot"] == "/snapshots/" + snapshot["id"]
    assert (lynx_path(pixstor_server, "lynx-copy") / "notes.txt").read_text() == "notes v1\n"
    again, _ = ok(playbook, tmp_path, "space", **copy)
    assert (again.recap["changed"], again.writes) == (0, []), explain(again)


def test_a_revert_in_check_mode_then_refused_without_force_then_done(playbook, pixstor_server, tmp_path):
    path = lynx_path(pixstor_server)
    (path / "notes.txt").write_text("notes v2\n")
    (path / "added.txt").write_text("added after the snapshot\n")
    run, result = ok(playbook, tmp_path, "revert", check=True)
    assert (run.recap["changed"], run.writes, result["actions"]) == (1, [], ["revert"]), explain(run)
    assert result["msg"].startswith("space 'lively-lynx' would be reverted to snapshot before (taken ")
    refused, result = ok(playbook, tmp_path, "revert", expect_failure=True)
    assert writes(refused) == [("POST", "/spaces/revert")], explain(refused)
    assert (result["failed"], result["changed"], result["status_code"]) == (True, False, 409), explain(refused)
    assert "set force: true in the task to revert anyway" in result["msg"]
    assert (path / "added.txt").exists() and (path / "notes.txt").read_text() == "notes v2\n"
    run, result = ok(playbook, tmp_path, "revert", force=True)
    assert (writes(run), result["actions"], result["job"]["status"]) == (
        [("POST", "/spaces/revert")], ["revert"], "COMPLETED"), explain(run)
    assert result["job"]["message"] == "space lively-lynx holds the content of snapshot before"
    assert not (path / "added.txt").exists()
    assert (path / "notes.txt").read_text() == "notes v1\n"
