# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

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


def test_create_snapshot_of_a_space(run_module, http):
    expect_space(http)
    http.expect("GET", "/snapshots/", where={"name": "snake-snap", "space": "/spaces/s1"}, json_body=cj_doc())
    http.expect("POST", "/snapshots/", status=202, headers=accepted_headers("snapshots", "n1", "j1"),
                json_body=cj_doc(snapshot(status="NEW")),
                body={"template": {"data": [{"name": "name", "value": "snake-snap"},
                                            {"name": "type", "value": "gpfsspacesnapshot"},
                                            {"name": "space", "value": "/spaces/s1"}]}})
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
