"""The exposer resource's own rules (issue 11): what may be created, changed and deleted, who
may, which changes need a job, what spaces and shares say about each other, populate, and a
share whose folder is swapped for a link while its job waits. Real server and worker, real
exportfs (in a mount namespace) and a real smbd behind the kernel and samba backends."""
import os
from pathlib import Path

import pytest
import requests

from tests.fileservers import Samba, exportfs_namespace
from tests.harness import CJ, Server, cj_body, data_of, wait_status
from tests.test_shares import Site, files_under, shares_env

CLIENTS = [{"host": "10.1.0.0/16", "options": ["rw", "sync", "root_squash"]}]


@pytest.fixture(scope="module")
def kernel_samba(tmp_path_factory):
    """(site, exports dir, Samba): nfs exposers through exportfs, cifs ones to a real smbd."""
    folder = tmp_path_factory.mktemp("exposers")
    script, exports_dir = exportfs_namespace(folder)
    with Samba(folder) as samba:
        env = dict(nfs="kernel", exports_dir=exports_dir, exportfs_command=[str(script)], smb="samba",
                   samba_dir=samba.samba_dir, samba_include=samba.samba_include,
                   samba_reload_command=samba.reload_command)
        server = Server(folder, env=shares_env(**env)).start()
        server.shares_env = env
        try:
            yield Site(server), exports_dir, samba
        finally:
            server.stop()


def folder(site, name):
    path = site.server.mountpoint / "shared" / name
    path.mkdir(parents=True)
    return str(path)


def error_of(resp):
    return resp.json()["collection"]["error"]


def jobs_of(site, href):
    item_id = href.rstrip("/").rsplit("/", 1)[1]
    resp = site.session.get(site.url + "/jobs/", params={"where": f'{{"resource_id": "{item_id}"}}'})
    return int(resp.headers["X-Total-Count"])


def test_filesystems_are_not_created_nor_deleted_through_the_api(kernel_samba):
    site, _, _ = kernel_samba
    resp = site.post(name="mmfs2", type="gpfsnative", path=str(site.server.mountpoint))
    assert resp.status_code == 422 and "populate" in error_of(resp)["details"]["type"], resp.text
    native = site.url + site.space_refs["exposers"]
    resp = site.session.delete(native)
    assert resp.status_code == 409 and "populate" in error_of(resp)["message"], resp.text
    resp = site.session.patch(native, json=cj_body(path="/elsewhere"), headers=CJ)
    assert resp.status_code == 422 and "path" in error_of(resp)["details"], resp.text
    resp = site.session.patch(native, json=cj_body(comment="the scratch filesystem"), headers=CJ)
    assert resp.status_code == 200 and data_of(resp.json())["comment"] == "the scratch filesystem"


def test_share_names_are_unique_without_case_and_a_folder_is_exported_once(kernel_samba):
    site, _, _ = kernel_samba
    path = folder(site, "dupes")
    first, _ = site.exposer(name="Media", type="cifs", path=path)
    resp = site.post(name="MEDIA", type="cifs", path=path)
    assert resp.status_code == 409 and first.rsplit("/", 1)[1] in error_of(resp)["message"], resp.text
    site.exposer(name="media-nfs", type="nfs", path=path, clients=CLIENTS)
    resp = site.post(name="media-nfs2", type="nfs", path=path, clients=CLIENTS)
    assert resp.status_code == 409 and "already exported by nfs exposer media-nfs" in error_of(resp)["message"]


def test_export_ids_are_distinct_and_kept(kernel_samba):
    site, exports_dir, _ = kernel_samba
    one, first = site.exposer(name="ids-one", type="nfs", path=folder(site, "ids-one"), clients=CLIENTS)
    _, second = site.exposer(name="ids-two", type="nfs", path=folder(site, "ids-two"), clients=CLIENTS)
    assert 100 <= first["export_id"] <= 65535 and first["export_id"] != second["export_id"]
    site.patch(one, clients=[{"host": "*", "options": ["ro"]}])
    assert data_of(site.session.get(one).json())["export_id"] == first["export_id"]
    text = (Path(exports_dir) / f"pixmanaged.{first['id']}.exports").read_text()
    assert text.splitlines()[1] == f'"{first["path"]}" *(ro)'


