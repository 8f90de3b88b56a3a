# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

import json

import pytest
import requests
from urllib3.exceptions import NewConnectionError

from ansible_collections.pixstor.mgmt.plugins.module_utils import pixstor as pu
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (
    BASE, FakeModule, accepted_headers, cj_doc, cj_error, cj_item, job_item,
)


@pytest.fixture
def client(http, clock):
    c = pu.PixstorClient(FakeModule())
    c.login()
    return c


# Sizes ---------------------------------------------------------------------------

KIB, MIB, GIB, TIB, PIB = (1024 ** power for power in range(1, 6))
PREFIXES = (("K", KIB), ("M", MIB), ("G", GIB), ("T", TIB), ("P", PIB))


@pytest.mark.parametrize("value, expected", [
    (4294967296, 4294967296),           # an int is bytes
    ("4294967296", 4294967296),         # so is a number without a unit
    ("10B", 10),
    ("10 b", 10),
    ("4 gib", 4 * GIB),
    ("1.5TiB", 3 * 2 ** 39),
    ("1.5T", 3 * 2 ** 39),
    ("0.5K", 512),
    (" 500 M ", 500 * MIB),
] + [
    # every prefix, with or without B or i, in either case, is a power of 1024
    ("3" + prefix + suffix, 3 * factor)
    for prefix, factor in PREFIXES
    for suffix in ("", "B", "i", "iB", "b", "ib")
] + [("3" + prefix.lower() + "ib", 3 * factor) for prefix, factor in PREFIXES])
def test_parse_size_reads_every_unit_as_a_power_of_1024(value, expected):
    assert pu.parse_size(value) == expected


def test_parse_size_matches_human_to_bytes_where_both_read_a_size():
    human_to_bytes = pytest.importorskip("ansible.module_utils.common.text.formatters").human_to_bytes
    for value in ("4G", "4GB", "500M", "2K", "1T", "1P", "10", "1.5G"):
        assert pu.parse_size(value) == human_to_bytes(value), value


@pytest.mark.parametrize("value, why", [
    ("4 parsecs", "unknown unit 'parsecs'"),
    ("4E", "unknown unit 'e'"),
    ("four GiB", "neither a number"),
    ("0.5", "has a fraction but no unit"),
    ("1.5", "give the unit, for example 1.5G"),
    ("2.0", "has a fraction but no unit"),          # a YAML float, even a whole one
    (1.5, "has a fraction but no unit"),
    (2.0, "has a fraction but no unit"),
    (1.0e10, "has a fraction but no unit"),          # YAML 1.0e+10
    ("10000000000.0", "has a fraction but no unit"),  # the same, as Ansible passes it to a str option
    ("1e9", "neither a number"),
    ("0.3K", "whole number"),
    ("1.0000001KB", "whole number"),
    ("0", "greater than zero"),
    ("0G", "greater than zero"),
    ("-4G", "neither a number"),
    (True, "not a size"),
    ("", "neither a number"),
])
def test_parse_size_rejects_with_reason(value, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(".", r"\.")):
        pu.parse_size(value)


@pytest.mark.parametrize("size, text", [
    (4 * GIB, "4GiB"), (4 * 10 ** 9, "3906250KiB"), (1536 * MIB, "1536MiB"), (1001, "1001B"), (0, "0"),
    (2 * PIB, "2PiB"),
])
def test_format_size_uses_the_largest_exact_binary_unit(size, text):
    assert pu.format_size(size) == text


@pytest.mark.parametrize("size, text", [
    (3 * MIB, "3MiB (3145728 bytes)"), (3 * MIB + 15, "3145743 bytes (about 3.0MiB)"), (1000, "1000 bytes"),
    (1536, "1536 bytes (about 1.5KiB)"),
])
def test_describe_size_gives_bytes_and_a_readable_unit(size, text):
    assert pu.describe_size(size) == text


# C+J helpers ---------------------------------------------------------------------

def test_flatten_gives_data_by_name_href_and_links():
    flat = pu.flatten(cj_item("spaces", "s1", name="a", size=5))
    assert flat["href"] == "/spaces/s1"
    assert (flat["name"], flat["size"], flat["status"]) == ("a", 5, "ACTIVE")
    assert pu.link_href(flat, "jobs").startswith("/jobs?where=")


def test_link_href_ignores_case_of_link_names():
    flat = pu.flatten(job_item("j1", "COMPLETED", "spaces", "s1"))
    assert pu.link_href(flat, "stdout") == "/jobs/j1/stdout"
    assert pu.link_href(flat, "nope") is None


