"""NFS and SMB exposers end to end (issue 11): a real server and worker write the shares, and
real file servers on loopback serve them without a restart — smbd, nfs-ganesha, and the
kernel's exportfs in a mount namespace of its own (no nfsd runs on these machines: exportfs
validates and lists). Hostile definitions are refused (422 naming the field) before any file
is written. The servers: tests/fileservers.py."""
import json
from pathlib import Path

import pytest

from tests.fileservers import Ganesha, Samba, exported, exportfs_namespace, open_to_all
from tests.harness import CJ, Server, cj_body, data_of, wait_for, wait_status

ALICE, BOB = ("pixtalice", "alice-pw"), ("pixtbob", "bob-pw")
LOOPBACK_RW = [{"host": "127.0.0.1", "options": ["rw", "no_root_squash"]}]
SERVED = 10     # seconds a file server may take to serve what a finished job wrote


def shares_env(**settings):
    """PIXSTOR_SHARES_<KEY> overrides: lists as JSON, paths as strings."""
    return {f"PIXSTOR_SHARES_{key.upper()}": json.dumps(value) if isinstance(value, list) else str(value)
            for key, value in settings.items()}


class Site:
    """A started server, an admin session, and what a space needs."""

    def __init__(self, server):
        self.server, self.url = server, server.url
        self.session = server.session()

        def first(collection, where):
            resp = self.session.get(f"{self.url}/{collection}/", params={"where": where})
            return resp.json()["collection"]["items"][0]["href"]
        self.space_refs = dict(profile=first("profiles", '{"name": "mmfs1-sas1"}'),
                               exposers=first("exposers", '{"name": "mmfs1", "type": "gpfsnative"}'))

    def space(self, name, content):
        """An ACTIVE space holding hello.txt, open to every user (smbd reads as the user); its path."""
        resp = self.session.post(self.url + "/spaces/", json=cj_body(
            name=name, relativepath=f"projects/{name}", size=1 << 30, **self.space_refs), headers=CJ)
        assert resp.status_code == 202, resp.text
        assert wait_status(self.session, resp.headers["Location"]) == "ACTIVE"
        path = Path(data_of(self.session.get(self.href(resp)).json())["path"])
        (path / "hello.txt").write_text(content)
        (path / "hello.txt").chmod(0o644)
        open_to_all(path)
        return path

    def href(self, resp):
        """The full url of the item a POST answered with (its Location asks for the status only)."""
        return self.url + resp.json()["collection"]["items"][0]["href"]

    def post(self, **fields):
        return self.session.post(self.url + "/exposers/", json=cj_body(**fields), headers=CJ)

    def exposer(self, **fields):
        """An exposer that reached ACTIVE: (href, its data)."""
        resp = self.post(**fields)
        assert resp.status_code == 202, resp.text
        assert "job" in resp.links
        href = self.href(resp)
        status = wait_status(self.session, href)
        item = data_of(self.session.get(href).json())
        assert status == "ACTIVE", item
        return href, item

    def job(self, resp, wanted):
        """Wait for the job a 202 links to, and check how it ended; returns the job's data."""
        assert resp.status_code == 202, resp.text
        url = resp.links["job"]["url"]
        wait_for(lambda: data_of(self.session.get(url).json())["status"] in ("COMPLETED", "ERRORED"),
                 timeout=15, what=f"job {url}")
        job = data_of(self.session.get(url).json())
        assert job["status"] == wanted, job
        return job

    def patch(self, href, **fields):
        return self.job(self.session.patch(href, json=cj_body(**fields), headers=CJ), "COMPLETED")

    def delete(self, href, in_use_by=None):
        """DELETE; with `in_use_by`, first refused (409 naming the space that holds the exposer's
        path), then forced."""
        params = {}
        if in_use_by:
            resp = self.session.delete(href)
            assert resp.status_code == 409 and in_use_by in resp.text, resp.text
            params = {"force": "true"}
        self.job(self.session.delete(href, params=params), "COMPLETED")
        assert self.session.get(href).status_code == 404


def files_under(*places):
    """{path: text} of every file at or below the places (to show nothing was written)."""
    found = {}
    for place in map(Path, places):
        for path in ([place] if place.is_file() else sorted(p for p in place.rglob("*") if p.is_file())):
            found[str(path)] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def smb_ganesha(tmp_path_factory):
    """(site, Samba, Ganesha): a server whose cifs exposers go to smbd and nfs ones to ganesha."""
    folder = tmp_path_factory.mktemp("shares")
    with Samba(folder) as samba, Ganesha(folder) as ganesha:
        for user, password in (ALICE, BOB):
            samba.add_user(user, password)
        server = Server(folder, env=shares_env(
            smb="samba", samba_dir=samba.samba_dir, samba_include=samba.samba_include,
            samba_reload_command=samba.reload_command,
            testparm_command=[samba.tools["testparm"], "-s", "--suppress-prompt"],
            nfs="ganesha", ganesha_dir=ganesha.dir, ganesha_exports_file=ganesha.exports_file,
            ganesha_pidfile=ganesha.pidfile)).start()
        try:
            yield Site(server), samba, ganesha
        finally:
            server.stop()


