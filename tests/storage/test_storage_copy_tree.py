"""copy_tree: the one merge-copy every driver uses for templates (and posix snapshots)."""
from __future__ import annotations

import os
import stat

import pytest

from service.storage import MARKER, SNAPSHOTS, StorageError, get_driver
from service.storage import tree
from service.storage.confined import Root
from tests.storage.helpers import make_settings, read, write

OLD = 1_600_000_000_123_456_789  # a fixed mtime in ns, far from "now"


@pytest.fixture
def driver(tmp_path):
    return get_driver(make_settings("posix", str(tmp_path / "mmfs1")))


@pytest.fixture
def model(tmp_path):
    root = tmp_path / "model"
    write(str(root / "maya" / "scenes" / "shot.ma"), "scene")
    write(str(root / "bin" / "render.sh"), "#!/bin/sh\n")
    os.chmod(root / "bin" / "render.sh", 0o4750)
    os.chmod(root / "maya", 0o2775)
    write(str(root / "assets" / MARKER), "sata1\n")
    write(str(root / "assets" / "readme.txt"), "assets")
    write(str(root / SNAPSHOTS / "old" / "stale.txt"), "not part of a template")
    os.symlink("maya/scenes", root / "scenes")                 # relative, to a folder
    os.symlink("/definitely/not/here", root / "dangling")       # absolute, to nothing
    os.mkfifo(root / "pipe")
    for path in (root / "maya" / "scenes" / "shot.ma", root / "maya" / "scenes", root / "maya"):
        os.utime(path, ns=(OLD, OLD))
    os.utime(root / "scenes", ns=(OLD, OLD), follow_symlinks=False)
    return root