def test_ref_list_is_order_insensitive_and_accepts_ids_hrefs_and_commas():
    one = pu.ref_list(["/exposers/b", "a"], "exposers")
    assert one == ["/exposers/a", "/exposers/b"]
    assert pu.ref_list("/exposers/b,/exposers/a", "exposers") == one
    assert pu.ref_list([BASE + "/exposers/a", "b", "b"], "exposers") == one
    assert pu.ref_list(None, "exposers") == []


def test_str_set_is_order_insensitive_and_accepts_commas():
    assert pu.str_set(["alice", "@staff", "alice"]) == pu.str_set(" @staff , alice,") == ["@staff", "alice"]
    assert pu.str_set(None) == pu.str_set("") == pu.str_set([" "]) == []


def test_split_list_keeps_the_order_and_drops_empty_entries():
    assert pu.split_list("rw, sync,,root_squash ") == ["rw", "sync", "root_squash"]
    assert pu.split_list(["b", " a ", "", None]) == ["b", "a"]


def test_norm_path_ignores_slashes():
    assert pu.norm_path("/projects//snake/") == pu.norm_path("projects/snake") == "projects/snake"


def test_cj_template_lists_name_value_pairs():
    assert pu.cj_template({"size": 1}) == {"template": {"data": [{"name": "size", "value": 1}]}}


# Auth ----------------------------------------------------------------------------

def test_password_grant_gets_a_token_and_uses_basic_auth(http, clock):
    module = FakeModule(token=None, username="me", password="secret", auth_url="http://auth.test")
    http.expect("POST", "/oauth2/token", absolute="http://auth.test/oauth2/token",
                json_body={"access_token": "abc", "token_type": "Bearer", "expires_in": 86400},
                body={"grant_type": "password", "username": "me", "password": "secret"})
    client = pu.PixstorClient(module)
    client.login()
    assert http.auth == ("abc", "")
    assert client.url == BASE


def test_password_grant_failure_quotes_the_rfc6749_error(http, clock):
    module = FakeModule(token=None, username="me", password="wrong")
    http.expect("POST", "/oauth2/token", status=400,
                json_body={"error": "invalid_grant", "error_description": "bad username or password"})
    with pytest.raises(pu.PixstorError, match=r"HTTP 400: invalid_grant \(bad username or password\)") as exc:
        pu.PixstorClient(module).login()
    assert exc.value.status == 400


def test_given_token_is_used_without_a_request(http, clock):
    client = pu.PixstorClient(FakeModule(token="given"))
    client.login()
    assert http.auth == ("given", "")
    assert http.calls == []


def test_secrets_are_no_log_and_fall_back_to_the_environment():
    spec = pu.pixstor_argument_spec()
    assert spec["password"]["no_log"] and spec["token"]["no_log"]
    names = ("url", "username", "password", "token", "validate_certs", "ca_path", "timeout", "token_cache")
    assert {name: spec[name]["fallback"][1][0] for name in names} == {
        "url": "PIXSTOR_URL", "username": "PIXSTOR_USERNAME", "password": "PIXSTOR_PASSWORD",
        "token": "PIXSTOR_TOKEN", "validate_certs": "PIXSTOR_VALIDATE_CERTS", "ca_path": "PIXSTOR_CA_PATH",
        "timeout": "PIXSTOR_TIMEOUT", "token_cache": "PIXSTOR_TOKEN_CACHE"}


@pytest.mark.parametrize("options, verify", [
    (dict(validate_certs=False, ca_path="/ca.pem"), False),
    (dict(validate_certs=False), False),
    (dict(ca_path="/ca.pem"), "/ca.pem"),
    (dict(), True),
])
def test_verify_is_passed_on_every_request_so_the_environment_cannot_override_it(
        http, clock, monkeypatch, options, verify):
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's verify, not a request's own.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/elsewhere/bundle.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/elsewhere/bundle.pem")
    client = pu.PixstorClient(FakeModule(token=None, username="u", password="p", token_cache=False, **options))
    http.expect("POST", "/oauth2/token", json_body={"access_token": "t", "token_type": "bearer"})
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1")))
    http.expect("DELETE", "/spaces/s1", status=404, json_body=cj_error(404, "gone"))
    client.login()
    client.get("/spaces/s1")
    client.delete("/spaces/s1")
    assert [call["verify"] for call in http.calls] == [verify] * 3
    assert [call["timeout"] for call in http.calls] == [30] * 3


# Errors and retries ----------------------------------------------------------------

