"""Storage jobs over a real server and worker: the rules for templates, spaces
and snapshots, resize and delete, failure and retry."""
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness import CJ, Server, cj_body, data_of, make_model, wait_status


@pytest.fixture(scope="module")
def env(shared_server):
    """(server, admin session, refs) with a built template."""
    srv = shared_server
    session = srv.session()
    model = make_model(srv.mountpoint / "models" / "project")
    (model / "nuke" / "README").write_text("comp scripts go here\n")
    os.chmod(model / "nuke" / "README", 0o640)
    if os.geteuid() == 0:   # ownership is kept when the worker can set it
        os.chown(model / "nuke" / "README", 1234, 2345)
    os.symlink("../published", model / "nuke" / "out")
    refs = {
        "profile": session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
        ["collection"]["items"][0]["href"],
        "exposer": session.get(srv.url + "/exposers/").json()["collection"]["items"][0]["href"],
    }
    resp = session.post(srv.url + "/templates/", json=cj_body(
        name="project", type="filesystemtemplate", template_location=str(model)), headers=CJ)
    assert resp.status_code == 202, resp.text
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    refs["template"] = resp.json()["collection"]["items"][0]["href"]
    return srv, session, refs


def new_space(env, name, size=1 << 30, **extra):
    srv, session, refs = env
    body = dict(name=name, relativepath=f"projects/{name}", exposers=refs["exposer"], profile=refs["profile"],
                templates=refs["template"], size=size)
    body.update(extra)
    return session.post(srv.url + "/spaces/", json=cj_body(**body), headers=CJ)


def active_space(env, name, **extra):
    resp = new_space(env, name, **extra)
    assert resp.status_code == 202, resp.text
    assert wait_status(env[1], resp.headers["Location"]) == "ACTIVE"
    return resp.json()["collection"]["items"][0]["href"]


def error_of(resp):
    return resp.json()["collection"]["error"]


# Templates -----------------------------------------------------------------------

def test_template_copies_files_modes_and_symlinks(env):
    srv, session, refs = env
    store = srv.folder / "var" / "templates" / refs["template"].rsplit("/", 1)[1]
    readme = store / "nuke" / "README"
    assert readme.read_text() == "comp scripts go here\n"
    assert oct(readme.stat().st_mode & 0o777) == oct(0o640)
    if os.geteuid() == 0:
        assert (readme.stat().st_uid, readme.stat().st_gid) == (1234, 2345)
    # and into a space made from it
    href = active_space(env, "owned")
    in_space = srv.mountpoint / "projects" / "owned" / "nuke" / "README"
    assert oct(in_space.stat().st_mode & 0o777) == oct(0o640)
    assert os.readlink(in_space.parent / "out") == "../published"
    if os.geteuid() == 0:
        assert (in_space.stat().st_uid, in_space.stat().st_gid) == (1234, 2345)
    assert href
    assert os.readlink(store / "nuke" / "out") == "../published"
    assert (store / "assets" / ".pixstor-fileset").read_text().strip() == "sata1"


@pytest.mark.parametrize("location, why", [
    ("/etc", "must lie inside"),
    ("relative/path", "absolute"),
    ("{mount}/no-such-model", "not a directory"),
    ("{mount}/../outside", "must lie inside"),
    ("{mount}", "must not be, or hold, the mountpoint"),
    ("{mount}/.pixstor", "the service's own folder"),
])
def test_template_location_must_be_an_allowed_directory(env, location, why):
    srv, session, refs = env
    resp = session.post(srv.url + "/templates/", json=cj_body(
        name="bad", type="filesystemtemplate", template_location=location.format(mount=srv.mountpoint)),
        headers=CJ)
    assert resp.status_code == 422
    assert why in error_of(resp)["details"]["template_location"]


def test_template_location_must_not_hold_a_space(env):
    srv, session, refs = env
    active_space(env, "held", relativepath="holder/held")
    resp = session.post(srv.url + "/templates/", json=cj_body(
        name="around", type="filesystemtemplate", template_location=str(srv.mountpoint / "holder")), headers=CJ)
    assert resp.status_code == 422
    assert "must not hold space held" in error_of(resp)["details"]["template_location"]


