# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import pytest

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_space
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)

GIB = 2 ** 30
ARGS = dict(name="sleepy-snake", profile="mmfs1-sas1", exposers=["mmfs1"], relativepath="projects/sleepy_snake",
            templates=["project_template"], size="4GiB")


def space(**data):
    fields = dict(name="sleepy-snake", relativepath="projects/sleepy_snake", profile="/profiles/p1",
                  exposers=["/exposers/e1"], templates=["/templates/t1"], size=4 * GIB, fileset="sas1-sleepy-snake",
                  path="/mmfs1/projects/sleepy_snake", used=0, owner=None, group=None, permissions="2770", acl=None,
                  snapshot_policies=[], source_snapshot=None, comment=None, extras=None)
    fields.update(data)
    return cj_item("spaces", "s1", **fields)


def expect_profile(http):
    http.expect("GET", "/profiles/", where={"name": "mmfs1-sas1"},
                json_body=cj_doc(cj_item("profiles", "p1", name="mmfs1-sas1")))


def expect_lookup(http, *found):
    expect_profile(http)
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake", "profile": "/profiles/p1"}, json_body=cj_doc(*found))


def created(**more):
    """The body of the POST creating the space of ARGS, with `more` fields after its own, in that order."""
    fields = dict(name="sleepy-snake", relativepath="projects/sleepy_snake", exposers=["/exposers/e1"],
                  profile="/profiles/p1", templates=["/templates/t1"], size=4 * GIB, **more)
    return {"template": {"data": [{"name": name, "value": value} for name, value in fields.items()]}}


def expect_refs(http, exposers=("mmfs1",), templates=("project_template",)):
    for name, item_id in zip(exposers, ("e1", "e2")):
        http.expect("GET", "/exposers/", where={"name": name, "type": "gpfsnative"},
                    json_body=cj_doc(cj_item("exposers", item_id, name=name)))
    for name in templates:
        http.expect("GET", "/templates/", where={"name": name}, json_body=cj_doc(cj_item("templates", "t1", name=name)))


def test_create_posts_the_space_and_waits_for_its_job(run_module, http):
    expect_lookup(http)
    expect_refs(http)
    http.expect("POST", "/spaces/", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="NEW")),
                body=created())
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()))
    outcome, result = run_module(pixstor_space.main, ARGS, diff=True)
    assert outcome == "exit", result
    assert result["changed"] is True
    assert result["actions"] == ["create"]
    assert result["job"] == {"href": "/jobs/j1", "status": "COMPLETED"}
    assert (result["space"]["fileset"], result["space"]["size"]) == ("sas1-sleepy-snake", 4 * GIB)
    assert result["msg"] == "space 'sleepy-snake' created"
    # the diff names what the task named, not hrefs
    assert result["diff"] == {"before": {}, "after": {
        "name": "sleepy-snake", "profile": "mmfs1-sas1", "relativepath": "projects/sleepy_snake",
        "exposers": ["mmfs1"], "templates": ["project_template"], "size": 4 * GIB}}
    assert result["space"]["exposers"] == ["/exposers/e1"]     # the item itself keeps the API's hrefs


def test_create_in_check_mode_predicts_without_writing(run_module, http):
    expect_lookup(http)
    expect_refs(http)
    outcome, result = run_module(pixstor_space.main, ARGS, check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", True, ["create"], None)
    assert result["space"]["size"] == 4 * GIB
    assert result["msg"] == "space 'sleepy-snake' would be created"
    assert result["diff"]["after"]["templates"] == ["project_template"]
    assert [c["method"] for c in http.calls] == ["GET"] * 4


def test_check_mode_accepts_a_template_an_earlier_task_would_create(run_module, http):
    expect_lookup(http)
    expect_refs(http, templates=())
    http.expect("GET", "/templates/", where={"name": "new_template"}, json_body=cj_doc())
    http.expect("GET", "/templates/new_template", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, templates=["new_template"]), check_mode=True)
    assert (outcome, result["changed"]) == ("exit", True)
    assert result["warnings"] == ["template 'new_template' not found in /templates/; check mode assumes an "
                                  "earlier task would create it"]
    assert result["msg"] == "space 'sleepy-snake' would be created"


