"""The confined primitives against planted links: nothing outside the root is ever touched."""
from __future__ import annotations

import hashlib
import os
import stat

import pytest

from service.storage import SNAPSHOTS, StorageError, get_driver, tree
from service.storage.confined import Root, Unsafe, components, inside
from service.storage.records import RECORDS
from tests.storage.helpers import make_settings, write


def fingerprint(top) -> dict:
    """Everything about a tree that a stray job could change."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for name in ["."] + dirs + files:
            path = os.path.normpath(os.path.join(folder, name))
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(open(path, "rb").read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            found[os.path.relpath(path, top)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, content)
    return found


@pytest.fixture
def outside(tmp_path):
    top = tmp_path / "outside"
    write(str(top / "secret"), "keep me")
    os.chmod(top / "secret", 0o600)
    write(str(top / "sub" / "deep"), "deep")
    os.chmod(top / "sub", 0o750)
    os.chmod(top, 0o755)
    return top


@pytest.fixture
def local(tmp_path):
    mountpoint = tmp_path / "mmfs1"
    mountpoint.mkdir()
    driver = get_driver(make_settings("posix", str(mountpoint)))
    return driver, driver.discover()[0]


def test_inside_and_components_are_the_one_path_rule():
    assert inside("/a/b", "/a") and inside("/a", "/a") and not inside("/a", "/a", strict=True)
    assert not inside("/ab", "/a") and not inside("/a/../b", "/a")
    assert components("/m/x/y", "/m") == ["x", "y"] and components("/m", "/m") == []
    with pytest.raises(StorageError, match="not inside"):
        components("/m/../etc", "/m")


def test_a_link_on_the_way_stops_the_walk_and_creates_nothing(tmp_path, outside):
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    os.symlink(outside, root_dir / "proj")
    before = fingerprint(outside)
    with Root(str(root_dir)) as root:
        with pytest.raises(Unsafe, match="'proj' is a symbolic link"):
            root.open(str(root_dir / "proj" / "space"), create=True)
        with pytest.raises(Unsafe, match="symbolic link"):
            root.rename(str(root_dir / "proj" / "f"), str(root_dir / "g"))
        with pytest.raises(Unsafe, match="symbolic link"):
            root.remove(str(root_dir / "proj" / "sub"))
    assert fingerprint(outside) == before


def test_a_file_on_the_way_is_not_a_directory(tmp_path):
    write(str(tmp_path / "root" / "file"), "x")
    with Root(str(tmp_path / "root")) as root, pytest.raises(Unsafe, match="'file' is not a directory"):
        root.open(str(tmp_path / "root" / "file" / "below"), create=True)


def test_remove_unlinks_links_and_never_changes_their_targets(tmp_path, outside):
    victim = tmp_path / "root" / "space"
    write(str(victim / "data"), "x")
    os.symlink(outside, victim / "dirlink")
    os.symlink(outside / "secret", victim / "filelink")
    os.symlink("/", victim / "slash")
    os.makedirs(victim / "ro")
    os.symlink(outside / "sub", victim / "ro" / "inner")
    os.chmod(victim / "ro", 0o500)
    before = fingerprint(outside)
    with Root(str(tmp_path / "root")) as root:
        root.remove(str(victim))
    assert not os.path.lexists(victim)
    assert fingerprint(outside) == before


def test_read_only_never_chmods_through_a_link(tmp_path, outside):
    top = tmp_path / "snap"
    write(str(top / "f"), "x")
    os.symlink(outside / "secret", top / "link")
    os.symlink(outside, top / "dirlink")
    before = fingerprint(outside)
    with Root(str(tmp_path)) as root, root.folder(str(top)) as fd:
        tree.make_read_only(fd)
    assert not os.stat(top / "f").st_mode & 0o222
    assert fingerprint(outside) == before


def test_copy_keeps_links_as_links_skips_devices_drops_set_id_and_keeps_holes(tmp_path, outside):
    model = tmp_path / "model"
    write(str(model / "tool"), "#!/bin/sh\n")
    os.chmod(model / "tool", 0o6755)
    os.symlink(outside, model / "out")
    os.symlink(outside / "secret", model / "secret")
    os.mkfifo(model / "pipe")
    os.mknod(model / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with open(model / "sparse", "wb") as f:
        f.truncate(64 << 20)
        f.seek(32 << 20)
        f.write(b"middle")
    before = fingerprint(outside)
    dst = tmp_path / "space"
    tree.copy_tree(str(model), str(dst))
    assert os.readlink(dst / "out") == str(outside) and os.readlink(dst / "secret") == str(outside / "secret")
    assert stat.S_IMODE(os.lstat(dst / "tool").st_mode) == 0o755
    assert stat.S_ISFIFO(os.lstat(dst / "pipe").st_mode) and not os.path.lexists(dst / "null")
    assert os.path.getsize(dst / "sparse") == 64 << 20
    assert os.stat(dst / "sparse").st_blocks * 512 < 1 << 20   # the holes stayed holes
    assert (dst / "sparse").read_bytes()[32 << 20:(32 << 20) + 6] == b"middle"
    assert fingerprint(outside) == before


def test_copy_replaces_a_link_in_the_destination_instead_of_writing_through_it(tmp_path, outside):
    model = tmp_path / "model"
    write(str(model / "sub" / "deep"), "from the model")
    write(str(model / "secret"), "from the model")
    dst = tmp_path / "space"
    dst.mkdir()
    os.symlink(outside / "sub", dst / "sub")
    os.symlink(outside / "secret", dst / "secret")
    before = fingerprint(outside)
    tree.copy_tree(str(model), str(dst))
    assert (dst / "sub" / "deep").read_text() == "from the model" and not os.path.islink(dst / "sub")
    assert (dst / "secret").read_text() == "from the model" and not os.path.islink(dst / "secret")
    assert fingerprint(outside) == before


def test_record_folder_replaced_by_a_link_is_refused(local, outside):
    driver, fs = local
    os.symlink(outside, os.path.join(fs.mountpoint, ".pixstor"))
    before = fingerprint(outside)
    with pytest.raises(Unsafe, match="'.pixstor' is a symbolic link"):
        driver.create_fileset(fs, "sas1-a", os.path.join(fs.mountpoint, "a"), "sas1")
    assert fingerprint(outside) == before
    assert not os.path.lexists(os.path.join(fs.mountpoint, "a"))


@pytest.mark.parametrize("change", ["chown", "chmod"])
def test_a_service_folder_that_is_not_the_services_own_is_refused(local, change):
    driver, fs = local
    driver.create_fileset(fs, "sas1-a", os.path.join(fs.mountpoint, "a"), "sas1")
    records = os.path.join(fs.mountpoint, RECORDS)
    if change == "chown":
        os.chown(records, 4321, 4321)
    else:
        os.chmod(records, 0o777)
    with pytest.raises(Unsafe, match="not the service's own folder"):
        driver.list_filesets(fs)


def test_snapshot_folder_swapped_for_a_link_is_refused(local, outside):
    driver, fs = local
    space = os.path.join(fs.mountpoint, "a")
    driver.create_fileset(fs, "sas1-a", space, "sas1")
    write(os.path.join(space, "f"), "x")
    driver.create_snapshot(fs, "sas1-a", "s1")
    os.rename(os.path.join(space, SNAPSHOTS), os.path.join(space, "moved"))
    os.symlink(outside, os.path.join(space, SNAPSHOTS))
    before = fingerprint(outside)
    with pytest.raises(Unsafe, match="symbolic link"):
        driver.create_snapshot(fs, "sas1-a", "s2")
    with pytest.raises(Unsafe, match="symbolic link"):
        driver.delete_snapshot(fs, "sas1-a", "s1")
    driver.delete_fileset(fs, "sas1-a", force=True)   # the link goes as a link
    assert fingerprint(outside) == before
    assert not os.path.lexists(space)


def test_snapshot_folder_made_by_a_member_is_refused(local):
    driver, fs = local
    space = os.path.join(fs.mountpoint, "a")
    driver.create_fileset(fs, "sas1-a", space, "sas1")
    os.mkdir(os.path.join(space, SNAPSHOTS))
    os.chown(os.path.join(space, SNAPSHOTS), 4321, 4321)
    with pytest.raises(Unsafe, match="not the service's own folder"):
        driver.create_snapshot(fs, "sas1-a", "s1")


def test_a_failed_create_takes_back_the_folders_it_made(local, monkeypatch):
    driver, fs = local
    before = fingerprint(fs.mountpoint)

    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(driver, "make_junction", full)
    with pytest.raises(OSError, match="No space left"):
        driver.create_fileset(fs, "sas1-a", os.path.join(fs.mountpoint, "x", "y", "a"), "sas1")
    after = {k: v for k, v in fingerprint(fs.mountpoint).items() if not k.startswith(".pixstor")}
    assert after == before


def test_deleting_a_fileset_whose_parent_became_a_link_touches_nothing(local, outside):
    driver, fs = local
    space = os.path.join(fs.mountpoint, "proj", "a")
    driver.create_fileset(fs, "sas1-a", space, "sas1")
    os.rename(os.path.join(fs.mountpoint, "proj"), os.path.join(fs.mountpoint, "elsewhere"))
    os.symlink(outside, os.path.join(fs.mountpoint, "proj"))
    os.mkdir(os.path.join(outside, "a"))
    before = fingerprint(outside)
    with pytest.raises(Unsafe, match="'proj' is a symbolic link"):
        driver.delete_fileset(fs, "sas1-a", force=True)
    assert fingerprint(outside) == before


def test_a_watched_walk_stops_when_its_check_raises(tmp_path):
    from service.storage.confined import watch
    model = tmp_path / "model"
    for n in range(50):
        write(str(model / f"d{n}" / "f"), "x")
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 10:
            raise RuntimeError("the run lost its job")
    watch(check)
    try:
        with pytest.raises(RuntimeError, match="lost its job"):
            tree.copy_tree(str(model), str(tmp_path / "copy"))
    finally:
        watch(None)
    assert len(os.listdir(tmp_path / "copy")) < 50   # stopped part-way, not at the end
