# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import pytest

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_profile
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)

SAS1, SATA1 = "/datastores/d1", "/datastores/d2"
PLACEMENT = ("placement of profile render changed from pool sas1 to sata1: new files of its spaces go to sata1; "
             "files already written stay in sas1 (an ILM migrate step moves them)")
CONDITIONS = dict(target=None, access_days=None, modification_days=None, min_size=None, max_size=None,
                  name_patterns=None, threshold_high=None, threshold_low=None)
# The task's steps, and the same steps as the API holds them.
SCRATCH = dict(name="scratch", action="delete", modification_days=7, name_patterns=["*.tmp"])
COLD = dict(name="cold", action="migrate", target="sata1", access_days=30, name_patterns=["*.exr", "*.dpx"],
            threshold_high=90, threshold_low=70)
ARGS = dict(name="render", datastore="sas1", ilm_steps=[SCRATCH, COLD])


def profile(**data):
    fields = dict(name="render", datastore=SAS1, comment=None, extras=None)
    fields.update(data)
    return cj_item("profiles", "p1", **fields)


def step(item_id, name, order, **data):
    fields = dict(name=name, profile="/profiles/p1", order=order, comment=None, extras=None, **CONDITIONS)
    fields.update(data)
    return cj_item("ilmsteps", item_id, **fields)


def scratch(order=1, **data):
    return step("s1", "scratch", order, **dict(dict(action="delete", modification_days=7, name_patterns=["*.tmp"]),
                                               **data))


def cold(order=2, **data):
    return step("s2", "cold", order, **dict(dict(action="migrate", target=SATA1, access_days=30,
                                                 name_patterns=["*.exr", "*.dpx"], threshold_high=90,
                                                 threshold_low=70), **data))


def expect_lookup(http, *found):
    http.expect("GET", "/profiles/", where={"name": "render"}, json_body=cj_doc(*found))


def expect_datastore(http, name="sas1", item_id="d1", where=None):
    http.expect("GET", "/datastores/", where=dict(where or {}, name=name), json_body=cj_doc(
        cj_item("datastores", item_id, name=name, pool=name, filesystem="mmfs1")))


def expect_steps(http, *found):
    http.expect("GET", "/ilmsteps/", where={"profile": "/profiles/p1"}, json_body=cj_doc(*found))


def expect_target(http):
    expect_datastore(http, "sata1", "d2", where={"filesystem": "mmfs1"})


def expect_present(http, *steps, datastore=True, target=True):
    """The reads of a run on an existing profile: itself, the datastore, its steps, the target."""
    expect_lookup(http, profile())
    if datastore:
        expect_datastore(http)
    expect_steps(http, *steps)
    if target:
        expect_target(http)


def expect_job(http, collection, item, job_id, action, final=None, message=None):
    """A job waited for: the job, the item at its Location, then the item whole."""
    item_id = item["href"].rsplit("/", 1)[1]
    job = job_item(job_id, "COMPLETED", collection, item_id, action)
    if message:
        job["data"].append({"name": "message", "value": message})
    http.expect("GET", "/jobs/" + job_id, json_body=cj_doc(job))
    http.expect("GET", item["href"], json_body=cj_doc(cj_item(collection, item_id)))
    http.expect("GET", item["href"], json_body=cj_doc(final or item))


def expect_post(http, collection, item, job_id, **sent):
    item_id = item["href"].rsplit("/", 1)[1]
    http.expect("POST", "/%s/" % collection, status=202, headers=accepted_headers(collection, item_id, job_id),
                json_body=cj_doc(item), body={"template": {"data": [
                    {"name": name, "value": value} for name, value in sent.items()]}})


def expect_patch(http, item, job_id=None, final=None, message=None, **sent):
    """A PATCH with exactly `sent`, after the read of its ETag; answered 202 and waited for, or 200."""
    collection, item_id = item["href"].strip("/").split("/")
    http.expect("GET", item["href"], json_body=cj_doc(item), headers={"ETag": '"%s"' % job_id})
    body = {"template": {"data": [{"name": name, "value": value} for name, value in sent.items()]}}
    if job_id is None:
        http.expect("PATCH", item["href"], status=200, json_body=cj_doc(final or item), body=body)
        return
    http.expect("PATCH", item["href"], status=202, headers=accepted_headers(collection, item_id, job_id),
                json_body=cj_doc(item), body=body)
    expect_job(http, collection, item, job_id, "update", final, message)


