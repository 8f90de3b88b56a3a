# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_template
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)

ARGS = dict(name="project_template", template_location="/mmfs1/project_template")


def template(**data):
    return cj_item("templates", "t1", **dict(dict(name="project_template", type="filesystemtemplate",
                                                  template_location=None), **data))


def test_create_builds_the_template(run_module, http):
    http.expect("GET", "/templates/", where={"name": "project_template"}, json_body=cj_doc())
    http.expect("POST", "/templates/", status=202, headers=accepted_headers("templates", "t1", "j1"),
                json_body=cj_doc(template(status="NEW", template_location="/mmfs1/project_template")),
                body={"template": {"data": [{"name": "name", "value": "project_template"},
                                            {"name": "type", "value": "filesystemtemplate"},
                                            {"name": "template_location", "value": "/mmfs1/project_template"}]}})
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "INPROGRESS", "templates", "t1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", status="INPROGRESS")))
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "templates", "t1")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1", status="ACTIVE")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(template()))
    outcome, result = run_module(pixstor_template.main, ARGS, diff=True)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["job"]["status"]) == (True, ["create"], "COMPLETED")
    assert result["template"]["template_location"] is None
    assert result["diff"] == {"before": {}, "after": {"name": "project_template", "type": "filesystemtemplate"}}


def test_an_existing_template_is_left_alone_even_though_its_location_reads_null(run_module, http):
    http.expect("GET", "/templates/", where={"name": "project_template"}, json_body=cj_doc(template()))
    outcome, result = run_module(pixstor_template.main, ARGS)
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
    assert result["template"]["href"] == "/templates/t1"


def test_check_mode_create(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc())
    outcome, result = run_module(pixstor_template.main, ARGS, check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["create"])


def test_creating_needs_a_location(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc())
    outcome, result = run_module(pixstor_template.main, dict(name="project_template"))
    assert outcome == "fail"
    assert "creating it needs template_location" in result["msg"]


def test_a_duplicate_or_invalid_model_quotes_the_api(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc())
    http.expect("POST", "/templates/", status=422, json_body=cj_error(
        422, "Insertion failure: 1 document(s) contain(s) error(s)",
        {"template_location": "not under a filesystem or template source"}))
    outcome, result = run_module(pixstor_template.main, dict(ARGS, template_location="/etc"))
    assert outcome == "fail"
    assert result["msg"].endswith("(template_location: not under a filesystem or template source)")
    assert result["api_error"]["code"] == 422


def test_absent_deletes_and_waits(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc(template()))
    http.expect("DELETE", "/templates/t1", status=202, json_body=cj_doc(),
                headers={"Link": '<http://pixstor.test:5101/jobs/j4>; rel="job"'})
    http.expect("GET", "/jobs/j4", json_body=cj_doc(job_item("j4", "COMPLETED", "templates", "t1", "delete")))
    http.expect("GET", "/templates/t1", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_template.main, dict(name="project_template", state="absent"))
    assert (outcome, result["changed"], result["job"]) == ("exit", True, {"href": "/jobs/j4", "status": "COMPLETED"})


def test_absent_deleted_at_once_needs_no_wait(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc(template()))
    http.expect("DELETE", "/templates/t1", status=204)
    outcome, result = run_module(pixstor_template.main, dict(name="project_template", state="absent"))
    assert (outcome, result["changed"], result["job"]) == ("exit", True, None)


def test_absent_when_gone(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc())
    outcome, result = run_module(pixstor_template.main, dict(name="project_template", state="absent"))
    assert (outcome, result["changed"]) == ("exit", False)


def test_losing_a_creation_race_finds_the_template_and_waits_for_it(run_module, http):
    # The same task on several hosts: another one created the template between lookup and POST.
    http.expect("GET", "/templates/", json_body=cj_doc())
    http.expect("POST", "/templates/", status=409, json_body=cj_error(409, "duplicate", {"name": "already exists"}))
    http.expect("GET", "/templates/", where={"name": "project_template"}, json_body=cj_doc(template(status="INPROGRESS")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(template(status="ACTIVE")))
    outcome, result = run_module(pixstor_template.main, ARGS)
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
    assert result["template"]["status"] == "ACTIVE"


def test_a_conflict_that_is_not_a_race_still_fails(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc())
    http.expect("POST", "/templates/", status=409, json_body=cj_error(409, "model is being built elsewhere"))
    http.expect("GET", "/templates/", json_body=cj_doc())
    outcome, result = run_module(pixstor_template.main, ARGS)
    assert (outcome, result["status_code"]) == ("fail", 409)
    assert "model is being built elsewhere" in result["msg"]


def test_absent_while_another_host_deletes_it_waits_and_is_no_change(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc(template()))
    http.expect("DELETE", "/templates/t1", status=409, json_body=cj_error(409, "/templates/t1 is PENDING: wait for its job"))
    http.expect("GET", "/templates/t1", json_body=cj_doc(template(status="PENDING")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(template(status="INPROGRESS")))
    http.expect("GET", "/templates/t1", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_template.main, dict(name="project_template", state="absent"))
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", False, [], None)


def test_absent_while_another_job_runs_deletes_once_it_ends(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc(template()))
    http.expect("DELETE", "/templates/t1", status=409, json_body=cj_error(409, "/templates/t1 is NEW: wait for its job"))
    http.expect("GET", "/templates/t1", json_body=cj_doc(template(status="NEW")))
    http.expect("GET", "/templates/t1", json_body=cj_doc(template(status="ACTIVE")))
    http.expect("DELETE", "/templates/t1", status=204)
    outcome, result = run_module(pixstor_template.main, dict(name="project_template", state="absent"))
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["delete"])


def test_absent_when_someone_else_deleted_it_first_is_no_change(run_module, http):
    http.expect("GET", "/templates/", json_body=cj_doc(template()))
    http.expect("DELETE", "/templates/t1", status=404, json_body=cj_error(404, "no such item: /templates/t1"))
    outcome, result = run_module(pixstor_template.main, dict(name="project_template", state="absent"))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
