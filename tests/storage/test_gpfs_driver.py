"""gpfs driver: the exact command lines of every operation, and failures, run against the fake
mm* commands in fake_mmcommands/ (they record their arguments and answer from prepared files)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from service.storage import Filesystem, NotEmpty, StorageError, get_driver
from tests.storage.helpers import make_settings, write

FAKE = Path(__file__).parent / "fake_mmcommands"
SAMPLES = Path(__file__).parent / "gpfs_samples"
SNAKE = "sas1-sleepy-snake"
ASSETS = "sata1-sleepy-snake-8b234c97"
GiB = 1 << 30


def mm(command: str, *args: str) -> list[str]:
    return [str(FAKE / command), *args]


class FakeCommands:
    """Prepares the fake commands' answers and reads back how they were called."""

    def __init__(self, folder: Path, mountpoint: str, monkeypatch):
        self.log, self.replies, self.mountpoint = folder / "calls.log", folder / "replies", mountpoint
        self.replies.mkdir()
        monkeypatch.setenv("FAKE_MM_LOG", str(self.log))
        monkeypatch.setenv("FAKE_MM_REPLIES", str(self.replies))
        monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ['PATH']}")

    def reply(self, command: str, out: str | None = None, err: str | None = None,
              rc: int | None = None, sleep: float | None = None) -> None:
        for suffix, value in (("out", out), ("err", err), ("rc", rc), ("sleep", sleep)):
            if value is not None:
                (self.replies / f"{command}.{suffix}").write_text(str(value))

    def filesets(self, *names: str) -> None:
        """mmlsfileset -Y answers with the sample's root fileset plus `names`, moved under the
        test's mountpoint."""
        text = (SAMPLES / "mmlsfileset.Y").read_text().replace("%2Fmmfs1", quote(self.mountpoint, safe=""))
        header, *rows = text.splitlines()
        kept = [r for r in rows if r.split(":")[7] in ("root", *names)]
        self.reply("mmlsfileset", "\n".join([header, *kept]) + "\n")

    def snapshots(self, *names: str) -> None:
        header, *rows = (SAMPLES / "mmlssnapshot.Y").read_text().splitlines()
        self.reply("mmlssnapshot", "\n".join([header] + [r for r in rows if r.split(":")[7] in names]) + "\n")

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split("\t") for line in self.log.read_text().splitlines()]


@pytest.fixture
def mountpoint(tmp_path) -> str:
    path = tmp_path / "mmfs1"
    path.mkdir()
    return str(path)


@pytest.fixture
def fake(tmp_path, mountpoint, monkeypatch) -> FakeCommands:
    return FakeCommands(tmp_path, mountpoint, monkeypatch)


@pytest.fixture
def gpfs(fake, mountpoint):
    driver = get_driver(make_settings("gpfs", mountpoint, command_prefix=str(FAKE), timeout=20))
    return driver, Filesystem("mmfs1", mountpoint, ("sas1", "sata1"))


def junction(mountpoint: str, *parts: str) -> str:
    return os.path.join(mountpoint, "projects", "sleepy_snake", *parts)


LIST = mm("mmlsfileset", "mmfs1", "-Y")