def expect_delete(http, item, job_id):
    collection, item_id = item["href"].strip("/").split("/")
    http.expect("DELETE", item["href"], status=202, json_body=cj_doc(),
                headers={"Link": '<http://pixstor.test:5101/jobs/%s>; rel="job"' % job_id})
    http.expect("GET", "/jobs/" + job_id, json_body=cj_doc(job_item(job_id, "COMPLETED", collection, item_id,
                                                                    "delete")))
    http.expect("GET", item["href"], status=404, json_body=cj_error(404, "Not found"))


def writes(http):
    return [(c["method"], c["url"].split("5101", 1)[1]) for c in http.calls if c["method"] != "GET"]


# Creation ---------------------------------------------------------------------------

def test_create_makes_the_profile_then_its_steps_in_order_each_waited_for(run_module, http):
    expect_lookup(http)
    expect_datastore(http)
    expect_target(http)
    expect_post(http, "profiles", profile(status="PENDING", comment="farm"), "j1", name="render", datastore=SAS1,
                comment="farm")
    expect_job(http, "profiles", profile(comment="farm"), "j1", "create")
    expect_post(http, "ilmsteps", scratch(status="PENDING"), "j2", name="scratch", profile="/profiles/p1", order=1,
                action="delete", modification_days=7, name_patterns=["*.tmp"])
    expect_job(http, "ilmsteps", scratch(), "j2", "create")
    expect_post(http, "ilmsteps", cold(status="PENDING"), "j3", name="cold", profile="/profiles/p1", order=2,
                action="migrate", target=SATA1, access_days=30, threshold_high=90, threshold_low=70,
                name_patterns=["*.exr", "*.dpx"])
    expect_job(http, "ilmsteps", cold(), "j3", "create")
    expect_steps(http, cold(), scratch())
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, comment="farm"))
    assert outcome == "exit", result
    assert (result["changed"], result["actions"]) == (True, ["create", "create ilm step scratch",
                                                             "create ilm step cold"])
    assert result["msg"] == "profile 'render' created; ILM steps scratch created, cold created"
    assert result["job"] == {"href": "/jobs/j3", "status": "COMPLETED"}
    assert [s["name"] for s in result["ilm_steps"]] == ["scratch", "cold"]
    assert result["profile"]["comment"] == "farm"
    assert "placement_message" not in result


def test_second_run_changes_nothing_and_writes_nothing(run_module, http):
    # the steps as the API lists them, patterns in another order, sizes in bytes
    expect_present(http, cold(name_patterns=["*.dpx", "*.exr"]), scratch(max_size=1 << 20))
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[dict(SCRATCH, max_size="1MiB"), COLD]),
                                 diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", False, [], None), result
    assert result["msg"] == "profile 'render' is present as requested: nothing to change"
    assert result["diff"]["before"] == result["diff"]["after"]
    assert [(s["name"], s["target"]) for s in result["diff"]["after"]["ilm_steps"]] == [
        ("scratch", None), ("cold", "sata1")]
    assert [s["name"] for s in result["ilm_steps"]] == ["scratch", "cold"]
    assert writes(http) == []


def test_create_in_check_mode_predicts_without_writing(run_module, http):
    expect_lookup(http)
    expect_datastore(http)
    expect_target(http)
    outcome, result = run_module(pixstor_profile.main, ARGS, check_mode=True, diff=True)
    assert (outcome, result["changed"], result["job"]) == ("exit", True, None)
    assert result["actions"] == ["create", "create ilm step scratch", "create ilm step cold"]
    assert result["msg"] == ("profile 'render' would be created; ILM steps scratch would be created, "
                             "cold would be created")
    assert [(s["name"], s["order"]) for s in result["ilm_steps"]] == [("scratch", 1), ("cold", 2)]
    assert result["diff"]["before"] == {"ilm_steps": []}
    assert result["diff"]["after"]["datastore"] == "sas1"
    assert writes(http) == []


