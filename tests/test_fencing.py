"""One fenced run per item, with real worker processes: a worker with a skewed clock, a
worker paused past the liveness limit and resumed, and a space's jobs against its snapshots'."""
from tests.harness import CJ, Server, cj_body, data_of, wait_status


def refs_of(srv, session):
    return {
        "profile": session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
        ["collection"]["items"][0]["href"],
        "exposer": session.get(srv.url + "/exposers/", params={"where": '{"type": "gpfsnative"}'}).json()
        ["collection"]["items"][0]["href"],
    }


def post(session, srv, collection, **values):
    return session.post(srv.url + f"/{collection}/", json=cj_body(**values), headers=CJ)


def job_of(answer):
    return answer.links["job"]["url"].rsplit("/", 1)[1]


def error_of(answer):
    return answer.json()["collection"]["error"]


def test_a_space_and_its_snapshots_have_one_job_at_a_time(tmp_path):
    """Without a worker the jobs stay queued: a space's DELETE and PATCH wait for its snapshot's
    job (409 naming it), a snapshot waits for its space's job."""
    srv = Server(tmp_path, worker=False).start()
    try:
        session = srv.session()
        refs = refs_of(srv, session)
        space = post(session, srv, "spaces", name="s", relativepath="p/s", exposers=refs["exposer"],
                     profile=refs["profile"], size=1 << 20)
        href = space.json()["collection"]["items"][0]["href"]
        with srv.standalone_worker():
            assert wait_status(session, srv.url + href) == "ACTIVE"
        snap = post(session, srv, "snapshots", name="n", type="gpfsspacesnapshot", space=href)
        assert snap.status_code == 202, snap.text
        for answer in (session.delete(srv.url + href, params={"force": "true"}),
                       session.patch(srv.url + href, json={"size": 1 << 21})):
            assert answer.status_code == 409
            assert f"/jobs/{job_of(snap)}" in error_of(answer)["message"]
        assert data_of(session.get(srv.url + href).json())["status"] == "ACTIVE"
        with srv.standalone_worker():
            assert wait_status(session, snap.headers["Location"]) == "ACTIVE"
        resize = session.patch(srv.url + href, json={"size": 1 << 21})
        assert resize.status_code == 202
        other = post(session, srv, "snapshots", name="m", type="gpfsspacesnapshot", space=href)
        assert other.status_code == 409
        assert f"/spaces/{href.rsplit('/', 1)[1]} is PENDING: wait for its job /jobs/{job_of(resize)}" in \
            error_of(other)["message"]
        with srv.standalone_worker():
            assert wait_status(session, srv.url + href) == "ACTIVE"
        assert session.delete(srv.url + href, params={"force": "true"}).status_code == 202
    finally:
        srv.stop()