def test_template_type_is_checked_and_duplicates_are_409(env):
    srv, session, refs = env
    resp = session.post(srv.url + "/templates/", json=cj_body(
        name="other", type="weird", template_location=str(srv.mountpoint)), headers=CJ)
    assert resp.status_code == 422 and "filesystemtemplate" in error_of(resp)["details"]["type"]
    resp = session.post(srv.url + "/templates/", json=cj_body(
        name="project", type="filesystemtemplate", template_location=str(srv.mountpoint)), headers=CJ)
    assert resp.status_code == 409 and "name" in error_of(resp)["details"]


# Spaces ---------------------------------------------------------------------------

@pytest.mark.parametrize("relativepath, why", [
    ("projects/../../etc", "'..'"),
    ("/abs/path", "relative"),
    ("", "required"),
    ("x/.snapshots", "reserved"),
])
def test_relativepath_rules(env, relativepath, why):
    resp = new_space(env, "pathy", relativepath=relativepath)
    assert resp.status_code == 422
    assert why in error_of(resp)["details"]["relativepath"]


def test_relativepath_is_normalised_and_must_not_exist(env):
    srv, session, refs = env
    href = active_space(env, "tidy", relativepath="projects//tidy/./")
    assert data_of(session.get(srv.url + href).json())["relativepath"] == "projects/tidy"
    (srv.mountpoint / "already").mkdir()
    resp = new_space(env, "exists", relativepath="already")
    assert resp.status_code == 422 and "already exists" in error_of(resp)["details"]["relativepath"]


def test_spaces_do_not_nest(env):
    active_space(env, "outer", relativepath="nest/outer", templates="")
    inner = new_space(env, "inner", relativepath="nest/outer/inner")
    assert inner.status_code == 409 and "overlaps space outer" in error_of(inner)["message"]
    around = new_space(env, "around", relativepath="nest")
    assert around.status_code == 409 and "overlaps space outer" in error_of(around)["message"]


def test_size_rules_and_numeric_string(env):
    resp = new_space(env, "neg", size=-5)
    assert resp.status_code == 422 and "greater than 0" in error_of(resp)["details"]["size"]
    srv, session, refs = env
    href = active_space(env, "stringy", size="2097152")
    assert data_of(session.get(srv.url + href).json())["size"] == 2097152


def test_duplicate_name_and_profile_is_409(env):
    active_space(env, "twin")
    resp = new_space(env, "twin", relativepath="projects/twin2")
    assert resp.status_code == 409
    assert set(error_of(resp)["details"]) == {"name", "profile"}


def test_same_name_on_another_profile_is_allowed(env):
    srv, session, refs = env
    other = session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sata1"}'}).json()
    href = active_space(env, "pair", relativepath="projects/pair-b",
                        profile=other["collection"]["items"][0]["href"])
    active_space(env, "pair")
    assert data_of(session.get(srv.url + href).json())["fileset"] == "sata1-pair"


def test_references_by_id_list_and_flat_json(env):
    srv, session, refs = env
    body = {"name": "flat", "relativepath": "projects/flat", "exposers": [refs["exposer"].rsplit("/", 1)[1]],
            "profile": refs["profile"].rsplit("/", 1)[1], "templates": [], "size": 1 << 20}
    resp = session.post(srv.url + "/spaces/", json=body)
    assert resp.status_code == 202, resp.text
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    data = data_of(session.get(srv.url + resp.json()["collection"]["items"][0]["href"]).json())
    assert data["exposers"] == [refs["exposer"]] and data["templates"] == []
    assert data["path"] == str(srv.mountpoint / "projects" / "flat")