def test_creating_needs_a_datastore(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", ilm_steps=[SCRATCH]))
    assert (outcome, result["msg"]) == ("fail", "profile 'render' does not exist; creating it needs datastore")
    assert writes(http) == []


# Order -------------------------------------------------------------------------------

def test_a_swap_moves_one_step_past_the_end_first(run_module, http):
    expect_present(http, scratch(), cold())
    expect_patch(http, scratch(), "j1", final=scratch(order=3), order=3)
    expect_patch(http, cold(), "j2", final=cold(order=1), order=1)
    expect_patch(http, scratch(order=3), "j3", final=scratch(order=2), order=2)
    expect_steps(http, cold(order=1), scratch(order=2))
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[COLD, SCRATCH]))
    assert outcome == "exit", result
    assert result["actions"] == ["move ilm step scratch", "update ilm step cold", "update ilm step scratch"]
    assert result["msg"] == ("profile 'render' unchanged; ILM steps scratch updated (order), cold updated (order)")
    assert [(s["name"], s["order"]) for s in result["ilm_steps"]] == [("cold", 1), ("scratch", 2)]


def test_a_step_put_first_shifts_the_others_from_the_end_without_a_detour(run_module, http):
    expect_present(http, scratch(), cold())
    expect_patch(http, cold(), "j1", final=cold(order=3), order=3)
    expect_patch(http, scratch(), "j2", final=scratch(order=2), order=2)
    expect_post(http, "ilmsteps", step("s3", "old", 1, action="delete", status="PENDING", access_days=365), "j3",
                name="old", profile="/profiles/p1", order=1, action="delete", access_days=365)
    expect_job(http, "ilmsteps", step("s3", "old", 1, action="delete", access_days=365), "j3", "create")
    expect_steps(http, step("s3", "old", 1, action="delete", access_days=365), scratch(2), cold(3))
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[
        dict(name="old", action="delete", access_days=365), SCRATCH, COLD]))
    assert outcome == "exit", result
    assert result["actions"] == ["update ilm step cold", "update ilm step scratch", "create ilm step old"]


def test_a_reorder_in_check_mode_is_a_change_and_writes_nothing(run_module, http):
    expect_present(http, scratch(), cold())
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[COLD, SCRATCH]), check_mode=True,
                                 diff=True)
    assert (outcome, result["changed"]) == ("exit", True)
    assert result["actions"] == ["move ilm step scratch", "update ilm step cold", "update ilm step scratch"]
    assert result["msg"] == ("profile 'render' unchanged; ILM steps scratch would be updated (order), "
                             "cold would be updated (order)")
    assert [s["name"] for s in result["diff"]["before"]["ilm_steps"]] == ["scratch", "cold"]
    assert [s["name"] for s in result["diff"]["after"]["ilm_steps"]] == ["cold", "scratch"]
    assert [(s["name"], s["order"]) for s in result["ilm_steps"]] == [("cold", 1), ("scratch", 2)]
    assert writes(http) == []


# Step fields -------------------------------------------------------------------------

def test_a_condition_left_out_is_removed_and_one_patch_carries_every_change(run_module, http):
    expect_present(http, scratch(), cold(), target=False)
    expect_delete(http, cold(), "j1")
    expect_patch(http, scratch(), "j2", final=scratch(modification_days=None, access_days=3), access_days=3,
                 modification_days=None)
    expect_steps(http, scratch(modification_days=None, access_days=3))
    http.expect("GET", SATA1, json_body=cj_doc(cj_item("datastores", "d2", name="sata1")))     # the diff names it
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[
        dict(name="scratch", action="delete", access_days=3, name_patterns="*.tmp")]), diff=True)
    assert outcome == "exit", result
    assert result["actions"] == ["delete ilm step cold", "update ilm step scratch"]
    assert result["msg"] == ("profile 'render' unchanged; ILM steps cold deleted, "
                             "scratch updated (access_days, modification_days)")
    assert [s["name"] for s in result["diff"]["before"]["ilm_steps"]] == ["scratch", "cold"]
    assert result["diff"]["after"]["ilm_steps"] == [dict(
        CONDITIONS, name="scratch", order=1, action="delete", access_days=3, name_patterns=["*.tmp"], comment="",
        extras={})]


def test_an_empty_list_deletes_every_step_and_keeps_the_profile(run_module, http):
    expect_present(http, scratch(), cold(), datastore=False, target=False)
    expect_delete(http, scratch(), "j1")
    expect_delete(http, cold(), "j2")
    expect_steps(http)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", ilm_steps=[]))
    assert outcome == "exit", result
    assert (result["actions"], result["ilm_steps"]) == (["delete ilm step scratch", "delete ilm step cold"], [])
    assert result["msg"] == "profile 'render' unchanged; ILM steps scratch deleted, cold deleted"
    assert result["job"] == {"href": "/jobs/j2", "status": "COMPLETED"}