def test_a_missing_template_fails_outside_check_mode(run_module, http):
    expect_lookup(http)
    expect_refs(http, templates=())
    http.expect("GET", "/templates/", where={"name": "new_template"}, json_body=cj_doc())
    http.expect("GET", "/templates/new_template", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, templates=["new_template"]))
    assert (outcome, result["msg"]) == ("fail", "template 'new_template' not found in /templates/")


def test_second_run_changes_nothing_and_writes_nothing(run_module, http):
    expect_lookup(http, space())
    expect_refs(http)
    outcome, result = run_module(pixstor_space.main, dict(ARGS, size=str(4 * GIB)), diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", False, [], None)
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["diff"]["before"]["templates"] == ["project_template"]
    assert result["msg"] == "space 'sleepy-snake' is present as requested: nothing to change"
    assert {c["method"] for c in http.calls} == {"GET"}


def test_lists_compare_in_any_order(run_module, http):
    expect_lookup(http, space(exposers="/exposers/e2,/exposers/e1", relativepath="/projects/sleepy_snake/"))
    expect_refs(http, exposers=("mmfs1", "mmfs2"))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, exposers=["mmfs1", "mmfs2"]))
    assert (outcome, result["changed"]) == ("exit", False)


def test_a_new_size_is_a_resize_with_if_match(run_module, http):
    expect_lookup(http, space())
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()), headers={"ETag": '"v1"'})
    http.expect("PATCH", "/spaces/s1", status=202, headers=accepted_headers("spaces", "s1", "j2"),
                json_body=cj_doc(space(status="PENDING")),
                body={"template": {"data": [{"name": "size", "value": 8 * GIB}]}})
    http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "COMPLETED", "spaces", "s1", "update")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(size=8 * GIB)))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(size=8 * GIB)))
    # the diff names the exposers and templates this task did not name: one read each
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", name="project_template")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="8G"),
                                 diff=True)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"]) == (True, ["resize"])
    assert result["msg"] == "space 'sleepy-snake' resized from 4GiB to 8GiB"
    assert http.calls[-6]["headers"]["If-Match"] == '"v1"'
    assert result["diff"]["before"] == {
        "name": "sleepy-snake", "profile": "mmfs1-sas1", "relativepath": "projects/sleepy_snake",
        "exposers": ["mmfs1"], "templates": ["project_template"], "size": 4 * GIB, "owner": None, "group": None,
        "permissions": "2770", "acl": [], "snapshot_policies": [], "comment": "", "extras": {}}
    assert result["diff"]["after"] == dict(result["diff"]["before"], size=8 * GIB)
    assert result["space"]["size"] == 8 * GIB


def test_resize_without_storage_work_answers_200(run_module, http):
    expect_lookup(http, space())
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()))
    http.expect("PATCH", "/spaces/s1", status=200, json_body=cj_doc(space(size=5 * GIB)),
                body={"template": {"data": [{"name": "size", "value": 5 * GIB}]}})
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="5G"))
    assert (outcome, result["changed"], result["job"], result["space"]["size"]) == ("exit", True, None, 5 * GIB)


def test_resize_in_check_mode_does_not_patch(run_module, http):
    expect_lookup(http, space())
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="8GiB"),
                                 check_mode=True)
    assert (outcome, result["changed"], result["actions"], result["space"]["size"]) == ("exit", True, ["resize"], 8 * GIB)
    assert result["msg"] == "space 'sleepy-snake' would be resized from 4GiB to 8GiB"


def test_an_immutable_change_fails_and_says_what_to_do(run_module, http):
    expect_lookup(http, space())
    expect_refs(http)
    outcome, result = run_module(pixstor_space.main, dict(ARGS, relativepath="projects/other"))
    assert outcome == "fail"
    assert result["msg"] == (
        "space 'sleepy-snake': relativepath cannot be changed once created (relativepath is "
        "'projects/sleepy_snake', requested 'projects/other'). Keep the current value in the task, or remove "
        "the space (state: absent) and create it again.")
    assert {c["method"] for c in http.calls} == {"GET"}


