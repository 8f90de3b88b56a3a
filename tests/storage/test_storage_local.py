"""Behaviour shared by the drivers that keep filesets on this machine: posix, and btrfs on a
loop-mounted image (those runs carry the `btrfs` mark)."""
from __future__ import annotations

import os
import stat

import pytest

from service.storage.confined import Root
from service.storage.records import Record, RecordStore

from service.storage import MARKER, SNAPSHOTS, NotEmpty, StorageError, get_driver

from tests.storage.helpers import make_settings, read, write

GiB = 1 << 30


@pytest.fixture
def space(local):
    """A space's independent fileset at {mountpoint}/projects/sleepy_snake."""
    driver, fs = local
    path = os.path.join(fs.mountpoint, "projects", "sleepy_snake")
    driver.create_fileset(fs, "sas1-sleepy-snake", path, "sas1")
    return driver, fs, path


# -- create ---------------------------------------------------------------------------------
def test_create_makes_the_junction_and_missing_parents(space):
    driver, fs, path = space
    assert os.path.isdir(path)
    assert driver.fileset_at(fs, path) == "sas1-sleepy-snake"
    assert driver.fileset_path(fs, "sas1-sleepy-snake") == path
    assert driver.fileset_at(fs, os.path.dirname(path)) is None
    assert driver.fileset_path(fs, "nope") is None


def test_create_again_is_a_no_op_that_keeps_content(space):
    driver, fs, path = space
    write(os.path.join(path, "notes.txt"), "keep me")
    driver.create_fileset(fs, "sas1-sleepy-snake", path, "sas1")
    assert read(os.path.join(path, "notes.txt")) == b"keep me"
    assert [f.name for f in driver.list_filesets(fs)] == ["sas1-sleepy-snake"]


def test_create_refuses_a_path_holding_something_else(local):
    driver, fs = local
    occupied = write(os.path.join(fs.mountpoint, "taken", "file"))
    with pytest.raises(StorageError, match="not empty"):
        driver.create_fileset(fs, "sas1-a", os.path.dirname(occupied), "sas1")
    with pytest.raises(StorageError, match="not a directory"):
        driver.create_fileset(fs, "sas1-b", occupied, "sas1")
    assert os.path.isfile(occupied) and driver.list_filesets(fs) == []


def test_create_adopts_an_empty_folder_left_by_an_interrupted_attempt(local):
    driver, fs = local
    path = os.path.join(fs.mountpoint, "half")
    os.makedirs(path)
    driver.create_fileset(fs, "sas1-half", path, "sas1")
    assert driver.fileset_at(fs, path) == "sas1-half"


def test_create_refuses_another_filesets_junction_and_a_second_path(space):
    driver, fs, path = space
    with pytest.raises(StorageError, match="junction of fileset sas1-sleepy-snake"):
        driver.create_fileset(fs, "sas1-other", path, "sas1")
    with pytest.raises(StorageError, match="already exists, linked at"):
        driver.create_fileset(fs, "sas1-sleepy-snake", os.path.join(fs.mountpoint, "elsewhere"), "sas1")


@pytest.mark.parametrize("bad", ["relative/path", "/outside/the/filesystem", "{mnt}", "{mnt}/.pixstor/x"])
def test_create_refuses_paths_outside_the_filesystem(local, bad):
    driver, fs = local
    with pytest.raises(StorageError):
        driver.create_fileset(fs, "sas1-x", bad.format(mnt=fs.mountpoint), "sas1")


@pytest.mark.parametrize("name", ["-f", "a/b", "", ".hidden", "x" * 300])
def test_create_refuses_names_that_are_not_plain_words(local, name):
    driver, fs = local
    with pytest.raises(StorageError, match="invalid fileset name"):
        driver.create_fileset(fs, name, os.path.join(fs.mountpoint, "x"), "sas1")


def test_dependent_fileset_gets_a_marker_naming_its_pool(space):
    driver, fs, path = space
    assets = os.path.join(path, "assets")
    driver.create_fileset(fs, "sata1-sleepy-snake-8b234c97", assets, "sata1", parent="sas1-sleepy-snake")
    driver.create_fileset(fs, "sata1-sleepy-snake-8b234c97", assets, "sata1", parent="sas1-sleepy-snake")
    assert read(os.path.join(assets, MARKER)).strip() == b"sata1"
    assert driver.fileset_at(fs, assets) == "sata1-sleepy-snake-8b234c97"
    assert driver.model_filesets(fs, path) == {"assets": "sata1"}  # a space looks like a model