def test_a_comment_needs_no_job_and_access_does(kernel_samba):
    site, _, samba = kernel_samba
    href, item = site.exposer(name="notes", type="cifs", path=folder(site, "notes"), valid_users=["pixtalice"])
    jobs = jobs_of(site, href)
    resp = site.session.patch(href, json=cj_body(comment="renders of episode 4"), headers=CJ)
    assert resp.status_code == 200 and data_of(resp.json())["comment"] == "renders of episode 4"
    assert jobs_of(site, href) == jobs
    site.patch(href, valid_users="pixtbob, @render", read_only="yes")
    after = data_of(site.session.get(href).json())
    assert (after["valid_users"], after["read_only"], jobs_of(site, href)) == (["pixtbob", "@render"], True, jobs + 1)
    share = Path(samba.samba_dir, f"pixmanaged.{item['id']}.conf").read_text()
    assert "    valid users = pixtbob @render\n" in share and "    read only = yes\n" in share
    assert share in Path(samba.samba_include).read_text()


def test_fields_of_the_other_type_and_emptied_clients_are_refused(kernel_samba):
    site, _, _ = kernel_samba
    href, _ = site.exposer(name="typed", type="nfs", path=folder(site, "typed"), clients=CLIENTS)
    for change, field in ((dict(valid_users=["pixtalice"]), "valid_users"), (dict(clients=None), "clients")):
        resp = site.session.patch(href, json=cj_body(**change), headers=CJ)
        assert resp.status_code == 422 and field in error_of(resp)["details"], resp.text


def test_who_may_share(kernel_samba):
    site, _, _ = kernel_samba
    server = site.server
    operator = server.session("operator1", "operator-pass")
    resp = operator.post(site.url + "/exposers/", json=cj_body(name="by-operator", type="cifs",
                                                               path=folder(site, "by-operator")), headers=CJ)
    assert resp.status_code == 202, resp.text
    assert wait_status(operator, site.href(resp)) == "ACTIVE"
    reader = server.session("reader", "reader-pass")
    resp = reader.post(site.url + "/exposers/", json=cj_body(name="by-reader", type="cifs",
                                                             path=folder(site, "by-reader")), headers=CJ)
    assert resp.status_code == 405, resp.text


def test_spaces_and_their_shares_keep_each_other(kernel_samba):
    site, exports_dir, samba = kernel_samba
    path = site.space("shared-space", "data")
    smb, smb_item = site.exposer(name="spaceshare", type="cifs", path=str(path))
    nfs, nfs_item = site.exposer(name="spaceexport", type="nfs", path=str(path.parent), clients=CLIENTS)
    # a share of the space's folder is used by the space: refused, then forced
    resp = site.session.delete(smb)
    assert resp.status_code == 409 and "shared-space" in error_of(resp)["message"], resp.text
    # a space may name a share of a folder above it among its exposers
    resp = site.session.post(site.url + "/spaces/", json=cj_body(
        name="listed", relativepath="projects/listed", size=1 << 30, profile=site.space_refs["profile"],
        exposers=[site.space_refs["exposers"], nfs]), headers=CJ)
    assert resp.status_code == 202, resp.text
    listed = site.href(resp)
    assert wait_status(site.session, listed) == "ACTIVE"
    resp = site.session.delete(nfs)
    assert resp.status_code == 409 and "listed" in error_of(resp)["message"], resp.text
    # a space whose folder is shared is not deleted without force; forced, its shares go first
    space = site.url + "/spaces/" + site.session.get(site.url + "/spaces/", params={
        "where": '{"name": "shared-space"}'}).json()["collection"]["items"][0]["href"].rsplit("/", 1)[1]
    resp = site.session.delete(space)
    assert resp.status_code == 409 and "spaceshare" in error_of(resp)["message"], resp.text
    site.job(site.session.delete(space, params={"force": "true"}), "COMPLETED")
    assert site.session.get(smb).status_code == 404
    assert not Path(samba.samba_dir, f"pixmanaged.{smb_item['id']}.conf").exists()
    assert "[spaceshare]" not in Path(samba.samba_include).read_text()
    assert Path(exports_dir, f"pixmanaged.{nfs_item['id']}.exports").exists()