def test_an_immutable_change_of_references_names_them(run_module, http):
    expect_lookup(http, space())
    http.expect("GET", "/exposers/", where={"name": "mmfs2", "type": "gpfsnative"},
                json_body=cj_doc(cj_item("exposers", "e2", name="mmfs2")))
    http.expect("GET", "/templates/", where={"name": "project_template"},
                json_body=cj_doc(cj_item("templates", "t1", name="project_template")))
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, exposers=["mmfs2"]))
    assert outcome == "fail"
    assert result["msg"] == (
        "space 'sleepy-snake': exposers cannot be changed once created (exposers is [\"mmfs1\"], requested "
        "[\"mmfs2\"]). Keep the current value in the task, or remove the space (state: absent) and create it again.")


def test_creating_needs_every_placement_field(run_module, http):
    expect_profile(http)
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="1G"))
    assert (outcome, result["msg"]) == (
        "fail", "space 'sleepy-snake' does not exist; creating it needs profile, relativepath, exposers, size "
                "(missing: relativepath, exposers)")


def test_a_bad_size_fails_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_space.main, dict(ARGS, size="4 parsecs"))
    assert outcome == "fail"
    assert "unknown unit 'parsecs'" in result["msg"]
    assert http.calls == []


def test_same_name_under_two_profiles_needs_profile(run_module, http):
    http.expect("GET", "/spaces/", where={"name": "sleepy-snake"},
                json_body=cj_doc(space(), cj_item("spaces", "s2", name="sleepy-snake")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", state="absent"))
    assert outcome == "fail"
    assert "2 spaces match space 'sleepy-snake' (set profile to choose)" in result["msg"]


def test_absent_deletes_with_force_and_waits_for_404(run_module, http):
    expect_lookup(http, space())
    http.expect("DELETE", "/spaces/s1", status=202, params={"force": "true"}, json_body=cj_doc(),
                headers={"Link": '<http://pixstor.test:5101/jobs/j3>; rel="job"'})
    http.expect("GET", "/jobs/j3", json_body=cj_doc(job_item("j3", "INPROGRESS", "spaces", "s1", "delete")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(status="INPROGRESS")))
    http.expect("GET", "/jobs/j3", json_body=cj_doc(job_item("j3", "COMPLETED", "spaces", "s1", "delete")))
    http.expect("GET", "/spaces/s1", status=404, json_body=cj_error(404, "Not found"))
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", name="project_template")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", state="absent",
                                                          force=True), diff=True)
    assert (outcome, result["changed"], result["actions"], result["space"]) == ("exit", True, ["delete"], {})
    assert result["job"] == {"href": "/jobs/j3", "status": "COMPLETED"}
    assert result["diff"]["after"] == {}
    assert (result["diff"]["before"]["profile"], result["diff"]["before"]["templates"]) == (
        "mmfs1-sas1", ["project_template"])
    assert result["msg"] == "space 'sleepy-snake' deleted"


def test_absent_when_gone_is_not_a_change(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", state="absent"))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])


def test_absent_with_an_unknown_profile_is_not_a_change(run_module, http):
    http.expect("GET", "/profiles/", json_body=cj_doc())
    http.expect("GET", "/profiles/nope", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="nope", state="absent"))
    assert (outcome, result["changed"]) == ("exit", False)


def test_absent_in_check_mode_does_not_delete(run_module, http):
    expect_lookup(http, space())
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", state="absent"),
                                 check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["delete"])
    assert result["msg"] == "space 'sleepy-snake' would be deleted"
    assert [c["method"] for c in http.calls] == ["GET", "GET"]