def test_resize_patch_immutables_and_etag(env):
    srv, session, refs = env
    href = active_space(env, "grow", size=1 << 20)
    resp = session.get(srv.url + href)
    etag = resp.headers["ETag"]
    resp = session.patch(srv.url + href, json={"relativepath": "elsewhere"})
    assert resp.status_code == 422 and "cannot be changed" in error_of(resp)["details"]["relativepath"]
    resp = session.patch(srv.url + href, json={"size": 5 << 20}, headers={"If-Match": '"stale"'})
    assert resp.status_code == 412
    resp = session.patch(srv.url + href, json={"size": 5 << 20}, headers={"If-Match": etag})
    assert resp.status_code == 202, resp.text
    assert "job" in resp.links
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    assert data_of(session.get(srv.url + href).json())["size"] == 5 << 20
    from service.config import load
    from service.storage import get_driver
    from service.storage.base import Filesystem
    driver = get_driver(load(srv.config).storage)
    fs = Filesystem("mmfs1", str(srv.mountpoint), ("sas1", "sata1"))
    assert driver.quota(fs, "sas1-grow") == (5 << 20, 4718592)
    # the same size again needs no job; unchanged fixed fields, however written, are accepted
    resp = session.patch(srv.url + href, json={"size": 5 << 20})
    assert resp.status_code == 200
    resp = session.patch(srv.url + href, json={"profile": refs["profile"].rsplit("/", 1)[1],
                                               "exposers": [refs["exposer"]], "templates": refs["template"],
                                               "name": "grow"})
    assert resp.status_code == 200, resp.text
    resp = session.patch(srv.url + href, json={"templates": ""})
    assert resp.status_code == 422 and "cannot be changed" in error_of(resp)["details"]["templates"]


def test_delete_refuses_data_unless_forced(env):
    srv, session, refs = env
    href = active_space(env, "full")
    data_file = srv.mountpoint / "projects" / "full" / "published" / "keep.exr"
    data_file.write_bytes(b"precious")
    resp = session.delete(srv.url + href)
    assert resp.status_code == 409 and "holds data" in error_of(resp)["message"]
    assert data_file.read_bytes() == b"precious"
    assert data_of(session.get(srv.url + href).json())["status"] == "ACTIVE"
    resp = session.delete(srv.url + href, params={"force": "true"})
    assert resp.status_code == 202
    assert wait_status(session, srv.url + href) is None
    assert not (srv.mountpoint / "projects" / "full").exists()


def test_empty_space_deletes_without_force(env):
    srv, session, refs = env
    href = active_space(env, "empty", templates="")
    assert session.delete(srv.url + href).status_code == 202
    assert wait_status(session, srv.url + href) is None
    assert not (srv.mountpoint / "projects" / "empty").exists()


def test_template_in_use_is_not_deleted(env):
    srv, session, refs = env
    active_space(env, "user")
    resp = session.delete(srv.url + refs["template"])
    assert resp.status_code == 409 and "user" in error_of(resp)["message"]
    assert data_of(session.get(srv.url + refs["template"]).json())["status"] == "ACTIVE"


def test_snapshots_block_delete(env):
    srv, session, refs = env
    href = active_space(env, "snappy", templates="")
    snap = session.post(srv.url + "/snapshots/", json=cj_body(name="s1", type="gpfsspacesnapshot", space=href),
                        headers=CJ)
    assert snap.status_code == 202
    assert wait_status(session, snap.headers["Location"]) == "ACTIVE"
    dup = session.post(srv.url + "/snapshots/", json=cj_body(name="s1", type="gpfsspacesnapshot", space=href),
                       headers=CJ)
    assert dup.status_code == 409
    resp = session.delete(srv.url + href)
    assert resp.status_code == 409 and "s1" in error_of(resp)["message"]
    snap_href = snap.json()["collection"]["items"][0]["href"]
    assert session.delete(srv.url + snap_href).status_code == 202
    assert wait_status(session, srv.url + snap_href) is None
    assert not (srv.mountpoint / "projects" / "snappy" / ".snapshots" / "s1").exists()
    assert session.delete(srv.url + href).status_code == 202
    assert wait_status(session, srv.url + href) is None


def test_forced_delete_removes_snapshots_too(env):
    srv, session, refs = env
    href = active_space(env, "forced")
    snap = session.post(srv.url + "/snapshots/", json=cj_body(name="s", type="gpfsspacesnapshot", space=href),
                        headers=CJ)
    assert wait_status(session, snap.headers["Location"]) == "ACTIVE"
    assert session.delete(srv.url + href, params={"force": "true"}).status_code == 202
    assert wait_status(session, srv.url + href) is None
    assert session.get(srv.url + snap.json()["collection"]["items"][0]["href"]).status_code == 404