def test_api_error_quotes_message_and_details(client, http):
    http.expect("POST", "/spaces/", status=422, json_body=cj_error(
        422, "Insertion failure: 1 document(s) contain(s) error(s)", {"name": "must match ^[A-Za-z0-9_-]+$"}))
    with pytest.raises(pu.PixstorError) as exc:
        client.create("spaces", {"name": "sleepy snake"})
    assert str(exc.value) == ("POST /spaces/ failed: HTTP 422 Insertion failure: 1 document(s) contain(s) error(s) "
                              "(name: must match ^[A-Za-z0-9_-]+$)")
    assert exc.value.fail_kwargs()["api_error"]["code"] == 422


def test_405_names_the_allowed_methods(client, http):
    http.expect("DELETE", "/spaces/s1", status=405, headers={"Allow": "HEAD, GET, OPTIONS"},
                json_body=cj_error(405, "Method not allowed"))
    with pytest.raises(pu.PixstorError, match="allowed for this user: HEAD, GET, OPTIONS"):
        client.delete("/spaces/s1")


def test_reads_are_retried_on_connection_errors_and_gateway_errors(client, http, clock):
    http.expect("GET", "/spaces/s1", raises=requests.exceptions.ConnectionError("connection reset by peer"))
    http.expect("GET", "/spaces/s1", status=502, text="bad gateway")
    http.expect("GET", "/spaces/s1", status=504, text="gateway timeout")
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1")))
    assert client.get("/spaces/s1")[0]["id"] == "s1"
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_retries_are_bounded(client, http, clock):
    for attempt in range(pu.RETRIES + 1):  # pylint: disable=unused-variable
        http.expect("GET", "/spaces/", status=503, text="try later")
    with pytest.raises(pu.PixstorError, match="GET /spaces/ failed: HTTP 503 try later"):
        client.find("spaces")
    assert len(clock.sleeps) == pu.RETRIES


def test_post_is_not_resent_after_a_gateway_error(client, http):
    http.expect("POST", "/spaces/", status=502, text="bad gateway")
    with pytest.raises(pu.PixstorError, match="HTTP 502"):
        client.create("spaces", {"name": "a"})


def test_post_is_not_resent_after_a_reset_connection(client, http):
    http.expect("POST", "/spaces/", raises=requests.exceptions.ConnectionError("connection reset by peer"))
    with pytest.raises(pu.PixstorError, match="connection reset"):
        client.create("spaces", {"name": "a"})


def test_post_is_retried_when_it_never_left(client, http, clock):
    refused = requests.exceptions.ConnectionError(NewConnectionError(None, "connection refused"))
    http.expect("POST", "/spaces/", raises=refused)
    http.expect("POST", "/spaces/", status=503, text="starting")
    http.expect("POST", "/spaces/", status=202, json_body=cj_doc(cj_item("spaces", "s1", status="NEW")),
                headers=accepted_headers("spaces", "s1", "j1"))
    accepted = client.create("spaces", {"name": "a"})
    assert (accepted.href, accepted.job) == ("/spaces/s1", "/jobs/j1")
    assert accepted.location == '/spaces/s1?projection={"status":1}'
    assert len(clock.sleeps) == 2


# Reads -----------------------------------------------------------------------------

def test_find_sends_where_as_json_and_follows_pages(client, http, monkeypatch):
    monkeypatch.setattr(pu, "PAGE_SIZE", 2)
    where = {"name": {"$in": ["a", "b", "c"]}}
    http.expect("GET", "/spaces/", where=where, params={"max_results": 2},
                json_body=cj_doc(cj_item("spaces", "1"), cj_item("spaces", "2")), headers={"X-Total-Count": "3"})
    http.expect("GET", "/spaces/", where=where, params={"page": 2}, json_body=cj_doc(cj_item("spaces", "3")),
                headers={"X-Total-Count": "3"})
    assert [i["id"] for i in client.find("spaces", where)] == ["1", "2", "3"]


def test_find_trusts_the_total_when_the_server_caps_pages(client, http):
    http.expect("GET", "/jobs/", json_body=cj_doc(cj_item("jobs", "1")), headers={"X-Total-Count": "2"})
    http.expect("GET", "/jobs/", params={"page": 2}, json_body=cj_doc(cj_item("jobs", "2")),
                headers={"X-Total-Count": "2"})
    assert [i["id"] for i in client.find("jobs")] == ["1", "2"]


def test_find_refuses_a_body_that_is_not_collection_json(client, http):
    http.expect("GET", "/spaces/", text="<html>proxy error page</html>")
    with pytest.raises(pu.PixstorError, match="without a Collection\\+JSON document"):
        client.find("spaces")