def test_a_refused_delete_quotes_the_api(run_module, http):
    expect_lookup(http, space(used=1024))
    http.expect("DELETE", "/spaces/s1", status=409, json_body=cj_error(
        409, "space holds data", {"force": "set force=true to delete a space holding data"}))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(used=1024)))    # ACTIVE: a refusal, not a busy item
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", state="absent"))
    assert outcome == "fail"
    assert result["msg"] == ("DELETE /spaces/s1 failed: HTTP 409 space holds data "
                             "(force: set force=true to delete a space holding data)")
    assert result["status_code"] == 409


def test_a_failed_creation_job_reports_its_stderr(run_module, http):
    expect_lookup(http)
    expect_refs(http)
    http.expect("POST", "/spaces/", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="NEW")))
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "ERRORED", "spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ERRORED")))   # projected
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(status="ERRORED", status_message="fileset path exists")))
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "ERRORED", "spaces", "s1")))
    http.expect("GET", "/jobs/j1/stderr", text="ERROR: /mmfs1/projects/sleepy_snake already exists\n")
    outcome, result = run_module(pixstor_space.main, ARGS)
    assert outcome == "fail"
    assert "space 'sleepy-snake' (/spaces/s1) ended ERRORED: fileset path exists" in result["msg"]
    assert "already exists" in result["msg"]
    # the POST made an (ERRORED) space: the failed result says so
    assert (result["changed"], result["actions"]) == (True, ["create"])
    assert (result["space"]["href"], result["space"]["status"]) == ("/spaces/s1", "ERRORED")
    assert result["job"] == {"href": "/jobs/j1", "status": "ERRORED"}


def test_a_timed_out_wait_reports_the_change_with_the_space_and_its_job(run_module, http, clock):
    expect_lookup(http)
    expect_refs(http)
    http.expect("POST", "/spaces/", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="NEW")))
    # Polls at 0, 0.1, 0.25, 0.475, 0.81 and 1.32 s: the sixth is past the 1 s deadline.
    for poll in range(6):  # pylint: disable=unused-variable
        http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "INPROGRESS", "spaces", "s1")))
        http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="INPROGRESS")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(status="INPROGRESS")))     # without the projection
    outcome, result = run_module(pixstor_space.main, dict(ARGS, wait_timeout=1))
    assert outcome == "fail"
    assert result["msg"] == ("timed out after 1s waiting for space 'sleepy-snake' (/spaces/s1, status INPROGRESS, "
                             "job /jobs/j1 INPROGRESS); the job goes on on the server: raise wait_timeout or use "
                             "wait=false")
    assert (result["changed"], result["actions"]) == (True, ["create"])
    assert result["job"] == {"href": "/jobs/j1", "status": "INPROGRESS"}
    assert (result["space"]["href"], result["space"]["status"], result["space"]["fileset"]) == (
        "/spaces/s1", "INPROGRESS", "sas1-sleepy-snake")


def test_a_timed_out_resize_reports_the_change_too(run_module, http, clock):
    expect_lookup(http, space())
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()), headers={"ETag": '"v1"'})
    http.expect("PATCH", "/spaces/s1", status=202, headers=accepted_headers("spaces", "s1", "j2"),
                json_body=cj_doc(space(status="PENDING")))
    for poll in range(6):  # pylint: disable=unused-variable
        http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "QUEUED", "spaces", "s1", "update")))
        http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="PENDING")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(status="PENDING")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="8G",
                                                          wait_timeout=1))
    assert outcome == "fail"
    assert result["msg"].startswith("timed out after 1s waiting for space 'sleepy-snake'")
    assert (result["changed"], result["actions"], result["job"]) == (
        True, ["resize"], {"href": "/jobs/j2", "status": "QUEUED"})
    assert result["space"]["href"] == "/spaces/s1"


def test_shrinking_below_the_measured_use_needs_force(run_module, http):
    expect_lookup(http, space(used=3 * GIB))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="2G"))
    assert outcome == "fail"
    assert result["msg"] == ("space 'sleepy-snake' uses 3GiB (3221225472 bytes), as last measured: a size of 2GiB "
                             "(2147483648 bytes) is below that; nothing was changed. Set force: true to shrink it "
                             "anyway.")
    assert {c["method"] for c in http.calls} == {"GET"}


