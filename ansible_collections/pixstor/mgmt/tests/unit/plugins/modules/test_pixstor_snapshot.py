# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import pytest

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_snapshot
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)


def snapshot(**data):
    return cj_item("snapshots", "n1", **dict(dict(name="snake-snap", type="gpfsspacesnapshot", space="/spaces/s1",
                                                  exposer=None, path="/mmfs1/projects/sleepy_snake/.snapshots/x"),
                                             **data))


def expect_space(http, found=True):
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake"},
                json_body=cj_doc(cj_item("spaces", "s1", name="sleepy-snake")) if found else cj_doc())
    if not found:
        http.expect("GET", "/spaces/sleepy-snake", status=404, json_body=cj_error(404, "Not found"))


def expect_create(http, **more):
    """No snapshot of that name yet, and the POST taking it (the fields in this order)."""
    http.expect("GET", "/snapshots/", where={"name": "snake-snap", "space": "/spaces/s1"}, json_body=cj_doc())
    fields = dict(name="snake-snap", type="gpfsspacesnapshot", space="/spaces/s1", **more)
    http.expect("POST", "/snapshots/", status=202, headers=accepted_headers("snapshots", "n1", "j1"),
                json_body=cj_doc(snapshot(status="NEW")),
                body={"template": {"data": [{"name": name, "value": value} for name, value in fields.items()]}})


def test_create_snapshot_of_a_space(run_module, http):
    expect_space(http)
    expect_create(http)
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "snapshots", "n1")))
    http.expect("GET", "/snapshots/n1", json_body=cj_doc(cj_item("snapshots", "n1")))
    http.expect("GET", "/snapshots/n1", json_body=cj_doc(snapshot()))
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake"))
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["snapshot"]["space"]) == (True, ["create"], "/spaces/s1")


def test_existing_snapshot_is_not_taken_again(run_module, http):
    http.expect("GET", "/profiles/", where={"name": "mmfs1-sas1"}, json_body=cj_doc(cj_item("profiles", "p1")))
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake", "profile": "/profiles/p1"},
                json_body=cj_doc(cj_item("spaces", "s1")))
    http.expect("GET", "/snapshots/", where={"name": "snake-snap", "space": "/spaces/s1"},
                json_body=cj_doc(snapshot(space="s1")))
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake",
                                                             profile="mmfs1-sas1"))
    assert (outcome, result["changed"]) == ("exit", False)


def test_filesystem_snapshot_uses_the_gpfsnative_exposer(run_module, http):
    http.expect("GET", "/exposers/", where={"name": "mmfs1", "type": "gpfsnative"},
                json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    http.expect("GET", "/snapshots/", where={"name": "nightly", "exposer": "/exposers/e1"}, json_body=cj_doc())
    outcome, result = run_module(pixstor_snapshot.main, dict(name="nightly", type="gpfsfilesystemsnapshot",
                                                             exposer="mmfs1"), check_mode=True, diff=True)
    assert (outcome, result["changed"]) == ("exit", True)
    assert result["diff"]["after"] == {"name": "nightly", "type": "gpfsfilesystemsnapshot", "exposer": "mmfs1"}
    assert result["snapshot"]["exposer"] == "/exposers/e1"
    assert result["msg"] == "snapshot 'nightly' would be created"


def test_filesystem_snapshot_needs_an_exposer(run_module, http):
    outcome, result = run_module(pixstor_snapshot.main, dict(name="nightly", type="gpfsfilesystemsnapshot"))
    assert outcome == "fail"
    assert "exposer" in result["msg"]


def test_check_mode_with_a_space_still_to_create(run_module, http):
    expect_space(http, found=False)
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake"), check_mode=True,
                                 diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["create"])
    assert result["warnings"] == ["space 'sleepy-snake' not found in /spaces/; check mode assumes an earlier task "
                                  "would create it"]
    assert result["diff"]["after"] == {"name": "snake-snap", "type": "gpfsspacesnapshot", "space": "sleepy-snake"}
    assert result["msg"] == "snapshot 'snake-snap' would be created"


def test_missing_space_fails_for_real(run_module, http):
    expect_space(http, found=False)
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake"))
    assert (outcome, result["msg"]) == ("fail", "space 'sleepy-snake' not found in /spaces/")


def test_absent_when_the_space_is_gone(run_module, http):
    expect_space(http, found=False)
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake", state="absent"))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])