def test_without_ilm_steps_the_steps_are_left_as_they_are(run_module, http):
    expect_lookup(http, profile())
    expect_steps(http, scratch(), cold())
    http.expect("GET", SAS1, json_body=cj_doc(cj_item("datastores", "d1", name="sas1")))     # the diff names it
    outcome, result = run_module(pixstor_profile.main, dict(name="render"), diff=True)
    assert (outcome, result["changed"]) == ("exit", False)
    assert [s["name"] for s in result["ilm_steps"]] == ["scratch", "cold"]
    assert "ilm_steps" not in result["diff"]["before"]


def test_a_step_comment_alone_is_a_patch_without_a_job(run_module, http):
    expect_present(http, scratch(), cold())
    expect_patch(http, cold(), final=cold(comment="to tape later"), comment="to tape later")
    expect_steps(http, scratch(), cold(comment="to tape later"))
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[SCRATCH, dict(
        COLD, comment="to tape later")]))
    assert outcome == "exit", result
    assert (result["actions"], result["job"]) == (["update ilm step cold"], None)
    assert result["msg"] == "profile 'render' unchanged; ILM step cold updated (comment)"


def test_an_errored_step_is_deleted_and_created_again(run_module, http):
    expect_present(http, scratch(status="ERRORED", status_message="UNIQUE constraint failed"), cold())
    expect_delete(http, scratch(), "j1")
    expect_post(http, "ilmsteps", step("s3", "scratch", 1, status="PENDING"), "j2", name="scratch",
                profile="/profiles/p1", order=1, action="delete", modification_days=7, name_patterns=["*.tmp"])
    expect_job(http, "ilmsteps", step("s3", "scratch", 1), "j2", "create")
    expect_steps(http, step("s3", "scratch", 1), cold())
    outcome, result = run_module(pixstor_profile.main, ARGS)
    assert outcome == "exit", result
    assert result["actions"] == ["delete ilm step scratch", "create ilm step scratch"]
    assert result["msg"] == "profile 'render' unchanged; ILM step scratch recreated (it was ERRORED)"


@pytest.mark.parametrize("steps, why", [
    ([SCRATCH, dict(COLD, name="scratch")], "ILM step names must be unique within the profile; repeated: scratch"),
    ([dict(SCRATCH, max_size="1 lightyear")], "ILM step 'scratch': max_size: size '1 lightyear' has an unknown "
                                              "unit 'lightyear'; use B, or K, M, G, T, P (powers of 1024, also "
                                              "written KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB)"),
])
def test_what_the_task_gets_wrong_fails_before_any_request(run_module, http, steps, why):
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=steps))
    assert (outcome, result["msg"]) == ("fail", "profile 'render': " + why)
    assert http.calls == []


def test_a_max_size_of_zero_matches_empty_files(run_module, http):
    expect_present(http, scratch(max_size=0), cold())
    outcome, result = run_module(pixstor_profile.main, dict(ARGS, ilm_steps=[dict(SCRATCH, max_size="0"), COLD]))
    assert (outcome, result["changed"]) == ("exit", False), result


# The profile itself ----------------------------------------------------------------------

def test_a_new_placement_returns_the_jobs_message_and_warns_with_it(run_module, http):
    expect_lookup(http, profile())
    expect_datastore(http, "sata1", "d2")
    expect_steps(http)
    expect_patch(http, profile(), "j1", final=profile(datastore=SATA1), message=PLACEMENT, datastore=SATA1)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", datastore="sata1"))
    assert outcome == "exit", result
    assert (result["actions"], result["msg"]) == (["update"], "profile 'render' updated (datastore)")
    assert result["placement_message"] == PLACEMENT
    assert result["warnings"] == [PLACEMENT]
    assert result["job"] == {"href": "/jobs/j1", "status": "COMPLETED", "message": PLACEMENT}


def test_a_new_placement_in_check_mode_warns_in_the_modules_words(run_module, http):
    expect_lookup(http, profile())
    expect_datastore(http, "sata1", "d2")
    expect_steps(http)
    http.expect("GET", SAS1, json_body=cj_doc(cj_item("datastores", "d1", name="sas1")))
    outcome, result = run_module(pixstor_profile.main, dict(name="render", datastore="sata1"), check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["update"])
    assert result["warnings"] == [result["placement_message"]] == [
        "placement of profile 'render' would change from datastore sas1 to sata1: a new placement applies to new "
        "files only; files already written stay where they are (an ILM migrate step moves them)"]
    assert writes(http) == []


