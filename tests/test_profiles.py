"""Profiles an admin creates, and their ILM steps (issue 12, items 1 and 2): the API's rules,
the policy text the gpfs driver installs for them (-I test, then -I yes) and the mmapplypolicy
of `ilm run`, and the posix dry-run report over files of known ages and sizes."""
import os
import time
from types import SimpleNamespace

import pytest

from service import db
from service.models import Datastore, IlmStep, Profile, Space, database
from service.storage.gpfs import GpfsDriver
from service.tasks.profiles import profile_rules
from tests.harness import CJ, Server, cj_body, data_of, wait_status
from tests.storage.helpers import make_settings
from tests.storage.test_gpfs_driver import FAKE, SAMPLES, FakeCommands, mm

DAY = 86400


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("profiles")).start()
    try:
        session = server.session()
        session.headers.update(CJ)
        yield server, session
    finally:
        server.stop()


def href_of(server, session, collection, where):
    items = session.get(f"{server.url}/{collection}/", params={"where": where}).json()["collection"]["items"]
    return items[0]["href"]


def create(server, session, collection, **fields):
    resp = session.post(f"{server.url}/{collection}/", json=cj_body(**fields))
    assert resp.status_code == 202, resp.text
    href = resp.json()["collection"]["items"][0]["href"]
    assert wait_status(session, server.url + href) == "ACTIVE"
    return href


def error(resp):
    return resp.json()["collection"]["error"]


def job_of(session, resp):
    url = resp.links["job"]["url"]
    wait_status(session, resp.headers.get("Location", "").split("?")[0] or url, ("ACTIVE", "ERRORED"))
    return data_of(session.get(url).json())


@pytest.fixture(scope="module")
def render(site):
    """Profile render (sas1) with one migrate and one delete step."""
    server, session = site
    sas1 = href_of(server, session, "datastores", '{"name": "sas1"}')
    sata1 = href_of(server, session, "datastores", '{"name": "sata1"}')
    profile = create(server, session, "profiles", name="render", datastore=sas1, comment="render farm output")
    create(server, session, "ilmsteps", name="cold", profile=profile, order=1, action="migrate", target=sata1,
           access_days=30, name_patterns=["*.exr", "*.dpx"], threshold_high=90, threshold_low=70)
    create(server, session, "ilmsteps", name="scratch", profile=profile, order=2, action="delete",
           modification_days=7, name_patterns="*.tmp")
    return SimpleNamespace(profile=profile, sas1=sas1, sata1=sata1)


@pytest.mark.parametrize("fields, field, why", [
    (dict(action="migrate", access_days=3), "target", "required for a migrate step"),
    (dict(action="migrate", target="sas1", access_days=3), "target", "another pool than the profile's own"),
    (dict(action="delete"), "action", "a delete step needs at least one condition"),
    (dict(action="delete", target="sata1", access_days=1), "target", "only a migrate step has one"),
    (dict(action="migrate", target="sata1", threshold_high=80), "threshold_low", "together"),
    (dict(action="migrate", target="sata1", threshold_high=50, threshold_low=60), "threshold_low", "not be above"),
    (dict(action="delete", min_size=10, max_size=5), "max_size", "must not be below min_size"),
    (dict(action="delete", name_patterns=["a/b"]), "name_patterns", "no /"),
    (dict(action="delete", access_days=-1), "access_days", "must not be negative"),
    (dict(action="move", access_days=1), "action", "must be one of migrate, delete"),
    (dict(action="migrate", target="sata1", threshold_high=101, threshold_low=1), "threshold_high", "percentage"),
])
def test_bad_ilm_steps_are_refused(site, render, fields, field, why):
    server, session = site
    stores = {"sas1": render.sas1, "sata1": render.sata1}
    if "target" in fields:
        fields["target"] = stores[fields["target"]]
    before = session.get(server.url + "/ilmsteps/").headers["X-Total-Count"]
    resp = session.post(server.url + "/ilmsteps/", json=cj_body(name="bad", profile=render.profile, order=9,
                                                                 **fields))
    assert resp.status_code == 422 and why in error(resp)["details"][field], resp.text
    assert session.get(server.url + "/ilmsteps/").headers["X-Total-Count"] == before


def test_a_step_takes_a_free_position(site, render):
    server, session = site
    resp = session.post(server.url + "/ilmsteps/", json=cj_body(name="again", profile=render.profile, order=1,
                                                                 action="delete", access_days=400))
    assert resp.status_code == 409 and "profile and order" in error(resp)["message"], resp.text


def test_only_admins_write_profiles(site, render):
    server, _ = site
    operator = server.session("operator1", "operator-pass")
    resp = operator.post(server.url + "/profiles/", json=cj_body(name="mine", datastore=render.sas1), headers=CJ)
    assert resp.status_code == 405 and resp.headers["Allow"] == "HEAD, GET, OPTIONS"