def test_absent_deletes_the_snapshot(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", json_body=cj_doc(snapshot()))
    http.expect("DELETE", "/snapshots/n1", status=202, json_body=cj_doc(),
                headers={"Link": '<http://pixstor.test:5101/jobs/j2>; rel="job"'})
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake", state="absent",
                                                             wait=False))
    assert (outcome, result["changed"], result["job"]) == ("exit", True, {"href": "/jobs/j2", "status": None})


# Expiry (issue 13) ------------------------------------------------------------------

def test_retain_for_is_sent_when_the_snapshot_is_taken(run_module, http):
    expect_space(http)
    expect_create(http, retain_for="7d")
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake",
                                                             retain_for=" 7d ", wait=False), diff=True)
    assert (outcome, result["actions"]) == ("exit", ["create"]), result
    assert result["diff"]["after"] == {"name": "snake-snap", "type": "gpfsspacesnapshot", "space": "sleepy-snake",
                                       "retain_for": "7d"}


def test_an_existing_snapshot_is_not_compared_with_retain_for(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", json_body=cj_doc(snapshot(expires="2026-12-01T00:00:00Z")))
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake", retain_for="1h"))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
    assert {c["method"] for c in http.calls} == {"GET"}


def test_the_same_expiry_otherwise_written_is_no_change(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", json_body=cj_doc(snapshot(expires="2026-12-01T00:00:00Z")))
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake",
                                                             expires="2026-12-01T01:00:00+01:00"), diff=True)
    assert (outcome, result["changed"]) == ("exit", False)
    assert result["diff"]["before"]["expires"] == "2026-12-01T00:00:00Z"


def test_a_new_expiry_is_a_patch_without_a_job(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", json_body=cj_doc(snapshot(expires="2026-12-01T00:00:00Z")))
    http.expect("GET", "/snapshots/n1", json_body=cj_doc(snapshot()), headers={"ETag": '"v3"'})
    http.expect("PATCH", "/snapshots/n1", status=200, json_body=cj_doc(snapshot(expires="2027-01-01T00:00:00Z")),
                body={"template": {"data": [{"name": "expires", "value": "2027-01-01T00:00:00Z"}]}})
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake",
                                                             expires="2027-01-01"), diff=True)
    assert (outcome, result["actions"], result["job"]) == ("exit", ["update"], None), result
    assert result["msg"] == "snapshot 'snake-snap' updated (expires 2027-01-01T00:00:00Z)"
    assert (result["diff"]["before"]["expires"], result["diff"]["after"]["expires"]) == (
        "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert http.calls[-1]["headers"]["If-Match"] == '"v3"'


def test_an_empty_expiry_keeps_the_snapshot_until_deleted(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", json_body=cj_doc(snapshot(expires="2026-12-01T00:00:00Z")))
    http.expect("GET", "/snapshots/n1", json_body=cj_doc(snapshot()))
    http.expect("PATCH", "/snapshots/n1", status=200, json_body=cj_doc(snapshot(expires=None)),
                body={"template": {"data": [{"name": "expires", "value": None}]}})
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake", expires=""))
    assert (outcome, result["msg"], result["snapshot"]["expires"]) == (
        "exit", "snapshot 'snake-snap' updated (expires removed)", None)


def test_a_new_expiry_in_check_mode_writes_nothing(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", json_body=cj_doc(snapshot(expires=None)))
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake",
                                                             expires="2027-01-01T00:00:00Z"), check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["update"])
    assert result["msg"] == "snapshot 'snake-snap' would be updated (expires 2027-01-01T00:00:00Z)"
    assert (result["diff"]["before"]["expires"], result["diff"]["after"]["expires"]) == ("", "2027-01-01T00:00:00Z")
    assert {c["method"] for c in http.calls} == {"GET"}


@pytest.mark.parametrize("args, msg", [
    (dict(retain_for="7x"), "snapshot 'snake-snap': retain_for: '7x' is not a duration: a whole number and a unit, "
                            "m (minutes), h (hours), d (days) or w (weeks), such as 7d or 12h"),
    (dict(expires="tomorrow"), "snapshot 'snake-snap': expires: 'tomorrow' is not an ISO 8601 time such as "
                               "2026-12-01T00:00:00Z"),
    (dict(expires="2027-01-01", retain_for="7d"), "parameters are mutually exclusive: expires|retain_for"),
])
def test_a_bad_expiry_fails_before_any_request(run_module, http, args, msg):
    outcome, result = run_module(pixstor_snapshot.main, dict(name="snake-snap", space="sleepy-snake", **args))
    assert (outcome, result["msg"]) == ("fail", msg)
    assert http.calls == []