def test_shrinking_below_the_measured_use_in_check_mode_fails_too(run_module, http):
    expect_lookup(http, space(used=3 * GIB))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="2G"),
                                 check_mode=True)
    assert outcome == "fail" and "is below that" in result["msg"]


def test_shrinking_but_not_below_the_use_needs_no_force(run_module, http):
    expect_lookup(http, space(used=GIB))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(used=GIB)))
    http.expect("PATCH", "/spaces/s1", status=200, params={}, json_body=cj_doc(space(size=2 * GIB, used=GIB)))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="2G"))
    assert (outcome, result["changed"], result["space"]["size"]) == ("exit", True, 2 * GIB)
    assert http.calls[-1]["params"] is None


def test_shrinking_below_the_use_with_force_sends_force(run_module, http):
    expect_lookup(http, space(used=3 * GIB))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(used=3 * GIB)))
    http.expect("PATCH", "/spaces/s1", status=200, params={"force": "true"},
                json_body=cj_doc(space(size=2 * GIB, used=3 * GIB)))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="2G",
                                                          force=True))
    assert (outcome, result["changed"], result["msg"]) == (
        "exit", True, "space 'sleepy-snake' resized from 4GiB to 2GiB")


def test_a_yaml_float_without_a_unit_is_refused_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_space.main, dict(ARGS, size=1.5))
    assert outcome == "fail"
    assert result["msg"].startswith("space 'sleepy-snake': size '1.5' has a fraction but no unit")
    assert http.calls == []


def test_the_server_minimum_is_quoted_with_the_unit_meant(run_module, http):
    expect_lookup(http)
    expect_refs(http)
    http.expect("POST", "/spaces/", status=422, json_body=cj_error(422, "Insertion failure: 1 document(s) contain(s) "
                "error(s)", {"size": "4 bytes is below the minimum space size of 1MiB (1048576 bytes); a size "
                                     "without a unit is bytes: did you mean 4GiB?"}))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, size=4))
    assert outcome == "fail"
    assert result["msg"].endswith("(size: 4 bytes is below the minimum space size of 1MiB (1048576 bytes); a size "
                                  "without a unit is bytes: did you mean 4GiB?)")
    assert "changed" not in result      # refused: nothing was made


def test_an_errored_space_is_reported_not_hidden(run_module, http):
    expect_lookup(http, space(status="ERRORED", status_message="quota failed"))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1"))
    assert outcome == "fail"
    assert result["msg"].startswith("space 'sleepy-snake' is ERRORED: quota failed.")


def test_wait_false_returns_at_once(run_module, http):
    expect_lookup(http)
    expect_refs(http)
    http.expect("POST", "/spaces/", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="NEW")))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, wait=False))
    assert (outcome, result["changed"], result["job"]) == ("exit", True, {"href": "/jobs/j1", "status": None})
    assert result["space"]["status"] == "NEW"


def test_a_space_still_in_progress_is_waited_for_without_writing(run_module, http):
    expect_lookup(http, space(status="INPROGRESS"))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(status="ACTIVE")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1"))
    assert (outcome, result["changed"], result["space"]["status"]) == ("exit", False, "ACTIVE")


def test_password_grant_then_lookup(run_module, http):
    http.expect("POST", "/oauth2/token", json_body={"access_token": "abc", "token_type": "Bearer", "expires_in": 60})
    expect_lookup(http, space())
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", token=None,
                                                          username="admin", password="s3cret"))
    assert (outcome, result["changed"]) == ("exit", False)
    assert http.calls[0]["data"] == {"grant_type": "password", "username": "admin", "password": "s3cret"}


# Secured to a group, with the user's notes ------------------------------------------------

SECURED = dict(owner="alice", group="render", permissions="2770",
               acl=["group:render-leads:rwx", "default:group:render-leads:rwx"], comment="season 2",
               extras={"code": "SNK", "cost_centre": 4711})


