# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import pytest

from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_exposer
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    accepted_headers, cj_doc, cj_error, cj_item, job_item,
)

PATH = "/mmfs1/projects/sleepy_snake"
CLIENTS = [{"host": "10.0.0.0/24", "options": ["rw", "sync", "root_squash"]},
           {"host": "*.render.example.com", "options": ["ro"]}]
NFS = dict(name="sleepy-snake", type="nfs", path=PATH, clients=CLIENTS)
CIFS = dict(name="proj-smb", type="cifs", path=PATH, valid_users=["@proj", "alice"], write_list=["@proj-leads"],
            read_only=True, create_mask="664")
NOT_NFS = dict(read_only=None, browseable=None, guest_ok=None, valid_users=None, write_list=None, hosts_allow=None,
               create_mask=None, directory_mask=None, inherit_permissions=None, inherit_acls=None)


def nfs(**data):
    fields = dict(name="sleepy-snake", type="nfs", mountpoint=None, path=PATH, comment=None, clients=CLIENTS,
                  export_id=1, **NOT_NFS)
    fields.update(data)
    return cj_item("exposers", "x1", **fields)


def cifs(**data):
    fields = dict(name="proj-smb", type="cifs", mountpoint=None, path=PATH, comment=None, clients=None,
                  export_id=None, read_only=True, browseable=True, guest_ok=False, valid_users=["@proj", "alice"],
                  write_list=["@proj-leads"], hosts_allow=None, create_mask="0664", directory_mask=None,
                  inherit_permissions=False, inherit_acls=False)
    fields.update(data)
    return cj_item("exposers", "x2", **fields)


def expect_lookup(http, *found, name="sleepy-snake", kind="nfs"):
    http.expect("GET", "/exposers/", where={"name": name, "type": kind}, json_body=cj_doc(*found))


def writes(http):
    return [c["method"] for c in http.calls if c["method"] != "GET"]


def expect_post(http, item, **sent):
    """The creation of `item`: a POST whose body holds exactly `sent`, in that order, answered 202 and job j1."""
    item_id = item["href"].rsplit("/", 1)[1]
    http.expect("POST", "/exposers/", status=202, headers=accepted_headers("exposers", item_id, "j1"),
                json_body=cj_doc(item), body={"template": {"data": [
                    {"name": name, "value": value} for name, value in sent.items()]}})


# nfs ------------------------------------------------------------------------------

def test_create_posts_the_export_in_the_tasks_order_and_waits_for_its_job(run_module, http):
    expect_lookup(http)
    expect_post(http, nfs(status="PENDING"), name="sleepy-snake", type="nfs", path=PATH, clients=CLIENTS)
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "exposers", "x1")))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(cj_item("exposers", "x1")))     # the Location's projection
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs()))
    outcome, result = run_module(pixstor_exposer.main, NFS, diff=True)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"]) == (True, ["create"])
    assert result["job"] == {"href": "/jobs/j1", "status": "COMPLETED"}
    assert result["msg"] == "nfs exposer 'sleepy-snake' created"
    assert (result["exposer"]["export_id"], result["exposer"]["clients"]) == (1, CLIENTS)
    assert result["diff"] == {"before": {}, "after": {
        "name": "sleepy-snake", "type": "nfs", "path": PATH,
        "clients": [{"host": "*.render.example.com", "options": ["ro"]},
                    {"host": "10.0.0.0/24", "options": ["root_squash", "rw", "sync"]}]}}


def test_second_run_changes_nothing_and_writes_nothing(run_module, http):
    expect_lookup(http, nfs())
    outcome, result = run_module(pixstor_exposer.main, NFS, diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", False, [], None)
    assert result["diff"]["before"] == result["diff"]["after"]
    assert result["msg"] == "nfs exposer 'sleepy-snake' is present as requested: nothing to change"
    assert writes(http) == []


def test_clients_in_another_order_are_no_change(run_module, http):
    expect_lookup(http, nfs())
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=list(reversed(CLIENTS))))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
    assert writes(http) == []