def test_a_new_placement_applies_to_new_files_and_says_so(site, render):
    server, session = site
    profile = create(server, session, "profiles", name="moving", datastore=render.sas1)
    resp = session.patch(server.url + profile, json=cj_body(datastore=render.sata1))
    job = job_of(session, resp)
    assert job["status"] == "COMPLETED"
    assert job["message"] == ("placement of profile moving changed from pool sas1 to sata1: new files of its spaces "
                              "go to sata1; files already written stay in sas1 (an ILM migrate step moves them)")
    assert data_of(session.get(server.url + profile).json())["datastore"] == render.sata1


def test_a_profile_in_use_is_kept_and_its_steps_go_with_it(site, render):
    server, session = site
    profile = create(server, session, "profiles", name="short-lived", datastore=render.sas1)
    step = create(server, session, "ilmsteps", name="old", profile=profile, order=1, action="delete", access_days=99)
    exposer = href_of(server, session, "exposers", '{"type": "gpfsnative"}')
    space = create(server, session, "spaces", name="user-of-profile", relativepath="projects/user-of-profile",
                   size=1 << 30, profile=profile, exposers=[exposer])
    resp = session.delete(server.url + profile)
    assert resp.status_code == 409, resp.text
    assert error(resp)["message"].startswith("profile short-lived is used by spaces user-of-profile (/spaces/")
    assert session.delete(server.url + space).status_code == 202
    assert wait_status(session, server.url + space) is None
    assert session.delete(server.url + profile).status_code == 202
    assert wait_status(session, server.url + profile) is None
    assert session.get(server.url + step).status_code == 404


def test_populate_keeps_an_admins_placement_of_a_default_profile(site, render):
    server, session = site
    default = href_of(server, session, "profiles", '{"name": "mmfs1-sas1"}')
    job_of(session, session.patch(server.url + default, json=cj_body(datastore=render.sata1)))
    server.cli("populate")
    assert data_of(session.get(server.url + default).json())["datastore"] == render.sata1
    job_of(session, session.patch(server.url + default, json=cj_body(datastore=render.sas1)))


def test_ilm_dry_run_on_posix_reports_what_each_step_matches(site, render):
    server, session = site
    exposer = href_of(server, session, "exposers", '{"type": "gpfsnative"}')
    space = create(server, session, "spaces", name="shots", relativepath="projects/shots", size=1 << 30,
                   profile=render.profile, exposers=[exposer])
    root = server.mountpoint / "projects" / "shots"
    now = time.time()
    files = {  # name: (size, days since access, days since change)
        "a.exr": (1000, 40, 40), "b.exr": (2000, 31, 31), "c.exr": (3000, 5, 40),     # c: read lately
        "d.dpx": (500, 60, 60), "e.tif": (700, 90, 90),                                 # e: no pattern
        "f.tmp": (50, 1, 10), "g.tmp": (60, 1, 2), "deep/h.tmp": (70, 1, 8),            # g: changed lately
    }
    for name, (size, accessed, changed) in files.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - accessed * DAY, now - changed * DAY))
    (root / ".snapshots" / "old").mkdir(parents=True, exist_ok=True)
    (root / ".snapshots" / "old" / "z.tmp").write_bytes(b"x" * 5)
    os.utime(root / ".snapshots" / "old" / "z.tmp", (now - 50 * DAY, now - 50 * DAY))
    report = server.cli("ilm", "run", "--dry-run").stdout.splitlines()
    assert report == [
        "mmfs1: profile render step cold (migrate to sata1): 3 files, 3500 bytes in 1 spaces",
        "mmfs1: profile render step scratch (delete): 2 files, 120 bytes in 1 spaces",
    ]
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(
        [n.split("/")[-1] for n in files] + ["z.tmp"])       # nothing moved or deleted
    refused = server.cli("ilm", "run", check=False)
    assert (refused.returncode, refused.stderr) == (1, (
        "pixstor-mgmt: the posix driver has no pools to migrate between: nothing can move; `ilm run --dry-run` "
        "reports what the steps would match\n"))
    assert session.delete(server.url + space, params={"force": "true"}).status_code == 202
    assert wait_status(session, server.url + space) is None


# -- gpfs: the policy text --------------------------------------------------------------------

@pytest.fixture
def gpfs_records(tmp_path):
    """Two profiles with ILM steps and spaces, recorded in a database of their own."""
    db.open_database(f"sqlite:///{tmp_path}/profiles.db")
    db.create_tables()
    with database.connection_context():
        sas1 = Datastore.create(name="sas1", pool="sas1", filesystem="mmfs1")
        sata1 = Datastore.create(name="sata1", pool="sata1", filesystem="mmfs1")
        render = Profile.create(name="render", datastore=sas1)
        archive = Profile.create(name="archive", datastore=sata1)
        Profile.create(name="plain", datastore=sas1)        # no steps, placement unchanged: no rules
        IlmStep.create(name="cold", profile=render, order=1, action="migrate", target=sata1, access_days=30,
                       name_patterns=["*.exr", "shot_?.dpx"], threshold_high=90, threshold_low=70)
        IlmStep.create(name="scratch", profile=render, order=2, action="delete", modification_days=7,
                       max_size=1 << 20, name_patterns=["*.tmp"])
        IlmStep.create(name="expire", profile=archive, order=1, action="delete", access_days=3650)
        for name, profile, fileset in (("snake", render, "sas1-snake"), ("owl", render, "sas1-owl"),
                                       ("vault", archive, "sata1-vault"), ("moved", archive, "sas1-moved")):
            Space.create(name=name, relativepath=f"projects/{name}", profile=profile, size=1 << 30,
                         fileset=fileset, path=f"/mmfs1/projects/{name}")
        yield profile_rules("mmfs1")
    database.close()