def test_create_sends_owner_group_permissions_acl_and_notes(run_module, http):
    expect_lookup(http)
    expect_refs(http)
    http.expect("POST", "/spaces/", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="NEW", **SECURED)),
                # the ACL in the long form, in the task's order, once each
                body=created(comment="season 2", extras={"code": "SNK", "cost_centre": 4711}, owner="alice",
                             group="render", permissions="2770",
                             acl=["group:render-leads:rwx", "default:group:render-leads:r-x"]))
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(**SECURED)))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, **{**SECURED, "acl": [
        "g:render-leads:rwx", "d:g:render-leads:rx", "group:render-leads:rwx"]}))
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["msg"]) == (True, ["create"], "space 'sleepy-snake' created")
    assert (result["space"]["group"], result["space"]["comment"]) == ("render", "season 2")


def test_a_secured_space_run_again_with_the_same_values_otherwise_spelt_is_no_change(run_module, http):
    expect_lookup(http, space(**{**SECURED, "permissions": "0770"}))
    expect_names(http)
    outcome, result = run_module(pixstor_space.main, dict(
        name="sleepy-snake", profile="mmfs1-sas1", owner="alice", group="render", permissions="770",
        acl=["d:group:render-leads:rwx", "g:render-leads:rwx"], comment="season 2",
        extras={"cost_centre": 4711, "code": "SNK"}), diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, []), result
    assert result["diff"]["before"]["acl"] == ["default:group:render-leads:rwx", "group:render-leads:rwx"]
    assert writes_of(http) == []


def test_a_new_group_and_mode_are_an_update_job_sent_with_the_mode_in_four_digits(run_module, http):
    expect_lookup(http, space(**SECURED))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(**SECURED)), headers={"ETag": '"v1"'})
    http.expect("PATCH", "/spaces/s1", status=202, headers=accepted_headers("spaces", "s1", "j2"),
                json_body=cj_doc(space(status="PENDING", **SECURED)),
                body={"template": {"data": [{"name": "group", "value": "comp"},
                                            {"name": "permissions", "value": "0750"}]}})
    http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "COMPLETED", "spaces", "s1", "update")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space(**{**SECURED, "group": "comp", "permissions": "0750"})))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", group="comp",
                                                          permissions="750"))
    assert outcome == "exit", result
    assert (result["actions"], result["msg"]) == (["update"], "space 'sleepy-snake' updated (group, permissions)")
    assert result["job"] == {"href": "/jobs/j2", "status": "COMPLETED"}
    assert http.calls[3]["headers"]["If-Match"] == '"v1"'


def test_three_digits_drop_the_setgid_bit_and_that_is_a_change(run_module, http):
    expect_lookup(http, space())
    expect_names(http)
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          permissions="770"), check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["update"])
    assert (result["diff"]["before"]["permissions"], result["diff"]["after"]["permissions"]) == ("2770", "0770")
    assert result["msg"] == "space 'sleepy-snake' would be updated (permissions)"
    assert writes_of(http) == []


def test_an_empty_acl_removes_the_entries(run_module, http):
    expect_lookup(http, space(acl=["group:render-leads:rwx"]))
    expect_names(http)
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", acl=[]),
                                 check_mode=True, diff=True)
    assert (outcome, result["changed"]) == ("exit", True)
    assert (result["diff"]["before"]["acl"], result["diff"]["after"]["acl"]) == (["group:render-leads:rwx"], [])


def test_a_comment_alone_answers_at_once_without_a_job(run_module, http):
    expect_lookup(http, space())
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()))
    http.expect("PATCH", "/spaces/s1", status=200, json_body=cj_doc(space(comment="season 2")),
                body={"template": {"data": [{"name": "comment", "value": "season 2"}]}})
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          comment="season 2"))
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["job"]) == (True, ["update"], None)
    assert result["msg"] == "space 'sleepy-snake' updated (comment)"


def test_extras_compare_as_a_whole(run_module, http):
    expect_lookup(http, space(extras={"code": "SNK", "cost_centre": 4711}))
    expect_names(http)
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          extras={"code": "SNK"}), check_mode=True, diff=True)
    assert (outcome, result["changed"], result["diff"]["after"]["extras"]) == ("exit", True, {"code": "SNK"})