def test_comment_and_extras_alone_are_one_patch_without_a_job(run_module, http):
    expect_lookup(http, profile(extras={"team": "fx"}))
    expect_steps(http)
    expect_patch(http, profile(extras={"team": "fx"}), final=profile(comment="farm", extras={"team": "fx", "n": 2}),
                 comment="farm", extras={"team": "fx", "n": 2})
    outcome, result = run_module(pixstor_profile.main, dict(name="render", comment="farm",
                                                            extras={"team": "fx", "n": 2}))
    assert outcome == "exit", result
    assert (result["actions"], result["job"]) == (["update"], None)
    assert result["msg"] == "profile 'render' updated (comment, extras)"
    assert result["profile"]["extras"] == {"team": "fx", "n": 2}


def test_the_same_extras_in_another_order_and_no_comment_as_empty_are_no_change(run_module, http):
    expect_lookup(http, profile(extras={"team": "fx", "n": 2}))
    expect_steps(http)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", comment="", extras={"n": 2, "team": "fx"}))
    assert (outcome, result["changed"]) == ("exit", False)


def test_extras_of_another_type_are_a_change(run_module, http):
    expect_lookup(http, profile(extras={"n": 2}))
    expect_steps(http)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", extras={"n": "2"}), check_mode=True)
    assert (outcome, result["changed"], result["msg"]) == ("exit", True, "profile 'render' would be updated (extras)")


def test_wait_false_waits_for_every_write_but_the_last(run_module, http):
    expect_present(http, scratch(), cold(), datastore=False, target=False)
    expect_delete(http, cold(), "j1")
    http.expect("GET", scratch()["href"], json_body=cj_doc(scratch()))
    http.expect("PATCH", scratch()["href"], status=202, headers=accepted_headers("ilmsteps", "s1", "j2"),
                json_body=cj_doc(scratch(status="PENDING")))
    expect_steps(http, scratch(status="PENDING"))
    outcome, result = run_module(pixstor_profile.main, dict(name="render", wait=False, ilm_steps=[
        dict(SCRATCH, modification_days=8)]))
    assert outcome == "exit", result
    assert result["job"] == {"href": "/jobs/j2", "status": None}


# Failures and absent -------------------------------------------------------------------

def test_a_refused_step_says_what_was_written_before_it(run_module, http):
    expect_present(http, scratch(), cold(), datastore=False, target=False)
    expect_delete(http, cold(), "j1")
    http.expect("GET", scratch()["href"], json_body=cj_doc(scratch()))
    http.expect("PATCH", scratch()["href"], status=422, json_body=cj_error(
        422, "Insertion failure: 1 document(s) contain(s) error(s)", {"action": "a delete step needs at least one "
                                                                                "condition"}))
    outcome, result = run_module(pixstor_profile.main, dict(name="render", ilm_steps=[
        dict(name="scratch", action="delete")]))
    assert outcome == "fail"
    assert result["msg"] == ("PATCH /ilmsteps/s1 failed: HTTP 422 Insertion failure: 1 document(s) contain(s) "
                             "error(s) (action: a delete step needs at least one condition) (written before: delete "
                             "ilm step cold)")
    assert (result["changed"], result["actions"]) == (True, ["delete ilm step cold"])
    assert result["job"] == {"href": "/jobs/j1", "status": "COMPLETED"}


def test_absent_deletes_the_profile_and_its_steps_go_with_it(run_module, http):
    expect_lookup(http, profile())
    expect_delete(http, profile(), "j1")
    outcome, result = run_module(pixstor_profile.main, dict(name="render", state="absent", ilm_steps=[SCRATCH]))
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["profile"], result["ilm_steps"]) == (
        True, ["delete"], {}, [])
    assert result["msg"] == "profile 'render' deleted"


def test_absent_of_a_profile_in_use_quotes_the_spaces_the_api_names(run_module, http):
    expect_lookup(http, profile())
    http.expect("DELETE", "/profiles/p1", status=409, json_body=cj_error(
        409, "profile render is used by spaces shots (/spaces/s9): nothing was deleted; delete those spaces first"))
    http.expect("GET", "/profiles/p1", json_body=cj_doc(profile()))
    outcome, result = run_module(pixstor_profile.main, dict(name="render", state="absent"))
    assert (outcome, result["msg"]) == ("fail", "DELETE /profiles/p1 failed: HTTP 409 profile render is used by "
                                                "spaces shots (/spaces/s9): nothing was deleted; delete those spaces "
                                                "first")