EXPECTED_POLICY = """RULE 'pixstor-archive-placement' SET POOL 'sata1'
 FOR FILESET ('sas1-moved', 'sata1-vault')

RULE 'pixstor-render-placement' SET POOL 'sas1'
 FOR FILESET ('sas1-owl', 'sas1-snake')

RULE 'sas1-placement' SET POOL 'sas1'
 WHERE FILESET_NAME LIKE 'sas1-%'

RULE 'sata1-placement' SET POOL 'sata1'
 WHERE FILESET_NAME LIKE 'sata1-%'

RULE 'pixstor-archive-expire' DELETE
 FOR FILESET ('sas1-moved', 'sata1-vault')
 WHERE (DAYS(CURRENT_TIMESTAMP) - DAYS(ACCESS_TIME)) >= 3650

RULE 'pixstor-render-cold' MIGRATE FROM POOL 'sas1' THRESHOLD(90,70) TO POOL 'sata1'
 FOR FILESET ('sas1-owl', 'sas1-snake')
 WHERE (DAYS(CURRENT_TIMESTAMP) - DAYS(ACCESS_TIME)) >= 30 AND (NAME LIKE '%.exr' ESCAPE '\\' OR NAME LIKE 'shot\\__.dpx' ESCAPE '\\')

RULE 'pixstor-render-scratch' DELETE
 FOR FILESET ('sas1-owl', 'sas1-snake')
 WHERE (DAYS(CURRENT_TIMESTAMP) - DAYS(MODIFICATION_TIME)) >= 7 AND FILE_SIZE <= 1048576 AND (NAME LIKE '%.tmp' ESCAPE '\\')

RULE 'default' SET POOL 'sas1'
"""


def test_gpfs_installs_the_profiles_rules_checked_first(tmp_path, monkeypatch, gpfs_records):
    fake = FakeCommands(tmp_path, "/mmfs1", monkeypatch)
    fake.reply("mmlspolicy", (SAMPLES / "mmlspolicy-none.txt").read_text())
    driver = GpfsDriver(make_settings("gpfs", "/mmfs1", command_prefix=str(FAKE)))
    fs = driver.filesystems[0]
    assert driver.install_profiles(fs, gpfs_records) is True
    (listing, checked, installed) = fake.calls()
    assert listing == mm("mmlspolicy", "mmfs1", "-L")
    assert checked[:2] == installed[:2] == [str(FAKE / "mmchpolicy"), "mmfs1"]
    assert (checked[3:], installed[3:]) == (["-I", "test"], ["-I", "yes"])
    assert (fake.replies / "mmchpolicy.policy").read_text() == EXPECTED_POLICY
    # installed already: nothing to do
    fake.reply("mmlspolicy", EXPECTED_POLICY)
    assert driver.install_profiles(fs, gpfs_records) is False
    assert fake.calls()[3:] == [mm("mmlspolicy", "mmfs1", "-L")]


def test_gpfs_ilm_run_applies_only_the_steps(tmp_path, monkeypatch, gpfs_records):
    fake = FakeCommands(tmp_path, "/mmfs1", monkeypatch)
    fake.reply("mmapplypolicy", "[I] Summary of Rule Applicability and File Choices: ...\n")
    driver = GpfsDriver(make_settings("gpfs", "/mmfs1", command_prefix=str(FAKE)))
    fs = driver.filesystems[0]
    for dry_run, mode in ((True, "test"), (False, "yes")):
        assert driver.run_ilm(fs, gpfs_records, dry_run) == "[I] Summary of Rule Applicability and File Choices: ...\n"
        (call,) = fake.calls()[-1:]
        assert call[:3] + call[4:] == [str(FAKE / "mmapplypolicy"), "mmfs1", "-P", "-I", mode]
        steps = EXPECTED_POLICY.split("\n\n")[4:7]
        assert (fake.replies / "mmapplypolicy.policy").read_text() == "\n\n".join(steps) + "\n"


def test_a_step_cannot_be_moved_onto_a_taken_position(site, render):
    server, session = site
    cold = href_of(server, session, "ilmsteps", '{"name": "cold"}')
    resp = session.patch(server.url + cold, json=cj_body(order=2))
    assert resp.status_code == 409 and error(resp)["details"] == {"order": "already in use"}, resp.text
    assert data_of(session.get(server.url + cold).json())["status"] == "ACTIVE"


def test_a_placement_cannot_land_on_a_steps_own_target(site, render):
    server, session = site
    resp = session.patch(server.url + render.profile, json=cj_body(datastore=render.sata1))
    assert resp.status_code == 422, resp.text
    assert error(resp)["details"] == {"datastore": "is where its migrate step cold sends files: change or delete "
                                                   "that step first"}