def test_a_resize_with_other_changes_is_an_update_saying_both(run_module, http):
    expect_lookup(http, space())
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1", size="8G",
                                                          group="render"), check_mode=True)
    assert (outcome, result["actions"]) == ("exit", ["update"])
    assert result["msg"] == "space 'sleepy-snake' would be updated (group, size from 4GiB to 8GiB)"


@pytest.mark.parametrize("value, why", [
    (504, "permissions must be a quoted string of 3 or 4 octal digits such as '2770'; got the number 504: quote it "
          "(YAML reads an unquoted 0770 as the number 504)"),
    ("2798", "permissions must be 3 or 4 octal digits such as '2770'; got '2798'"),
    ("", "permissions must be 3 or 4 octal digits such as '2770'; got ''"),
])
def test_permissions_that_are_not_octal_digits_fail_before_any_request(run_module, http, value, why):
    outcome, result = run_module(pixstor_space.main, dict(ARGS, permissions=value))
    assert (outcome, result["msg"]) == ("fail", "space 'sleepy-snake': " + why)
    assert http.calls == []


def writes_of(http):
    return [c["method"] for c in http.calls if c["method"] != "GET"]


def expect_names(http):
    """The reads of a diff that names the exposers and templates the task did not name."""
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", name="project_template")))


# Snapshot policies and new spaces from snapshots (issue 13) ------------------------------

POLICIES = {"nightly": "q1", "hourly": "q2"}


def expect_policies(http, *names):
    for name in names:
        http.expect("GET", "/snapshotpolicies/", where={"name": name},
                    json_body=cj_doc(cj_item("snapshotpolicies", POLICIES[name], name=name)))


def test_snapshot_policies_are_a_patch_without_a_job_in_the_tasks_order(run_module, http):
    expect_lookup(http, space(snapshot_policies=["/snapshotpolicies/q1"]))
    expect_policies(http, "nightly", "hourly")
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()), headers={"ETag": '"v1"'})
    http.expect("PATCH", "/spaces/s1", status=200,
                json_body=cj_doc(space(snapshot_policies=["/snapshotpolicies/q1", "/snapshotpolicies/q2"])),
                body={"template": {"data": [{"name": "snapshot_policies",
                                             "value": ["/snapshotpolicies/q1", "/snapshotpolicies/q2"]}]}})
    # the diff names the exposers and templates this task did not name
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", name="project_template")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          snapshot_policies=["nightly", "hourly", "nightly"]), diff=True)
    assert outcome == "exit", result
    assert (result["actions"], result["job"]) == (["update"], None)
    assert result["msg"] == "space 'sleepy-snake' updated (snapshot_policies)"
    assert (result["diff"]["before"]["snapshot_policies"], result["diff"]["after"]["snapshot_policies"]) == (
        ["nightly"], ["nightly", "hourly"])


def test_the_same_policies_in_another_order_are_no_change(run_module, http):
    expect_lookup(http, space(snapshot_policies=["/snapshotpolicies/q2", "/snapshotpolicies/q1"]))
    expect_policies(http, "hourly", "nightly")
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          snapshot_policies=["hourly", "nightly"]))
    assert (outcome, result["changed"]) == ("exit", False)


def test_an_empty_list_takes_every_policy_off(run_module, http):
    expect_lookup(http, space(snapshot_policies=["/snapshotpolicies/q1"]))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(space()))
    http.expect("PATCH", "/spaces/s1", status=200, json_body=cj_doc(space()),
                body={"template": {"data": [{"name": "snapshot_policies", "value": []}]}})
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          snapshot_policies=[]))
    assert (outcome, result["actions"], result["space"]["snapshot_policies"]) == ("exit", ["update"], [])


