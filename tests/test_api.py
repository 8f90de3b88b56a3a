"""The API foundation over a real server process: auth, roles, C+J documents,
queries and every class of error."""
import pytest
import requests
from openapi_spec_validator import validate

from tests.harness import CJ, cj_body, data_of, links_of


@pytest.fixture(scope="module")
def api(shared_server):
    return shared_server, shared_server.session()


# Auth -----------------------------------------------------------------------

def test_token_flow(shared_server):
    resp = requests.post(shared_server.url + "/oauth2/token",
                         data={"grant_type": "password", "username": "admin",
                               "password": shared_server.admin_password})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and len(body["access_token"]) >= 32
    assert resp.headers["Content-Type"].startswith("application/json")
    # HTTP Basic with the token as username, and Bearer, both work
    basic = requests.get(shared_server.url + "/spaces/", auth=(body["access_token"], ""))
    bearer = requests.get(shared_server.url + "/spaces/",
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert basic.status_code == bearer.status_code == 200


@pytest.mark.parametrize("form, error", [
    ({"grant_type": "password", "username": "admin", "password": "wrong"}, "invalid_grant"),
    ({"grant_type": "password", "username": "nobody", "password": "x"}, "invalid_grant"),
    ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ({"username": "admin"}, "invalid_request"),
])
def test_token_errors_follow_rfc6749(shared_server, form, error):
    resp = requests.post(shared_server.url + "/oauth2/token", data=form)
    assert resp.status_code == 400
    assert resp.json()["error"] == error


@pytest.mark.parametrize("auth", [None, ("not-a-token", ""), ("", "")])
def test_no_or_bad_token_is_401_with_challenge(shared_server, auth):
    resp = requests.get(shared_server.url + "/profiles/", auth=auth)
    assert resp.status_code == 401
    assert "WWW-Authenticate" in resp.headers
    assert resp.headers["Content-Type"] == "application/vnd.collection+json"
    assert resp.json()["collection"]["error"]["code"] == 401


@pytest.mark.parametrize("user, password, path, allow", [
    ("admin", None, "/spaces/", "HEAD, GET, POST, OPTIONS"),
    ("admin", None, "/profiles/", "HEAD, GET, POST, OPTIONS"),
    ("admin", None, "/datastores/", "HEAD, GET, OPTIONS"),
    ("operator1", "operator-pass", "/profiles/", "HEAD, GET, OPTIONS"),
    ("operator1", "operator-pass", "/spaces/", "HEAD, GET, POST, OPTIONS"),
    ("operator1", "operator-pass", "/templates/", "HEAD, GET, POST, OPTIONS"),
    ("reader", "reader-pass", "/spaces/", "HEAD, GET, OPTIONS"),
    ("reader", "reader-pass", "/jobs/", "HEAD, GET, OPTIONS"),
])
def test_options_answers_the_callers_methods(shared_server, user, password, path, allow):
    session = shared_server.session(user, password)
    resp = session.options(shared_server.url + path)
    assert resp.status_code == 200
    assert resp.headers["Allow"] == allow


def test_item_options_and_405_for_a_role_without_the_method(shared_server):
    admin = shared_server.session()
    profile = admin.get(shared_server.url + "/profiles/").json()["collection"]["items"][0]["href"]
    assert admin.options(shared_server.url + profile).headers["Allow"] == "HEAD, GET, PATCH, DELETE, OPTIONS"
    datastore = admin.get(shared_server.url + "/datastores/").json()["collection"]["items"][0]["href"]
    assert admin.options(shared_server.url + datastore).headers["Allow"] == "HEAD, GET, PATCH, OPTIONS"
    reader = shared_server.session("reader", "reader-pass")
    resp = reader.post(shared_server.url + "/spaces/", json={"name": "x"}, headers=CJ)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "HEAD, GET, OPTIONS"
    assert "POST" in resp.json()["collection"]["error"]["message"]


# Read-only resources and the walkthrough's queries ---------------------------

def test_walkthrough_profile_query(api):
    srv, session = api
    resp = session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'})
    assert resp.status_code == 200
    assert resp.headers["X-Total-Count"] == "1"
    doc = resp.json()["collection"]
    assert doc["version"] == "1.0"
    assert doc["href"] == '/profiles/?where={"name": "mmfs1-sas1"}'
    item = doc["items"][0]
    data = data_of(resp.json())
    assert data["name"] == "mmfs1-sas1" and data["status"] == "ACTIVE"
    assert item["href"] == f"/profiles/{data['id']}"
    prompts = {d["name"]: d["prompt"] for d in item["data"]}
    assert prompts["status"] == "current status of the item"
    assert prompts["id"] == "unique identifier for the item"
    assert prompts["name"] == "profile name"
    assert links_of(resp.json())["Jobs"]["href"] == (
        f'/jobs?where={{"resource_type": "profiles", "resource_id": "{data["id"]}"}}')


def test_walkthrough_exposer_query(api):
    srv, session = api
    resp = session.get(srv.url + "/exposers/", params={"where": '{"type": "gpfsnative", "name": "mmfs1"}'})
    assert resp.headers["X-Total-Count"] == "1"
    data = data_of(resp.json())
    assert data["type"] == "gpfsnative" and data["name"] == "mmfs1"
    assert data["mountpoint"] == str(srv.mountpoint)
    prompts = {d["name"]: d["prompt"] for d in resp.json()["collection"]["items"][0]["data"]}
    assert prompts["type"] == "specific type of the exposer"
    assert prompts["mountpoint"] == "path at which the exposer is mounted"
    assert prompts["name"] == "exposer name"


def test_queries_offer_search_by_name_as_uri_template(api):
    srv, session = api
    queries = session.get(srv.url + "/profiles/").json()["collection"]["queries"]
    assert queries[0] == {
        "prompt": "Search by Name", "href": '/profiles?where={"name":"{name}"}',
        "data": [{"prompt": "profile name", "name": "name", "value": ""}],
        "rel": "search", "encoding": "uri-template"}


def test_spaces_template_matches_walkthrough(api):
    srv, session = api
    template = session.get(srv.url + "/spaces/").json()["collection"]["template"]
    assert template == {"data": [
        {"prompt": "space name", "name": "name", "value": ""},
        {"prompt": "path of the space relative to its exposers", "name": "relativepath", "value": ""},
        {"prompt": "templates applied to the space", "name": "templates", "value": ""},
        {"prompt": "exposers providing access to the space", "name": "exposers", "value": ""},
        {"prompt": "profile applied to the space", "name": "profile", "value": ""},
        {"prompt": "hard limit on the size of the space in blocks", "name": "size", "value": ""},
    ]}
    template = session.get(srv.url + "/templates/").json()["collection"]["template"]
    assert template == {"data": [
        {"prompt": "template name", "name": "name", "value": ""},
        {"prompt": "specific type of the template", "name": "type", "value": ""},
        {"prompt": "path to the template", "name": "template_location", "value": ""},
    ]}


def test_populated_objects_and_links(api):
    srv, session = api
    profiles = session.get(srv.url + "/profiles/", params={"sort": "name"}).json()
    names = [data_of(profiles, i)["name"] for i in range(2)]
    assert names == ["mmfs1-sas1", "mmfs1-sata1"]
    datastore_link = links_of(profiles, 0)["datastore"]
    assert datastore_link["rel"] == "datastore item"
    datastore = session.get(srv.url + datastore_link["href"]).json()
    assert data_of(datastore)["pool"] == "sas1" and data_of(datastore)["filesystem"] == "mmfs1"


def test_populate_again_keeps_ids(shared_server):
    session = shared_server.session()
    before = session.get(shared_server.url + "/profiles/").json()
    shared_server.cli("populate")
    result = shared_server.cli("populate")   # and once more through adminctl's spelling
    assert result.returncode == 0
    after = session.get(shared_server.url + "/profiles/").json()
    assert [i["href"] for i in before["collection"]["items"]] == [i["href"] for i in after["collection"]["items"]]
    assert after["collection"]["items"] and len(after["collection"]["items"]) == 2


def test_trailing_slash_optional_for_get_and_head(api):
    srv, session = api
    with_slash = session.get(srv.url + "/datastores/")
    without = session.get(srv.url + "/datastores")
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.json()["collection"]["items"] == without.json()["collection"]["items"]
    head = session.head(srv.url + "/datastores")
    assert head.status_code == 200 and head.headers["X-Total-Count"] == "2" and head.content == b""


def test_post_without_trailing_slash_names_the_right_url(api):
    srv, session = api
    resp = session.post(srv.url + "/templates", json={"name": "t"}, headers=CJ)
    assert resp.status_code == 405
    assert "/templates/" in resp.json()["collection"]["error"]["message"]


# Query language over HTTP ----------------------------------------------------

@pytest.mark.parametrize("where, names", [
    ('{"name": "mmfs1-sata1"}', ["mmfs1-sata1"]),
    ('{"name": {"$in": ["mmfs1-sas1", "mmfs1-sata1"]}}', ["mmfs1-sas1", "mmfs1-sata1"]),
    ('{"name": {"$regex": "sata"}}', ["mmfs1-sata1"]),
    ('{"$or": [{"name": "mmfs1-sas1"}, {"name": "nope"}]}', ["mmfs1-sas1"]),
    ('name=="mmfs1-sas1"', ["mmfs1-sas1"]),
    ('name=="mmfs1-sas1" or name=="mmfs1-sata1"', ["mmfs1-sas1", "mmfs1-sata1"]),
    ('name!="mmfs1-sas1"', ["mmfs1-sata1"]),
])
def test_where_both_syntaxes(api, where, names):
    srv, session = api
    resp = session.get(srv.url + "/profiles/", params={"where": where, "sort": "name"})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert [data_of(doc, i)["name"] for i in range(len(doc["collection"]["items"]))] == names
    assert resp.headers["X-Total-Count"] == str(len(names))


def test_projection_narrows_data_not_links(api):
    srv, session = api
    doc = session.get(srv.url + "/profiles/", params={"projection": '{"status":1}'}).json()
    item = doc["collection"]["items"][0]
    assert [d["name"] for d in item["data"]] == ["status", "id"]
    assert {link["name"] for link in item["links"]} >= {"Jobs", "datastore"}
    doc = session.get(srv.url + "/datastores/", params={"projection": '{"pool":0}'}).json()
    assert "pool" not in data_of(doc) and "filesystem" in data_of(doc)


def test_sort_and_paging_links(api):
    srv, session = api
    doc = session.get(srv.url + "/profiles/", params={"sort": '[("name",-1)]', "max_results": 1}).json()
    assert data_of(doc)["name"] == "mmfs1-sata1"
    links = {link["rel"]: link["href"] for link in doc["collection"]["links"]}
    assert set(links) == {"first", "next", "last"}
    second = session.get(srv.url + links["next"]).json()
    assert data_of(second)["name"] == "mmfs1-sas1"
    assert {link["rel"] for link in second["collection"]["links"]} == {"first", "prev", "last"}


@pytest.mark.parametrize("params, words", [
    ({"where": '{"nmae": "x"}'}, "nmae"),
    ({"where": '{"name": '}, "where"),
    ({"where": '__import__("os").system("true")'}, "where"),
    ({"where": '{"name": {"$bogus": 1}}'}, "$bogus"),
    ({"projection": '{"nope":1}'}, "nope"),
    ({"sort": "nope"}, "nope"),
    ({"max_results": "many"}, "max_results"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_queries_are_400_saying_what(api, params, words):
    srv, session = api
    resp = session.get(srv.url + "/profiles/", params=params)
    assert resp.status_code == 400
    error = resp.json()["collection"]["error"]
    assert error["code"] == 400 and error["title"] == "Error"
    assert words in error["message"]


# Errors ------------------------------------------------------------------------

def test_unknown_item_and_collection_are_404_cj(api):
    srv, session = api
    for path in ("/spaces/does-not-exist", "/nothing/", "/jobs/x/stdout"):
        resp = session.get(srv.url + path)
        assert resp.status_code == 404, path
        assert resp.headers["Content-Type"] == "application/vnd.collection+json"
        assert resp.json()["collection"]["error"]["code"] == 404
        assert resp.headers["X-Request-Id"]


def test_form_encoded_write_is_400(api):
    srv, session = api
    resp = session.post(srv.url + "/templates/", data={"name": "t"})
    assert resp.status_code == 400
    assert "Content-Type" in resp.json()["collection"]["error"]["message"]


def test_invalid_space_name_is_422_as_in_walkthrough(api):
    srv, session = api
    resp = session.post(srv.url + "/spaces/", json={"name": "sleepy snake", "relativepath": "p", "size": 1},
                        headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    error = resp.json()["collection"]["error"]
    assert set(resp.json()["collection"]) == {"error"}
    assert error["message"] == "Insertion failure: 1 document(s) contain(s) error(s)"
    assert error["code"] == 422 and error["title"] == "Error"
    assert "name" in error["details"]


def test_422_details_per_field(api):
    srv, session = api
    resp = session.post(srv.url + "/spaces/", json=cj_body(name="ok", size="big", colour="red",
                                                           profile="/profiles/nope"), headers=CJ)
    details = resp.json()["collection"]["error"]["details"]
    assert resp.status_code == 422
    assert details["size"] == "must be an integer"
    assert details["colour"] == "unknown field"
    assert "no profiles item" in details["profile"]
    assert details["relativepath"] == "required field"


@pytest.mark.parametrize("body", [
    {"template": {"data": [{"name": {"nested": 1}, "value": 1}]}},
    {"template": {"data": "name"}},
    {"template": []},
    [1, 2],
])
def test_malformed_cj_bodies_are_400(api, body):
    srv, session = api
    resp = session.post(srv.url + "/spaces/", json=body, headers=CJ)
    assert resp.status_code == 400, resp.text
    assert "C+J template" in resp.json()["collection"]["error"]["message"]


def test_errors_carry_request_id_and_no_traceback(api):
    srv, session = api
    resp = session.post(srv.url + "/spaces/", data="{not json", headers=CJ)
    assert resp.status_code == 400
    assert resp.headers["X-Request-Id"]
    assert "Traceback" not in resp.text


def test_openapi_document_is_derived_from_models(api):
    srv, session = api
    doc = session.get(srv.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/spaces/" in doc["paths"] and "post" in doc["paths"]["/spaces/"]
    assert "post" not in doc["paths"]["/datastores/"]
    props = doc["components"]["schemas"]["spaces"]["properties"]
    assert props["size"]["description"] == "hard limit on the size of the space in blocks"
    assert props["fileset"]["readOnly"] is True and props["name"]["readOnly"] is False
    # item actions, from their views' declarations: a space's revert, and no other
    assert [path for path in doc["paths"] if path.count("/") == 3] == ["/spaces/{id}/revert"]
    revert = doc["paths"]["/spaces/{id}/revert"]["post"]
    assert [(p["name"], p["in"]) for p in revert["parameters"]] == [("force", "query")]
    body = revert["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/spaces.revert"}
    assert doc["components"]["schemas"]["spaces.revert"]["required"] == ["snapshot"]
    assert {"202", "404", "409", "412", "422"} <= set(revert["responses"])
    validate(doc)    # a valid OpenAPI 3.1 document, as tools (schemathesis, generators) need


def test_expired_token_is_401(shared_server):
    import hashlib
    import sqlite3
    token = shared_server.token()
    assert requests.get(shared_server.url + "/spaces/", auth=(token, "")).status_code == 200
    with sqlite3.connect(shared_server.folder / "var" / "pixstor.db") as conn:
        conn.execute("UPDATE token SET expires = '2000-01-01 00:00:00' WHERE token_hash = ?",
                     (hashlib.sha256(token.encode()).hexdigest(),))
    resp = requests.get(shared_server.url + "/spaces/", auth=(token, ""))
    assert resp.status_code == 401 and "expired" in resp.json()["collection"]["error"]["message"]
    assert resp.headers["WWW-Authenticate"]


def test_forwarded_headers_of_a_direct_client_are_ignored(api):
    srv, session = api
    headers = dict(CJ, **{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    resp = session.post(srv.url + "/templates/", headers=headers, json=cj_body(
        name="fwd", type="filesystemtemplate", template_location=str(srv.folder / "models")))
    assert resp.status_code == 202, resp.text
    assert resp.headers["Location"].startswith(f"{srv.url}/templates/")   # not https://evil.example
