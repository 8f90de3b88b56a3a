# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_info
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import cj_doc, cj_error, cj_item


def test_gathers_the_requested_collections_with_where(run_module, http):
    where = {"name": "mmfs1-sas1"}
    http.expect("GET", "/spaces/", where=where, json_body=cj_doc())
    http.expect("GET", "/profiles/", where=where, json_body=cj_doc(cj_item("profiles", "p1", name="mmfs1-sas1")))
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces", "profiles"], where=where), check_mode=True)
    assert outcome == "exit", result
    assert result["changed"] is False
    assert result["spaces"] == []
    assert result["profiles"][0]["name"] == "mmfs1-sas1"
    assert "templates" not in result


def test_all_includes_jobs(run_module, http):
    for collection in pixstor_info.SUBSETS:
        http.expect("GET", "/%s/" % collection, json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["all"]))
    assert outcome == "exit"
    assert sorted(k for k in result if k in pixstor_info.SUBSETS) == sorted(pixstor_info.SUBSETS)


def test_default_skips_jobs(run_module, http):
    for collection in pixstor_info.SUBSETS[:-1]:
        http.expect("GET", "/%s/" % collection, json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, {})
    assert (outcome, "jobs" in result) == ("exit", False)


def test_a_bad_where_quotes_the_api(run_module, http):
    http.expect("GET", "/spaces/", status=400, json_body=cj_error(400, "unknown field 'colour' in where"))
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], where={"colour": "blue"}))
    assert (outcome, result["msg"]) == ("fail", "GET /spaces/ failed: HTTP 400 unknown field 'colour' in where")


def test_an_expired_token_says_what_to_check(run_module, http):
    http.expect("GET", "/spaces/", status=401, headers={"WWW-Authenticate": 'Bearer realm="pixstor"'},
                json_body=cj_error(401, "Unauthorized"))
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"]))
    assert outcome == "fail"
    assert result["msg"].endswith("check token, or username and password")