def kernel_server(folder, exports_dir, exportfs_command):
    return Server(folder, env=shares_env(smb="none", nfs="kernel", exports_dir=exports_dir,
                                         exportfs_command=exportfs_command)).start()


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """(site, exportfs wrapper, exports dir): nfs exposers go to the kernel's exportfs, in its namespace."""
    folder = tmp_path_factory.mktemp("kernel")
    script, exports_dir = exportfs_namespace(folder)
    server = kernel_server(folder, exports_dir, [str(script)])
    try:
        yield Site(server), script, exports_dir
    finally:
        server.stop()


# SMB ------------------------------------------------------------------------------------

def test_smb_share_follows_its_valid_users_without_restarting_smbd(smb_ganesha):
    site, samba, _ = smb_ganesha
    smbd_pid = (samba.pid_dir / "smbd.pid").read_text().split()[0]
    assert smbd_pid == str(samba.pid)
    path = site.space("smbspace", "hello over smb\n")
    href, item = site.exposer(name="smbshare", type="cifs", path=str(path), valid_users=["pixtalice"])
    assert item["valid_users"] == ["pixtalice"] and item["read_only"] is False and item["clients"] is None
    share_file = samba.samba_dir / f"pixmanaged.{item['id']}.conf"
    assert "[smbshare]" in share_file.read_text() and "[smbshare]" in samba.samba_include.read_text()

    code, output = samba.client("smbshare", *ALICE, "get hello.txt -")
    assert code == 0 and "hello over smb" in output, output
    code, output = samba.client("smbshare", *BOB, "ls")
    assert code == 1 and "NT_STATUS_ACCESS_DENIED" in output, output

    site.patch(href, valid_users=["pixtbob"])
    assert data_of(site.session.get(href).json())["valid_users"] == ["pixtbob"]
    wait_for(lambda: samba.client("smbshare", *BOB, "get hello.txt -")[0] == 0, timeout=SERVED,
             what="bob let in after the PATCH")
    code, output = samba.client("smbshare", *BOB, "get hello.txt -")
    assert "hello over smb" in output, output
    code, output = samba.client("smbshare", *ALICE, "ls")
    assert code == 1 and "NT_STATUS_ACCESS_DENIED" in output, output

    site.delete(href, in_use_by="smbspace")
    wait_for(lambda: "NT_STATUS_BAD_NETWORK_NAME" in samba.client("smbshare", *BOB, "ls")[1], timeout=SERVED,
             what="the share gone after the DELETE")
    assert not share_file.exists() and "[smbshare]" not in samba.samba_include.read_text()
    assert samba.process.poll() is None
    assert (samba.pid_dir / "smbd.pid").read_text().split()[0] == smbd_pid


# NFS through nfs-ganesha --------------------------------------------------------------------

def test_ganesha_export_serves_its_clients_only_without_restart(smb_ganesha):
    site, _, ganesha = smb_ganesha
    ganesha_pid = ganesha.pidfile.read_text().split()[0]
    elsewhere_path = site.space("nfselsewhere", "not for loopback\n")
    path = site.space("nfsspace", "hello over nfs\n")
    # first an export for another host only, then one for loopback: once the second is served,
    # ganesha has read the first too
    elsewhere, other = site.exposer(name="nfselsewhere", type="nfs", path=str(elsewhere_path),
                                    clients=[{"host": "10.1.2.3", "options": ["rw"]}])
    href, item = site.exposer(name="nfsshare", type="nfs", path=str(path), clients=LOOPBACK_RW)
    assert item["clients"] == LOOPBACK_RW and item["valid_users"] is None
    assert isinstance(item["export_id"], int) and item["export_id"] != other["export_id"]
    merged = ganesha.exports_file.read_text()
    assert 'Pseudo = "/nfsshare"' in merged and 'Pseudo = "/nfselsewhere"' in merged

    wait_for(lambda: ganesha.cat("/nfsshare/hello.txt")[0] == 0, timeout=SERVED, what="the export served")
    assert ganesha.cat("/nfsshare/hello.txt") == (0, "hello over nfs\n")
    code, output = ganesha.ls("/nfselsewhere")
    assert code != 0 and "NFS4ERR_NOENT" in output, output     # 127.0.0.1 sees no such export
    assert ganesha.config_errors() == []                        # ... though ganesha took it

    # the other export's clients changed to loopback: now served
    site.patch(elsewhere, clients=[{"host": "127.0.0.1", "options": ["ro", "no_root_squash"]}])
    wait_for(lambda: ganesha.cat("/nfselsewhere/hello.txt")[0] == 0, timeout=SERVED,
             what="the export served after its clients changed")
    assert ganesha.cat("/nfselsewhere/hello.txt") == (0, "not for loopback\n")

    site.delete(href, in_use_by="nfsspace")
    site.delete(elsewhere, in_use_by="nfselsewhere")
    wait_for(lambda: "NFS4ERR_NOENT" in ganesha.ls("/nfsshare")[1], timeout=SERVED, what="the export gone")
    assert "NFS4ERR_NOENT" in ganesha.ls("/nfselsewhere")[1]
    assert ganesha.exports_file.read_text() == "" and list(ganesha.dir.iterdir()) == []
    assert ganesha.config_errors() == []
    assert ganesha.process.poll() is None and ganesha.pidfile.read_text().split()[0] == ganesha_pid