def test_find_one_refuses_ambiguity(client, http):
    http.expect("GET", "/spaces/", json_body=cj_doc(cj_item("spaces", "1"), cj_item("spaces", "2")))
    with pytest.raises(pu.PixstorError, match="2 spaces match space 'a': /spaces/1, /spaces/2"):
        client.find_one("spaces", {"name": "a"}, "space 'a'")


def test_get_returns_none_for_a_missing_item(client, http):
    http.expect("GET", "/spaces/gone", status=404, json_body=cj_error(404, "Not found"))
    assert client.get("/spaces/gone") == (None, None)


def test_resolve_by_name_then_cached(client, http):
    http.expect("GET", "/profiles/", where={"name": "mmfs1-sas1"}, json_body=cj_doc(cj_item("profiles", "p1")))
    assert client.resolve("profiles", "mmfs1-sas1", "profile") == "/profiles/p1"
    assert client.resolve("profiles", "mmfs1-sas1", "profile") == "/profiles/p1"


def test_resolve_href_checks_that_it_exists(client, http):
    http.expect("GET", "/templates/t1", json_body=cj_doc(cj_item("templates", "t1")))
    assert client.resolve("templates", BASE + "/templates/t1", "template") == "/templates/t1"
    with pytest.raises(pu.PixstorError, match="is not an href of /templates/"):
        client.resolve("templates", "/spaces/s1", "template")


def test_resolve_falls_back_to_an_id_then_reports_not_found(client, http):
    http.expect("GET", "/exposers/", where={"name": "e1", "type": "gpfsnative"}, json_body=cj_doc())
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1")))
    assert client.resolve("exposers", "e1", "exposer", where={"type": "gpfsnative"}) == "/exposers/e1"
    http.expect("GET", "/exposers/", json_body=cj_doc())
    http.expect("GET", "/exposers/mmfs9", status=404, json_body=cj_error(404, "Not found"))
    with pytest.raises(pu.NotFound, match="exposer 'mmfs9' not found in /exposers/"):
        client.resolve("exposers", "mmfs9", "exposer")


# Writes and waiting --------------------------------------------------------------------

def test_create_posts_collection_json_to_the_trailing_slash(client, http):
    http.expect("POST", "/templates/", status=202, headers=accepted_headers("templates", "t1", "j1"),
                json_body=cj_doc(cj_item("templates", "t1", status="NEW")),
                body={"template": {"data": [{"name": "name", "value": "t"}]}})
    client.create("templates", {"name": "t"})
    assert http.calls[0]["headers"]["Content-Type"] == pu.CJ


def test_update_sends_if_match(client, http):
    http.expect("PATCH", "/spaces/s1", status=200, json_body=cj_doc(cj_item("spaces", "s1")))
    accepted = client.update("/spaces/s1", {"size": 5}, etag='"abc"')
    assert http.calls[0]["headers"]["If-Match"] == '"abc"'
    assert accepted.job is None


def test_412_says_to_run_again(client, http):
    http.expect("PATCH", "/spaces/s1", status=412, json_body=cj_error(412, "Precondition failed"))
    with pytest.raises(pu.PixstorError, match="changed on the server meanwhile"):
        client.update("/spaces/s1", {"size": 5}, etag='"old"')


def test_delete_with_force_and_already_gone(client, http):
    http.expect("DELETE", "/spaces/s1", status=202, params={"force": "true"},
                headers={"Link": '<%s/jobs/j9>; rel="job"' % BASE}, json_body=cj_doc())
    assert client.delete("/spaces/s1", force=True) == (True, "/jobs/j9")
    http.expect("DELETE", "/spaces/s1", status=404, json_body=cj_error(404, "Not found"))
    assert client.delete("/spaces/s1") == (False, None)
    http.expect("DELETE", "/spaces/s1", status=204)
    assert client.delete("/spaces/s1") == (True, None)


def test_wait_reads_the_job_before_the_item(client, http):
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "INPROGRESS", "spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE")))   # stale ACTIVE
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE", size=8)))
    item, job = client.wait("/spaces/s1", job="/jobs/j1")
    assert job == {"href": "/jobs/j1", "status": "COMPLETED"}
    assert item["size"] == 8


def test_wait_rereads_the_item_without_the_projection(client, http):
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="PENDING")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE", fileset="sas1-a")))
    item, job = client.wait("/spaces/s1", location='/spaces/s1?projection={"status":1}')
    assert (item["fileset"], job) == ("sas1-a", None)
    assert "projection" in http.calls[0]["url"]


