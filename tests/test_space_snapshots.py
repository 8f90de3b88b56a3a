"""New spaces from snapshots, and reverts of spaces to their snapshots (issue 13, items 3-4),
against a real server on posix and on a loop-mounted btrfs."""
import os
import signal
import stat
import subprocess

import pytest

from tests.harness import CJ, Server, cj_body, data_of, wait_for, wait_status

MiB = 1 << 20
QUICK = {"PIXSTOR_QUEUE_HEARTBEAT": "1", "PIXSTOR_QUEUE_STALE_AFTER": "3"}


@pytest.fixture(params=["posix", "btrfs"])
def srv(request, tmp_path):
    if request.param == "btrfs":
        server = Server(tmp_path, driver="btrfs", mountpoint=request.getfixturevalue("btrfs_mount"))
    else:
        server = Server(tmp_path)
    server.driver = request.param
    server.start()
    yield server
    server.stop()


def first_href(session, url, where):
    return session.get(url, params={"where": where}).json()["collection"]["items"][0]["href"]


def create_space(session, srv, name, **values):
    """POST a space; the answer."""
    return session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
        name=name, relativepath=f"p/{name}", size=1 << 30,
        exposers=first_href(session, srv.url + "/exposers/", '{"type": "gpfsnative"}'),
        profile=first_href(session, srv.url + "/profiles/", '{"name": "mmfs1-sas1"}'), **values))


def make_space(session, srv, name, **values):
    answer = create_space(session, srv, name, **values)
    assert answer.status_code == 202, answer.text
    href = answer.json()["collection"]["items"][0]["href"]
    assert wait_status(session, srv.url + href, timeout=60) == "ACTIVE", session.get(srv.url + href).text
    return href


def make_snapshot(session, srv, space, name):
    answer = session.post(srv.url + "/snapshots/", headers=CJ,
                          json=cj_body(name=name, type="gpfsspacesnapshot", space=space))
    assert answer.status_code == 202, answer.text
    href = answer.json()["collection"]["items"][0]["href"]
    assert wait_status(session, srv.url + href, timeout=60) == "ACTIVE"
    return href


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def content(root):
    """{relative path: (kind, mode, data or link target)} of a tree, .snapshots left out."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".snapshots")
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", None, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            else:
                with open(path, "rb") as f:
                    found[rel] = ("file", stat.S_IMODE(st.st_mode), f.read())
    return found


def fill(space_path, outside):
    """Files, folders, a link to a folder outside the service's roots, modes."""
    write(space_path / "shots" / "010" / "plate.txt", "plate v1\n")
    write(space_path / "notes.txt", "notes v1\n")
    (space_path / "data.bin").write_bytes(os.urandom(8 * MiB))
    os.chmod(space_path / "notes.txt", 0o640)
    os.symlink(str(outside), space_path / "elsewhere")


def revert(session, srv, space, snapshot, force=False):
    return session.post(srv.url + space + "/revert", params={"force": "true"} if force else None,
                        json={"snapshot": snapshot})


def job_of(session, srv, answer):
    job = answer.headers["Link"].split(">", 1)[0].lstrip("<")
    assert wait_status(session, job, wanted=("COMPLETED", "ERRORED"), timeout=60) == "COMPLETED", \
        session.get(job).text + session.get(job + "/stderr").text
    return job


def qgroup(path):
    """(referenced, exclusive) bytes of the subvolume at `path`, after a sync."""
    subprocess.run(["btrfs", "filesystem", "sync", str(path)], check=True, capture_output=True)
    rootid = subprocess.run(["btrfs", "inspect-internal", "rootid", str(path)], check=True, capture_output=True,
                            text=True).stdout.strip()
    shown = subprocess.run(["btrfs", "qgroup", "show", "-reF", "--raw", str(path)], check=True, capture_output=True,
                           text=True).stdout
    row = next(line.split() for line in shown.splitlines() if line.split()[:1] == [f"0/{rootid}"])
    return int(row[1]), int(row[2])


