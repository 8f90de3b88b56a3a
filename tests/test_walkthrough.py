"""The walkthrough "Creating a Space", request by request, against a real
`pixstor-mgmt serve` (API + worker) — then the files on disk."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from service.config import load
from service.storage import get_driver
from service.storage.base import Filesystem
from tests.harness import Server, make_model

WALKTHROUGH_TREE = ["assets", "assets/models", "assets/rigs", "flame", "houdini", "maya", "mudbox", "nuke",
                    "published", "rendering"]


def get_status(collection, item):
    for data in collection['collection']['items'][item]['data']:
        if data['name'] == 'status':
            return data['value']
    raise KeyError("Status field not found")


def get_link_href(collection, item, name):
    for link in collection['collection']['items'][item]['links']:
        if link['name'] == name:
            return link['href']
    raise KeyError(name)


def poll_active(session, checkurl, seconds=10):
    """As the walkthrough does: once a second, for at most 10 seconds."""
    status = None
    for _ in range(seconds):
        time.sleep(1)
        status = get_status(session.get(checkurl).json(), 0)
        if status == 'ACTIVE':
            return status
    raise AssertionError(f"not ACTIVE after {seconds}s - got status {status!r}")


def wait_active(session, checkurl, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        status = get_status(session.get(checkurl).json(), 0)
        if status in ("ACTIVE", "ERRORED") or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def tree(root):
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".snapshots")
        rel = os.path.relpath(folder, root)
        found += [os.path.normpath(os.path.join(rel, d)) for d in dirs]
    return sorted(found)


@pytest.fixture(params=["posix", "btrfs"])
def walkthrough_server(request, tmp_path):
    if request.param == "btrfs":
        mount = request.getfixturevalue("btrfs_mount")
        srv = Server(tmp_path, driver="btrfs", mountpoint=str(mount))
    else:
        srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def test_walkthrough(walkthrough_server):
    srv = walkthrough_server
    url = srv.url
    model = make_model(srv.mountpoint / "project_template")

    # Authentication
    authserver = url
    payload = {'grant_type': 'password', 'username': 'admin', 'password': srv.admin_password}
    resp = requests.post(authserver + '/oauth2/token', data=payload)
    assert resp.status_code == 200
    token = resp.json()['access_token']
    session = requests.Session()
    session.auth = (token, '')

    # Auth Roles
    resp = session.options(url + '/spaces/')
    assert resp.headers['Allow'] == "HEAD, GET, POST, OPTIONS"

    # Collection+JSON Template
    resp = session.get(url + '/spaces/')
    assert [d["name"] for d in resp.json()['collection']['template']["data"]] == [
        "name", "relativepath", "templates", "exposers", "profile", "size"]

    resp = session.post(url + '/spaces/', json={'name': 'sleepy snake'})
    assert resp.status_code == 422
    assert resp.json()['collection']['error']['message'] == 'Insertion failure: 1 document(s) contain(s) error(s)'
    assert resp.json()['collection']['error']['code'] == 422

    # Finding where to put things
    resp = session.get(url + '/profiles/')
    query = resp.json()['collection']['queries'][0]
    assert query["href"] == '/profiles?where={"name":"{name}"}' and query["rel"] == "search"
    params = {'where': '{"name": "mmfs1-sas1"}'}
    resp = session.get(url + '/profiles/', params=params)
    assert resp.headers['X-Total-Count'] == '1'
    profile = resp.json()['collection']['items'][0]['href']
    assert re.fullmatch(r"/profiles/[0-9a-f-]{36}", profile)

    params = {'where': '{"type": "gpfsnative", "name": "mmfs1"}'}
    resp = session.get(url + '/exposers/', params=params)
    assert resp.headers['X-Total-Count'] == '1'
    exposer = resp.json()['collection']['items'][0]['href']

    # POSTing the Template
    resp = session.get(url + '/templates/')
    assert [d["name"] for d in resp.json()['collection']['template']["data"]] == [
        "name", "type", "template_location"]
    template_data = {
        "template": {
            "data": [
                {"name": "name", "value": "project_template"},
                {"name": "type", "value": "filesystemtemplate"},
                {"name": "template_location", "value": str(model)}
            ]
        }
    }
    resp = session.post(url + '/templates/', json=template_data,
                        headers={"Content-Type": "application/vnd.collection+json"})
    assert resp.status_code == 202, resp.text
    location = resp.headers['Location']
    assert re.fullmatch(re.escape(url) + r'/templates/[0-9a-f-]{36}\?projection=\{"status":1\}', location)

    # Template Builder
    assert wait_active(session, location) == 'ACTIVE'
    resp = session.get(location)
    assert get_status(resp.json(), 0) == 'ACTIVE'
    assert [d["name"] for d in resp.json()['collection']['items'][0]['data']] == ["status", "id"]
    template = resp.json()['collection']['items'][0]['href']
    full = session.get(url + template).json()
    assert {d["name"]: d["value"] for d in full['collection']['items'][0]['data']}["template_location"] is None

    # Checking the Builder Task
    href = get_link_href(resp.json(), 0, 'Jobs')
    template_id = template.rsplit("/", 1)[1]
    assert href == f'/jobs?where={{"resource_type": "templates", "resource_id": "{template_id}"}}'
    resp = session.get(url + href)
    assert resp.headers['X-Total-Count'] == '1'
    links = {link["name"]: link for link in resp.json()['collection']['items'][0]['links']}
    assert links["resource"]["href"] == template
    job_id = resp.json()['collection']['items'][0]['href'].rsplit("/", 1)[1]
    # as the walkthrough prints them
    assert links["stderr"] == {"href": f"/jobs/{job_id}/stderr", "prompt": "Stderr", "name": "stderr",
                               "render": "link", "rel": "stderr"}
    assert links["Stdout"] == {"href": f"/jobs/{job_id}/stdout", "prompt": "Stdout", "name": "Stdout",
                               "render": "link", "rel": "stdout"}
    stdout = session.get(url + get_link_href(resp.json(), 0, "Stdout"))
    assert (stdout.status_code, stdout.headers['Content-Type'], stdout.text) == (200, 'text/plain', '')
    href = get_link_href(resp.json(), 0, "stderr")
    resp = session.get(url + href)
    assert resp.headers['Content-Type'] == 'text/plain'
    assert resp.text.startswith('DEBUG:service.job:job ')       # as the walkthrough shows: 'DEBUG:...
    assert "project_template" in resp.text

    # The model can change or go once the template is built
    (model / "flame").rmdir()

    # Creating the Space
    space_data = {
        "template": {
            "data": [
                {"name": "name", "value": "sleepy-snake"},
                {"name": "relativepath", "value": "projects/sleepy_snake"},
                {"name": "exposers", "value": exposer},
                {"name": "profile", "value": profile},
                {"name": "templates", "value": template},
                {"name": "size", "value": 4*1024*1024*1024}  # 4GB
            ]
        }
    }
    resp = session.post(url + '/spaces/', json=space_data,
                        headers={"Content-Type": "application/vnd.collection+json"})
    assert resp.status_code == 202, resp.text
    checkurl = resp.headers['Location']
    assert poll_active(session, checkurl) == 'ACTIVE'

    # Checking Our Work: Database
    params = {'where': '{"name": "sleepy-snake"}'}
    resp = session.get(url + '/spaces/', params=params)
    item = resp.json()['collection']['items'][0]
    data = {d["name"]: d for d in item["data"]}
    space_id = data["id"]["value"]
    assert item["href"] == f"/spaces/{space_id}"
    assert data["status"] == {"prompt": "current status of the item", "name": "status", "value": "ACTIVE"}
    assert data["name"]["value"] == "sleepy-snake"
    assert data["relativepath"] == {"prompt": "path of the space relative to its exposers",
                                    "name": "relativepath", "value": "projects/sleepy_snake"}
    assert data["id"]["prompt"] == "unique identifier for the item"
    assert data["size"] == {"prompt": "hard limit on the size of the space in blocks", "name": "size",
                            "value": 4294967296}
    assert data["fileset"]["value"] == "sas1-sleepy-snake"
    links = {link["name"]: link for link in item["links"]}
    template_id = template.rsplit("/", 1)[1]
    exposer_id = exposer.rsplit("/", 1)[1]
    assert links["templates"] == {"href": f'/templates/?where=id=="{template_id}"',
                                  "prompt": "templates applied to the space", "name": "templates",
                                  "render": "link", "rel": "templates collection"}
    assert links["exposers"] == {"href": f'/exposers/?where=id=="{exposer_id}"',
                                 "prompt": "exposers providing access to the space", "name": "exposers",
                                 "render": "link", "rel": "exposers collection"}
    assert links["profile"] == {"href": profile, "prompt": "profile applied to the space", "name": "profile",
                                "render": "link", "rel": "profile item"}
    assert links["Jobs"]["href"] == f'/jobs?where={{"resource_type": "spaces", "resource_id": "{space_id}"}}'
    # the relation links are real queries
    assert session.get(url + links["templates"]["href"]).headers["X-Total-Count"] == "1"
    assert session.get(url + links["exposers"]["href"]).headers["X-Total-Count"] == "1"

    # Checking Our Work: Filesystem
    space_root = srv.mountpoint / "projects" / "sleepy_snake"
    assert tree(space_root) == WALKTHROUGH_TREE     # flame too: removed from the model after the build
    driver = get_driver(load(srv.config).storage)
    fs = Filesystem("mmfs1", str(srv.mountpoint), ("sas1", "sata1"))
    assert driver.fileset_at(fs, str(space_root)) == "sas1-sleepy-snake"
    dependent = driver.fileset_at(fs, str(space_root / "assets"))
    assert re.fullmatch(r"sata1-sleepy-snake-[0-9a-f]{8}", dependent), dependent
    assert driver.quota(fs, "sas1-sleepy-snake") == (4294967296, 3865470566)

    # Exercise: Create a Snapshot
    (space_root / "published" / "shot010.exr").write_bytes(b"frame one")
    params = {'where': '{"name": "sleepy-snake"}'}
    resp = session.get(url + '/spaces/', params=params)
    space = resp.json()['collection']['items'][0]['href']
    snapshot_data = {
        "template": {
            "data": [
                {"name": "name", "value": "snake-snap"},
                {"name": "type", "value": "gpfsspacesnapshot"},
                {"name": "space", "value": space},
            ]
        }
    }
    resp = session.post(url + '/snapshots/', json=snapshot_data,
                        headers={"Content-Type": "application/vnd.collection+json"})
    assert resp.status_code == 202, resp.text
    assert wait_active(session, resp.headers['Location']) == 'ACTIVE'
    snapshot = session.get(resp.headers['Location'].split("?")[0]).json()
    snap_path = Path({d["name"]: d["value"] for d in snapshot["collection"]["items"][0]["data"]}["path"])
    assert snap_path == space_root / ".snapshots" / "snake-snap"
    (space_root / "published" / "shot010.exr").write_bytes(b"frame two")
    assert (snap_path / "published" / "shot010.exr").read_bytes() == b"frame one"
    assert tree(snap_path) == WALKTHROUGH_TREE