def test_wait_failure_carries_status_message_and_job_stderr(client, http):
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "ERRORED", "spaces", "s1")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ERRORED",
                                                              status_message="quota: no such pool")))
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "ERRORED", "spaces", "s1")))
    http.expect("GET", "/jobs/j1/stderr", text="DEBUG: start\nERROR: mmsetquota failed: no such pool\n")
    with pytest.raises(pu.PixstorError) as exc:
        client.wait("/spaces/s1", job="/jobs/j1")
    assert "ended ERRORED: quota: no such pool" in exc.value.msg
    assert exc.value.msg.endswith("ERROR: mmsetquota failed: no such pool")


def test_wait_rereads_a_projected_item_for_its_status_message(client, http):
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ERRORED")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ERRORED",
                                                              status_message="no space left in pool sas1")))
    with pytest.raises(pu.PixstorError, match="ended ERRORED: no space left in pool sas1$"):
        client.wait("/spaces/s1", location='/spaces/s1?projection={"status":1}', what="space")


def test_wait_judges_an_already_errored_item_by_its_new_job(client, http):
    http.expect("GET", "/jobs/j5", json_body=cj_doc(job_item("j5", "PENDING", "spaces", "s1", "update")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ERRORED")))
    http.expect("GET", "/jobs/j5", json_body=cj_doc(job_item("j5", "COMPLETED", "spaces", "s1", "update")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ACTIVE")))
    assert client.wait("/spaces/s1", job="/jobs/j5")[0]["status"] == "ACTIVE"


def test_wait_for_deletion_ends_on_404(client, http):
    http.expect("GET", "/jobs/j1", json_body=cj_doc(job_item("j1", "COMPLETED", "spaces", "s1", "delete")))
    http.expect("GET", "/spaces/s1", status=404, json_body=cj_error(404, "Not found"))
    item, job = client.wait("/spaces/s1", job="/jobs/j1", until="gone")
    assert (item, job["status"]) == (None, "COMPLETED")


def test_a_deletion_is_judged_by_the_item_being_gone(client, http):
    # Two deletions raced; ours lost ("no longer exists") but the item is gone as wanted.
    http.expect("GET", "/jobs/j7", json_body=cj_doc(job_item("j7", "ERRORED", "templates", "t1", "delete")))
    http.expect("GET", "/templates/t1", status=404, json_body=cj_error(404, "Not found"))
    assert client.wait("/templates/t1", job="/jobs/j7", until="gone") == (None, {"href": "/jobs/j7", "status": "ERRORED"})


def test_a_deletion_that_leaves_the_item_errored_fails(client, http):
    http.expect("GET", "/jobs/j8", json_body=cj_doc(job_item("j8", "ERRORED", "spaces", "s1", "delete")))
    http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="ERRORED",
                                                              status_message="fileset busy")))
    http.expect("GET", "/jobs/j8", json_body=cj_doc(job_item("j8", "ERRORED", "spaces", "s1", "delete")))
    http.expect("GET", "/jobs/j8/stderr", text="ERROR: mmdelfileset: fileset busy\n")
    with pytest.raises(pu.PixstorError, match="ended ERRORED: fileset busy"):
        client.wait("/spaces/s1", job="/jobs/j8", until="gone", what="space")


def test_wait_times_out_with_a_useful_message(client, http, clock):
    # Polls at 0, 0.1, 0.25, ... seconds: the tenth comes after the 5 s deadline.
    for poll in range(10):  # pylint: disable=unused-variable
        http.expect("GET", "/spaces/s1", json_body=cj_doc(cj_item("spaces", "s1", status="INPROGRESS")))
    with pytest.raises(pu.WaitFailed, match="timed out after 5s waiting for space "
                                            r"\(/spaces/s1, status INPROGRESS, job - -\)") as raised:
        client.wait("/spaces/s1", timeout=5, what="space")
    assert sum(clock.sleeps) >= 5
    assert (raised.value.item["href"], raised.value.item["status"], raised.value.job) == (
        "/spaces/s1", "INPROGRESS", None)


def test_template_body_is_valid_json(client, http):
    http.expect("PATCH", "/spaces/s1", status=202, json_body=cj_doc(cj_item("spaces", "s1", status="PENDING")),
                headers=accepted_headers("spaces", "s1", "j2"))
    accepted = client.update("/spaces/s1", {"size": 10})
    assert json.loads(http.calls[0]["data"]) == {"template": {"data": [{"name": "size", "value": 10}]}}
    assert accepted.job == "/jobs/j2"