def test_options_in_another_order_or_as_a_string_are_no_change(run_module, http):
    expect_lookup(http, nfs(clients=[{"host": "10.0.0.0/24", "options": "sync,rw,root_squash"},
                                     {"host": "*.render.example.com", "options": ["ro"]}]))
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=[
        {"host": "10.0.0.0/24", "options": ["root_squash", "sync", "rw", "rw"]},
        {"host": "*.render.example.com", "options": "ro"}]))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])
    assert writes(http) == []


def test_addresses_compare_as_the_server_keeps_them(run_module, http):
    expect_lookup(http, nfs(clients=[{"host": "10.0.0.0/24", "options": ["rw"]},
                                     {"host": "2001:db8::1", "options": ["ro"]}]))
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=[
        {"host": "2001:DB8:0::1", "options": ["ro"]}, {"host": "10.0.0.7/24", "options": ["rw"]}]))
    assert (outcome, result["changed"]) == ("exit", False)
    assert writes(http) == []


def test_new_options_are_a_patch_of_clients_alone_with_if_match_and_a_job(run_module, http):
    new_clients = [{"host": "10.0.0.0/24", "options": ["rw", "async", "no_root_squash"]}]
    expect_lookup(http, nfs())
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs()), headers={"ETag": '"v1"'})
    http.expect("PATCH", "/exposers/x1", status=202, headers=accepted_headers("exposers", "x1", "j2"),
                json_body=cj_doc(nfs(status="PENDING")),
                body={"template": {"data": [{"name": "clients", "value": new_clients}]}})
    http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "INPROGRESS", "exposers", "x1", "update")))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(cj_item("exposers", "x1", status="INPROGRESS")))
    http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "COMPLETED", "exposers", "x1", "update")))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(cj_item("exposers", "x1", status="ACTIVE")))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs(clients=new_clients)))
    outcome, result = run_module(pixstor_exposer.main, dict(name="sleepy-snake", type="nfs", clients=new_clients),
                                 diff=True)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"]) == (True, ["update"])
    assert result["job"] == {"href": "/jobs/j2", "status": "COMPLETED"}
    assert result["msg"] == "nfs exposer 'sleepy-snake' updated (clients)"
    assert http.calls[2]["headers"]["If-Match"] == '"v1"'
    assert result["diff"]["before"] == {
        "name": "sleepy-snake", "type": "nfs", "path": PATH, "comment": "",
        "clients": [{"host": "*.render.example.com", "options": ["ro"]},
                    {"host": "10.0.0.0/24", "options": ["root_squash", "rw", "sync"]}]}
    assert result["diff"]["after"] == dict(result["diff"]["before"], clients=[
        {"host": "10.0.0.0/24", "options": ["async", "no_root_squash", "rw"]}])
    assert result["exposer"]["clients"] == new_clients


def test_a_new_comment_alone_answers_at_once_without_a_job(run_module, http):
    expect_lookup(http, nfs())
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs()))
    http.expect("PATCH", "/exposers/x1", status=200, json_body=cj_doc(nfs(comment="render farm")),
                body={"template": {"data": [{"name": "comment", "value": "render farm"}]}})
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, comment="render farm"))
    assert outcome == "exit", result
    assert (result["changed"], result["job"], result["exposer"]["comment"]) == (True, None, "render farm")
    assert result["msg"] == "nfs exposer 'sleepy-snake' updated (comment)"


def test_an_update_in_check_mode_predicts_without_writing(run_module, http):
    expect_lookup(http, nfs())
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=CLIENTS[:1], comment="x"), check_mode=True,
                                 diff=True)
    assert (outcome, result["changed"], result["actions"], result["job"]) == ("exit", True, ["update"], None)
    assert result["msg"] == "nfs exposer 'sleepy-snake' would be updated (clients, comment)"
    assert (result["diff"]["before"]["comment"], result["diff"]["after"]["comment"]) == ("", "x")
    assert result["diff"]["after"]["clients"] == [{"host": "10.0.0.0/24", "options": ["root_squash", "rw", "sync"]}]
    assert [c["method"] for c in http.calls] == ["GET"]