def test_a_policy_still_to_be_made_in_check_mode(run_module, http):
    expect_lookup(http, space())
    http.expect("GET", "/snapshotpolicies/", where={"name": "hourly"}, json_body=cj_doc())
    http.expect("GET", "/snapshotpolicies/hourly", status=404, json_body=cj_error(404, "Not found"))
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1", name="mmfs1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", name="project_template")))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          snapshot_policies=["hourly"]), check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["update"])
    assert result["warnings"] == ["snapshot policy 'hourly' not found in /snapshotpolicies/; check mode assumes an "
                                  "earlier task would create it"]
    assert result["diff"]["after"]["snapshot_policies"] == ["hourly"]


def test_a_new_space_from_a_snapshot_of_another_space(run_module, http):
    expect_lookup(http)
    expect_refs(http, templates=())
    expect_policies(http, "nightly")
    http.expect("GET", "/spaces/", where={"name": "source"}, json_body=cj_doc(cj_item("spaces", "s9", name="source")))
    http.expect("GET", "/snapshots/", where={"name": "before", "space": "/spaces/s9"},
                json_body=cj_doc(cj_item("snapshots", "n9", name="before", space="/spaces/s9")))
    http.expect("POST", "/spaces/", status=202, headers=accepted_headers("spaces", "s1", "j1"),
                json_body=cj_doc(space(status="NEW")),
                body={"template": {"data": [{"name": name, "value": value} for name, value in dict(
                    name="sleepy-snake", relativepath="projects/sleepy_snake", exposers=["/exposers/e1"],
                    profile="/profiles/p1", templates=[], size=4 * GIB, snapshot_policies=["/snapshotpolicies/q1"],
                    source_snapshot="/snapshots/n9").items()]}})
    args = dict(ARGS, templates=None, snapshot_policies=["nightly"], source_snapshot="before", source_space="source",
                wait=False)
    outcome, result = run_module(pixstor_space.main, args, diff=True)
    assert outcome == "exit", result
    assert result["actions"] == ["create"]
    assert (result["diff"]["after"]["source_snapshot"], result["diff"]["after"]["snapshot_policies"]) == (
        "before", ["nightly"])


def test_an_existing_space_is_not_compared_with_its_source_snapshot(run_module, http):
    expect_lookup(http, space(source_snapshot=None, templates=[]))
    outcome, result = run_module(pixstor_space.main, dict(name="sleepy-snake", profile="mmfs1-sas1",
                                                          source_snapshot="gone-since", source_space="source"))
    assert (outcome, result["changed"]) == ("exit", False)
    assert len(http.calls) == 2


def test_a_source_snapshot_of_a_space_still_to_be_made_in_check_mode(run_module, http):
    expect_lookup(http)
    expect_refs(http, templates=())
    http.expect("GET", "/spaces/", where={"name": "source"}, json_body=cj_doc())
    http.expect("GET", "/spaces/source", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, templates=None, source_snapshot="before",
                                                          source_space="source"), check_mode=True, diff=True)
    assert (outcome, result["actions"], result["diff"]["after"]["source_snapshot"]) == ("exit", ["create"], "before")
    assert result["warnings"] == ["source_space 'source' not found in /spaces/; check mode assumes an earlier task "
                                  "would create it"]


def test_a_snapshot_name_of_several_spaces_must_say_which(run_module, http):
    expect_lookup(http)
    expect_refs(http, templates=())
    http.expect("GET", "/snapshots/", where={"name": "hourly-20260302T0900Z"}, json_body=cj_doc(
        cj_item("snapshots", "n1", name="hourly-20260302T0900Z"), cj_item("snapshots", "n2", name="hourly-20260302T0900Z")))
    outcome, result = run_module(pixstor_space.main, dict(ARGS, templates=None, source_snapshot="hourly-20260302T0900Z"))
    assert (outcome, result["msg"]) == ("fail", "2 snapshots match source_snapshot 'hourly-20260302T0900Z': "
                                                "/snapshots/n1, /snapshots/n2; say which one")


def test_a_source_snapshot_with_templates_fails_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_space.main, dict(ARGS, source_snapshot="before"))
    assert (outcome, result["msg"]) == ("fail", "space 'sleepy-snake': a space starts from a snapshot or from "
                                                "templates, not both: give source_snapshot or templates")
    assert http.calls == []