def test_absent_when_gone_is_no_change(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", state="absent"), check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])


# The plan alone ------------------------------------------------------------------------

def plan(current, wanted):
    steps = dict((name, dict(name=name, order=order, action="delete", access_days=1, status="ACTIVE"))
                 for order, name in enumerate(current, start=1))
    wished = [dict(dict(CONDITIONS, access_days=1), name=name, order=order, action="delete", comment=None,
                   extras=None) for order, name in enumerate(wanted, start=1)]
    return [(kind, name, arg["order"] if isinstance(arg, dict) else arg)
            for kind, name, arg in pixstor_profile.plan_steps(steps, wished)]


@pytest.mark.parametrize("current, wanted, ops", [
    ("abc", "abc", []),
    ("ab", "ba", [("move", "a", 3), ("update", "b", 1), ("update", "a", 2)]),
    ("abc", "cab", [("move", "a", 4), ("update", "c", 1), ("update", "b", 3), ("update", "a", 2)]),
    ("abc", "cba", [("move", "a", 4), ("update", "c", 1), ("update", "a", 3)]),
    ("abc", "nabc", [("update", "c", 4), ("update", "b", 3), ("update", "a", 2), ("create", "n", 1)]),
    ("abx", "b", [("delete", "a", None), ("delete", "x", None), ("update", "b", 1)]),
    ("", "ab", [("create", "a", 1), ("create", "b", 2)]),
])
def test_the_plan_takes_free_positions_and_detours_only_for_cycles(current, wanted, ops):
    assert plan(current, wanted) == ops


def test_steps_that_go_go_before_a_new_placement_and_the_others_follow_it(run_module, http):
    expect_lookup(http, profile())
    expect_datastore(http, "sata1", "d2")
    expect_steps(http, scratch(), cold())
    expect_delete(http, cold(), "j1")      # it migrates to sata1, the new placement: it must not meet it
    expect_patch(http, profile(), "j2", final=profile(datastore=SATA1), message=PLACEMENT, datastore=SATA1)
    expect_patch(http, scratch(), "j3", final=scratch(modification_days=3), modification_days=3)
    expect_steps(http, scratch(modification_days=3))
    outcome, result = run_module(pixstor_profile.main, dict(name="render", datastore="sata1", ilm_steps=[
        dict(SCRATCH, modification_days=3)]))
    assert outcome == "exit", result
    assert result["actions"] == ["delete ilm step cold", "update", "update ilm step scratch"]
    assert result["msg"] == ("profile 'render' updated (datastore); ILM steps cold deleted, "
                             "scratch updated (modification_days)")
    assert (result["placement_message"], result["job"]) == (PLACEMENT, {"href": "/jobs/j3", "status": "COMPLETED"})


def test_check_mode_lists_the_writes_in_the_order_they_would_be_made(run_module, http):
    expect_lookup(http, profile())
    expect_datastore(http, "sata1", "d2")
    expect_steps(http, scratch(), cold())
    http.expect("GET", SAS1, json_body=cj_doc(cj_item("datastores", "d1", name="sas1")))     # the warning names it
    outcome, result = run_module(pixstor_profile.main, dict(name="render", datastore="sata1", ilm_steps=[
        dict(SCRATCH, modification_days=3)]), check_mode=True)
    assert (outcome, result["changed"]) == ("exit", True)
    assert result["actions"] == ["delete ilm step cold", "update", "update ilm step scratch"]
    assert result["msg"] == ("profile 'render' would be updated (datastore); ILM steps cold would be deleted, "
                             "scratch would be updated (modification_days)")
    assert writes(http) == []


def test_a_target_is_looked_up_on_the_filesystem_of_the_profiles_own_datastore(run_module, http):
    expect_lookup(http, profile())
    expect_steps(http, cold(order=1))
    http.expect("GET", SAS1, json_body=cj_doc(cj_item("datastores", "d1", name="sas1", pool="sas1",
                                                      filesystem="mmfs1")))
    expect_target(http)
    outcome, result = run_module(pixstor_profile.main, dict(name="render", ilm_steps=[COLD]))
    assert (outcome, result["changed"], writes(http)) == ("exit", False, []), result
