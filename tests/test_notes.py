"""comment and extras on every item (issue 12, item 4): written where the item is writable
(PATCH without a job), kept whole, bounded, and `extras` queryable by its top-level keys in
both where syntaxes — compared as JSON values, never across types — on SQLite and PostgreSQL."""
import json

import pytest

from tests.harness import CJ, Server, cj_body, data_of, postgres_database, require, wait_status


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    drop = None
    database = None
    if request.param == "postgresql":
        database, drop = postgres_database()
        require(database, drop)
    server = Server(tmp_path_factory.mktemp("notes"), database=database).start()
    try:
        session = server.session()
        session.headers.update(CJ)
        yield server, session
    finally:
        server.stop()
        if drop:
            drop()


def first(server, session, collection, where=None):
    resp = session.get(f"{server.url}/{collection}/", params={"where": where} if where else {})
    return server.url + resp.json()["collection"]["items"][0]["href"]


def spaces(server, session, where):
    """The names of the tagged spaces (s-...) the where matches."""
    resp = session.get(server.url + "/spaces/", params={"where": where, "sort": "name"})
    assert resp.status_code == 200, resp.text
    names = [data_of(resp.json(), i)["name"] for i in range(len(resp.json()["collection"]["items"]))]
    return [name for name in names if name.startswith("s-")]


@pytest.fixture(scope="module")
def tagged(site):
    """Five spaces whose extras differ in kind: a string, a number, a boolean, null, nothing."""
    server, session = site
    profile = first(server, session, "profiles", '{"name": "mmfs1-sas1"}')
    exposer = first(server, session, "exposers", '{"type": "gpfsnative"}')
    extras = {"s-text": {"project": "p1", "tier": "5"}, "s-number": {"project": "p2", "tier": 5},
              "s-bool": {"project": "p1", "archived": True}, "s-null": {"project": None}, "s-none": None}
    for name, value in extras.items():
        resp = session.post(server.url + "/spaces/", json=cj_body(
            name=name, relativepath=f"projects/{name}", size=1 << 30, profile=profile, exposers=[exposer],
            comment=f"space {name}", extras=value))
        assert resp.status_code == 202, resp.text
        assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    return extras


@pytest.mark.parametrize("collection", ["spaces", "templates", "snapshots", "exposers", "datastores", "profiles"])
def test_every_item_has_a_comment_and_extras(site, tagged, collection):
    server, session = site
    if collection == "templates":
        (server.folder / "models" / "notes").mkdir(exist_ok=True)
        resp = session.post(server.url + "/templates/", json=cj_body(
            name="notes", type="filesystemtemplate", template_location=str(server.folder / "models" / "notes")))
        assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    if collection == "snapshots":
        space = first(server, session, "spaces", '{"name": "s-text"}')
        resp = session.post(server.url + "/snapshots/", json=cj_body(name="noted", type="gpfsspacesnapshot",
                                                                     space=space))
        assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    if collection == "spaces":
        space = first(server, session, "spaces", '{"name": "s-none"}')
        resp = session.post(server.url + "/spaces/", json=cj_body(
            name="c-noted", relativepath="projects/c-noted", size=1 << 30,
            **{k: v for k, v in data_of(session.get(space).json()).items() if k in ("profile", "exposers")}))
        assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    item = first(server, session, collection, '{"name": "c-noted"}' if collection == "spaces" else None)
    names = [d["name"] for d in session.get(item).json()["collection"]["items"][0]["data"]]
    assert names[-2:] == ["comment", "extras"]
    resp = session.patch(item, json=cj_body(comment="kept by the render team", extras={"owner": "render",
                                                                                       "budget": 12.5}))
    assert resp.status_code == 200, resp.text
    data = data_of(session.get(item).json())
    assert (data["comment"], data["extras"]) == ("kept by the render team", {"owner": "render", "budget": 12.5})


@pytest.mark.parametrize("extras, why", [
    ("not an object", "must be a JSON object"),
    ({"has space": 1}, "keys are 1-64 letters"),
    ({"k" * 65: 1}, "keys are 1-64 letters"),
    ({"big": "x" * 17000}, "at most 16384 bytes"),
    ({"nul": "a\u0000b"}, "NUL"),
])
def test_bad_extras_are_refused_and_nothing_changes(site, tagged, extras, why):
    server, session = site
    space = first(server, session, "spaces", '{"name": "s-text"}')
    before = data_of(session.get(space).json())
    resp = session.patch(space, json=cj_body(extras=extras))
    assert resp.status_code == 422 and why in resp.json()["collection"]["error"]["details"]["extras"], resp.text
    assert data_of(session.get(space).json()) == before


@pytest.mark.parametrize("where, names", [
    ('{"extras.project": "p1"}', ["s-bool", "s-text"]),
    ('extras.project == "p1"', ["s-bool", "s-text"]),
    ('{"extras.tier": 5}', ["s-number"]),                       # a number, not the string "5"
    ('{"extras.tier": "5"}', ["s-text"]),
    ('extras.tier >= 5', ["s-number"]),
    ('extras.tier < 6', ["s-number"]),                          # strings are not ordered against numbers
    ('{"extras.archived": true}', ["s-bool"]),
    ('{"extras.project": null}', ["s-none", "s-null"]),          # missing and JSON null alike
    ('{"extras.project": {"$exists": true}}', ["s-bool", "s-number", "s-text"]),
    ('{"extras.project": {"$ne": "p1"}}', ["s-none", "s-null", "s-number"]),
    ('{"extras.project": {"$in": ["p2", null]}}', ["s-none", "s-null", "s-number"]),
    ('{"extras.project": {"$nin": ["p1"]}}', ["s-none", "s-null", "s-number"]),
    ('{"extras.project": {"$regex": "^P", "$options": "i"}}', ["s-bool", "s-number", "s-text"]),
    ('extras.project == "p1" and extras.tier == "5"', ["s-text"]),
])
def test_extras_are_queried_by_their_keys(site, tagged, where, names):
    server, session = site
    assert spaces(server, session, where) == names


@pytest.mark.parametrize("where, message", [
    ('{"extras.no such": 1}', "keys are 1-64 letters"),
    ('{"extras": {"project": "p1"}}', 'unknown field "extras"'),
    ('name.upper == 1', "attribute access is not allowed"),
    ('{"extras.project": [1]}', "cannot equal a list"),
])
def test_bad_extras_queries_say_why(site, tagged, where, message):
    server, session = site
    resp = session.get(server.url + "/spaces/", params={"where": where})
    assert resp.status_code == 400 and message in resp.json()["collection"]["error"]["message"], resp.text


def test_projection_shows_json_fields(site, tagged):
    server, session = site
    resp = session.get(server.url + "/spaces/", params={"where": '{"name": "s-number"}',
                                                       "projection": json.dumps({"extras": 1})})
    assert data_of(resp.json()) == {"id": data_of(resp.json())["id"], "extras": {"project": "p2", "tier": 5}}
