"""Jobs say who asked: `owner` (the user whose request made the job) and `queued_by` (who last
handed it to the queue: the owner, the sweeper, or the CLI), read-only and queryable; and a
database made before them gains the columns and the job list's indexes at start-up."""
import getpass

import pytest

from service import db
from service.models import database
from tests.harness import CJ, cj_body, data_of, make_model, postgres_database, require, wait_status
from tests.test_runner import OLD_JOB_TABLE


def _jobs(session, url, where):
    answer = session.get(url + "/jobs/", params={"where": where})
    assert answer.status_code == 200, answer.text
    return [data_of(answer.json(), i) for i in range(len(answer.json()["collection"]["items"]))]


def test_jobs_record_who_asked_and_who_queued_them(server):
    admin, operator = server.session(), server.session("operator1", "operator-pass")
    model = make_model(server.mountpoint / "m")
    template = operator.post(server.url + "/templates/", headers=CJ, json=cj_body(
        name="t", type="filesystemtemplate", template_location=str(model)))
    assert wait_status(operator, template.headers["Location"]) == "ACTIVE"
    refs = {field: admin.get(server.url + f"/{collection}/", params={"where": where}).json()
            ["collection"]["items"][0]["href"]
            for field, collection, where in (("profile", "profiles", '{"name": "mmfs1-sas1"}'),
                                             ("exposers", "exposers", '{"type": "gpfsnative"}'))}
    (server.mountpoint / "blocker").write_text("a file where a folder should be")
    space = admin.post(server.url + "/spaces/", headers=CJ, json=cj_body(
        name="s", relativepath="blocker/s", size=1 << 30, **refs))
    assert space.status_code == 202, space.text
    assert wait_status(admin, space.headers["Location"]) == "ERRORED"
    space_job = space.links["job"]["url"].rsplit("/", 1)[1]

    by_operator = _jobs(admin, server.url, '{"owner": "operator1"}')
    assert [(j["action"], j["resource_type"], j["owner"], j["queued_by"]) for j in by_operator] == [
        ("create", "templates", "operator1", "operator1")]
    assert [j["id"] for j in _jobs(operator, server.url, 'owner=="admin"')] == [space_job]
    assert _jobs(admin, server.url, '{"owner": {"$in": ["nobody"]}}') == []
    # read-only: not in any template, refused in a write (jobs take no writes at all)
    template_fields = admin.get(server.url + "/spaces/").json()["collection"]["template"]["data"]
    assert "owner" not in [d["name"] for d in template_fields]
    assert admin.post(server.url + "/jobs/", json={"owner": "mallory"}).status_code == 405

    # the CLI queues it again once the cause is gone: it says so; the owner stays who asked
    (server.mountpoint / "blocker").unlink()
    server.cli("job", "rerun", space_job)
    assert wait_status(admin, space.headers["Location"]) == "ACTIVE"
    job = data_of(admin.get(server.url + f"/jobs/{space_job}").json())
    assert (job["status"], job["owner"], job["queued_by"]) == ("COMPLETED", "admin", f"cli:{getpass.getuser()}")
    assert job["queued"] >= job["created"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_older_database_gains_the_columns_and_indexes(tmp_path, backend):
    drop = None
    if backend == "sqlite":
        url, timestamp = f"sqlite:///{tmp_path}/old.db", "DATETIME"
    else:
        (url, drop), timestamp = postgres_database(), "TIMESTAMP"
        require(url, drop)
    db.open_database(url)
    try:
        database.execute_sql(OLD_JOB_TABLE.format(ts=timestamp))
        db.create_tables()
        db.create_tables()      # again: nothing more to do
        with database.connection_context():
            columns = {c.name for c in database.get_columns("job")}
            assert {"owner", "queued", "queued_by", "attempt"} <= columns
            indexes = {i.name: i.columns for i in database.get_indexes("job")}
            assert indexes["job_created_id"] == ["created", "id"]
            assert indexes["job_resource_id_created_id"] == ["resource_id", "created", "id"]
            assert indexes["job_owner"] == ["owner"]
    finally:
        database.close()
        if drop:
            drop()