def test_populate_records_the_services_shares_and_no_others(kernel_samba, tmp_path):
    site, exports_dir, samba = kernel_samba
    _, nfs_item = site.exposer(name="kept-nfs", type="nfs", path=folder(site, "kept-nfs"), clients=CLIENTS)
    _, smb_item = site.exposer(name="kept-smb", type="cifs", path=folder(site, "kept-smb"), write_list=["@ops"])
    hand_made = {Path(exports_dir, "site.exports"): '"/srv/other" *(ro)\n',
                 Path(samba.samba_dir, "site.conf"): "[other]\n    path = /srv/other\n"}
    for path, text in hand_made.items():
        path.write_text(text)
    before = files_under(exports_dir, samba.samba_dir)
    # a new database on the same share folders
    fresh = Server(tmp_path, mountpoint=str(site.server.mountpoint),
                   env=shares_env(**site.server.shares_env)).start()
    try:
        session = fresh.session()
        for item in (nfs_item, smb_item):
            found = data_of(session.get(f"{fresh.url}/exposers/{item['id']}").json())
            assert {k: found[k] for k in item if k not in ("created", "updated")} == {
                k: v for k, v in item.items() if k not in ("created", "updated")}
        resp = session.get(fresh.url + "/exposers/", params={"where": '{"type": {"$ne": "gpfsnative"}}'})
        assert int(resp.headers["X-Total-Count"]) == len(site.session.get(site.url + "/exposers/", params={
            "where": '{"type": {"$ne": "gpfsnative"}}'}).json()["collection"]["items"])
        assert fresh.cli("populate").stdout == ""      # again: nothing new
    finally:
        fresh.stop()
    assert files_under(exports_dir, samba.samba_dir) == before
    for path in hand_made:
        path.unlink()


def test_a_folder_swapped_for_a_link_while_the_job_waits_is_not_shared(tmp_path):
    script, exports_dir = exportfs_namespace(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    server = Server(tmp_path, worker=False, env=shares_env(nfs="kernel", exports_dir=exports_dir,
                                                           exportfs_command=[str(script)], smb="none")).start()
    try:
        site = Site(server)
        path = server.mountpoint / "proj"
        path.mkdir()
        resp = site.post(name="swapped", type="nfs", path=str(path), clients=CLIENTS)
        assert resp.status_code == 202, resp.text
        href = site.href(resp)
        path.rmdir()
        os.symlink(outside, path)
        with server.standalone_worker():
            assert wait_status(site.session, href, timeout=30) == "ERRORED"
        item = data_of(site.session.get(href).json())
        assert "symbolic link" in item["status_message"], item
        assert list(Path(exports_dir).iterdir()) == []
    finally:
        server.stop()


def test_turned_off_share_types_are_refused(tmp_path):
    server = Server(tmp_path, env=shares_env(nfs="none", smb="none")).start()
    try:
        site = Site(server)
        path = server.mountpoint / "proj"
        path.mkdir()
        for kind, key in (("nfs", "nfs"), ("cifs", "smb")):
            resp = site.post(name="off", type=kind, path=str(path), clients=CLIENTS if kind == "nfs" else None)
            assert resp.status_code == 422, resp.text
            assert error_of(resp)["details"]["type"] == (f'{kind} shares are turned off on this server '
                                                         f'([shares] {key} = "none")')
    finally:
        server.stop()


def test_the_openapi_document_offers_writable_exposers(kernel_samba):
    site, _, _ = kernel_samba
    document = requests.get(site.url + "/openapi.json", timeout=10).json()
    assert "post" in document["paths"]["/exposers/"]
