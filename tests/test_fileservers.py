"""The file-server fixtures alone, with hand-written configuration: smbd serves a share of its
include file to its valid users only; ganesha adds and drops an export on SIGHUP; exportfs in
its namespace accepts a good exports file and refuses an unknown option."""
import os

from tests.fileservers import Ganesha, Samba, exported, exportfs_namespace, open_to_all, run
from tests.harness import wait_for


def test_samba_serves_its_include_file_to_valid_users_only(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello.txt").write_text("hello over smb\n")
    open_to_all(share)
    with Samba(tmp_path) as samba:
        samba.add_user("pixtalice", "alice-pw")
        samba.add_user("pixtbob", "bob-pw")
        samba.samba_include.write_text(f"[data]\npath = {share}\nread only = yes\nvalid users = pixtalice\n")
        assert samba.testparm(samba.conf)[0] == 0

        code, output = samba.client("data", "pixtalice", "alice-pw", "get hello.txt -")
        assert code == 0 and "hello over smb" in output, output
        code, output = samba.client("data", "pixtbob", "bob-pw", "ls")
        assert code == 1 and "NT_STATUS_ACCESS_DENIED" in output, output
        code, output = samba.client("data", "pixtalice", "wrong-pw", "ls")
        assert code == 1 and "NT_STATUS_LOGON_FAILURE" in output, output

        # the share gone from the include file and a reload: new connections do not find it
        samba.samba_include.write_text("")
        code, output = run(samba.reload_command)
        assert code == 0, output
        code, output = samba.client("data", "pixtalice", "alice-pw", "ls")
        assert code == 1 and "NT_STATUS_BAD_NETWORK_NAME" in output, output
        assert samba.process.poll() is None and samba.process.pid == samba.pid


def test_ganesha_adds_and_drops_an_export_on_sighup(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello over nfs\n")
    with Ganesha(tmp_path) as ganesha:
        assert ganesha.exports_file.read_text() == ""
        assert ganesha.ls("/")[0] == 0      # the pseudo root answers with no export at all
        assert "NFS4ERR_NOENT" in ganesha.ls("/one")[1]

        ganesha.exports_file.write_text(
            f'EXPORT {{ Export_Id = 11; Path = "{data}"; Pseudo = "/one"; Access_Type = RW; '
            "Squash = No_Root_Squash; SecType = sys; Protocols = 4; Transports = TCP; FSAL { Name = VFS; } }\n")
        ganesha.reload()
        wait_for(lambda: ganesha.ls("/one")[0] == 0, timeout=5, what="the export after SIGHUP")
        code, output = ganesha.ls("/one")
        assert "hello.txt" in output, output
        assert ganesha.cat("/one/hello.txt") == (0, "hello over nfs\n")

        ganesha.exports_file.write_text("")
        ganesha.reload()
        wait_for(lambda: "NFS4ERR_NOENT" in ganesha.ls("/one")[1], timeout=5, what="the export gone after SIGHUP")
        assert ganesha.config_errors() == []
        assert ganesha.process.poll() is None and ganesha.process.pid == ganesha.pid


def test_exportfs_namespace_validates_and_lists(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    script, exports_dir = exportfs_namespace(tmp_path)
    exports = exports_dir / "test.exports"
    exports.write_text(f'"{data}" 127.0.0.1(rw,no_root_squash,no_subtree_check) 10.0.0.0/8(ro,sync)\n')
    code, output = run([str(script), "-ra"])
    assert code == 0, output
    listed = exported(script)
    assert set(listed) == {str(data)}
    assert {"rw", "no_root_squash"} <= set(listed[str(data)]["127.0.0.1"])
    assert {"ro", "root_squash", "sync"} <= set(listed[str(data)]["10.0.0.0/8"])

    exports.write_text(f'"{data}" 127.0.0.1(rw,no_such_option)\n')
    code, output = run([str(script), "-ra"])
    assert code == 1 and 'test.exports:1: unknown keyword "no_such_option"' in output, output

    # the host's own files are not touched: what this namespace wrote is private
    assert str(data) not in open("/var/lib/nfs/etab").read()
    assert not any(str(data) in open(os.path.join("/etc/exports.d", name)).read()
                   for name in os.listdir("/etc/exports.d"))
