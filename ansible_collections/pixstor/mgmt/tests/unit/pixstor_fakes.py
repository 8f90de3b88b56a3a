# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Test doubles for the client: a strict fake HTTP session, a fake clock and
Collection+JSON document builders."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

CJ = "application/vnd.collection+json"

BASE = "http://pixstor.test:5101"


class FakeSession(object):
    """requests.Session stand-in that answers from a queue, in order.

    A request that does not match the next queued answer, or arrives when the queue
    is empty, fails the test; so does an answer left unconsumed at the end.
    """

    def __init__(self):
        self.queue = []
        self.calls = []
        self.headers = {}
        self.auth = None
        self.verify = True

    def expect(self, method, path, status=200, json_body=None, text=None, headers=None, where=None,
               params=None, body=None, raises=None, absolute=None):
        """Queue one answer. `where`/`params`/`body` are checked against the request when given."""
        self.queue.append(dict(method=method, path=path, status=status, json_body=json_body, text=text,
                               headers=headers or {}, where=where, params=params, body=body, raises=raises,
                               absolute=absolute))
        return self

    def request(self, method, url, **kwargs):
        self.calls.append(dict(method=method, url=url, **kwargs))
        if not self.queue:
            pytest.fail("unexpected request %s %s (no answer queued)" % (method, url))
        want = self.queue.pop(0)
        got_path = urlsplit(url).path
        if (method, got_path) != (want["method"], want["path"]):
            pytest.fail("expected %s %s, got %s %s" % (want["method"], want["path"], method, url))
        if want["absolute"] and url != want["absolute"]:
            pytest.fail("expected URL %s, got %s" % (want["absolute"], url))
        sent = kwargs.get("params") or {}
        if want["where"] is not None and json.loads(sent.get("where", "null")) != want["where"]:
            pytest.fail("%s %s: expected where %r, got %r" % (method, url, want["where"], sent.get("where")))
        for key, value in (want["params"] or {}).items():
            if sent.get(key) != value:
                pytest.fail("%s %s: expected param %s=%r, got %r" % (method, url, key, value, sent.get(key)))
        if want["body"] is not None:
            got = kwargs.get("data")
            got = json.loads(got) if isinstance(got, str) else got
            if got != want["body"]:
                pytest.fail("%s %s: expected body %r, got %r" % (method, url, want["body"], got))
        if want["raises"] is not None:
            raise want["raises"]
        return make_response(method, url, want["status"], want["json_body"], want["text"], want["headers"])


def make_response(method, url, status, json_body=None, text=None, headers=None):
    resp = requests.Response()
    resp.status_code = status
    resp.url = url
    resp.encoding = "utf-8"
    resp.headers = CaseInsensitiveDict(headers or {})
    if json_body is not None:
        resp._content = json.dumps(json_body).encode()
        resp.headers.setdefault("Content-Type", CJ)
    else:
        resp._content = (text or "").encode()
        resp.headers.setdefault("Content-Type", "text/plain")
    resp.request = requests.Request(method, url).prepare()
    return resp


class FakeClock(object):
    """time.monotonic/time.sleep for the client: sleeping advances the clock, instantly."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeModule(object):
    """AnsibleModule stand-in for the client: connection params and collected warnings."""

    def __init__(self, **params):
        self.params = dict(url=BASE + "/", auth_url=None, username=None, password=None, token="tok",
                           validate_certs=True, ca_path=None, timeout=30, token_cache=True)
        self.params.update(params)
        self.check_mode = False
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)


# C+J builders -------------------------------------------------------------------

def cj_item(collection, item_id, links=None, **data):
    href = "/%s/%s" % (collection, item_id)
    data = dict(dict(id=item_id, status="ACTIVE"), **data)
    all_links = [{"href": '/jobs?where={"resource_type": "%s", "resource_id": "%s"}' % (collection, item_id),
                  "prompt": "Jobs", "name": "Jobs", "render": "link", "rel": "jobs"}]
    all_links.extend(links or [])
    return {"href": href, "data": [{"prompt": name, "name": name, "value": value} for name, value in data.items()],
            "links": all_links}


def cj_doc(*items, **extra):
    collection = {"version": "1.0", "href": "/", "items": list(items), "links": [], "queries": [],
                  "template": {"data": []}}
    collection.update(extra)
    return {"collection": collection}


def cj_error(code, message, details=None):
    error = {"title": "Error", "code": code, "message": message}
    if details:
        error["details"] = details
    return {"collection": {"error": error}}


def job_item(job_id, status, collection, resource_id, action="create"):
    return cj_item("jobs", job_id, status=status, action=action, resource_type=collection, resource_id=resource_id,
                   links=[{"href": "/%s/%s" % (collection, resource_id), "name": "resource", "rel": "resource"},
                          {"href": "/jobs/%s/stderr" % job_id, "name": "stderr", "rel": "stderr"},
                          {"href": "/jobs/%s/stdout" % job_id, "name": "Stdout", "rel": "stdout"}])


def accepted_headers(collection, item_id, job_id):
    return {"Location": '%s/%s/%s?projection={"status":1}' % (BASE, collection, item_id),
            "Link": '<%s/jobs/%s>; rel="job"' % (BASE, job_id)}