def test_a_creation_in_check_mode_predicts_without_writing(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_exposer.main, NFS, check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["create"])
    assert result["msg"] == "nfs exposer 'sleepy-snake' would be created"
    assert result["exposer"]["path"] == PATH
    assert [c["method"] for c in http.calls] == ["GET"]


def test_check_mode_assumes_the_path_of_a_space_still_to_create(run_module, http):
    expect_lookup(http)
    args = dict(NFS)
    del args["path"]
    outcome, result = run_module(pixstor_exposer.main, args, check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["create"])
    assert result["warnings"] == ["nfs exposer 'sleepy-snake' does not exist and path is not set; check mode assumes "
                                  "an earlier task (the creation of the space it shares) would give it"]


def test_creating_needs_path_and_clients(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_exposer.main, dict(name="sleepy-snake", type="nfs", comment="x"))
    assert (outcome, result["msg"]) == (
        "fail", "nfs exposer 'sleepy-snake' does not exist; creating it needs path, clients (missing: path, clients)")


def test_another_path_fails_and_says_what_to_do(run_module, http):
    expect_lookup(http, nfs(path=PATH + "/"))
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, path="/mmfs1/projects/other"))
    assert outcome == "fail"
    assert result["msg"] == (
        "nfs exposer 'sleepy-snake': path cannot be changed once created (path is '%s', requested "
        "'/mmfs1/projects/other'). Keep the current value in the task, or remove the exposer (state: absent) and "
        "create it again." % PATH)
    assert writes(http) == []


def test_the_same_path_with_other_slashes_is_no_change(run_module, http):
    expect_lookup(http, nfs())
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, path="/mmfs1//projects/sleepy_snake/"))
    assert (outcome, result["changed"]) == ("exit", False)


def test_a_creation_sends_the_path_without_double_or_trailing_slashes(run_module, http):
    expect_lookup(http)
    expect_post(http, nfs(status="PENDING"), name="sleepy-snake", type="nfs", path=PATH,
                clients=[{"host": "*", "options": ["ro"]}])
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, path="/mmfs1//projects/./sleepy_snake/", wait=False,
                                                            clients=[{"host": "*", "options": ["ro", "ro"]}]))
    assert (outcome, result["changed"], result["job"]) == ("exit", True, {"href": "/jobs/j1", "status": None})


def test_users_and_hosts_compare_as_sets_hosts_as_the_server_keeps_them(run_module, http):
    expect_lookup(http, cifs(hosts_allow=["10.0.0.0/24", "files.example.com"]), name="proj-smb", kind="cifs")
    outcome, result = run_module(pixstor_exposer.main, dict(CIFS, hosts_allow="files.example.com, 10.0.0.9/24",
                                                            write_list=["@proj-leads", "@proj-leads"]))
    assert (outcome, result["changed"]) == ("exit", False)
    assert writes(http) == []


def test_an_empty_client_list_fails_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=[]))
    assert (outcome, result["msg"]) == ("fail", "nfs exposer 'sleepy-snake': clients is empty; an NFS export needs "
                                                "at least one host (use state: absent to remove it)")
    assert http.calls == []


def test_share_settings_on_an_nfs_exposer_fail_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, valid_users=["alice"], read_only=False))
    assert (outcome, result["msg"]) == ("fail", "nfs exposer 'sleepy-snake': read_only, valid_users are only for cifs "
                                                "exposers; remove them from the task")
    assert http.calls == []


def test_a_relative_path_fails_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, path="projects/sleepy_snake"))
    assert (outcome, result["msg"]) == ("fail", "nfs exposer 'sleepy-snake': path must be absolute, got "
                                                "'projects/sleepy_snake'")
    assert http.calls == []


def test_an_api_refusal_is_quoted(run_module, http):
    expect_lookup(http)
    http.expect("POST", "/exposers/", status=422, json_body=cj_error(
        422, "Insertion failure: 1 document(s) contain(s) error(s)", {"clients": "unknown option 'rw_please'"}))
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=[{"host": "*", "options": ["rw_please"]}]))
    assert outcome == "fail"
    assert result["msg"] == ("POST /exposers/ failed: HTTP 422 Insertion failure: 1 document(s) contain(s) error(s) "
                             "(clients: unknown option 'rw_please')")