def test_snapshot_rules(env):
    srv, session, refs = env
    resp = session.post(srv.url + "/snapshots/", json=cj_body(name="fs1", type="gpfsspacesnapshot"), headers=CJ)
    assert resp.status_code == 422 and "space" in error_of(resp)["details"]
    resp = session.post(srv.url + "/snapshots/", json=cj_body(name="fs1", type="gpfsfilesystemsnapshot",
                                                              exposer=refs["exposer"]), headers=CJ)
    assert resp.status_code == 202, resp.text
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"


def test_failed_job_then_retry_succeeds(env):
    srv, session, refs = env
    blocker = srv.mountpoint / "blocker"
    blocker.write_text("a file where a folder should be")
    resp = new_space(env, "retry", relativepath="blocker/retry")
    assert resp.status_code == 202
    assert wait_status(session, resp.headers["Location"]) == "ERRORED"
    href = resp.json()["collection"]["items"][0]["href"]
    data = data_of(session.get(srv.url + href).json())
    assert data["status_message"]
    jobs = session.get(srv.url + f'/jobs?where={{"resource_id": "{data["id"]}"}}').json()
    job = data_of(jobs)
    assert job["status"] == "ERRORED" and job["started"] and job["finished"]
    stderr = session.get(srv.url + f"/jobs/{job['id']}/stderr").text
    assert "ERROR" in stderr and "blocker" in stderr
    blocker.unlink()
    again = new_space(env, "retry", relativepath="blocker/retry")
    assert again.status_code == 202, again.text
    assert again.json()["collection"]["items"][0]["href"] == href
    assert wait_status(session, again.headers["Location"]) == "ACTIVE"
    assert (srv.mountpoint / "blocker" / "retry" / "maya").is_dir()


def test_standalone_worker_and_status_transitions(tmp_path):
    """API without a worker: the job waits PENDING; `pixstor-mgmt worker` runs it."""
    srv = Server(tmp_path, worker=False).start()
    try:
        session = srv.session()
        model = make_model(srv.mountpoint / "m")
        resp = session.post(srv.url + "/templates/", json=cj_body(
            name="t", type="filesystemtemplate", template_location=str(model)), headers=CJ)
        assert resp.status_code == 202
        assert data_of(resp.json())["status"] == "PENDING"
        job_url = resp.links["job"]["url"]
        assert data_of(session.get(job_url).json())["status"] == "PENDING"
        href = resp.json()["collection"]["items"][0]["href"]
        busy = session.delete(srv.url + href)       # an item whose job waits takes no other
        assert busy.status_code == 409 and "PENDING" in busy.json()["collection"]["error"]["message"]
        with srv.standalone_worker():
            assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
        job = data_of(session.get(job_url).json())
        assert job["status"] == "COMPLETED" and job["finished"] >= job["started"]

        # concurrent deletes of one item: one claim wins, the others are 409 (never 500)
        token = session.auth[0]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: requests.delete(srv.url + href, auth=(token, "")), range(4)))
        assert sorted(r.status_code for r in answers) == [202, 409, 409, 409]
        with srv.standalone_worker():
            assert wait_status(session, resp.headers["Location"]) is None
        jobs = session.get(srv.url + "/jobs/", params={"where": json.dumps({"resource_id": href.rsplit("/", 1)[1]})})
        assert sorted(data_of(jobs.json(), i)["status"] for i in range(2)) == ["COMPLETED", "COMPLETED"]
    finally:
        srv.stop()


def test_failed_job_reruns_from_the_cli(env):
    """`pixstor-mgmt job rerun` runs the same job again once the cause is fixed."""
    srv, session, refs = env
    blocker = srv.mountpoint / "blocker2"
    blocker.write_text("in the way")
    resp = new_space(env, "rerun", relativepath="blocker2/rerun")
    assert wait_status(session, resp.headers["Location"]) == "ERRORED"
    job_id = resp.links["job"]["url"].rsplit("/", 1)[1]
    blocker.unlink()
    result = srv.cli("job", "rerun", job_id)
    assert f"queued job {job_id}" in result.stdout
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    job = data_of(session.get(srv.url + f"/jobs/{job_id}").json())
    assert job["status"] == "COMPLETED"
    assert "ERROR" not in session.get(srv.url + f"/jobs/{job_id}/stderr").text
    done = srv.cli("job", "rerun", job_id, check=False)
    assert done.returncode == 1 and "completed" in done.stderr


