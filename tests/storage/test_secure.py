"""Securing a space's tree (tree.secure, Driver.secure_fileset) and the POSIX ACL encoder of
service/storage/access.py, read back and written by the acl tools (getfacl, setfacl)."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from service.storage import tree
from service.storage.access import ACCESS, DEFAULT, Access, Acl
from tests.harness import require
from tests.storage.test_gpfs_driver import LIST, SNAKE, fake, gpfs, junction, mountpoint  # noqa: F401

GID, OTHER_GID, UID = 4242, 4343, 4141
GROUP_ACL = Acl(groups=((GID, 7),))
DEFAULTS = Acl(other=0, groups=((GID, 7),))


@pytest.fixture(autouse=True)
def as_root():
    require(os.geteuid() == 0, "changing owners and groups needs root")


def getfacl(path):
    return subprocess.run(["getfacl", "-n", "-E", "--omit-header", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- the encoder ----------------------------------------------------------------------------------
def test_an_encoded_acl_reads_back_with_getfacl(tmp_path):
    acl = Acl(owner=7, group=5, other=0, users=((UID, 6), (1000, 4)), groups=((GID, 7),))
    os.setxattr(tmp_path, ACCESS, acl.encode())
    os.setxattr(tmp_path, DEFAULT, Acl(owner=7, group=7, other=0).encode())
    assert getfacl(tmp_path) == [
        "user::rwx", "user:1000:r--", f"user:{UID}:rw-", "group::r-x", f"group:{GID}:rwx", "mask::rwx", "other::---",
        "default:user::rwx", "default:group::rwx", "default:other::---"]
    assert mode_of(tmp_path) == 0o770          # the group bits are the mask


def test_what_setfacl_writes_decodes_and_encodes_to_the_same_bytes(tmp_path):
    subprocess.run(["setfacl", "-m", f"u:{UID}:r-x,g:{GID}:rw-,g:{OTHER_GID}:r--,m::rwx,o::---", str(tmp_path)],
                   check=True)
    raw = os.getxattr(tmp_path, ACCESS)
    acl = Acl.decode(raw)
    assert (acl.users, acl.groups, acl.mask, acl.other) == (((UID, 5),), ((GID, 6), (OTHER_GID, 4)), 7, 0)
    assert acl.encode() == raw


def test_a_value_that_is_no_acl_is_refused():
    with pytest.raises(ValueError, match="not a POSIX ACL"):
        Acl.decode(b"\x02\x00\x00\x00\x01")
    with pytest.raises(ValueError, match="names a group id twice"):
        Acl(owner=7, group=7, other=0, groups=((GID, 7), (GID, 5))).encode()


# -- tree.secure ----------------------------------------------------------------------------------
@pytest.fixture
def space(tmp_path):
    """A space's folder: a template's content (a folder with its own ACL, a file, a fifo, a
    link to outside), a .snapshots folder and an outside folder beside it."""
    root = tmp_path / "space"
    (root / "maya" / "scenes").mkdir(parents=True)
    (root / "published").mkdir()
    (root / "published" / "frame.exr").write_text("frame\n")
    os.chmod(root / "published" / "frame.exr", 0o640)
    os.mkfifo(root / "maya" / "pipe")
    subprocess.run(["setfacl", "-m", f"u:{UID}:rwx", str(root / "published")], check=True)
    (root / ".snapshots" / "snap").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "file").write_text("outside\n")
    os.symlink(tmp_path / "outside", root / "maya" / "out")
    os.symlink(tmp_path / "outside" / "file", root / "published" / "file-out")
    for path in (root, root / "maya", root / "maya" / "scenes", tmp_path / "outside"):
        os.chmod(path, 0o755)
    return root


def secure(root, access, every_file):
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return tree.secure(fd, access, every_file)
    finally:
        os.close(fd)


def test_a_new_space_gets_everything_and_nothing_outside_changes(space):
    outside = {p: os.lstat(p) for p in (space.parent / "outside", space.parent / "outside" / "file")}
    access = Access(uid=UID, gid=GID, mode=0o2770, acl=GROUP_ACL, default=DEFAULTS)
    done = secure(space, access, every_file=True)
    assert (done.folders, done.files, done.linked) == (3, 2, 0)
    assert (os.lstat(space).st_uid, os.lstat(space).st_gid, mode_of(space)) == (UID, GID, 0o2770)
    defaults = ["default:user::rwx", "default:group::rwx", f"default:group:{GID}:rwx", "default:mask::rwx",
                "default:other::---"]
    assert getfacl(space) == ["user::rwx", "group::rwx", f"group:{GID}:rwx", "mask::rwx", "other::---", *defaults]
    # below: the group and set-group-id bit, the default ACL, their own modes and access ACLs
    assert getfacl(space / "maya" / "scenes") == ["user::rwx", "group::r-x", "other::r-x", *defaults]
    assert getfacl(space / "published") == ["user::rwx", f"user:{UID}:rwx", "group::r-x", "mask::rwx",
                                            "other::r-x", *defaults]
    for folder in ("maya", "maya/scenes", "published"):
        st = os.lstat(space / folder)
        assert (st.st_uid, st.st_gid, st.st_mode & stat.S_ISGID) == (0, GID, stat.S_ISGID), folder
    for made in ("published/frame.exr", "maya/pipe"):
        assert os.lstat(space / made).st_gid == GID, made
    assert mode_of(space / "published" / "frame.exr") == 0o640
    # links, .snapshots and what lies outside: as they were
    for link in ("maya/out", "published/file-out"):
        assert os.lstat(space / link).st_gid == 0, link
    assert os.lstat(space / ".snapshots").st_gid == 0 and os.lstat(space / ".snapshots" / "snap").st_gid == 0
    assert {p: os.lstat(p) for p in outside} == outside
    # again: nothing more to do
    assert (secure(space, access, every_file=True).folders, secure(space, access, every_file=True).files) == (0, 0)


def test_a_new_group_takes_the_files_of_the_old_one_only(space):
    secure(space, Access(gid=GID, mode=0o2770), every_file=True)
    os.chown(space / "published" / "frame.exr", -1, 0)            # given another group on purpose
    (space / "maya" / "scene.ma").write_text("scene\n")          # made in a set-group-id folder: GID
    os.link(space / "maya" / "scene.ma", space / "scene-again.ma")
    done = secure(space, Access(gid=OTHER_GID, mode=0o2770), every_file=False)
    assert (done.files, done.linked) == (1, 2)                  # the pipe; scene.ma by both its names
    assert os.lstat(space / "maya" / "pipe").st_gid == OTHER_GID
    assert os.lstat(space / "published" / "frame.exr").st_gid == 0
    assert os.lstat(space / "maya" / "scene.ma").st_gid == GID
    assert os.lstat(space / "maya").st_gid == OTHER_GID


def test_acls_are_left_alone_unless_given_and_removed_when_given_empty(space):
    secure(space, Access(gid=GID, mode=0o2770), every_file=True)
    assert f"user:{UID}:rwx" in getfacl(space / "published")
    secure(space, Access(gid=GID, mode=0o2770, acl=GROUP_ACL, default=DEFAULTS), every_file=False)
    secure(space, Access(gid=GID, mode=0o2750, acl=Acl()), every_file=False)
    assert getfacl(space) == ["user::rwx", "group::r-x", "other::---"] and mode_of(space) == 0o2750
    assert getfacl(space / "maya") == ["user::rwx", "group::r-x", "other::r-x"]
    assert f"user:{UID}:rwx" in getfacl(space / "published")       # a folder's own access ACL stays


# -- gpfs: the same calls on the fileset's junction ----------------------------------------------------
def test_gpfs_secures_a_fileset_on_its_junction(gpfs, fake, mountpoint):  # noqa: F811
    driver, fs = gpfs
    fake.filesets(SNAKE)
    root = junction(mountpoint)
    os.makedirs(os.path.join(root, "maya"))
    done = driver.secure_fileset(fs, SNAKE, Access(gid=GID, mode=0o2770, acl=GROUP_ACL, default=DEFAULTS),
                                 every_file=True)
    assert fake.calls() == [LIST]                   # one listing for the junction; the rest are POSIX calls
    assert done.folders == 1
    assert (os.lstat(root).st_gid, mode_of(root)) == (GID, 0o2770)
    assert getfacl(os.path.join(root, "maya"))[-5:] == [
        "default:user::rwx", "default:group::rwx", f"default:group:{GID}:rwx", "default:mask::rwx",
        "default:other::---"]
