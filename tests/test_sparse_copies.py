"""A sparse file in a template model stays sparse in the template store, in every space made
from it and in the space's snapshots: copies keep holes (SEEK_DATA/SEEK_HOLE, reflink first)."""
import os

from tests.harness import CJ, cj_body, wait_status

SIZE = 2 << 30   # 2 GiB apparent, a few KiB of data


def allocated(path):
    return os.stat(path).st_blocks * 512


def test_a_sparse_model_file_stays_sparse_everywhere(server):
    session = server.session()
    model = server.mountpoint / "models" / "sparse"
    model.mkdir(parents=True)
    with open(model / "plate.exr", "wb") as f:
        f.truncate(SIZE)
        f.seek(SIZE // 2)
        f.write(b"frame data")
    assert allocated(model / "plate.exr") < 1 << 20
    resp = session.post(server.url + "/templates/", headers=CJ, json=cj_body(
        name="sparse", type="filesystemtemplate", template_location=str(model)))
    assert wait_status(session, resp.headers["Location"], timeout=60) == "ACTIVE"
    template = resp.json()["collection"]["items"][0]["href"]
    profile = session.get(server.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
    exposer = session.get(server.url + "/exposers/").json()
    resp = session.post(server.url + "/spaces/", headers=CJ, json=cj_body(
        name="sparse", relativepath="projects/sparse", templates=template, size=4 << 30,
        profile=profile["collection"]["items"][0]["href"], exposers=exposer["collection"]["items"][0]["href"]))
    assert wait_status(session, resp.headers["Location"], timeout=60) == "ACTIVE"
    space = resp.json()["collection"]["items"][0]["href"]
    resp = session.post(server.url + "/snapshots/", headers=CJ, json=cj_body(
        name="before", type="gpfsspacesnapshot", space=space))
    assert wait_status(session, resp.headers["Location"], timeout=60) == "ACTIVE"
    copies = [server.folder / "var" / "templates" / template.rsplit("/", 1)[1] / "plate.exr",
              server.mountpoint / "projects" / "sparse" / "plate.exr",
              server.mountpoint / "projects" / "sparse" / ".snapshots" / "before" / "plate.exr"]
    for copy in copies:
        assert os.path.getsize(copy) == SIZE, copy
        assert allocated(copy) < 1 << 20, (copy, allocated(copy))
        with open(copy, "rb") as f:
            f.seek(SIZE // 2)
            assert f.read(10) == b"frame data"