def test_a_new_space_starts_with_the_snapshots_content(srv, tmp_path):
    session = srv.session()
    outside = tmp_path / "outside"
    write(outside / "secret", "outside\n")
    source = make_space(session, srv, "source")
    fill(srv.mountpoint / "p" / "source", outside)
    expected = content(srv.mountpoint / "p" / "source")
    snapshot = make_snapshot(session, srv, source, "before")
    write(srv.mountpoint / "p" / "source" / "notes.txt", "changed after the snapshot\n")
    snapshot_path = srv.mountpoint / "p" / "source" / ".snapshots" / "before"

    template_fields = [d["name"] for d in session.get(srv.url + "/spaces/").json()["collection"]["template"]["data"]]
    assert "source_snapshot" not in template_fields
    template = session.post(srv.url + "/templates/", headers=CJ, json=cj_body(
        name="empty", type="filesystemtemplate", template_location=str(srv.folder / "models")))
    assert template.status_code == 202, template.text
    both = create_space(session, srv, "both", source_snapshot=snapshot,
                        templates=template.json()["collection"]["items"][0]["href"])
    assert both.status_code == 422, both.text
    assert "not both" in both.json()["collection"]["error"]["details"]["source_snapshot"]

    copy = make_space(session, srv, "copy", source_snapshot=snapshot)
    assert data_of(session.get(srv.url + copy).json())["source_snapshot"] == snapshot
    copy_path = srv.mountpoint / "p" / "copy"
    assert content(copy_path) == expected
    assert (copy_path / "notes.txt").read_text() == "notes v1\n"
    assert os.readlink(copy_path / "elsewhere") == str(outside)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert not (copy_path / ".snapshots").exists()
    if srv.driver == "btrfs":
        referenced, exclusive = qgroup(copy_path)
        assert referenced >= 8 * MiB
        assert exclusive < 1 * MiB, f"{exclusive} bytes of the copy are its own"

    # the snapshot goes: the copy no longer names it
    assert session.delete(srv.url + snapshot).status_code == 202
    assert wait_status(session, srv.url + snapshot, wanted=(), timeout=30) is None
    assert data_of(session.get(srv.url + copy).json())["source_snapshot"] is None


def test_revert_needs_force_when_the_space_changed_and_then_holds_the_snapshot(srv, tmp_path):
    session = srv.session()
    outside = tmp_path / "outside"
    write(outside / "secret", "outside\n")
    space = make_space(session, srv, "s")
    path = srv.mountpoint / "p" / "s"
    fill(path, outside)
    expected = content(path)
    snapshot = make_snapshot(session, srv, space, "before")

    unchanged = revert(session, srv, space, snapshot)
    assert unchanged.status_code == 202, unchanged.text
    assert unchanged.headers["Location"].endswith(space + '?projection={"status":1}')
    job_of(session, srv, unchanged)
    assert content(path) == expected

    write(path / "shots" / "010" / "plate.txt", "plate v2\n")
    write(path / "added" / "new.txt", "added after the snapshot\n")
    os.unlink(path / "notes.txt")
    # a folder swapped for a link to outside: the revert removes the link, never what it names
    os.rename(path / "shots", path / "shots-moved")
    os.symlink(str(outside), path / "shots")
    refused = revert(session, srv, space, snapshot)
    assert refused.status_code == 409, refused.text
    assert "changed since snapshot before was taken" in refused.json()["collection"]["error"]["message"]
    assert "?force=true" in refused.json()["collection"]["error"]["message"]
    assert (path / "added" / "new.txt").exists()

    forced = revert(session, srv, space, snapshot, force=True)
    assert forced.status_code == 202, forced.text
    job = job_of(session, srv, forced)
    assert content(path) == expected
    assert not (path / "added").exists()
    assert (path / "shots" / "010" / "plate.txt").read_text() == "plate v1\n"
    kept_modes = [] if srv.driver == "btrfs" else [".before.modes"]   # posix: the modes beside the snapshot
    assert sorted(os.listdir(path / ".snapshots")) == kept_modes + ["before"]
    assert sorted(os.listdir(outside)) == ["secret"]
    assert "holds the content of snapshot before" in session.get(job).text
    assert not os.listdir(srv.mountpoint / ".pixstor" / "reverts")


def assert_read_only(srv, snapshot):
    """btrfs: a read-only subvolume, that even root cannot write; posix: no write bit on any
    entry (root ignores them, so the bits are checked)."""
    if srv.driver == "btrfs":
        with pytest.raises(OSError, match="Read-only file system"):
            (snapshot / "tamper").write_text("tamper\n")
    else:
        modes = [os.lstat(os.path.join(d, n)).st_mode for d, ds, fs in os.walk(snapshot) for n in ds + fs]
        assert modes and not any(m & 0o222 for m in modes + [os.lstat(snapshot).st_mode])


