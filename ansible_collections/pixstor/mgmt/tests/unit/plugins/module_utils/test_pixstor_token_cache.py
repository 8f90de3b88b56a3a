# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""The access token cache: a login is reused across tasks and runs while it lasts."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from ansible_collections.pixstor.mgmt.plugins.module_utils import pixstor as pu
from ansible_collections.pixstor.mgmt.plugins.modules import pixstor_info
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import BASE, FakeModule, cj_doc, cj_error, cj_item

LOGIN = dict(token=None, username="me", password="secret")


def token_answer(token="abc", expires_in=3600):
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}


def cache_file(folder, password="secret"):
    return folder / hashlib.sha256(("%s\0me\0%s" % (BASE, password)).encode()).hexdigest()


def write_cache(folder, token, expires_at):
    folder.mkdir(parents=True, exist_ok=True)
    cache_file(folder).write_text(json.dumps({"access_token": token, "expires_at": expires_at}))


def logins(http):
    return [c for c in http.calls if c["method"] == "POST" and c["url"].endswith("/oauth2/token")]


def run_info(run_module, http, **args):
    """pixstor_info gathering spaces, as a fresh process would: no auth left on the session."""
    http.auth = None
    return run_module(pixstor_info.main, dict(LOGIN, gather=["spaces"], **args))


def test_a_login_writes_the_cache_privately_and_atomically(http, clock, token_cache_dir):
    http.expect("POST", "/oauth2/token", json_body=token_answer())
    module = FakeModule(**LOGIN)
    pu.PixstorClient(module).login()
    path = cache_file(token_cache_dir)
    assert json.loads(path.read_text()) == {"access_token": "abc", "expires_at": clock.now + 3600}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_cache_dir.stat().st_mode) == 0o700
    assert [p.name for p in token_cache_dir.iterdir()] == [path.name]     # no temp file left over
    assert module.warnings == []


def test_a_second_module_run_reuses_the_token_without_logging_in(run_module, http, token_cache_dir):
    http.expect("POST", "/oauth2/token", json_body=token_answer())
    http.expect("GET", "/spaces/", json_body=cj_doc())
    assert run_info(run_module, http)[0] == "exit"
    http.expect("GET", "/spaces/", json_body=cj_doc(cj_item("spaces", "s1", name="sleepy-snake")))
    outcome, result = run_info(run_module, http)
    assert (outcome, result["spaces"][0]["name"]) == ("exit", "sleepy-snake")
    assert http.auth == ("abc", "")
    assert len(logins(http)) == 1


@pytest.mark.parametrize("left, logs_in", [(3600, False), (61, False), (60, True), (-10, True)])
def test_a_token_is_reused_only_with_more_than_a_minute_left(http, clock, token_cache_dir, left, logs_in):
    write_cache(token_cache_dir, "cached", clock.now + left)
    if logs_in:
        http.expect("POST", "/oauth2/token", json_body=token_answer("fresh"))
    pu.PixstorClient(FakeModule(**LOGIN)).login()
    assert http.auth == (("fresh" if logs_in else "cached"), "")
    assert json.loads(cache_file(token_cache_dir).read_text())["access_token"] == ("fresh" if logs_in else "cached")


def test_a_refused_cached_token_is_dropped_and_the_request_resent(run_module, http, clock, token_cache_dir):
    write_cache(token_cache_dir, "revoked", clock.now + 3600)
    http.expect("GET", "/spaces/", status=401, json_body=cj_error(401, "Unauthorized"))
    http.expect("POST", "/oauth2/token", json_body=token_answer("fresh"))
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_info(run_module, http)
    assert (outcome, result["spaces"]) == ("exit", [])
    assert http.auth == ("fresh", "")
    assert len(logins(http)) == 1
    assert json.loads(cache_file(token_cache_dir).read_text())["access_token"] == "fresh"


def test_a_refused_post_is_sent_again_once(http, clock, token_cache_dir):
    write_cache(token_cache_dir, "revoked", clock.now + 3600)
    body = {"template": {"data": [{"name": "name", "value": "t"}]}}
    http.expect("POST", "/templates/", status=401, json_body=cj_error(401, "Unauthorized"), body=body)
    http.expect("POST", "/oauth2/token", json_body=token_answer("fresh"))
    http.expect("POST", "/templates/", status=201, json_body=cj_doc(cj_item("templates", "t1")), body=body)
    client = pu.PixstorClient(FakeModule(**LOGIN))
    client.login()
    assert client.create("templates", {"name": "t"}).href == "/templates/t1"


