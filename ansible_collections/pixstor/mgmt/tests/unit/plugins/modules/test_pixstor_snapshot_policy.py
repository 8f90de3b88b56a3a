# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import pytest

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_snapshot_policy
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)


def policy(**data):
    fields = dict(name="hourly", schedule="0 * * *", prefix="hourly", retain_count=24, retain_duration=None,
                  comment=None, extras=None)
    fields.update(data)
    return cj_item("snapshotpolicies", "q1", **fields)


def expect_lookup(http, *found):
    http.expect("GET", "/snapshotpolicies/", where={"name": "hourly"}, json_body=cj_doc(*found))


def template(**fields):
    return {"template": {"data": [{"name": name, "value": value} for name, value in fields.items()]}}


def test_create_posts_the_policy_with_its_name_as_prefix_and_waits(run_module, http):
    expect_lookup(http)
    http.expect("POST", "/snapshotpolicies/", status=202, headers=accepted_headers("snapshotpolicies", "q1", "j1"),
                json_body=cj_doc(policy(status="NEW")),
                body=template(name="hourly", schedule="0 * * *", prefix="hourly", retain_count=24))
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "snapshotpolicies", "q1")))
    http.expect("GET", "/snapshotpolicies/q1", json_body=cj_doc(cj_item("snapshotpolicies", "q1")))
    http.expect("GET", "/snapshotpolicies/q1", json_body=cj_doc(policy()))
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", schedule=" 0  * * * ",
                                                                    retain_count=24))
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["job"]["status"]) == (True, ["create"], "COMPLETED")
    assert result["msg"] == "snapshot policy 'hourly' created"
    assert result["snapshot_policy"]["schedule"] == "0 * * *"


def test_the_same_policy_otherwise_spelt_is_no_change_and_no_write(run_module, http):
    expect_lookup(http, policy(retain_duration="2d"))
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(
        name="hourly", schedule="0   * *  *", prefix="hourly", retain_count=24, retain_duration=" 2d"), diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
    assert result["msg"] == "snapshot policy 'hourly' is present as requested: nothing to change"
    assert result["diff"]["before"] == result["diff"]["after"]
    assert {c["method"] for c in http.calls} == {"GET"}


def test_a_new_retention_is_a_patch_without_a_job_nulls_for_removed(run_module, http):
    expect_lookup(http, policy(retain_duration="2d"))
    http.expect("GET", "/snapshotpolicies/q1", json_body=cj_doc(policy()), headers={"ETag": '"e1"'})
    http.expect("PATCH", "/snapshotpolicies/q1", status=200,
                json_body=cj_doc(policy(retain_count=None, retain_duration="12h")),
                body=template(retain_count=None, retain_duration="12h"))
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", retain_count=0,
                                                                    retain_duration="12h"), diff=True)
    assert outcome == "exit", result
    assert (result["actions"], result["job"]) == (["update"], None)
    assert result["msg"] == "snapshot policy 'hourly' updated (retain_count, retain_duration)"
    assert (result["diff"]["before"]["retain_count"], result["diff"]["after"]["retain_count"]) == (24, 0)
    assert result["snapshot_policy"]["retain_duration"] == "12h"


def test_a_new_schedule_in_check_mode_writes_nothing(run_module, http):
    expect_lookup(http, policy())
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", schedule="*/15 8-18 * 1-5"),
                                 check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["update"])
    assert result["msg"] == "snapshot policy 'hourly' would be updated (schedule)"
    assert result["diff"]["after"]["schedule"] == "*/15 8-18 * 1-5"
    assert {c["method"] for c in http.calls} == {"GET"}


def test_create_in_check_mode_predicts_without_writing(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", schedule="0 * * *",
                                                                    retain_duration="2d", comment="every hour"),
                                 check_mode=True, diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", True, ["create"], None)
    assert result["diff"]["after"] == {"name": "hourly", "schedule": "0 * * *", "prefix": "hourly",
                                       "retain_duration": "2d", "comment": "every hour"}
    assert len(http.calls) == 1


def test_a_prefix_other_than_the_created_one_fails(run_module, http):
    expect_lookup(http, policy())
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", prefix="hour"))
    assert outcome == "fail"
    assert result["msg"].startswith("snapshot policy 'hourly': prefix cannot be changed once created")


@pytest.mark.parametrize("found, args, msg", [
    ((), dict(retain_count=3), "snapshot policy 'hourly' does not exist; creating it needs schedule"),
    ((), dict(schedule="0 * * *"), "snapshot policy 'hourly': give retain_count, retain_duration or both: a policy "
                                   "without retention would keep every snapshot it takes"),
    ((policy(),), dict(retain_count=0), "snapshot policy 'hourly': give retain_count, retain_duration or both: a "
                                        "policy without retention would keep every snapshot it takes"),
])
def test_a_policy_without_what_it_needs_fails_without_writing(run_module, http, found, args, msg):
    expect_lookup(http, *found)
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", **args))
    assert (outcome, result["msg"]) == ("fail", msg)
    assert len(http.calls) == 1


@pytest.mark.parametrize("args, msg", [
    (dict(schedule="0 * *"), "snapshot policy 'hourly': schedule '0 * *': expected four cron fields, minute hour "
                             "day-of-month day-of-week (such as '0 * * *' hourly)"),
    (dict(retain_duration="3 days"), "snapshot policy 'hourly': retain_duration: '3 days' is not a duration: a whole "
                                     "number and a unit, m (minutes), h (hours), d (days) or w (weeks), such as 7d "
                                     "or 12h"),
    (dict(retain_count=-1), "snapshot policy 'hourly': retain_count must be a positive number, or 0 to remove it; "
                            "got -1"),
])
def test_what_the_api_would_refuse_fails_before_a_write(run_module, http, args, msg):
    expect_lookup(http)
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", **args))
    assert (outcome, result["msg"]) == ("fail", msg)


def test_a_refused_schedule_quotes_the_api(run_module, http):
    expect_lookup(http)
    http.expect("POST", "/snapshotpolicies/", status=422, json_body=cj_error(
        422, "invalid fields", {"schedule": "minute field '60': values must be from 0 to 59"}))
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", schedule="60 * * *",
                                                                    retain_count=3))
    assert (outcome, result["status_code"]) == ("fail", 422)
    assert "schedule: minute field '60': values must be from 0 to 59" in result["msg"]


def test_absent_with_force_takes_it_off_the_spaces(run_module, http):
    expect_lookup(http, policy())
    http.expect("DELETE", "/snapshotpolicies/q1", status=202, json_body=cj_doc(), params={"force": "true"},
                headers={"Link": '<http://pixstor.test:5101/jobs/j2>; rel="job"'})
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", state="absent", force=True,
                                                                    wait=False))
    assert (outcome, result["actions"], result["job"]) == ("exit", ["delete"], {"href": "/jobs/j2", "status": None})


def test_absent_without_force_quotes_the_spaces_that_list_it(run_module, http):
    expect_lookup(http, policy())
    http.expect("DELETE", "/snapshotpolicies/q1", status=409, json_body=cj_error(
        409, "policy hourly applies to spaces s (/spaces/s1): PATCH their snapshot_policies, or delete with "
             "?force=true to take it off them (its snapshots are kept)"))
    http.expect("GET", "/snapshotpolicies/q1", json_body=cj_doc(policy()))
    outcome, result = run_module(pixstor_snapshot_policy.main, dict(name="hourly", state="absent"))
    assert (outcome, result["status_code"]) == ("fail", 409)
    assert "applies to spaces s (/spaces/s1)" in result["msg"]
