"""Hostile input, tried as a hostile client would: every writable field and every query
parameter with oversized, negative, float, boolean, NUL, control-character, over-long and
deeply nested values. Each case asserts the exact status and a C+J error naming the problem;
a PATCH with a bad value leaves the item exactly as it was."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import inputs
from tests.harness import CJ, cj_body, data_of, make_model, wait_status

BIG = 1 << 63
NESTED = json.loads("[" * 40 + "]" * 40)

# value kind -> (value, expected phrase) for a text field, an integer field, a reference
TEXT = {
    "integer": (5, "must be a string"),
    "negative": (-1, "must be a string"),
    "oversized": (BIG, "must be a string"),
    "float": (1.5, "must be a string"),
    "huge float": (1e30, "must be a string"),
    "boolean": (True, "must be a string"),
    "NUL": ("a\x00b", "must not contain NUL or other control characters"),
    "control": ("a\x1bb", "must not contain NUL or other control characters"),
    "newline": ("a\nb", "must not contain NUL or other control characters"),
    "over-long": ("a" * 5000, "must be at most"),
    "list": (["a"], "must be a string"),
    "object": ({"a": 1}, "must be a string"),
}
INTEGER = {
    "text": ("big", "must be an integer"),
    "negative": (-1, "must be greater than 0"),
    "zero": (0, "must be greater than 0"),
    "oversized": (BIG, "must be between"),
    "numeric string past int64": (str(BIG), "must be between"),
    "float": (1.5, "must be an integer"),
    "whole float": (4096.0, "must be an integer"),
    "huge float": (1e30, "must be an integer"),
    "boolean": (True, "must be an integer"),
    "NUL": ("1\x00", "must be an integer"),
    "list": ([1], "must be an integer"),
    "object": ({"a": 1}, "must be an integer"),
}
REFERENCE = {
    "integer": (5, "expected hrefs or ids"),
    "boolean": (True, "expected hrefs or ids"),
    "float": (1.5, "expected hrefs or ids"),
    "NUL": ("/profiles/a\x00b", "must not contain NUL or other control characters"),
    "control": ("/profiles/a\x07", "must not contain NUL or other control characters"),
    "over-long": ("x" * 5000, "must be at most 4096 bytes"),
    "list of numbers": ([1, 2], "expected hrefs or ids"),
    "object": ({"href": "/x"}, "expected hrefs or ids"),
    "unknown id": ("no-such-id", "no "),
}
FIELDS = {
    "spaces": {"name": TEXT, "relativepath": TEXT, "size": INTEGER, "profile": REFERENCE,
               "exposers": REFERENCE, "templates": REFERENCE},
    "templates": {"name": TEXT, "type": TEXT, "template_location": TEXT},
    "snapshots": {"name": TEXT, "type": TEXT, "space": REFERENCE, "exposer": REFERENCE},
}
WRITE_CASES = [(collection, field, kind) for collection, fields in FIELDS.items()
               for field, table in fields.items() for kind in table]

QUERY_VALUES = {
    "NUL": ("a\x00b", "control characters"),
    "control": ("a\x01b", "control characters"),
    "over-long": ("x" * 9000, "at most 8192 bytes"),
}
QUERY_PARAMETERS = ["where", "projection", "sort", "max_results", "page"]
QUERY_CASES = [(p, k) for p in QUERY_PARAMETERS for k in QUERY_VALUES]
QUERY_SEMANTIC = [
    ("where", '{"size": {"$gt": 1e30}}', "expects an integer"),
    ("where", '{"size": {"$gt": true}}', "expects an integer"),
    ("where", f'{{"size": {{"$gt": {BIG}}}}}', "expects an integer"),
    ("where", '{"size": {"$gt": "9223372036854775808"}}', "expects an integer"),
    ("where", '{"name": ' + "[" * 200 + "]" * 200 + "}", "where"),
    ("where", "size > 1e30", "expects an integer"),
    ("where", "(" * 300 + "size > 1" + ")" * 300, "where"),
    ("where", '{"name": {"$regex": "' + "a" * 600 + '"}}', "longer than 512"),
    ("where", '{"name": {"$regex": "(a)\\\\1"}}', "invalid regular expression"),
    ("projection", '{"size": 2}', "projection"),
    ("projection", '{"size": true, "name": 0}', "projection"),
    ("sort", '[("size", 2)]', "sort"),
    ("sort", "-nosuchfield", "sort"),
    ("max_results", "-1", "max_results"),
    ("max_results", "1.5", "max_results"),
    ("max_results", "true", "max_results"),
    ("max_results", "99999999999999999999", "max_results"),
    ("page", "0", "page"),
    ("page", "1e3", "page"),
    ("page", "-5", "page"),
]


@pytest.fixture(scope="module")
def env(shared_server):
    srv = shared_server
    session = srv.session()
    model = make_model(srv.mountpoint / "models" / "hostile")
    resp = session.post(srv.url + "/templates/", headers=CJ, json=cj_body(
        name="hostile", type="filesystemtemplate", template_location=str(model)))
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    profile = session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
    exposer = session.get(srv.url + "/exposers/").json()
    refs = {"profile": profile["collection"]["items"][0]["href"],
            "exposer": exposer["collection"]["items"][0]["href"]}
    resp = session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
        name="steady", relativepath="hostile/steady", exposers=refs["exposer"], profile=refs["profile"],
        size=1 << 30))
    refs["space"] = resp.json()["collection"]["items"][0]["href"]
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    return srv, session, refs


def error_of(resp):
    assert resp.headers["Content-Type"].startswith("application/vnd.collection+json"), resp.headers
    return resp.json()["collection"]["error"]


@pytest.mark.parametrize("collection, field, kind", WRITE_CASES)
def test_every_writable_field_refuses_hostile_values(env, collection, field, kind):
    srv, session, _ = env
    value, phrase = FIELDS[collection][field][kind]
    resp = session.post(f"{srv.url}/{collection}/", headers={"Content-Type": "application/json"},
                        data=json.dumps({field: value}))
    assert resp.status_code == 422, resp.text
    error = error_of(resp)
    assert error["code"] == 422
    assert phrase in error["details"][field], error["details"]


@pytest.mark.parametrize("collection", list(FIELDS))
def test_deeply_nested_bodies_are_400(env, collection):
    srv, session, _ = env
    resp = session.post(f"{srv.url}/{collection}/", headers={"Content-Type": "application/json"},
                        data=json.dumps({"name": NESTED}))
    assert resp.status_code == 400
    assert "nests 41 levels deep" in error_of(resp)["message"]
    very_deep = '{"name": ' + "[" * 100000 + "]" * 100000 + "}"
    resp = session.post(f"{srv.url}/{collection}/", headers={"Content-Type": "application/json"}, data=very_deep)
    assert resp.status_code == 400 and "levels deep" in error_of(resp)["message"]


def test_a_body_past_the_limit_is_413(env):
    srv, session, _ = env
    resp = session.post(f"{srv.url}/spaces/", headers={"Content-Type": "application/json"},
                        data=json.dumps({"name": "x" * (2 << 20)}))
    assert resp.status_code == 413
    assert "over the limit of 1048576 bytes" in error_of(resp)["message"]

    def chunks():   # no Content-Length: the limit holds on what is read
        for _ in range(3):
            yield b" " * (1 << 20)
        yield b"{}"
    resp = session.post(f"{srv.url}/spaces/", headers={"Content-Type": "application/json"}, data=chunks())
    assert resp.status_code == 413


@pytest.mark.parametrize("parameter, kind", QUERY_CASES)
def test_query_parameters_refuse_control_characters_and_overlong_values(env, parameter, kind):
    srv, session, _ = env
    value, phrase = QUERY_VALUES[kind]
    resp = session.get(f"{srv.url}/spaces/", params={parameter: value})
    assert resp.status_code == 400
    assert phrase in error_of(resp)["message"]


@pytest.mark.parametrize("parameter, value, phrase", QUERY_SEMANTIC)
def test_query_parameters_refuse_impossible_values(env, parameter, value, phrase):
    srv, session, _ = env
    resp = session.get(f"{srv.url}/spaces/", params={parameter: value})
    assert resp.status_code == 400, resp.text
    assert phrase in error_of(resp)["message"]


@pytest.mark.parametrize("kind", list(INTEGER))
def test_a_bad_patch_leaves_the_item_as_it_was(env, kind):
    srv, session, refs = env
    before = session.get(srv.url + refs["space"])
    jobs = session.get(srv.url + "/jobs/", params={"where": json.dumps({"resource_id": refs["space"].rsplit("/", 1)[1]})})
    value, phrase = INTEGER[kind]
    resp = session.patch(srv.url + refs["space"], headers={"Content-Type": "application/json"},
                         data=json.dumps({"size": value}))
    assert resp.status_code == 422
    assert phrase in error_of(resp)["details"]["size"]
    after = session.get(srv.url + refs["space"])
    assert data_of(after.json()) == data_of(before.json())
    assert data_of(after.json())["status"] == "ACTIVE"
    jobs_after = session.get(srv.url + "/jobs/", params={"where": json.dumps({"resource_id": refs["space"].rsplit("/", 1)[1]})})
    assert jobs_after.headers["X-Total-Count"] == jobs.headers["X-Total-Count"]


@pytest.mark.parametrize("field, value, phrase", [
    ("relativepath", "a/" + "b" * 256, "longer than 255 bytes"),
    ("relativepath", "/".join(["c" * 200] * 21), "must be at most 4096 bytes"),
    ("name", "n" * 250, "fileset names fit"),
])
def test_names_and_path_components_fit_the_filesystem(env, field, value, phrase):
    srv, session, refs = env
    body = dict(name="fits", relativepath="hostile/fits", exposers=refs["exposer"], profile=refs["profile"],
                size=1 << 20)
    body[field] = value
    resp = session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(**body))
    assert resp.status_code == 422, resp.text
    assert phrase in error_of(resp)["details"][field]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(), st.none(),
                 st.lists(st.integers(), max_size=2)))
def test_whole_number_accepts_exactly_int64(value):
    try:
        result = inputs.whole_number(value)
    except ValueError:
        accepted = False
    else:
        accepted = True
        assert isinstance(result, int) and not isinstance(result, bool)
        assert inputs.INT64_MIN <= result <= inputs.INT64_MAX
    if isinstance(value, int) and not isinstance(value, bool):
        assert accepted == (inputs.INT64_MIN <= value <= inputs.INT64_MAX)
    if isinstance(value, (float, bool, list)) or value is None:
        assert not accepted


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=64))
def test_text_refuses_control_characters_and_counts_bytes(value, limit):
    try:
        inputs.text(value, limit)
    except ValueError:
        assert (any(ord(c) < 32 or ord(c) == 127 for c in value)
                or len(value.encode("utf-8", "surrogatepass")) > limit
                or any(0xD800 <= ord(c) <= 0xDFFF for c in value))
    else:
        assert not any(ord(c) < 32 or ord(c) == 127 for c in value)
        assert len(value.encode("utf-8")) <= limit
