"""CES shares ([shares] nfs/smb = "ces"): the exact mmnfs and mmsmb command lines that publish,
change and withdraw NFS exports and SMB shares, run against the fake commands in
fake_mmcommands/ (mmnfs and mmsmb keep their exports and shares, so a listing shows what the
commands before it did), failures, and one exposer through the API."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from service import shares
from service.shares.ces import Ces
from service.storage import StorageError
from tests.harness import CJ, Server, cj_body, wait_status
from tests.storage.helpers import make_settings
from tests.storage.test_gpfs_driver import FAKE, SAMPLES, FakeCommands, mm

PATH = "/mmfs1/projects/sleepy_snake"
ID = "5d0c1c7e-6f2a-4a55-9a53-0d6f2b1c9e41"
# what every client carries beside its access and squash when its options say nothing more
PLAIN = "ANONYMOUS_UID=-2,ANONYMOUS_GID=-2,SECTYPE=SYS,PRIVILEGEDPORT=FALSE,NFS_COMMIT=FALSE"
NFS_LIST = mm("mmnfs", "export", "list", "-Y", "--nfsdefs", PATH)
SMB_LIST = mm("mmsmb", "export", "list", "Snake", "--all", "-Y")


class CesFakes:
    """The fake commands, an NFS and an SMB backend on them, and what the fakes hold."""

    def __init__(self, folder: Path, monkeypatch):
        self.fake = FakeCommands(folder, "/mmfs1", monkeypatch)
        settings = SimpleNamespace(storage=make_settings("gpfs", "/mmfs1", command_prefix=str(FAKE), timeout=20))
        self.nfs, self.smb = Ces(settings, "nfs"), Ces(settings, "cifs")

    def calls(self) -> list[list[str]]:
        """The calls since the last look."""
        calls = self.fake.calls()
        self.fake.log.unlink(missing_ok=True)
        return calls

    def state(self, command: str) -> dict:
        return json.loads((self.fake.replies / f"{command}.state").read_text())


@pytest.fixture
def ces(tmp_path, monkeypatch) -> CesFakes:
    return CesFakes(tmp_path, monkeypatch)


def nfs(*clients: tuple[str, ...]) -> dict:
    """An nfs definition of PATH; each client is (host, option, ...)."""
    return {"id": ID, "name": "snake", "type": "nfs", "path": PATH, "export_id": 101,
            "clients": [{"host": host, "options": list(options)} for host, *options in clients]}


def cifs(**fields) -> dict:
    """A cifs definition of PATH with the defaults a created cifs exposer has."""
    return dict({"id": ID, "name": "Snake", "type": "cifs", "path": PATH, "read_only": False, "browseable": True,
                 "guest_ok": False, "valid_users": None, "write_list": None, "hosts_allow": None,
                 "create_mask": None, "directory_mask": None, "inherit_permissions": False,
                 "inherit_acls": False}, **fields)


# -- NFS ------------------------------------------------------------------------------------
def test_an_export_is_added_with_every_client_and_a_rerun_only_looks(ces):
    definition = nfs(("10.1.0.0/16", "rw", "no_root_squash"), ("fd00::7", "ro"), ("*.lab.example.com",))
    ces.nfs.publish(definition)
    assert ces.calls() == [NFS_LIST, mm(
        "mmnfs", "export", "add", PATH, "--client",
        f"10.1.0.0/16(ACCESS_TYPE=RW,SQUASH=NO_ROOT_SQUASH,{PLAIN});"
        f"fd00::7(ACCESS_TYPE=RO,SQUASH=ROOT_SQUASH,{PLAIN});"
        f"*.lab.example.com(ACCESS_TYPE=RO,SQUASH=ROOT_SQUASH,{PLAIN})", "--pseudo", "/snake")]
    export = ces.state("mmnfs")[PATH]
    assert export["pseudo"] == "/snake"
    assert [host for host, _ in export["clients"]] == ["10.1.0.0/16", "fd00::7", "*.lab.example.com"]
    # the listing prints fd00::7 with its colons as they are: read back, it is the same client
    ces.nfs.publish(definition)
    assert ces.calls() == [NFS_LIST]


def test_exportfs_options_become_mmnfs_attributes_and_the_others_are_left_out(ces, caplog):
    caplog.set_level(logging.INFO, logger="service.shares.ces")
    ces.nfs.publish(nfs(("@render", "rw", "all_squash", "anonuid=1500", "anongid=150", "sec=krb5:krb5p",
                         "secure", "sync", "no_subtree_check", "crossmnt", "fsid=7")))
    assert ces.calls()[1][-3] == ("@render(ACCESS_TYPE=RW,SQUASH=ALL_SQUASH,ANONYMOUS_UID=1500,ANONYMOUS_GID=150,"
                                  "SECTYPE=KRB5:KRB5P,PRIVILEGEDPORT=TRUE,NFS_COMMIT=TRUE)")
    assert "client @render: no CES NFS equivalent of crossmnt, fsid, no_subtree_check: left out" in caplog.messages
    ces.nfs.publish(nfs(("@render", "rw", "all_squash", "anonuid=1500", "anongid=150", "sec=krb5:krb5p",
                         "secure", "sync")))
    assert ces.calls() == [NFS_LIST]    # the listing's "KRB5,KRB5P" is the "KRB5:KRB5P" asked


def test_a_changed_export_gets_its_new_clients_then_its_changed_ones_then_loses_the_dropped(ces):
    ces.nfs.publish(nfs(("10.1.0.0/16", "rw"), ("10.2.0.9", "ro"), ("10.3.0.1",)))
    ces.calls()
    ces.nfs.publish(nfs(("10.1.0.0/16", "ro"), ("10.3.0.1",), ("@ops", "rw", "insecure")))
    assert ces.calls() == [
        NFS_LIST,
        mm("mmnfs", "export", "change", PATH, "--nfsadd", f"@ops(ACCESS_TYPE=RW,SQUASH=ROOT_SQUASH,{PLAIN})"),
        mm("mmnfs", "export", "change", PATH, "--nfschange",
           f"10.1.0.0/16(ACCESS_TYPE=RO,SQUASH=ROOT_SQUASH,{PLAIN})"),
        mm("mmnfs", "export", "change", PATH, "--nfsremove", "10.2.0.9"),
    ]
    clients = ces.state("mmnfs")[PATH]["clients"]
    assert {host: attributes["ACCESS_TYPE"] for host, attributes in clients} == {
        "10.1.0.0/16": "RO", "10.3.0.1": "RO", "@ops": "RW"}
    ces.nfs.publish(nfs(("10.1.0.0/16", "ro"), ("10.3.0.1",), ("@ops", "rw", "insecure")))
    assert ces.calls() == [NFS_LIST]


@pytest.mark.parametrize("before, after, command", [
    ((("10.1.0.0/16", "rw"),), (("10.1.0.0/16", "rw"), ("10.9.0.1",)),
     ["--nfsadd", f"10.9.0.1(ACCESS_TYPE=RO,SQUASH=ROOT_SQUASH,{PLAIN})"]),
    ((("10.1.0.0/16", "rw"),), (("10.1.0.0/16", "rw", "sync"),),
     ["--nfschange", "10.1.0.0/16(ACCESS_TYPE=RW,SQUASH=ROOT_SQUASH,ANONYMOUS_UID=-2,ANONYMOUS_GID=-2,SECTYPE=SYS,"
                     "PRIVILEGEDPORT=FALSE,NFS_COMMIT=TRUE)"]),
    ((("10.1.0.0/16", "rw"), ("10.9.0.1",)), (("10.1.0.0/16", "rw"),), ["--nfsremove", "10.9.0.1"]),
], ids=["client added", "client changed", "client removed"])
def test_one_client_change_is_one_command(ces, before, after, command):
    ces.nfs.publish(nfs(*before))
    ces.calls()
    ces.nfs.publish(nfs(*after))
    assert ces.calls() == [NFS_LIST, mm("mmnfs", "export", "change", PATH, *command)]


def test_withdrawing_removes_the_export_and_one_already_gone_is_left_alone(ces):
    ces.nfs.publish(nfs(("10.1.0.0/16", "rw")))
    ces.calls()
    ces.nfs.withdraw(nfs(("10.1.0.0/16", "rw")))
    assert ces.calls() == [NFS_LIST, mm("mmnfs", "export", "remove", PATH, "--force")]
    assert ces.state("mmnfs") == {}
    ces.nfs.withdraw(nfs(("10.1.0.0/16", "rw")))
    assert ces.calls() == [NFS_LIST]


def test_a_failing_mmnfs_is_a_storage_error_with_its_message(ces):
    ces.fake.reply("mmnfs.add", err="mmnfs export add: [E] Path /mmfs1/projects/sleepy_snake is not a "
                                    "GPFS path.\n", rc=1)
    with pytest.raises(StorageError) as failed:
        ces.nfs.publish(nfs(("10.1.0.0/16", "rw")))
    assert str(failed.value) == (
        f"{FAKE}/mmnfs export add {PATH} --client '10.1.0.0/16(ACCESS_TYPE=RW,SQUASH=ROOT_SQUASH,{PLAIN})' "
        "--pseudo /snake failed with exit status 1: mmnfs export add: [E] Path /mmfs1/projects/sleepy_snake is "
        "not a GPFS path.")


def test_a_listing_that_says_the_path_has_no_export_means_none(ces):
    ces.fake.reply("mmnfs.list", err=f"mmnfs export list: [E] No exports found for {PATH}.\n", rc=1)
    ces.nfs.publish(nfs(("10.1.0.0/16", "rw")))
    assert ces.calls() == [NFS_LIST, mm("mmnfs", "export", "add", PATH, "--client",
                                        f"10.1.0.0/16(ACCESS_TYPE=RW,SQUASH=ROOT_SQUASH,{PLAIN})",
                                        "--pseudo", "/snake")]


def test_a_listing_that_fails_otherwise_stops_the_job_before_any_change(ces):
    ces.fake.reply("mmnfs.list", err="mmnfs export list: [E] The NFS service is not running.\n", rc=1)
    with pytest.raises(StorageError, match=r"status 1: mmnfs export list: \[E\] The NFS service is not running"):
        ces.nfs.publish(nfs(("10.1.0.0/16", "rw")))
    assert ces.calls() == [NFS_LIST]


# -- SMB ------------------------------------------------------------------------------------
def test_a_share_is_added_with_its_options_and_a_rerun_only_looks(ces):
    definition = cifs(valid_users=["alice", "@staff"], hosts_allow=["10.1.0.0/16"], create_mask="0664",
                      inherit_acls=True)
    ces.smb.publish(definition)
    assert ces.calls() == [SMB_LIST, mm(
        "mmsmb", "export", "add", "Snake", PATH, "--option", "read only=no", "--option", "browseable=yes",
        "--option", "guest ok=no", "--option", "valid users=alice @staff", "--option", "hosts allow=10.1.0.0/16",
        "--option", "create mask=0664", "--option", "inherit permissions=no", "--option", "inherit acls=yes")]
    assert ces.state("mmsmb")["Snake"]["path"] == PATH
    ces.smb.publish(definition)
    assert ces.calls() == [SMB_LIST]


def test_changed_options_are_set_then_dropped_ones_removed(ces):
    ces.smb.publish(cifs(valid_users=["alice"], create_mask="0664"))
    ces.calls()
    ces.smb.publish(cifs(read_only=True, valid_users=["alice", "@staff"], write_list=["@staff"]))
    assert ces.calls() == [
        SMB_LIST,
        mm("mmsmb", "export", "change", "Snake", "--option", "read only=yes", "--option", "valid users=alice @staff",
           "--option", "write list=@staff"),
        mm("mmsmb", "export", "change", "Snake", "--remove", "create mask"),
    ]
    assert ces.state("mmsmb")["Snake"]["options"] == {
        "browseable": "yes", "guest ok": "no", "inherit acls": "no", "inherit permissions": "no",
        "read only": "yes", "valid users": "alice @staff", "write list": "@staff"}
    ces.smb.publish(cifs(read_only=True, valid_users=["@staff", "alice"], write_list=["@staff"]))
    assert ces.calls() == [SMB_LIST]


def test_one_option_changed_is_one_command(ces):
    ces.smb.publish(cifs())
    ces.calls()
    ces.smb.publish(cifs(browseable=False))
    assert ces.calls() == [SMB_LIST, mm("mmsmb", "export", "change", "Snake", "--option", "browseable=no")]


def test_withdrawing_removes_the_share_and_one_already_gone_is_left_alone(ces):
    ces.smb.publish(cifs())
    ces.calls()
    ces.smb.withdraw(cifs())
    assert ces.calls() == [SMB_LIST, mm("mmsmb", "export", "remove", "Snake", "--force")]
    assert ces.state("mmsmb") == {}
    ces.smb.withdraw(cifs())
    assert ces.calls() == [SMB_LIST]


def test_a_share_of_that_name_for_another_folder_is_left_alone(ces):
    ces.smb.publish(cifs(path="/mmfs1/elsewhere"))
    ces.calls()
    with pytest.raises(StorageError, match=f"CES SMB share Snake exists for /mmfs1/elsewhere, not {PATH}"):
        ces.smb.publish(cifs())
    assert ces.calls() == [SMB_LIST]


def test_a_failing_mmsmb_is_a_storage_error_with_its_message(ces):
    ces.smb.publish(cifs())
    ces.fake.reply("mmsmb.change", err="mmsmb export change: [E] Unsupported option 'inherit acls'.\n", rc=1)
    with pytest.raises(StorageError) as failed:
        ces.smb.publish(cifs(guest_ok=True))
    assert str(failed.value) == (f"{FAKE}/mmsmb export change Snake --option 'guest ok=yes' failed with exit "
                                 "status 1: mmsmb export change: [E] Unsupported option 'inherit acls'.")


def test_the_shares_config_chooses_ces_for_either_type():
    settings = SimpleNamespace(shares=SimpleNamespace(nfs="ces", smb="ces"),
                               storage=make_settings("gpfs", "/mmfs1", command_prefix=str(FAKE)))
    assert [type(shares.backend(settings, kind)) for kind in ("nfs", "cifs")] == [Ces, Ces]
    assert shares.backend(settings, "nfs").published() == {}


# -- through the API --------------------------------------------------------------------------
def test_an_nfs_exposer_becomes_a_ces_export_and_goes_away_with_it(tmp_path, monkeypatch):
    mountpoint = tmp_path / "mmfs1"
    folder = mountpoint / "projects" / "media"
    folder.mkdir(parents=True)
    fake = FakeCommands(tmp_path, str(mountpoint), monkeypatch)
    fake.reply("mmlsfs", (SAMPLES / "mmlsfs-all.Y").read_text().replace("%2Fmmfs1", quote(str(mountpoint), safe="")))
    fake.reply("mmlspool", (SAMPLES / "mmlspool.txt").read_text())
    fake.reply("mmlspolicy", (SAMPLES / "mmlspolicy-none.txt").read_text())
    server = Server(tmp_path, driver="gpfs", mountpoint=str(mountpoint),
                    extra=f'[storage.gpfs]\ncommand_prefix = "{FAKE}"\n[shares]\nnfs = "ces"\nsmb = "ces"\n').start()
    try:
        session = server.session()
        resp = session.post(server.url + "/exposers/", headers=CJ, json=cj_body(
            name="media", type="nfs", path=str(folder), clients=[{"host": "192.0.2.0/24", "options": ["rw"]}]))
        assert resp.status_code == 202, resp.text
        item = server.url + resp.json()["collection"]["items"][0]["href"]
        assert wait_status(session, item) == "ACTIVE", server.log()
        assert json.loads((fake.replies / "mmnfs.state").read_text()) == {str(folder): {
            "pseudo": "/media", "clients": [["192.0.2.0/24", {
                "ACCESS_TYPE": "RW", "ANONYMOUS_GID": "-2", "ANONYMOUS_UID": "-2", "DEFAULTDELEGATIONS": "none",
                "DELEGATIONS": "none", "MANAGE_GIDS": "FALSE", "NFS_COMMIT": "FALSE", "PRIVILEGEDPORT": "FALSE",
                "PROTOCOLS": "3,4", "SECTYPE": "SYS", "SQUASH": "ROOT_SQUASH", "TRANSPORTS": "TCP"}]]}}
        assert session.delete(item).status_code == 202
        assert wait_status(session, item) is None, server.log()
        assert json.loads((fake.replies / "mmnfs.state").read_text()) == {}
    finally:
        server.stop()