def test_dependent_fileset_needs_an_independent_parent_around_it(space):
    driver, fs, path = space
    with pytest.raises(StorageError, match="parent fileset ghost does not exist"):
        driver.create_fileset(fs, "sata1-d", os.path.join(path, "d"), "sata1", parent="ghost")
    with pytest.raises(StorageError, match="not inside parent"):
        driver.create_fileset(fs, "sata1-d", os.path.join(fs.mountpoint, "d"), "sata1",
                              parent="sas1-sleepy-snake")
    driver.create_fileset(fs, "sata1-d", os.path.join(path, "d"), "sata1", parent="sas1-sleepy-snake")
    with pytest.raises(StorageError, match="itself dependent"):
        driver.create_fileset(fs, "sata1-e", os.path.join(path, "d", "e"), "sata1", parent="sata1-d")


# -- quota and usage ------------------------------------------------------------------------
def test_quota_reads_back_what_was_set(space):
    driver, fs, _ = space
    driver.set_quota(fs, "sas1-sleepy-snake", 4 * GiB, 3865470566)
    assert driver.quota(fs, "sas1-sleepy-snake") == (4 * GiB, 3865470566)
    driver.set_quota(fs, "sas1-sleepy-snake", 4 * GiB, 3865470566)  # again: same answer
    assert driver.quota(fs, "sas1-sleepy-snake") == (4 * GiB, 3865470566)


def test_quota_refuses_nonsense_and_unknown_filesets(space):
    driver, fs, _ = space
    with pytest.raises(StorageError, match="above hard limit"):
        driver.set_quota(fs, "sas1-sleepy-snake", 10, 20)
    with pytest.raises(StorageError, match=">= 0"):
        driver.set_quota(fs, "sas1-sleepy-snake", -1, 0)
    with pytest.raises(StorageError, match="does not exist"):
        driver.set_quota(fs, "nope", 10, 5)
    with pytest.raises(StorageError, match="does not exist"):
        driver.usage(fs, "nope")


def test_usage_measures_the_filesets_own_bytes(space):
    driver, fs, path = space
    write(os.path.join(path, "a.bin"), b"a" * 300_000)
    write(os.path.join(path, "sub", "b.bin"), b"b" * 200_000)
    os.symlink("/etc/passwd", os.path.join(path, "link"))  # not followed
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "dep"), "sata1", parent="sas1-sleepy-snake")
    write(os.path.join(path, "dep", "c.bin"), b"c" * 400_000)  # charged to the dependent
    used = driver.usage(fs, "sas1-sleepy-snake")
    assert 500_000 <= used < 500_000 + 256 * 1024  # btrfs adds its metadata
    assert 400_000 <= driver.usage(fs, "sata1-dep") < 400_000 + 256 * 1024


# -- holds_data and delete ------------------------------------------------------------------
def test_holds_data_ignores_markers_folders_and_snapshots(space):
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    os.makedirs(os.path.join(path, "maya", "scenes"))
    driver.create_snapshot(fs, "sas1-sleepy-snake", "empty")
    assert not driver.holds_data(fs, "sas1-sleepy-snake")
    write(os.path.join(path, "assets", "rig.ma"))
    assert driver.holds_data(fs, "sas1-sleepy-snake")   # a dependent's data is the space's data
    assert driver.holds_data(fs, "sata1-dep")
    assert not driver.holds_data(fs, "nope")


def test_holds_data_counts_a_symlink(space):
    driver, fs, path = space
    os.symlink("nowhere", os.path.join(path, "dangling"))
    assert driver.holds_data(fs, "sas1-sleepy-snake")


def test_delete_refuses_data_without_force_and_removes_nothing(space):
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    data = write(os.path.join(path, "assets", "model.obj"), "mesh")
    with pytest.raises(NotEmpty):
        driver.delete_fileset(fs, "sas1-sleepy-snake")
    assert read(data) == b"mesh"
    assert {f.name for f in driver.list_filesets(fs)} == {"sas1-sleepy-snake", "sata1-dep"}


def test_forced_delete_removes_dependents_snapshots_and_data(space):
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    write(os.path.join(path, "assets", "model.obj"), "mesh")
    driver.create_snapshot(fs, "sas1-sleepy-snake", "before")
    driver.delete_fileset(fs, "sas1-sleepy-snake", force=True)
    assert not os.path.lexists(path)
    assert driver.list_filesets(fs) == []
    driver.delete_fileset(fs, "sas1-sleepy-snake", force=True)  # retry after success: no-op
    # the create made the parent folder: it goes with the fileset once empty
    assert not os.path.lexists(os.path.dirname(path))