# NFS through the kernel's exportfs --------------------------------------------------------

def test_kernel_exports_are_what_was_asked(kernel):
    site, script, exports_dir = kernel
    path = site.space("kernelspace", "hello\n")
    clients = [{"host": "127.0.0.1", "options": ["rw", "no_root_squash"]},
               {"host": "10.0.0.0/8", "options": ["ro", "sync", "anonuid=1234"]}]
    href, item = site.exposer(name="kernelshare", type="nfs", path=str(path), clients=clients)
    assert item["clients"] == clients
    export_file = exports_dir / f"pixmanaged.{item['id']}.exports"
    assert export_file.is_file()
    listed = exported(script)
    assert set(listed[str(path)]) == {"127.0.0.1", "10.0.0.0/8"}
    for client in clients:
        assert set(client["options"]) <= set(listed[str(path)][client["host"]]), listed

    site.patch(href, clients=[{"host": "192.168.1.0/24", "options": ["rw", "all_squash"]}])
    listed = exported(script)
    assert set(listed[str(path)]) == {"192.168.1.0/24"}
    assert {"rw", "all_squash"} <= set(listed[str(path)]["192.168.1.0/24"])

    site.delete(href, in_use_by="kernelspace")
    assert str(path) not in exported(script)
    assert not export_file.exists()


def test_a_refused_exportfs_fails_the_job_and_leaves_no_file(tmp_path):
    exports_dir = tmp_path / "exports.d"
    exports_dir.mkdir()
    seen = tmp_path / "exportfs-saw"      # a line per run: the files exports.d held
    refusing = tmp_path / "refusing-exportfs"
    refusing.write_text(f'#!/bin/sh\necho $(ls "{exports_dir}") >>"{seen}"\n'
                        'echo "exportfs: test refuses $*" >&2\nexit 1\n')
    refusing.chmod(0o755)
    server = kernel_server(tmp_path, exports_dir, [str(refusing)])
    try:
        site = Site(server)
        path = site.space("refused", "hello\n")
        resp = site.post(name="refused", type="nfs", path=str(path), clients=LOOPBACK_RW)
        job = site.job(resp, "ERRORED")
        assert "exportfs: test refuses -ra" in job["message"], job
        item = data_of(site.session.get(site.href(resp)).json())
        assert item["status"] == "ERRORED" and "exportfs: test refuses -ra" in item["status_message"], item
        # exportfs was run on the new file, and last once it was taken back
        runs = seen.read_text().splitlines()
        assert f"pixmanaged.{item['id']}.exports" in runs and runs[-1] == "", runs
        assert list(exports_dir.iterdir()) == []
    finally:
        server.stop()


# Hostile definitions --------------------------------------------------------------------

