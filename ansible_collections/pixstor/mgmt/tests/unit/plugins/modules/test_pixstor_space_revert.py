# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_space_revert
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)

ARGS = dict(space="sleepy-snake", snapshot="before")
REVERT = {"template": {"data": [{"name": "snapshot", "value": "/snapshots/n1"}]}}
CHANGED = ("space sleepy-snake changed since snapshot before was taken (added did): a revert loses every change made "
           "since; nothing was changed; revert with ?force=true to lose them")


def space(**data):
    return cj_item("spaces", "s1", **dict(dict(name="sleepy-snake", used=4096), **data))


def snapshot(**data):
    return cj_item("snapshots", "n1", **dict(dict(name="before", space="/spaces/s1", created="2026-03-02T09:30:00"),
                                             **data))


def expect_found(http, found_space=None, found_snapshot=None):
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake"}, json_body=cj_doc(found_space or space()))
    http.expect("GET", "/snapshots/", where={"name": "before", "space": "/spaces/s1"},
                json_body=cj_doc(found_snapshot or snapshot()))


def test_revert_posts_the_snapshot_and_waits_for_the_job(run_module, http):
    expect_found(http)
    http.expect("POST", "/spaces/s1/revert", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="PENDING")), body=REVERT)
    job = job_item("j1", "COMPLETED", "spaces", "s1", "revert")
    job["data"].append({"name": "message", "value": "space sleepy-snake holds the content of snapshot before"})
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(used=109)))
    outcome, result = run_module(pixstor_space_revert.main, ARGS, diff=True)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"]) == (True, ["revert"])
    assert result["msg"] == "space 'sleepy-snake' reverted to snapshot before (taken 2026-03-02T09:30:00Z)"
    assert result["job"] == {"href": "/jobs/j1", "status": "COMPLETED",
                             "message": "space sleepy-snake holds the content of snapshot before"}
    assert (result["space"]["used"], result["snapshot"]["name"]) == (109, "before")
    assert result["diff"] == {"before": {"name": "sleepy-snake", "content": "as it is now"},
                              "after": {"name": "sleepy-snake",
                                        "content": "snapshot before (taken 2026-03-02T09:30:00Z)"}}
    assert http.calls[2]["params"] is None      # no force unless asked


def test_force_is_sent_as_the_query(run_module, http):
    expect_found(http)
    http.expect("POST", "/spaces/s1/revert", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="PENDING")), body=REVERT, params={"force": "true"})
    outcome, result = run_module(pixstor_space_revert.main, dict(ARGS, force=True, wait=False))
    assert (outcome, result["changed"], result["job"]) == ("exit", True, {"href": "/jobs/j1", "status": None})


def test_a_space_changed_since_the_snapshot_fails_without_force_changing_nothing(run_module, http):
    expect_found(http)
    http.expect("POST", "/spaces/s1/revert", status=409, body=REVERT,
                json_body=cj_error(409, CHANGED, {"snapshot": "the space changed since"}))
    outcome, result = run_module(pixstor_space_revert.main, ARGS)
    assert (outcome, result["changed"], result["actions"], result["status_code"]) == ("fail", False, [], 409)
    assert result["msg"] == ("POST /spaces/s1/revert failed: HTTP 409 %s (snapshot: the space changed since); set "
                             "force: true in the task to revert anyway" % CHANGED)


def test_check_mode_predicts_the_revert_and_says_what_it_cannot_know(run_module, http):
    expect_found(http)
    outcome, result = run_module(pixstor_space_revert.main, ARGS, check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", True, ["revert"], None)
    assert result["msg"] == ("space 'sleepy-snake' would be reverted to snapshot before (taken 2026-03-02T09:30:00Z); "
                             "without force the server refuses it if the space changed since the snapshot was taken")
    assert result["diff"]["after"]["content"] == "snapshot before (taken 2026-03-02T09:30:00Z)"
    assert len(http.calls) == 2


def test_check_mode_with_force_says_only_what_it_would_do(run_module, http):
    expect_found(http)
    outcome, result = run_module(pixstor_space_revert.main, dict(ARGS, force=True), check_mode=True)
    assert result["msg"] == "space 'sleepy-snake' would be reverted to snapshot before (taken 2026-03-02T09:30:00Z)"


def test_check_mode_with_a_space_still_to_be_made(run_module, http):
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake"}, json_body=cj_doc())
    http.expect("GET", "/spaces/sleepy-snake", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_space_revert.main, ARGS, check_mode=True)
    assert (outcome, result["changed"], result["msg"]) == (
        "exit", True, "space 'sleepy-snake' would be reverted to snapshot 'before'")
    assert result["warnings"] == ["space 'sleepy-snake' not found in /spaces/; check mode assumes an earlier task "
                                  "would create it"]


def test_a_snapshot_of_another_space_fails_before_a_write(run_module, http):
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake"}, json_body=cj_doc(space()))
    http.expect("GET", "/snapshots/n7", json_body=cj_doc(snapshot(space="/spaces/s2")))
    outcome, result = run_module(pixstor_space_revert.main, dict(ARGS, snapshot="/snapshots/n7"))
    assert (outcome, result["msg"]) == ("fail", "space 'sleepy-snake': snapshot 'before' is not a snapshot of this "
                                                "space (it is of /spaces/s2); a space is reverted to one of its own "
                                                "snapshots")


def test_a_snapshot_being_deleted_fails_before_a_write(run_module, http):
    expect_found(http, found_snapshot=snapshot(status="INPROGRESS"))
    outcome, result = run_module(pixstor_space_revert.main, ARGS, check_mode=True)
    assert (outcome, result["msg"]) == ("fail", "space 'sleepy-snake': snapshot 'before' is INPROGRESS, not ACTIVE")


def test_a_missing_snapshot_fails_outside_check_mode(run_module, http):
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake"}, json_body=cj_doc(space()))
    http.expect("GET", "/snapshots/", where={"name": "before", "space": "/spaces/s1"}, json_body=cj_doc())
    http.expect("GET", "/snapshots/before", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_space_revert.main, ARGS)
    assert (outcome, result["msg"]) == ("fail", "snapshot 'before' not found in /snapshots/")


def test_a_busy_space_is_waited_for_first(run_module, http):
    expect_found(http, found_space=space(status="INPROGRESS"))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(status="INPROGRESS")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()))
    http.expect("POST", "/spaces/s1/revert", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="PENDING")), body=REVERT)
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "spaces", "s1", "revert")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()))
    outcome, result = run_module(pixstor_space_revert.main, ARGS)
    assert (outcome, result["actions"], result["job"]["status"]) == ("exit", ["revert"], "COMPLETED")