def test_delete_keeps_parent_folders_it_did_not_make(local):
    driver, fs = local
    parent = os.path.join(fs.mountpoint, "kept")
    os.makedirs(parent)
    driver.create_fileset(fs, "sas1-inside", os.path.join(parent, "inside"), "sas1")
    driver.delete_fileset(fs, "sas1-inside")
    assert os.listdir(parent) == []


def test_delete_of_an_empty_fileset_needs_no_force(space):
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    os.makedirs(os.path.join(path, "nuke"))
    driver.delete_fileset(fs, "sas1-sleepy-snake")
    assert not os.path.lexists(path) and driver.list_filesets(fs) == []


def test_filesets_never_overlap(space):
    driver, fs, path = space
    with pytest.raises(StorageError, match="lies inside fileset sas1-sleepy-snake"):
        driver.create_fileset(fs, "sas1-inner", os.path.join(path, "inner"), "sas1")
    with pytest.raises(StorageError, match="would hold fileset sas1-sleepy-snake"):
        driver.create_fileset(fs, "sas1-outer", os.path.dirname(path), "sas1")
    assert [f.name for f in driver.list_filesets(fs)] == ["sas1-sleepy-snake"]


def test_delete_refuses_to_take_another_independent_fileset_along(space):
    driver, fs, path = space
    inner = os.path.join(path, "inner")
    # one made by hand, around the service: its record names no parent
    os.makedirs(inner)
    with Root(fs.mountpoint) as root:
        RecordStore(root).put(Record(name="sas1-inner", path=inner, pool="sas1"))
    with pytest.raises(StorageError, match="sas1-inner are linked inside it"):
        driver.delete_fileset(fs, "sas1-sleepy-snake", force=True)
    assert os.path.isdir(inner)


# -- snapshots ------------------------------------------------------------------------------
def test_snapshot_keeps_old_content_and_is_read_only(space):
    driver, fs, path = space
    live = write(os.path.join(path, "shot.nk"), "version 1")
    snap = driver.create_snapshot(fs, "sas1-sleepy-snake", "snake-snap")
    assert snap == os.path.join(path, SNAPSHOTS, "snake-snap")
    write(live, "version 2")
    assert read(os.path.join(snap, "shot.nk")) == b"version 1"
    if driver.name == "btrfs":  # a read-only subvolume: even root cannot write
        with pytest.raises(OSError, match="Read-only file system"):
            write(os.path.join(snap, "shot.nk"), "tamper")
    else:  # a read-only copy: no write bit anywhere (root ignores them, so check the bits)
        modes = [os.lstat(os.path.join(d, n)).st_mode for d, ds, fs_ in os.walk(snap) for n in ds + fs_]
        assert modes and not any(m & 0o222 for m in modes + [os.lstat(snap).st_mode])


def test_snapshot_again_returns_the_same_snapshot_untouched(space):
    driver, fs, path = space
    live = write(os.path.join(path, "f"), "old")
    first = driver.create_snapshot(fs, "sas1-sleepy-snake", "s1")
    write(live, "new")
    assert driver.create_snapshot(fs, "sas1-sleepy-snake", "s1") == first
    assert read(os.path.join(first, "f")) == b"old"


def test_snapshot_includes_dependent_filesets(space):
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    write(os.path.join(path, "assets", "rig.ma"), "rig 1")
    snap = driver.create_snapshot(fs, "sas1-sleepy-snake", "s")
    write(os.path.join(path, "assets", "rig.ma"), "rig 2")
    assert read(os.path.join(snap, "assets", "rig.ma")) == b"rig 1"
    driver.delete_snapshot(fs, "sas1-sleepy-snake", "s")
    assert not os.path.lexists(snap)


def test_snapshot_delete_and_missing_snapshot(space):
    driver, fs, path = space
    write(os.path.join(path, "f"))
    snap = driver.create_snapshot(fs, "sas1-sleepy-snake", "gone")
    driver.delete_snapshot(fs, "sas1-sleepy-snake", "gone")
    assert not os.path.lexists(snap)
    driver.delete_snapshot(fs, "sas1-sleepy-snake", "gone")
    driver.delete_snapshot(fs, "no-such-fileset", "gone")
    assert os.path.isfile(os.path.join(path, "f"))


def modes(top):
    """{relative path: mode} of a tree, links and .snapshots left out, "." its top."""
    found = {".": os.lstat(top).st_mode & 0o7777}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != SNAPSHOTS]
        for name in dirs + files:
            st = os.lstat(os.path.join(folder, name))
            if not stat.S_ISLNK(st.st_mode):
                found[os.path.relpath(os.path.join(folder, name), top)] = st.st_mode & 0o7777
    return found