def test_concurrent_creates_of_one_item(env):
    """Races resolve to one accepted request; the rest are 409 (never 500), no job fails."""
    srv, session, refs = env
    token = session.auth[0]

    def post(_):
        return requests.post(srv.url + "/snapshots/", auth=(token, ""), headers=CJ, json=cj_body(
            name="raced", type="gpfsfilesystemsnapshot", exposer=refs["exposer"]))

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post, range(6)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [r.text for r in answers if r.status_code not in (202, 409)]
    accepted = next(r for r in answers if r.status_code == 202)
    href = accepted.json()["collection"]["items"][0]["href"]
    assert wait_status(session, srv.url + href) == "ACTIVE"


def test_usage_command_measures_spaces(env):
    srv, session, refs = env
    href = active_space(env, "measured", templates="")
    assert data_of(session.get(srv.url + href).json())["used"] == 0
    (srv.mountpoint / "projects" / "measured" / "plate.dpx").write_bytes(b"x" * 12345)
    result = srv.cli("usage")
    assert "sas1-measured\t12345" in result.stdout
    assert data_of(session.get(srv.url + href).json())["used"] == 12345


def test_queue_down_is_503_and_leaves_nothing_waiting(tmp_path):
    """With the queue unreachable, a create answers 503 and its item and job say why."""
    srv = Server(tmp_path, queue="redis://127.0.0.1:9/0", worker=False).start()
    try:
        session = srv.session()
        model = make_model(srv.mountpoint / "m")
        resp = session.post(srv.url + "/templates/", json=cj_body(
            name="t", type="filesystemtemplate", template_location=str(model)), headers=CJ)
        assert resp.status_code == 503 and resp.headers["Retry-After"]
        assert "could not queue" in resp.json()["collection"]["error"]["message"]
        items = session.get(srv.url + "/templates/").json()
        assert data_of(items)["status"] == "ERRORED" and "could not queue" in data_of(items)["status_message"]
        job = data_of(session.get(srv.url + "/jobs/").json())
        assert job["status"] == "ERRORED"
    finally:
        srv.stop()


def test_a_job_lost_with_its_worker_is_run_by_the_next_worker(tmp_path):
    """A worker that died mid-job leaves the job INPROGRESS with an old heartbeat and
    nothing in the queue; the next worker to start finds it and finishes it."""
    import sqlite3
    srv = Server(tmp_path, worker=False).start()
    try:
        session = srv.session()
        model = make_model(srv.mountpoint / "m")
        resp = session.post(srv.url + "/templates/", json=cj_body(
            name="t", type="filesystemtemplate", template_location=str(model)), headers=CJ)
        job_id = resp.links["job"]["url"].rsplit("/", 1)[1]
        # what a dead worker leaves: the queue message taken, the job INPROGRESS, silence
        with sqlite3.connect(srv.folder / "var" / "queue.db") as queue:
            assert queue.execute("DELETE FROM task").rowcount == 1
        with sqlite3.connect(srv.folder / "var" / "pixstor.db") as database:
            database.execute("UPDATE job SET status='INPROGRESS', started='2000-01-01 00:00:00', "
                             "heartbeat='2000-01-01 00:00:00' WHERE id=?", (job_id,))
            database.execute("UPDATE template SET status='INPROGRESS'")
        with srv.standalone_worker():
            assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
        job = data_of(session.get(srv.url + f"/jobs/{job_id}").json())
        assert job["status"] == "COMPLETED" and job["started"] > "2000-01-01T00:00:00Z"
    finally:
        srv.stop()


def test_template_location_must_not_overlap_the_template_store(tmp_path):
    """With the store inside the filesystem (as on a cluster), a model around or inside it is refused."""
    srv = Server(tmp_path, mountpoint=".").start()
    try:
        session = srv.session()
        for location in (srv.mountpoint, srv.mountpoint / "var" / "templates"):
            resp = session.post(srv.url + "/templates/", json=cj_body(
                name="loop", type="filesystemtemplate", template_location=str(location)), headers=CJ)
            assert resp.status_code == 422
            assert "template store" in error_of(resp)["details"]["template_location"]
    finally:
        srv.stop()
