"""The CLI contract and the config rules, run as an operator would."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

from service import config
from tests.harness import CLI, write_config


def run(*args, input=None, env=None, cwd=None):
    return subprocess.run([CLI, *args], input=input, text=True, capture_output=True, timeout=60,
                          env=dict(os.environ, **(env or {})), cwd=cwd)


@pytest.fixture
def conf(tmp_path):
    return write_config(tmp_path, 5999)


def test_init_is_idempotent_and_prints_the_password_once(conf, tmp_path):
    first = run("--config", str(conf), "init")
    assert first.returncode == 0, first.stderr
    secret = tmp_path / "var" / "admin-password"
    assert f"password {secret.read_text().strip()}" in first.stdout
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    second = run("--config", str(conf), "init")
    assert second.returncode == 0 and "password" not in second.stdout
    assert (tmp_path / "mmfs1").is_dir() and (tmp_path / "var" / "templates").is_dir()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_secrets_are_private_from_their_first_creation(conf, tmp_path):
    os.umask(0o022)   # what a default shell gives: would make new files 0644
    assert run("--config", str(conf), "init").returncode == 0
    var = tmp_path / "var"
    assert mode(var) == 0o700
    files = [var / name for name in ("pixstor.db", "queue.db", "admin-password")]
    files += [var / f"{db}-{suffix}" for db in ("pixstor.db", "queue.db") for suffix in ("wal", "shm")
              if (var / f"{db}-{suffix}").exists()]
    assert files and {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_init_fixes_loose_modes_and_says_so(conf, tmp_path):
    assert run("--config", str(conf), "init").returncode == 0
    var = tmp_path / "var"
    os.chmod(var, 0o755)
    os.chmod(var / "pixstor.db", 0o644)
    again = run("--config", str(conf), "init")
    assert again.returncode == 0, again.stderr
    assert f"fixed the mode of {var}: 0755 -> 0700" in again.stdout
    assert f"fixed the mode of {var / 'pixstor.db'}: 0644 -> 0600" in again.stdout
    assert mode(var) == 0o700 and mode(var / "pixstor.db") == 0o600
    assert "fixed" not in run("--config", str(conf), "init").stdout


def test_user_commands(conf):
    assert run("--config", str(conf), "init").returncode == 0
    added = run("--config", str(conf), "user", "add", "ops", "--role", "operator", "--password-stdin",
                input="long-enough\n")
    assert added.returncode == 0, added.stderr
    again = run("--config", str(conf), "user", "add", "ops", "--role", "operator", "--password-stdin",
                input="long-enough\n")
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    short = run("--config", str(conf), "user", "add", "x", "--role", "admin", "--password-stdin", input="short\n")
    assert short.returncode == 1 and "8 characters" in short.stderr
    listing = run("--config", str(conf), "user", "list")
    assert "ops\toperator" in listing.stdout and "admin\tadmin" in listing.stdout
    assert run("--config", str(conf), "user", "passwd", "ops", "--password-stdin",
               input="another-one\n").returncode == 0
    assert run("--config", str(conf), "user", "del", "ops").returncode == 0
    missing = run("--config", str(conf), "user", "del", "ops")
    assert missing.returncode == 1 and "no user ops" in missing.stderr


def test_usage_errors_exit_2(conf):
    assert run().returncode == 2
    assert run("--config", str(conf), "frobnicate").returncode == 2
    assert run("--config", str(conf), "user", "add", "x", "--role", "emperor").returncode == 2
    assert subprocess.run([CLI.replace("pixstor-mgmt", "adminctl"), "what"], capture_output=True).returncode == 2


def test_adminctl_populate_now(conf):
    assert run("--config", str(conf), "init").returncode == 0
    result = subprocess.run([CLI.replace("pixstor-mgmt", "adminctl"), "populate", "now", "--config", str(conf)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("text, words", [
    ("[server]\nport = 'x'\n", "server.port: expected an integer"),
    ("[server]\nprot = 1\n", "unknown key server.prot"),
    ("[database]\nurl = 'mysql://x'\n", "database.url"),
    ("[storage]\ndriver = 'zfs'\n", "storage.driver must be one of posix, btrfs, gpfs"),
    ("[[storage.filesystems]]\nname = 'a'\nmountpoint = 'a'\npools = []\n", "storage.filesystems[0].pools"),
    ("[nope]\n", "unknown section [nope]"),
    ("[queue]\nrequeue_after = 0\n", "queue.requeue_after: must be at least 1 second"),
    ("[queue]\nmax_log = 100\n", "queue.max_log: must be at least 4096 bytes"),
    ("not toml at all = = \n", "pixstor.toml"),
])
def test_bad_config_stops_with_one_line(tmp_path, text, words):
    path = tmp_path / "pixstor.toml"
    path.write_text(text)
    result = run("--config", str(path), "serve")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and words in result.stderr


def test_env_overrides_and_relative_paths(tmp_path):
    path = tmp_path / "conf" / "pixstor.toml"
    path.parent.mkdir()
    path.write_text('[storage]\ntemplate_store = "store"\n[database]\nurl = "sqlite:///db/x.db"\n')
    settings = config.load(str(path), environ={"PIXSTOR_SERVER_PORT": "6000", "PIXSTOR_STORAGE_DRIVER": "btrfs",
                                               "PIXSTOR_STORAGE_GPFS_SUDO": "true"})
    assert settings.server.port == 6000 and settings.storage.driver == "btrfs"
    assert settings.storage.gpfs.sudo is True
    assert settings.storage.template_store == str(tmp_path / "conf" / "store")
    assert settings.database.url == f"sqlite:///{tmp_path}/conf/db/x.db"
    with pytest.raises(config.ConfigError, match="server.port: expected an integer"):
        config.load(str(path), environ={"PIXSTOR_SERVER_PORT": "many"})


def test_no_config_means_var_under_the_working_directory(tmp_path):
    settings = config.load(None, environ={})
    assert settings.database.url == f"sqlite:///{os.getcwd()}/var/pixstor.db"
    assert settings.storage.filesystems[0].name == "mmfs1"
    assert settings.storage.filesystems[0].pools == ["sas1", "sata1"]


def test_gpfs_populate_reports_missing_rules_and_policy_install_adds_them(tmp_path):
    """populate and `policy install default` on the gpfs driver, through the stand-in mm* commands."""
    samples = Path(__file__).parent / "storage" / "gpfs_samples"
    fake = Path(__file__).parent / "storage" / "fake_mmcommands"
    replies = tmp_path / "replies"
    replies.mkdir()
    for name, sample in (("mmlsfs", "mmlsfs-all.Y"), ("mmlspool", "mmlspool.txt"),
                         ("mmlspolicy", "mmlspolicy-none.txt")):
        (replies / f"{name}.out").write_text((samples / sample).read_text())
    conf = write_config(tmp_path, 5998, driver="gpfs", mountpoint="/mmfs1",
                        extra=f'[storage.gpfs]\ncommand_prefix = "{fake}"\n')
    env = {"FAKE_MM_LOG": str(tmp_path / "mm.log"), "FAKE_MM_REPLIES": str(replies)}
    populate = run("--config", str(conf), "populate", env=env)
    assert populate.returncode == 0, populate.stderr
    assert "added profile mmfs1-sas1" in populate.stdout
    assert "no placement rule for pool sas1" in populate.stdout
    install = run("--config", str(conf), "policy", "install", "default", env=env)
    assert install.returncode == 0, install.stderr
    assert "added rule 'sas1-placement'" in install.stdout
    policy = (replies / "mmchpolicy.policy").read_text()
    assert "RULE 'sas1-placement' SET POOL 'sas1'" in policy and "FILESET_NAME LIKE 'sata1-%'" in policy
    calls = (tmp_path / "mm.log").read_text()
    assert f"{fake}/mmchpolicy\tmmfs1\t" in calls