SMB_HOSTILE = [
    ("comment", dict(comment="x\n[evil]\npath = /")),
    ("valid_users", dict(valid_users=["pixtalice\n[evil]"])),
    ("valid_users", dict(valid_users=["pixtalice]"])),
    ("valid_users", dict(valid_users=["include = /etc/passwd"])),
    ("write_list", dict(write_list=["pixtalice\ninclude = /tmp/evil.conf"])),
    ("hosts_allow", dict(hosts_allow=["127.0.0.1\n[evil]"])),
    ("hosts_allow", dict(hosts_allow=["include = /tmp/evil.conf"])),
    ("create_mask", dict(create_mask="0664\ninclude = /tmp/evil.conf")),
    ("clients", dict(clients=LOOPBACK_RW)),                     # an nfs field on a cifs exposer
    ("name", dict(name="global")),
    ("name", dict(name="homes")),
    ("name", dict(name="printers")),
    ("name", dict(name="IPC$")),
    ("name", dict(name="Global")),
    ("name", dict(name="evil]")),
]
NFS_HOSTILE = [
    ("comment", dict(comment="x\n/ *(rw,no_root_squash)")),
    ("clients", dict(clients=[{"host": "127.0.0.1\n/ *(rw)", "options": ["rw"]}])),
    ("clients", dict(clients=[{"host": "127.0.0.1 ", "options": ["rw"]}])),     # exportfs: "host (rw)" is *(rw)
    ("clients", dict(clients=[{"host": "127.0.0.1(rw)", "options": []}])),
    ("clients", dict(clients=[{"host": "include = /etc/passwd", "options": ["rw"]}])),
    ("clients", dict(clients=[{"host": "127.0.0.1", "options": ["rw\n/ *(rw)"]}])),
    ("clients", dict(clients=[{"host": "127.0.0.1", "options": ["rw)", "no_root_squash"]}])),
    ("clients", dict(clients=[{"host": "127.0.0.1", "options": ["rw;} EXPORT {"]}])),
    ("clients", dict(clients=[{"host": "127.0.0.1", "options": ["rw", "no_such_option"]}])),
    ("clients", dict(clients=[{"host": "127.0.0.1", "options": ["rw", "anonuid=0)"]}])),
    ("valid_users", dict(valid_users=["pixtalice"])),           # a cifs field on an nfs exposer
]


def path_cases(site, name):
    """(field, changes) with paths outside the mountpoints, through symlinks, and quoting tricks."""
    mountpoint = site.server.mountpoint
    inside = mountpoint / "projects" / f"{name}-real"
    inside.mkdir(parents=True, exist_ok=True)
    (mountpoint / "projects" / f"{name}-link-out").unlink(missing_ok=True)
    (mountpoint / "projects" / f"{name}-link-out").symlink_to("/etc")
    (mountpoint / "projects" / f"{name}-link-in").unlink(missing_ok=True)
    (mountpoint / "projects" / f"{name}-link-in").symlink_to(inside)
    return [("path", dict(path="/etc")),
            ("path", dict(path=str(site.server.folder))),           # the mountpoint's parent
            ("path", dict(path=str(mountpoint / "projects" / f"{name}-link-out"))),
            ("path", dict(path=str(mountpoint / "projects" / f"{name}-link-in"))),
            ("path", dict(path=str(mountpoint / "projects" / f"{name}-missing"))),
            ("path", dict(path=str(inside) + "\n[evil]")),
            ("path", dict(path=str(mountpoint / "projects" / f"{name}-real" / ".." / f"{name}-real"))),
            ("path", dict(path=str(inside) + '"; Path = "/etc')),
            ("path", dict(path=str(inside) + "%u")),
            ("path", dict(path="relative/path"))], inside


HOSTILE = {"cifs": (SMB_HOSTILE, dict(valid_users=["pixtalice"])), "nfs": (NFS_HOSTILE, dict(clients=LOOPBACK_RW))}


def refused(site, share_type, places):
    """Each hostile case of the type POSTed: 422 naming its field, and no file below `places`
    written or changed. Then the definition they spoil is accepted (and deleted again): the
    refusals were the hostile values'. Returns the path of that definition."""
    name = f"{share_type}hostile"
    paths, inside = path_cases(site, name)
    cases, fields = HOSTILE[share_type]
    base = dict(name=name, type=share_type, path=str(inside), **fields)
    before = files_under(*places)
    for field, changes in cases + paths:
        body = dict(base, **changes)
        resp = site.post(**body)
        assert resp.status_code == 422, (body, resp.status_code, resp.text)
        details = resp.json()["collection"]["error"].get("details") or {}
        assert field in details, (body, resp.text)
        assert files_under(*places) == before, body
    href, _ = site.exposer(**base)
    site.delete(href)
    return inside


@pytest.mark.parametrize("share_type", ["cifs", "nfs"])
def test_hostile_definitions_are_refused_before_any_samba_or_ganesha_file(smb_ganesha, share_type):
    site, samba, ganesha = smb_ganesha
    refused(site, share_type, (samba.samba_dir, samba.samba_include, ganesha.dir, ganesha.exports_file))


def test_hostile_nfs_definitions_are_refused_before_any_kernel_export(kernel):
    site, script, exports_dir = kernel
    inside = refused(site, "nfs", (exports_dir, exports_dir.parent / "var-lib-nfs"))
    assert str(inside) not in exported(script)