def test_a_failed_update_job_reports_its_stderr(run_module, http):
    expect_lookup(http, nfs())
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs()))
    http.expect("PATCH", "/exposers/x1", status=202, headers=accepted_headers("exposers", "x1", "j2"),
                json_body=cj_doc(nfs(status="PENDING")))
    http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "ERRORED", "exposers", "x1", "update")))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(cj_item("exposers", "x1", status="ACTIVE")))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs(status_message="exportfs -ra failed")))
    http.expect("GET", "/jobs/j2", json_body=cj_doc(job_item("j2", "ERRORED", "exposers", "x1", "update")))
    http.expect("GET", "/jobs/j2/stderr", text="exportfs: bad option list\n")
    outcome, result = run_module(pixstor_exposer.main, dict(NFS, clients=[{"host": "*", "options": ["ro"]}]))
    assert outcome == "fail"
    assert result["msg"] == ("nfs exposer 'sleepy-snake' (/exposers/x1) ended ERRORED: exportfs -ra failed\n"
                             "job stderr:\nexportfs: bad option list")
    assert (result["changed"], result["actions"], result["job"]) == (
        True, ["update"], {"href": "/jobs/j2", "status": "ERRORED"})


# absent -----------------------------------------------------------------------------

def test_absent_with_force_deletes_and_waits_for_404(run_module, http):
    expect_lookup(http, nfs())
    http.expect("DELETE", "/exposers/x1", status=202, params={"force": "true"}, json_body=cj_doc(),
                headers={"Link": '<http://pixstor.test:5101/jobs/j3>; rel="job"'})
    http.expect("GET", "/jobs/j3", json_body=cj_doc(job_item("j3", "COMPLETED", "exposers", "x1", "delete")))
    http.expect("GET", "/exposers/x1", status=404, json_body=cj_error(404, "Not found"))
    outcome, result = run_module(pixstor_exposer.main, dict(name="sleepy-snake", type="nfs", state="absent",
                                                            force=True), diff=True)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["exposer"]) == (True, ["delete"], {})
    assert result["job"] == {"href": "/jobs/j3", "status": "COMPLETED"}
    assert (result["diff"]["before"]["path"], result["diff"]["after"]) == (PATH, {})
    assert result["msg"] == "nfs exposer 'sleepy-snake' deleted"


def test_absent_without_force_quotes_the_spaces_the_api_names(run_module, http):
    expect_lookup(http, nfs())
    http.expect("DELETE", "/exposers/x1", status=409, json_body=cj_error(
        409, "exposer is used by spaces: sleepy-snake; set force=true to delete it anyway"))
    http.expect("GET", "/exposers/x1", json_body=cj_doc(nfs()))     # ACTIVE: a refusal, not a busy item
    outcome, result = run_module(pixstor_exposer.main, dict(name="sleepy-snake", type="nfs", state="absent"))
    assert outcome == "fail"
    assert result["msg"] == ("DELETE /exposers/x1 failed: HTTP 409 exposer is used by spaces: sleepy-snake; set "
                             "force=true to delete it anyway")
    assert http.calls[1]["params"] is None


def test_absent_in_check_mode_does_not_delete(run_module, http):
    expect_lookup(http, nfs())
    outcome, result = run_module(pixstor_exposer.main, dict(name="sleepy-snake", type="nfs", state="absent",
                                                            force=True), check_mode=True)
    assert (outcome, result["changed"], result["actions"]) == ("exit", True, ["delete"])
    assert result["msg"] == "nfs exposer 'sleepy-snake' would be deleted"
    assert [c["method"] for c in http.calls] == ["GET"]


def test_absent_when_gone_is_not_a_change(run_module, http):
    expect_lookup(http)
    outcome, result = run_module(pixstor_exposer.main, dict(name="sleepy-snake", type="nfs", state="absent",
                                                            force=True, clients=[]))
    assert (outcome, result["changed"], result["actions"]) == ("exit", False, [])


# cifs -------------------------------------------------------------------------------