# -- filesets -------------------------------------------------------------------------------
def test_create_independent_fileset(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets()
    driver.create_fileset(fs, SNAKE, junction(mountpoint), "sas1")
    assert fake.calls() == [
        LIST,
        mm("mmcrfileset", "mmfs1", SNAKE, "--inode-space", "new"),
        mm("mmlinkfileset", "mmfs1", SNAKE, "-J", junction(mountpoint)),
    ]
    assert os.path.isdir(os.path.dirname(junction(mountpoint)))  # parents made, junction left to GPFS


def test_create_dependent_fileset_in_its_parents_inode_space(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE)
    driver.create_fileset(fs, ASSETS, junction(mountpoint, "assets"), "sata1", parent=SNAKE)
    assert fake.calls() == [
        LIST,
        mm("mmcrfileset", "mmfs1", ASSETS, "--inode-space", SNAKE),
        mm("mmlinkfileset", "mmfs1", ASSETS, "-J", junction(mountpoint, "assets")),
    ]


def test_create_of_a_linked_fileset_only_looks(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE, ASSETS)
    driver.create_fileset(fs, ASSETS, junction(mountpoint, "assets"), "sata1", parent=SNAKE)
    assert fake.calls() == [LIST]


def test_create_links_a_fileset_an_earlier_attempt_left_unlinked(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets("sas1-archive")
    driver.create_fileset(fs, "sas1-archive", os.path.join(mountpoint, "archive"), "sas1")
    assert fake.calls() == [LIST, mm("mmlinkfileset", "mmfs1", "sas1-archive", "-J",
                                     os.path.join(mountpoint, "archive"))]


def test_create_replaces_an_empty_folder_and_refuses_a_full_one(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets()
    write(os.path.join(mountpoint, "empty", ".pixstor-fileset"), "sas1")
    driver.create_fileset(fs, "sas1-empty", os.path.join(mountpoint, "empty"), "sas1")
    assert not os.path.lexists(os.path.join(mountpoint, "empty"))  # mmlinkfileset makes it
    write(os.path.join(mountpoint, "full", "data"))
    with pytest.raises(StorageError, match="not empty"):
        driver.create_fileset(fs, "sas1-full", os.path.join(mountpoint, "full"), "sas1")
    assert [c[0] for c in fake.calls()].count(str(FAKE / "mmcrfileset")) == 1


def test_create_refuses_a_fileset_linked_elsewhere(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE)
    with pytest.raises(StorageError, match="already exists, linked at"):
        driver.create_fileset(fs, SNAKE, os.path.join(mountpoint, "other"), "sas1")
    assert fake.calls() == [LIST]


def test_forced_delete_removes_snapshots_then_dependents_then_the_fileset(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE, ASSETS)
    fake.snapshots("snake-snap", "nightly-2025-03-05")
    write(junction(mountpoint, "assets", "model.obj"))
    driver.delete_fileset(fs, SNAKE, force=True)
    assert fake.calls() == [
        LIST,
        mm("mmlssnapshot", "mmfs1", "-Y"),
        mm("mmdelsnapshot", "mmfs1", f"{SNAKE}:snake-snap"),
        mm("mmunlinkfileset", "mmfs1", ASSETS, "-f"),
        mm("mmdelfileset", "mmfs1", ASSETS, "-f"),
        mm("mmunlinkfileset", "mmfs1", SNAKE, "-f"),
        mm("mmdelfileset", "mmfs1", SNAKE, "-f"),
    ]


def test_delete_without_force(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE, ASSETS)
    fake.snapshots()
    data = write(junction(mountpoint, "assets", "model.obj"))
    with pytest.raises(NotEmpty):
        driver.delete_fileset(fs, SNAKE)
    assert fake.calls() == [LIST]
    os.unlink(data)
    driver.delete_fileset(fs, SNAKE)
    assert fake.calls()[1:] == [
        LIST,
        mm("mmlssnapshot", "mmfs1", "-Y"),
        mm("mmunlinkfileset", "mmfs1", ASSETS),
        mm("mmdelfileset", "mmfs1", ASSETS),
        mm("mmunlinkfileset", "mmfs1", SNAKE),
        mm("mmdelfileset", "mmfs1", SNAKE),
    ]


def test_delete_of_a_missing_fileset_only_looks(gpfs, fake):
    driver, fs = gpfs
    fake.filesets()
    driver.delete_fileset(fs, SNAKE, force=True)
    assert fake.calls() == [LIST]


def test_listing_knows_paths_parents_and_pools(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE, ASSETS, "sas1-archive")
    assert driver.fileset_at(fs, junction(mountpoint, "assets")) == ASSETS
    assert driver.fileset_path(fs, "sas1-archive") is None
    info = {f.name: f for f in driver.list_filesets(fs)}
    assert (info[ASSETS].parent, info[ASSETS].pool) == (SNAKE, "sata1")
    assert (info[SNAKE].parent, info[SNAKE].pool, info["root"].pool) == (None, "sas1", None)
    assert info["root"].path == mountpoint


# -- quotas ---------------------------------------------------------------------------------
def test_set_quota_sets_then_reads_back(gpfs, fake):
    driver, fs = gpfs
    fake.reply("mmlsquota", (SAMPLES / "mmlsquota-fileset.Y").read_text())
    fake.reply("mmlsfs", (SAMPLES / "mmlsfs-B.Y").read_text())
    driver.set_quota(fs, SNAKE, 4 * GiB, 3865470566)   # reads back rounded: 3774874 KiB
    assert fake.calls() == [
        mm("mmsetquota", f"mmfs1:{SNAKE}", "--block", f"3865470566:{4 * GiB}"),
        mm("mmlsquota", "-j", SNAKE, "-Y", "mmfs1"),
        mm("mmlsfs", "mmfs1", "-B", "-Y"),
    ]


def test_set_quota_fails_when_the_limit_does_not_read_back(gpfs, fake):
    driver, fs = gpfs
    fake.reply("mmlsquota", (SAMPLES / "mmlsquota-fileset.Y").read_text())
    fake.reply("mmlsfs", (SAMPLES / "mmlsfs-B.Y").read_text())
    with pytest.raises(StorageError, match="reads back as 3865470976:4294967296 bytes"):
        driver.set_quota(fs, SNAKE, 8 * GiB, 7 * GiB)


def test_quota_and_usage_from_mmlsquota(gpfs, fake):
    driver, fs = gpfs
    fake.reply("mmlsquota", (SAMPLES / "mmlsquota-fileset.Y").read_text())
    assert driver.quota(fs, SNAKE) == (4 * GiB, 3774874 * 1024)
    assert driver.usage(fs, SNAKE) == 109 * 1024
    assert fake.calls() == [mm("mmlsquota", "-j", SNAKE, "-Y", "mmfs1")] * 2
    assert driver.quota(fs, "sata1-unknown") == (0, 0)


# -- snapshots ------------------------------------------------------------------------------
def test_create_snapshot(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("nightly-2025-03-05")
    path = driver.create_snapshot(fs, SNAKE, "snake-snap")
    assert path == junction(mountpoint, ".snapshots", "snake-snap")
    assert fake.calls() == [LIST, mm("mmlssnapshot", "mmfs1", "-Y"),
                            mm("mmcrsnapshot", "mmfs1", f"{SNAKE}:snake-snap")]


def test_create_snapshot_again_only_looks(gpfs, fake):
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.snapshots("snake-snap")
    driver.create_snapshot(fs, SNAKE, "snake-snap")
    assert [c[0] for c in fake.calls()] == [str(FAKE / "mmlsfileset"), str(FAKE / "mmlssnapshot")]


def test_snapshot_listing_that_says_none(gpfs, fake):
    driver, fs = gpfs
    fake.filesets(SNAKE)
    fake.reply("mmlssnapshot", out="No snapshots in file system mmfs1\n", rc=1)
    driver.create_snapshot(fs, SNAKE, "first")
    assert fake.calls()[-1] == mm("mmcrsnapshot", "mmfs1", f"{SNAKE}:first")


def test_delete_snapshot(gpfs, fake):
    driver, fs = gpfs
    fake.snapshots("snake-snap")
    driver.delete_snapshot(fs, SNAKE, "snake-snap")
    driver.delete_snapshot(fs, SNAKE, "gone")
    assert fake.calls() == [mm("mmlssnapshot", "mmfs1", "-Y"),
                            mm("mmdelsnapshot", "mmfs1", f"{SNAKE}:snake-snap"),
                            mm("mmlssnapshot", "mmfs1", "-Y")]


# -- discovery and templates ----------------------------------------------------------------
def test_discover_filesystems_and_data_pools(gpfs, fake):
    driver, _ = gpfs
    fake.reply("mmlsfs", (SAMPLES / "mmlsfs-all.Y").read_text())
    fake.reply("mmlspool", (SAMPLES / "mmlspool.txt").read_text())
    assert driver.discover() == [Filesystem("mmfs1", "/mmfs1", ("sas1", "sata1"))]
    assert fake.calls() == [mm("mmlsfs", "all", "-Y"), mm("mmlspool", "mmfs1", "all")]
    assert driver.block_size(driver.discover()[0]) == 4194304   # learnt along the way


def test_discover_everything_when_nothing_is_configured(fake, mountpoint):
    settings = make_settings("gpfs", mountpoint, command_prefix=str(FAKE))
    settings.filesystems = []
    fake.reply("mmlsfs", (SAMPLES / "mmlsfs-all.Y").read_text())
    fake.reply("mmlspool", (SAMPLES / "mmlspool.txt").read_text())
    found = get_driver(settings).discover()
    assert [(f.name, f.mountpoint) for f in found] == [("mmfs1", "/mmfs1"), ("mmfs2", "/gpfs/scratch")]


def test_discover_names_a_configured_filesystem_gpfs_does_not_know(fake, mountpoint):
    settings = make_settings("gpfs", mountpoint, command_prefix=str(FAKE))
    settings.filesystems[0].name = "mmfs9"
    fake.reply("mmlsfs", (SAMPLES / "mmlsfs-all.Y").read_text())
    with pytest.raises(StorageError, match="mmfs9 not found by mmlsfs"):
        get_driver(settings).discover()


def test_model_filesets_from_junctions_and_markers(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.filesets("sata1-model-assets", SNAKE)
    model = os.path.join(mountpoint, "project_template")
    write(os.path.join(model, "cache", ".pixstor-fileset"), "sas1")
    assert driver.model_filesets(fs, model) == {"assets": "sata1", "cache": "sas1"}


# -- placement policy -----------------------------------------------------------------------
def test_missing_placement_rules(gpfs, fake):
    driver, fs = gpfs
    fake.reply("mmlspolicy", (SAMPLES / "mmlspolicy-L.txt").read_text())
    assert driver.missing_placement_rules(fs) == ["sata1"]
    assert fake.calls() == [mm("mmlspolicy", "mmfs1", "-L")]


def test_install_default_policy_adds_missing_rules_with_mmchpolicy(gpfs, fake):
    driver, fs = gpfs
    fake.reply("mmlspolicy", (SAMPLES / "mmlspolicy-L.txt").read_text())
    assert driver.install_default_policy(fs) == ["sata1"]
    (listing, checked, (command, device, policy_file, *mode)) = fake.calls()
    assert listing == mm("mmlspolicy", "mmfs1", "-L")
    assert checked == mm("mmchpolicy", "mmfs1", policy_file, "-I", "test")     # checked, then installed
    assert (command, device, mode) == (str(FAKE / "mmchpolicy"), "mmfs1", ["-I", "yes"])
    assert not os.path.exists(policy_file)  # the temporary file is gone
    installed = (fake.replies / "mmchpolicy.policy").read_text()
    assert installed.index("RULE 'scratch'") < installed.index("RULE 'sata1-placement'") \
        < installed.index("RULE 'default' SET POOL 'sata1'")


def test_install_default_policy_changes_nothing_when_complete(gpfs, fake):
    driver, fs = gpfs
    complete = driver.policy_rules(fs)
    fake.reply("mmlspolicy", complete)
    assert driver.install_default_policy(fs) == []
    assert fake.calls() == [mm("mmlspolicy", "mmfs1", "-L")]


# -- running commands -----------------------------------------------------------------------
def test_a_failing_command_reports_status_and_stderr_verbatim(gpfs, fake, mountpoint, caplog):
    driver, fs = gpfs
    fake.filesets()
    stderr = ("Fileset sas1-sleepy-snake already exists.\n"
              "mmcrfileset: Command failed. Examine previous error messages to determine cause.\n")
    fake.reply("mmcrfileset", err=stderr, rc=22)
    caplog.set_level(logging.INFO, logger="service.storage")
    with pytest.raises(StorageError) as failed:
        driver.create_fileset(fs, SNAKE, junction(mountpoint), "sas1")
    line = f"{FAKE}/mmcrfileset mmfs1 {SNAKE} --inode-space new"
    assert str(failed.value) == f"{line} failed with exit status 22: Fileset sas1-sleepy-snake already exists."
    assert failed.value.details == stderr
    assert ("INFO", f"running: {line}") in [(r.levelname, r.getMessage()) for r in caplog.records]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"{FAKE}/mmcrfileset: stderr:\n{stderr.rstrip()}"]
    assert fake.calls()[-1][0] == str(FAKE / "mmcrfileset")  # never linked


def test_a_hanging_command_is_stopped_at_the_timeout(fake, mountpoint):
    driver = get_driver(make_settings("gpfs", mountpoint, command_prefix=str(FAKE), timeout=0.5))
    fake.reply("mmlsfileset", sleep=30)
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"mmlsfileset mmfs1 -Y timed out after 0.5s"):
        driver.list_filesets(Filesystem("mmfs1", mountpoint, ("sas1",)))
    assert time.monotonic() - started < 10


def test_a_missing_command_is_a_storage_error(mountpoint, tmp_path):
    driver = get_driver(make_settings("gpfs", mountpoint, command_prefix=str(tmp_path / "nowhere")))
    with pytest.raises(StorageError, match="cannot run .*mmlsfileset"):
        driver.list_filesets(Filesystem("mmfs1", mountpoint, ("sas1",)))


def test_command_lines_with_prefix_and_sudo(mountpoint):
    plain = get_driver(make_settings("gpfs", mountpoint))
    assert plain.command_line("mmlsfileset", "mmfs1", "-Y") == ["/usr/lpp/mmfs/bin/mmlsfileset", "mmfs1", "-Y"]
    sudo = get_driver(make_settings("gpfs", mountpoint, command_prefix="/opt/mmfs/bin", sudo=True))
    assert sudo.command_line("mmdelfileset", "mmfs1", SNAKE, "-f") == [
        "sudo", "-n", "/opt/mmfs/bin/mmdelfileset", "mmfs1", SNAKE, "-f"]
    assert (plain.timeout, sudo.sudo, plain.sudo) == (300, True, False)


def test_model_outside_every_filesystem_lists_nothing(gpfs, fake, tmp_path):
    driver, _ = gpfs
    write(str(tmp_path / "model" / "assets" / ".pixstor-fileset"), "sata1")
    assert driver.model_filesets(None, str(tmp_path / "model")) == {"assets": "sata1"}
    assert fake.calls() == []


def test_filesystem_snapshots_are_global(gpfs, fake, mountpoint):
    driver, fs = gpfs
    fake.snapshots("snake-snap")
    assert driver.create_snapshot(fs, None, "nightly") == os.path.join(mountpoint, ".snapshots", "nightly")
    driver.delete_snapshot(fs, None, "nightly")           # not there: only looks
    fake.snapshots("nightly-2025-03-05")
    driver.delete_snapshot(fs, None, "nightly-2025-03-05")
    assert fake.calls() == [mm("mmlssnapshot", "mmfs1", "-Y"), mm("mmcrsnapshot", "mmfs1", "nightly"),
                            mm("mmlssnapshot", "mmfs1", "-Y"),
                            mm("mmlssnapshot", "mmfs1", "-Y"), mm("mmdelsnapshot", "mmfs1", "nightly-2025-03-05")]