def test_copies_of_a_snapshot_have_the_modes_the_space_had(srv):
    """posix takes write permission off a snapshot's entries and keeps their modes beside it;
    btrfs's read-only subvolume keeps them itself. A space made from the snapshot, and the
    space reverted to it, have the modes the space had; the snapshot stays read-only."""
    session = srv.session()
    # permissions without the set-group-id bit: securing the space again after the revert (as every
    # job that changes it does) leaves its folders' modes as they are
    space = make_space(session, srv, "s", permissions="0770")
    path = srv.mountpoint / "p" / "s"
    write(path / "shared" / "plate.txt", "plate\n")
    write(path / "private" / "run.sh", "#!/bin/sh\n")
    for rel, mode in (("shared/plate.txt", 0o640), ("private/run.sh", 0o755), ("shared", 0o2770),
                      ("private", 0o750)):
        os.chmod(path / rel, mode)
    before = content(path)
    assert {rel: mode for rel, (_, mode, _) in before.items()} == {
        "shared": 0o2770, "private": 0o750, "shared/plate.txt": 0o640, "private/run.sh": 0o755}
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o770     # the space's permissions
    snapshot = make_snapshot(session, srv, space, "before")
    snap = path / ".snapshots" / "before"
    taken = content(snap)
    assert_read_only(srv, snap)

    # permissions without the set-group-id bit: securing the new space leaves its folders' modes as they are
    copy = make_space(session, srv, "copy", source_snapshot=snapshot, permissions="0770")
    assert content(srv.mountpoint / "p" / "copy") == before

    os.chmod(path / "private", 0o700)
    os.chmod(path / "shared" / "plate.txt", 0o600)
    job_of(session, srv, revert(session, srv, space, snapshot, force=True))
    assert content(path) == before
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o770
    assert content(snap) == taken
    assert_read_only(srv, snap)


def test_revert_takes_a_snapshot_of_the_space_only(srv):
    session = srv.session()
    space = make_space(session, srv, "s")
    other = make_space(session, srv, "other")
    theirs = make_snapshot(session, srv, other, "theirs")
    answer = revert(session, srv, space, theirs)
    assert answer.status_code == 422, answer.text
    assert answer.json()["collection"]["error"]["details"] == {
        "snapshot": "snapshot theirs is not a snapshot of space s"}
    missing = revert(session, srv, space, "/snapshots/nope")
    assert missing.status_code == 422
    assert missing.json()["collection"]["error"]["details"] == {"snapshot": "no snapshots item /snapshots/nope"}
    reader = srv.session("reader", "reader-pass")
    assert reader.post(srv.url + space + "/revert", json={"snapshot": theirs}).status_code == 405


def test_a_revert_killed_halfway_leaves_the_old_content_and_a_rerun_finishes_it(tmp_path):
    """posix builds the snapshot's content aside and swaps it in: a worker SIGKILLed while it
    builds leaves the space as it was; the sweeper queues the job again and the next worker
    finishes the revert."""
    srv = Server(tmp_path, worker=False, env=QUICK).start()
    try:
        session = srv.session()
        path = srv.mountpoint / "p" / "big"
        with srv.standalone_worker("first") as worker:
            space = make_space(session, srv, "big")
            for folder in range(40):
                for number in range(250):
                    write(path / f"f{folder:02}" / f"{number:03}.txt", f"{folder} {number} v1\n")
            expected = content(path)
            snapshot = make_snapshot(session, srv, space, "before")
            write(path / "f00" / "000.txt", "changed\n")
            write(path / "added.txt", "added\n")
            before = content(path)
            answer = revert(session, srv, space, snapshot, force=True)
            assert answer.status_code == 202, answer.text
            aside = srv.mountpoint / ".pixstor" / "reverts"
            built = lambda: [p for p in aside.rglob("*.txt")] if aside.exists() else []  # noqa: E731
            wait_for(lambda: len(built()) >= 500, timeout=60, interval=0.005, what="the revert to build aside")
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        assert len(built()) < 10_000, "the revert was not cut short halfway"
        assert content(path) == before
        with srv.standalone_worker("second"):
            job = answer.headers["Link"].split(">", 1)[0].lstrip("<")
            assert wait_status(session, job, wanted=("COMPLETED", "ERRORED"), timeout=90) == "COMPLETED", \
                session.get(job + "/stderr").text
        assert data_of(session.get(job).json())["queued_by"] == "system:sweeper"
        assert content(path) == expected
        assert data_of(session.get(srv.url + space).json())["status"] == "ACTIVE"
    finally:
        srv.stop()


def test_a_revert_keeps_the_spaces_current_permissions(srv):
    """The snapshot's root had the mode of its day; after a revert the space has its own again."""
    session = srv.session()
    space = make_space(session, srv, "kept", permissions="2770")
    path = srv.mountpoint / "p" / "kept"
    write(path / "work" / "a.txt", "a\n")
    snapshot = make_snapshot(session, srv, space, "old-mode")
    changed = session.patch(srv.url + space, headers=CJ, json=cj_body(permissions="2750"))
    assert changed.status_code == 202, changed.text
    job_of(session, srv, changed)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o2750
    job_of(session, srv, revert(session, srv, space, snapshot, force=True))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o2750
    assert (path / "work" / "a.txt").read_text() == "a\n"
