# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import pytest

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


def test_snapshot_policies_are_gathered_by_default(run_module, http):
    for collection in pixstor_info.SUBSETS[:-1]:
        found = [cj_item("snapshotpolicies", "q1", name="hourly", schedule="0 * * *", retain_count=24)] \
            if collection == "snapshotpolicies" else []
        http.expect("GET", "/%s/" % collection, json_body=cj_doc(*found))
    outcome, result = run_module(pixstor_info.main, {})
    assert outcome == "exit", result
    assert [(p["name"], p["schedule"], p["retain_count"]) for p in result["snapshotpolicies"]] == [
        ("hourly", "0 * * *", 24)]


def test_exposers_are_grouped_by_type_too(run_module, http):
    native = cj_item("exposers", "e1", name="mmfs1", type="gpfsnative", mountpoint="/mmfs1")
    export = cj_item("exposers", "x1", name="snake", type="nfs", path="/mmfs1/projects/snake")
    share = cj_item("exposers", "x2", name="snake-smb", type="cifs", path="/mmfs1/projects/snake")
    http.expect("GET", "/exposers/", json_body=cj_doc(export, native, share))
    outcome, result = run_module(pixstor_info.main, dict(gather=["exposers"]))
    assert outcome == "exit", result
    assert [e["name"] for e in result["exposers"]] == ["snake", "mmfs1", "snake-smb"]
    assert dict((kind, [e["name"] for e in items]) for kind, items in result["exposers_by_type"].items()) == {
        "gpfsnative": ["mmfs1"], "nfs": ["snake"], "cifs": ["snake-smb"]}


def test_every_exposer_type_has_a_key_even_when_empty(run_module, http):
    http.expect("GET", "/exposers/", where={"type": "nfs"}, json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["exposers"], where={"type": "nfs"}))
    assert (outcome, result["exposers_by_type"]) == ("exit", {"gpfsnative": [], "nfs": [], "cifs": []})


def test_no_grouping_without_exposers(run_module, http):
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"]))
    assert (outcome, "exposers_by_type" in result) == ("exit", False)


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


# Connection options, as every module reads them --------------------------------------

@pytest.fixture
def no_pixstor_env(monkeypatch):
    for name in ("PIXSTOR_URL", "PIXSTOR_USERNAME", "PIXSTOR_PASSWORD", "PIXSTOR_TOKEN", "PIXSTOR_VALIDATE_CERTS",
                 "PIXSTOR_CA_PATH", "PIXSTOR_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_token_from_the_environment_wins_over_a_user_name_without_password(run_module, http, no_pixstor_env):
    no_pixstor_env.setenv("PIXSTOR_TOKEN", "env-token")
    no_pixstor_env.setenv("PIXSTOR_USERNAME", "admin")
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], token=run_module.UNSET))
    assert (outcome, result["spaces"]) == ("exit", []), result
    assert http.auth == ("env-token", "")
    assert [c["method"] for c in http.calls] == ["GET"]      # no login


def test_a_user_name_without_password_or_token_fails_saying_so(run_module, http, no_pixstor_env):
    no_pixstor_env.setenv("PIXSTOR_USERNAME", "admin")
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], token=run_module.UNSET))
    assert (outcome, result["msg"]) == ("fail", "username 'admin' is set but password is not: set password (or "
                                                "PIXSTOR_PASSWORD), or give a token instead")
    assert http.calls == []


def test_no_credentials_at_all_fails_saying_what_to_set(run_module, http, no_pixstor_env):
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], token=run_module.UNSET))
    assert (outcome, result["msg"]) == ("fail", "no credentials: set token (or PIXSTOR_TOKEN), or username and "
                                                "password (or PIXSTOR_USERNAME and PIXSTOR_PASSWORD)")


def test_a_missing_ca_path_fails_naming_the_option(run_module, http, no_pixstor_env, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], ca_path=missing))
    assert (outcome, result["msg"]) == ("fail", "ca_path %s: no such file; give the PEM file of the CA that signed "
                                                "the server's certificate" % missing)
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], ca_path=str(tmp_path)))
    assert (outcome, result["msg"]) == ("fail", "ca_path %s: is not a file; give the PEM file of the CA that "
                                                "signed the server's certificate" % tmp_path)
    assert http.calls == []


def test_a_missing_ca_path_from_the_environment_fails_naming_the_option(run_module, http, no_pixstor_env, tmp_path):
    no_pixstor_env.setenv("PIXSTOR_CA_PATH", str(tmp_path / "gone.pem"))
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"]))
    assert outcome == "fail" and result["msg"].startswith("ca_path %s: no such file" % (tmp_path / "gone.pem"))


def test_ca_path_and_timeout_fall_back_to_the_environment(run_module, http, no_pixstor_env, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    no_pixstor_env.setenv("PIXSTOR_CA_PATH", str(ca))
    no_pixstor_env.setenv("PIXSTOR_TIMEOUT", "7")
    no_pixstor_env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"]))
    assert outcome == "exit", result
    assert [(c["verify"], c["timeout"]) for c in http.calls] == [(str(ca), 7)]


def test_validate_certs_false_wins_over_a_ca_path_from_the_environment(run_module, http, no_pixstor_env, tmp_path):
    no_pixstor_env.setenv("PIXSTOR_CA_PATH", str(tmp_path / "unused.pem"))    # not checked: not used
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], validate_certs=False))
    assert outcome == "exit", result
    assert [c["verify"] for c in http.calls] == [False]


def test_options_win_over_the_environment(run_module, http, no_pixstor_env, tmp_path):
    no_pixstor_env.setenv("PIXSTOR_TIMEOUT", "7")
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], timeout=3))
    assert outcome == "exit", result
    assert [c["timeout"] for c in http.calls] == [3]


def test_a_timeout_that_is_not_positive_fails(run_module, http, no_pixstor_env):
    outcome, result = run_module(pixstor_info.main, dict(gather=["spaces"], timeout=0))
    assert (outcome, result["msg"]) == ("fail", "timeout must be a positive number of seconds, got 0")


def test_profiles_list_their_ilm_steps_in_order_when_both_are_gathered(run_module, http):
    render = cj_item("profiles", "p1", name="render")
    plain = cj_item("profiles", "p2", name="plain")
    cold = cj_item("ilmsteps", "s2", name="cold", profile="/profiles/p1", order=2, action="migrate")
    scratch = cj_item("ilmsteps", "s1", name="scratch", profile="/profiles/p1", order=1, action="delete")
    http.expect("GET", "/profiles/", json_body=cj_doc(render, plain))
    http.expect("GET", "/ilmsteps/", json_body=cj_doc(cold, scratch))
    outcome, result = run_module(pixstor_info.main, dict(gather=["ilmsteps", "profiles"]))
    assert outcome == "exit", result
    assert [s["name"] for s in result["ilmsteps"]] == ["cold", "scratch"]     # as the API lists them
    assert dict((p["name"], [s["name"] for s in p["ilm_steps"]]) for p in result["profiles"]) == {
        "render": ["scratch", "cold"], "plain": []}


def test_profiles_alone_have_no_ilm_steps_key(run_module, http):
    http.expect("GET", "/profiles/", json_body=cj_doc(cj_item("profiles", "p1", name="render")))
    outcome, result = run_module(pixstor_info.main, dict(gather=["profiles"]))
    assert (outcome, "ilm_steps" in result["profiles"][0], "ilmsteps" in result) == ("exit", False, False)