def test_create_a_share_sends_only_the_settings_given_with_the_mask_in_four_digits(run_module, http):
    expect_lookup(http, name="proj-smb", kind="cifs")
    expect_post(http, cifs(status="PENDING"), name="proj-smb", type="cifs", path=PATH, read_only=True,
                valid_users=["@proj", "alice"], write_list=["@proj-leads"], create_mask="0664")
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "exposers", "x2")))
    http.expect("GET", "/exposers/x2", json_body=cj_doc(cifs()))
    http.expect("GET", "/exposers/x2", json_body=cj_doc(cifs()))
    outcome, result = run_module(pixstor_exposer.main, CIFS)
    assert outcome == "exit", result
    assert (result["changed"], result["actions"], result["msg"]) == (True, ["create"], "cifs exposer 'proj-smb' created")
    assert result["exposer"]["browseable"] is True


def test_users_in_another_order_and_the_same_mask_are_no_change(run_module, http):
    expect_lookup(http, cifs(valid_users="alice,@proj"), name="proj-smb", kind="cifs")
    outcome, result = run_module(pixstor_exposer.main, dict(CIFS, valid_users=["alice", "@proj", "alice"],
                                                            create_mask="0664"))
    assert (outcome, result["changed"]) == ("exit", False)
    assert writes(http) == []


def test_share_settings_change_with_a_job_and_an_empty_mask_unsets_it(run_module, http):
    expect_lookup(http, cifs(), name="proj-smb", kind="cifs")
    http.expect("GET", "/exposers/x2", json_body=cj_doc(cifs()))
    http.expect("PATCH", "/exposers/x2", status=202, headers=accepted_headers("exposers", "x2", "j4"),
                json_body=cj_doc(cifs(status="PENDING")),
                body={"template": {"data": [{"name": "read_only", "value": False},
                                            {"name": "hosts_allow", "value": ["10.0.0.0/24"]},
                                            {"name": "create_mask", "value": None}]}})
    http.expect("GET", "/jobs/j4", json_body=cj_doc(job_item("j4", "COMPLETED", "exposers", "x2", "update")))
    http.expect("GET", "/exposers/x2", json_body=cj_doc(cifs(read_only=False, hosts_allow=["10.0.0.0/24"],
                                                             create_mask=None)))
    http.expect("GET", "/exposers/x2", json_body=cj_doc(cifs(read_only=False, hosts_allow=["10.0.0.0/24"],
                                                             create_mask=None)))
    outcome, result = run_module(pixstor_exposer.main, dict(CIFS, read_only=False, hosts_allow=["10.0.0.0/24"],
                                                            create_mask=""), diff=True)
    assert outcome == "exit", result
    assert result["msg"] == "cifs exposer 'proj-smb' updated (create_mask, hosts_allow, read_only)"
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert (before["read_only"], before["hosts_allow"], before["create_mask"]) == (True, [], "0664")
    assert (after["read_only"], after["hosts_allow"], after["create_mask"]) == (False, ["10.0.0.0/24"], "")
    assert before["directory_mask"] == after["directory_mask"] == ""


def test_clients_on_a_share_fail_before_any_request(run_module, http):
    outcome, result = run_module(pixstor_exposer.main, dict(CIFS, clients=CLIENTS))
    assert (outcome, result["msg"]) == ("fail", "cifs exposer 'proj-smb': clients is only for nfs exposers; remove it "
                                                "from the task")
    assert http.calls == []


@pytest.mark.parametrize("value, why", [
    (436, "create_mask must be a quoted string of 3 or 4 octal digits such as '0664'; got the number 436: quote it "
          "(YAML reads an unquoted 0664 as the number 436)"),
    ("0968", "create_mask must be 3 or 4 octal digits such as '0664', or '' for Samba's default; got '0968'"),
    ("u=rw", "create_mask must be 3 or 4 octal digits such as '0664', or '' for Samba's default; got 'u=rw'"),
])
def test_a_mask_that_is_not_octal_digits_fails_before_any_request(run_module, http, value, why):
    outcome, result = run_module(pixstor_exposer.main, dict(CIFS, create_mask=value))
    assert (outcome, result["msg"]) == ("fail", "cifs exposer 'proj-smb': " + why)
    assert http.calls == []