def test_a_refused_cached_token_is_dropped_even_when_the_new_login_fails(run_module, http, clock, token_cache_dir):
    write_cache(token_cache_dir, "revoked", clock.now + 3600)
    http.expect("GET", "/spaces/", status=401, json_body=cj_error(401, "Unauthorized"))
    http.expect("POST", "/oauth2/token", status=400, json_body={"error": "invalid_grant"})
    outcome, result = run_info(run_module, http)
    assert outcome == "fail" and "could not obtain an access token" in result["msg"]
    assert not cache_file(token_cache_dir).exists()


def test_a_fresh_token_refused_is_not_retried(run_module, http, clock, token_cache_dir):
    write_cache(token_cache_dir, "revoked", clock.now + 3600)
    http.expect("GET", "/spaces/", status=401, json_body=cj_error(401, "Unauthorized"))
    http.expect("POST", "/oauth2/token", json_body=token_answer("fresh"))
    http.expect("GET", "/spaces/", status=401, json_body=cj_error(401, "Unauthorized"))
    outcome, result = run_info(run_module, http)
    assert outcome == "fail" and result["msg"].endswith("check token, or username and password")
    assert len(logins(http)) == 1


def test_the_key_covers_auth_url_username_and_password(http, clock, token_cache_dir):
    paths = {pu.token_cache_path(*key) for key in [
        (BASE, "me", "secret"), (BASE, "me", "changed"), (BASE, "you", "secret"), ("http://other", "me", "secret")]}
    assert len(paths) == 4
    assert pu.token_cache_path(BASE, "me", "secret") == str(cache_file(token_cache_dir))
    # A token obtained with the old password is not used with a new one.
    write_cache(token_cache_dir, "old-password", clock.now + 3600)
    http.expect("POST", "/oauth2/token", json_body=token_answer("new-password"))
    pu.PixstorClient(FakeModule(token=None, username="me", password="changed")).login()
    assert http.auth == ("new-password", "")
    assert cache_file(token_cache_dir, "changed").exists()


@pytest.mark.parametrize("content", [
    b"not json", b"\xff\xfe", b"[]", b"{}", b'{"access_token": "abc"}', b'{"access_token": "", "expires_at": 1e12}',
    b'{"access_token": 5, "expires_at": 1e12}', b'{"access_token": "abc", "expires_at": "soon"}',
    b'{"access_token": "abc", "expires_at": NaN}',
])
def test_a_corrupt_cache_file_is_ignored_and_replaced(http, clock, token_cache_dir, content):
    token_cache_dir.mkdir(parents=True)
    cache_file(token_cache_dir).write_bytes(content)
    http.expect("POST", "/oauth2/token", json_body=token_answer())
    pu.PixstorClient(FakeModule(**LOGIN)).login()
    assert http.auth == ("abc", "")
    assert json.loads(cache_file(token_cache_dir).read_text())["access_token"] == "abc"


def test_a_cache_that_cannot_be_written_only_warns(run_module, http, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    monkeypatch.setenv("PIXSTOR_TOKEN_CACHE_DIR", str(blocker / "tokens"))
    http.expect("POST", "/oauth2/token", json_body=token_answer())
    http.expect("GET", "/spaces/", json_body=cj_doc())
    outcome, result = run_info(run_module, http)
    assert outcome == "exit"
    assert len(result["warnings"]) == 1 and "could not cache the access token" in result["warnings"][0]


def test_a_login_without_expires_in_is_not_cached(http, clock, token_cache_dir):
    http.expect("POST", "/oauth2/token", json_body={"access_token": "abc", "token_type": "Bearer"})
    pu.PixstorClient(FakeModule(**LOGIN)).login()
    assert http.auth == ("abc", "") and not token_cache_dir.exists()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_token_cache_off_always_logs_in_and_writes_nothing(run_module, http, token_cache_dir, monkeypatch, how):
    args = {}
    if how == "option":
        args["token_cache"] = False
    else:
        monkeypatch.setenv("PIXSTOR_TOKEN_CACHE", "false")
    for token in ("one", "two"):
        http.expect("POST", "/oauth2/token", json_body=token_answer(token))
        http.expect("GET", "/spaces/", json_body=cj_doc())
        assert run_info(run_module, http, **args)[0] == "exit"
    assert len(logins(http)) == 2
    assert not token_cache_dir.exists()


def test_a_given_token_neither_reads_nor_writes_the_cache(run_module, http, clock, token_cache_dir):
    write_cache(token_cache_dir, "cached", clock.now + 3600)
    http.expect("GET", "/spaces/", json_body=cj_doc())
    assert run_info(run_module, http, token="given")[0] == "exit"
    assert http.auth == ("given", "")
    assert json.loads(cache_file(token_cache_dir).read_text())["access_token"] == "cached"