def snapshot_of(top) -> dict[str, tuple]:
    """Everything copy_tree promises to keep, per relative path."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            mode = None if link else stat.S_IMODE(st.st_mode)
            found[os.path.relpath(path, top)] = (stat.S_IFMT(st.st_mode), mode, st.st_mtime_ns,
                                                 st.st_uid, st.st_gid, link)
    return found


def test_copies_folders_files_modes_mtimes_and_symlinks_as_links(driver, model, tmp_path):
    dst = tmp_path / "space"
    driver.copy_tree(str(model), str(dst))
    expected = {k: v for k, v in snapshot_of(model).items()
                if not k.startswith(SNAPSHOTS) and not k.endswith(MARKER)}
    # set-id bits of files are dropped (a set-uid program would run as its owner for anyone)
    kind, _, *rest = expected["bin/render.sh"]
    expected["bin/render.sh"] = (kind, 0o750, *rest)
    assert snapshot_of(dst) == expected
    assert os.readlink(dst / "dangling") == "/definitely/not/here"
    assert not os.lstat(dst / "bin" / "render.sh").st_mode & stat.S_ISUID
    assert os.lstat(dst / "maya").st_mtime_ns == OLD
    assert not os.path.lexists(dst / SNAPSHOTS) and not os.path.lexists(dst / "assets" / MARKER)


def test_keeps_owners_when_run_as_root(driver, model, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing owners needs root")
    os.chown(model / "maya" / "scenes" / "shot.ma", 4242, 4343)
    os.chown(model / "scenes", 4242, 4343, follow_symlinks=False)
    dst = tmp_path / "space"
    driver.copy_tree(str(model), str(dst))
    assert (os.lstat(dst / "maya" / "scenes" / "shot.ma").st_uid,
            os.lstat(dst / "maya" / "scenes" / "shot.ma").st_gid) == (4242, 4343)
    assert os.lstat(dst / "scenes").st_uid == 4242


def test_merges_into_a_space_with_dependent_filesets_and_runs_twice(driver, model, tmp_path):
    dst = tmp_path / "space"
    write(str(dst / "assets" / MARKER), "sata1\n")      # the dependent fileset made beforehand
    write(str(dst / "user-data.txt"), "already here")
    driver.copy_tree(str(model), str(dst))
    first = snapshot_of(dst)
    driver.copy_tree(str(model), str(dst))
    assert snapshot_of(dst) == first
    assert read(str(dst / "assets" / MARKER)) == b"sata1\n"
    assert read(str(dst / "user-data.txt")) == b"already here"
    assert read(str(dst / "assets" / "readme.txt")) == b"assets"


def test_repairs_what_differs_from_the_model(driver, model, tmp_path):
    dst = tmp_path / "space"
    driver.copy_tree(str(model), str(dst))
    write(str(dst / "maya" / "scenes" / "shot.ma"), "half a copy")   # cut short by a crash
    os.unlink(dst / "scenes")
    os.makedirs(dst / "scenes")                                    # a folder where a link was
    driver.copy_tree(str(model), str(dst))
    assert read(str(dst / "maya" / "scenes" / "shot.ma")) == b"scene"
    assert os.readlink(dst / "scenes") == "maya/scenes"


def test_read_only_model_folders_copy_twice(driver, tmp_path):
    src = tmp_path / "model"
    write(str(src / "locked" / "file"), "x")
    os.chmod(src / "locked", 0o555)
    dst = tmp_path / "space"
    driver.copy_tree(str(src), str(dst))
    driver.copy_tree(str(src), str(dst))
    assert stat.S_IMODE(os.lstat(dst / "locked").st_mode) == 0o555
    assert read(str(dst / "locked" / "file")) == b"x"


def test_refuses_a_missing_source(driver, tmp_path):
    with pytest.raises(StorageError, match="not a directory"):
        driver.copy_tree(str(tmp_path / "nope"), str(tmp_path / "dst"))
    assert not os.path.exists(tmp_path / "dst")


def test_read_only_then_writable_round_trip(tmp_path):
    top = tmp_path / "snap"
    write(str(top / "a" / "f"), "x")
    os.symlink("a/f", top / "link")
    with Root(str(tmp_path)) as root:
        with root.folder(str(top)) as fd:
            tree.make_read_only(fd)
        assert not os.lstat(top / "a" / "f").st_mode & 0o222 and not os.lstat(top / "a").st_mode & 0o222
        root.remove(str(top))
    assert not os.path.lexists(top)


def test_keeps_set_id_bits_when_configured(model, tmp_path):
    settings = make_settings("posix", str(tmp_path / "mmfs1"))
    settings.keep_setid = True
    get_driver(settings).copy_tree(str(model), str(tmp_path / "space"))
    assert stat.S_IMODE(os.stat(tmp_path / "space" / "bin" / "render.sh").st_mode) == 0o4750


def test_keeps_extended_attributes(driver, model, tmp_path):
    os.setxattr(model / "maya" / "scenes" / "shot.ma", "user.pixstor.shot", b"010")
    os.setxattr(model / "maya", "user.pixstor.dept", b"anim")
    dst = tmp_path / "space"
    driver.copy_tree(str(model), str(dst))
    assert os.getxattr(dst / "maya" / "scenes" / "shot.ma", "user.pixstor.shot") == b"010"
    assert os.getxattr(dst / "maya", "user.pixstor.dept") == b"anim"


def test_keeps_posix_acls(driver, model, tmp_path):
    import shutil
    import subprocess

    from tests.harness import require
    setfacl = shutil.which("setfacl")
    require(setfacl, "setfacl is not installed (make test installs the acl package with apt as root)")
    subprocess.run([setfacl, "-m", "u:4242:rwx", str(model / "maya")], check=True)
    subprocess.run([setfacl, "-d", "-m", "g:4343:rx", str(model / "maya")], check=True)
    dst = tmp_path / "space"
    driver.copy_tree(str(model), str(dst))
    acl = subprocess.run(["getfacl", "-cp", str(dst / "maya")], capture_output=True, text=True, check=True).stdout
    assert "user:4242:rwx" in acl and "default:group:4343:r-x" in acl
    assert stat.S_IMODE(os.lstat(dst / "maya").st_mode) == stat.S_IMODE(os.lstat(model / "maya").st_mode)