def modes_tree(path):
    """Folders 2770 and 0750, files 0640 and 0755, a link, the top 0750: the modes they have."""
    write(os.path.join(path, "shared", "plate.txt"), "plate")
    write(os.path.join(path, "private", "run.sh"), "#!/bin/sh")
    os.symlink("shared", os.path.join(path, "link"))
    for rel, mode in (("shared/plate.txt", 0o640), ("private/run.sh", 0o755), ("shared", 0o2770),
                      ("private", 0o750), (".", 0o750)):
        os.chmod(os.path.join(path, rel), mode)
    return modes(path)


def test_copies_of_a_snapshot_have_the_modes_its_fileset_had(space):
    """posix takes write permission off a snapshot's entries and keeps their modes beside it
    (btrfs: a read-only subvolume keeps them itself): a new fileset from the snapshot, and the
    fileset reverted to it, have the modes it had; the snapshot stays read-only; its delete
    takes the record of modes along."""
    driver, fs, path = space
    before = modes_tree(path)
    snap = driver.create_snapshot(fs, "sas1-sleepy-snake", "s")
    manifest = os.path.join(path, SNAPSHOTS, ".s.modes")
    if driver.name == "posix":
        st = os.lstat(manifest)
        assert (stat.S_ISREG(st.st_mode), st.st_mode & 0o7777, st.st_uid) == (True, 0o600, os.geteuid())
        assert not any(mode & 0o222 for mode in modes(snap).values())
    else:
        assert not os.path.lexists(manifest) and modes(snap) == before
    taken = modes(snap)

    copy = os.path.join(fs.mountpoint, "projects", "copy")
    driver.create_fileset_from_snapshot(fs, "sas1-copy", copy, "sas1", "sas1-sleepy-snake", "s")
    assert modes(copy) == before
    assert os.readlink(os.path.join(copy, "link")) == "shared"

    os.chmod(os.path.join(path, "private"), 0o700)
    os.chmod(os.path.join(path, "shared", "plate.txt"), 0o600)
    write(os.path.join(path, "private", "added"), "added")
    driver.revert_fileset(fs, "sas1-sleepy-snake", "s")
    assert modes(path) == before
    assert modes(snap) == taken
    if driver.name == "btrfs":  # still a read-only subvolume, moved into the reverted content
        with pytest.raises(OSError, match="Read-only file system"):
            write(os.path.join(snap, "tamper"), "tamper")
    assert sorted(os.listdir(os.path.join(path, SNAPSHOTS))) == ([".s.modes", "s"] if driver.name == "posix" else ["s"])

    driver.delete_snapshot(fs, "sas1-sleepy-snake", "s")
    assert os.listdir(os.path.join(path, SNAPSHOTS)) == []


@pytest.fixture
def posix(tmp_path):
    """(posix driver, filesystem): how posix snapshots keep modes (btrfs: bit for bit)."""
    mountpoint = str(tmp_path / "mmfs1")
    os.makedirs(mountpoint)
    driver = get_driver(make_settings("posix", mountpoint))
    return driver, driver.discover()[0]


def test_copies_of_a_posix_snapshot_drop_set_id_bits_of_files_unless_kept(posix):
    driver, fs = posix
    path = os.path.join(fs.mountpoint, "projects", "s")
    driver.create_fileset(fs, "sas1-s", path, "sas1")
    write(os.path.join(path, "tool"), "#!/bin/sh")
    os.chmod(os.path.join(path, "tool"), 0o4755)
    os.chmod(path, 0o2770)
    driver.create_snapshot(fs, "sas1-s", "s")
    dropped, kept = os.path.join(fs.mountpoint, "dropped"), os.path.join(fs.mountpoint, "kept")
    driver.create_fileset_from_snapshot(fs, "sas1-dropped", dropped, "sas1", "sas1-s", "s")
    assert modes(dropped) == {".": 0o2770, "tool": 0o755}
    driver.settings.keep_setid = True
    driver.create_fileset_from_snapshot(fs, "sas1-kept", kept, "sas1", "sas1-s", "s")
    assert modes(kept) == {".": 0o2770, "tool": 0o4755}


