"""The pixstor.mgmt collection's integration tests: the shared test server
(`tests.harness.Server`: a real `pixstor-mgmt serve` on a free port in a temp
dir) and a runner for real `ansible-playbook` against it.

The playbooks run the collection as users get it: `ansible-galaxy collection
build` makes the tarball, `ansible-galaxy collection install` puts it into an
empty folder, and ANSIBLE_COLLECTIONS_PATH names only that folder (never the
repository)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.harness import Server, make_model, wait_for

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "pixstor" / "mgmt"
BIN = Path(sys.executable).parent
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
USER, PASSWORD = "tester", "integration-secret"
WRITES = ("POST", "PATCH", "PUT", "DELETE")
# The access log line ends with `METHOD path?query status` (see `serve`).
ACCESS = re.compile(r"\b(GET|HEAD|OPTIONS|POST|PATCH|PUT|DELETE) (/\S*) (\d{3})\s*$")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class PixstorServer(Server):
    """The shared test server, plus what the playbook tests read: its access log and items."""

    def start(self):
        super().start()
        self.cli("user", "add", USER, "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
        self.api = self.session(USER, PASSWORD)
        return self

    def log_size(self):
        return self.log_path.stat().st_size

    def requests_since(self, offset):
        """(method, path, status) of every request logged after `offset`, once a marker
        request shows the log has caught up."""
        marker = "/?log-marker=%s" % uuid.uuid4().hex
        requests.get(self.url + marker, timeout=10)
        wait_for(lambda: marker in self.log_path.read_bytes()[offset:].decode(errors="replace"), timeout=10,
                 what="the access log to show " + marker)
        text = self.log_path.read_bytes()[offset:].decode(errors="replace")
        found = [m.groups() for m in map(ACCESS.search, text.splitlines()) if m]
        return [(method, path, status) for method, path, status in found if "log-marker=" not in path]

    def items(self, collection, **where):
        resp = self.api.get("%s/%s/" % (self.url, collection), params={"where": json.dumps(where)}, timeout=10)
        resp.raise_for_status()
        return [dict((d["name"], d["value"]) for d in item["data"]) for item in resp.json()["collection"]["items"]]


class PlaybookRun:
    def __init__(self, proc, requests_made):
        self.proc = proc
        self.output = proc.stdout + proc.stderr
        self.requests = requests_made
        keys = ("ok", "changed", "unreachable", "failed")
        self.recaps = dict((m.group(1), dict(zip(keys, map(int, m.groups()[1:])))) for m in RECAP.finditer(proc.stdout))
        # Totals over the hosts (one host in most plays).
        self.recap = dict((key, sum(r[key] for r in self.recaps.values())) for key in keys) if self.recaps else {}

    @property
    def writes(self):
        """Write requests to the API's resources; the token request is a login, not a change."""
        return [r for r in self.writes_and_logins if not r[1].startswith("/oauth2/token")]

    @property
    def writes_and_logins(self):
        return [r for r in self.requests if r[0] in WRITES]

    @property
    def logins(self):
        return [r for r in self.requests if r[1].startswith("/oauth2/token")]


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory):
    """(collections path, tarball) of the collection built from this tree and installed from
    its tarball into an empty folder."""
    folder = tmp_path_factory.mktemp("galaxy")
    env = dict(os.environ, ANSIBLE_HOME=str(folder / "ansible-home"), ANSIBLE_NOCOLOR="1")
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path",
                            str(folder)], capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    version = re.search(r"^version:\s*(\S+)", (COLLECTION / "galaxy.yml").read_text(), re.M).group(1)
    tarball = folder / ("pixstor-mgmt-%s.tar.gz" % version)
    path = folder / "collections"
    path.mkdir()
    install = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(path)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (path / "ansible_collections" / "pixstor" / "mgmt" / "MANIFEST.json").is_file(), install.stdout
    return path, tarball


@pytest.fixture(scope="module")
def pixstor_server(tmp_path_factory):
    if not (BIN / "pixstor-mgmt").exists() or not (BIN / "ansible-playbook").exists():
        pytest.fail("%s needs pixstor-mgmt and ansible-playbook installed next to it" % sys.executable)
    server = PixstorServer(tmp_path_factory.mktemp("pixstor")).start()
    server.models = server.folder / "models"
    (make_model(server.models / "project_template") / "README.txt").write_text("project layout\n")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_cache_dir(tmp_path_factory):
    """The modules' token cache: kept across this file's runs, as a user's is across theirs,
    and never the developer's own (~/.ansible/pixstor/tokens)."""
    return tmp_path_factory.mktemp("token-cache") / "tokens"


@pytest.fixture(scope="module")
def token_cache_file(pixstor_server, token_cache_dir):
    """Where the modules cache the playbooks' login (see token_cache in the doc fragment)."""
    key = "\0".join((pixstor_server.url.rstrip("/"), USER, PASSWORD))
    return token_cache_dir / hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def playbook(pixstor_server, token_cache_dir, tmp_path, installed_collection):
    """playbook(name, check=False, environment=None, hosts=1, **vars) -> PlaybookRun of a real
    ansible-playbook; hosts > 1 makes an inventory of that many local hosts (node1...)."""

    def run(name, check=False, environment=None, hosts=1, **extra_vars):
        inventory = tmp_path / ("inventory-%d.yml" % hosts)
        names = ["localhost"] if hosts == 1 else ["node%d" % i for i in range(1, hosts + 1)]
        inventory.write_text("all:\n  vars:\n    ansible_connection: local\n"
                             "    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n  hosts:\n"
                             + "".join("    %s:\n" % host for host in names))
        variables = dict(pixstor_url=pixstor_server.url, pixstor_username=USER, pixstor_password=PASSWORD,
                         model=str(pixstor_server.models / "project_template"))
        variables.update(extra_vars)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed_collection[0]),
                   ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                   PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
        for key in ("PIXSTOR_URL", "PIXSTOR_USERNAME", "PIXSTOR_PASSWORD", "PIXSTOR_TOKEN", "PIXSTOR_VALIDATE_CERTS",
                    "PIXSTOR_TOKEN_CACHE", "PIXSTOR_CA_PATH", "PIXSTOR_TIMEOUT"):
            env.pop(key, None)
        env["PIXSTOR_TOKEN_CACHE_DIR"] = str(token_cache_dir)
        env.update(environment or {})
        command = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / name),
                   "-e", json.dumps(variables), "--diff", "--forks", str(max(hosts, 5))] + (["--check"] if check else [])
        offset = pixstor_server.log_size()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        return PlaybookRun(proc, pixstor_server.requests_since(offset))

    return run


def pytest_report_header(config):
    return "ansible-playbook: %s" % (shutil.which("ansible-playbook", path=str(BIN)) or "missing")