def test_a_posix_snapshot_without_its_modes_gives_its_copies_owner_write_back(posix):
    """A snapshot taken before their modes were kept: its copies' folders and files get their
    owner's write permission back (u+w), on top of the snapshot's modes."""
    driver, fs = posix
    path = os.path.join(fs.mountpoint, "projects", "s")
    driver.create_fileset(fs, "sas1-s", path, "sas1")
    modes_tree(path)
    write(os.path.join(path, "frozen"), "read only")
    os.chmod(os.path.join(path, "frozen"), 0o444)
    driver.create_snapshot(fs, "sas1-s", "old")
    os.unlink(os.path.join(path, SNAPSHOTS, ".old.modes"))
    expected = {".": 0o750, "shared": 0o2750, "shared/plate.txt": 0o640, "private": 0o750,
                "private/run.sh": 0o755, "frozen": 0o644}
    copy = os.path.join(fs.mountpoint, "copy")
    driver.create_fileset_from_snapshot(fs, "sas1-copy", copy, "sas1", "sas1-s", "old")
    assert modes(copy) == expected
    driver.revert_fileset(fs, "sas1-s", "old")
    assert modes(path) == expected
    assert not any(mode & 0o222 for mode in modes(os.path.join(path, SNAPSHOTS, "old")).values())


def test_snapshot_of_a_dependent_or_unknown_fileset_is_refused(space):
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    with pytest.raises(StorageError, match="dependent"):
        driver.create_snapshot(fs, "sata1-dep", "s")
    with pytest.raises(StorageError, match="does not exist"):
        driver.create_snapshot(fs, "nope", "s")
    with pytest.raises(StorageError, match="invalid snapshot name"):
        driver.create_snapshot(fs, "sas1-sleepy-snake", "../escape")


# -- templates ------------------------------------------------------------------------------
def test_model_filesets_reads_markers(local, tmp_path):
    driver, fs = local
    model = tmp_path / "project_template"
    write(str(model / "assets" / MARKER), "sata1\n")
    write(str(model / "renders" / MARKER), "")          # no pool named: the first pool
    write(str(model / SNAPSHOTS / "old" / "x" / MARKER), "sata1")  # snapshots are not the model
    os.makedirs(model / "maya")
    assert driver.model_filesets(fs, str(model)) == {"assets": "sata1", "renders": "sas1"}


def test_space_from_template_round_trip(space, tmp_path):
    """What the space job does: dependent filesets first, then the model copied over them."""
    driver, fs, path = space
    model = tmp_path / "model"
    write(str(model / "assets" / MARKER), "sata1")
    write(str(model / "assets" / "models" / "readme.txt"), "models go here")
    os.makedirs(model / "nuke")
    for rel, pool in driver.model_filesets(fs, str(model)).items():
        driver.create_fileset(fs, f"{pool}-sleepy-snake-8b234c97", os.path.join(path, rel), pool,
                              parent="sas1-sleepy-snake")
    driver.copy_tree(str(model), path)
    driver.copy_tree(str(model), path)
    assert read(os.path.join(path, "assets", "models", "readme.txt")) == b"models go here"
    assert os.path.isdir(os.path.join(path, "nuke"))
    assert driver.fileset_at(fs, os.path.join(path, "assets")) == "sata1-sleepy-snake-8b234c97"
    assert read(os.path.join(path, "assets", MARKER)).strip() == b"sata1"


def test_model_outside_every_filesystem(local, tmp_path):
    """The template job passes no filesystem for a model kept elsewhere: markers still count."""
    driver, _ = local
    model = tmp_path / "elsewhere"
    write(str(model / "assets" / MARKER), "sata1\n")
    write(str(model / "cache" / MARKER), "")
    assert driver.model_filesets(None, str(model)) == {"assets": "sata1", "cache": "system"}


def test_filesystem_snapshot_takes_every_fileset_along(space):
    """fileset None: a snapshot of the whole filesystem (gpfsfilesystemsnapshot)."""
    driver, fs, path = space
    driver.create_fileset(fs, "sata1-dep", os.path.join(path, "assets"), "sata1", parent="sas1-sleepy-snake")
    write(os.path.join(fs.mountpoint, "top.txt"), "top 1")
    write(os.path.join(path, "assets", "rig.ma"), "rig 1")
    snap = driver.create_snapshot(fs, None, "fs1")
    assert snap == os.path.join(fs.mountpoint, SNAPSHOTS, "fs1")
    assert driver.create_snapshot(fs, None, "fs1") == snap
    write(os.path.join(fs.mountpoint, "top.txt"), "top 2")
    write(os.path.join(path, "assets", "rig.ma"), "rig 2")
    assert read(os.path.join(snap, "top.txt")) == b"top 1"
    assert read(os.path.join(snap, "projects", "sleepy_snake", "assets", "rig.ma")) == b"rig 1"
    driver.delete_snapshot(fs, None, "fs1")
    driver.delete_snapshot(fs, None, "fs1")
    assert not os.path.lexists(snap) and read(os.path.join(path, "assets", "rig.ma")) == b"rig 2"
