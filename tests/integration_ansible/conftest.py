"""A real `pixstor-mgmt serve` on a free port in a temp dir, and a runner for
real `ansible-playbook` against it, for the pixstor.mgmt collection's
integration tests."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
PASSWORD = "integration-secret"
WRITES = ("POST", "PATCH", "PUT", "DELETE")
# The access log line ends with `METHOD path?query status` (see `serve`).
ACCESS = re.compile(r"\b(GET|HEAD|OPTIONS|POST|PATCH|PUT|DELETE) (/\S*) (\d{3})\s*$")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


class PixstorServer:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.config = self.folder / "pixstor.toml"
        self.mountpoint = self.folder / "mmfs1"
        self.models = self.folder / "models"
        self.stderr_path = self.folder / "serve.stderr"
        self.process = None
        self._session = None

    def cli(self, *args, stdin=None):
        return subprocess.run([str(BIN / "pixstor-mgmt"), "--config", str(self.config), *args], input=stdin,
                              capture_output=True, text=True, timeout=120, check=True)

    def start(self):
        self.models.mkdir(parents=True)
        self.config.write_text(
            '[server]\nhost = "127.0.0.1"\nport = %d\n'
            '[database]\nurl = "sqlite:///db.sqlite3"\n'
            '[queue]\nurl = "sqlite:///queue.sqlite3"\n'
            '[storage]\ndriver = "posix"\ntemplate_store = "templates"\ntemplate_sources = ["models"]\n'
            '[[storage.filesystems]]\nname = "mmfs1"\nmountpoint = "mmfs1"\npools = ["sas1", "sata1"]\n' % self.port)
        self.cli("init")
        self.cli("user", "add", "tester", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen([str(BIN / "pixstor-mgmt"), "--config", str(self.config), "serve"],
                                            cwd=self.folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        wait_until(self._up, 30, "pixstor-mgmt serve on port %d" % self.port)
        return self

    def _up(self):
        if self.process.poll() is not None:
            raise AssertionError("pixstor-mgmt serve exited with %s:\n%s" % (self.process.returncode, self.log()))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def log_size(self):
        return self.stderr_path.stat().st_size

    def requests_since(self, offset):
        """(method, path, status) of every request logged after `offset`, once a marker
        request shows the log has caught up."""
        marker = "/?log-marker=%s" % uuid.uuid4().hex
        requests.get(self.url + marker, timeout=10)
        wait_until(lambda: marker in self.log()[offset:], 10, "the access log to show " + marker)
        with open(self.stderr_path, "rb") as stream:
            stream.seek(offset)
            text = stream.read().decode(errors="replace")
        found = [m.groups() for m in map(ACCESS.search, text.splitlines()) if m]
        return [(method, path, status) for method, path, status in found if "log-marker=" not in path]

    @property
    def session(self):
        """requests session of the tester, for checks made outside ansible."""
        if self._session is None:
            resp = requests.post(self.url + "/oauth2/token", timeout=10,
                                 data=dict(grant_type="password", username="tester", password=PASSWORD))
            resp.raise_for_status()
            self._session = requests.Session()
            self._session.auth = (resp.json()["access_token"], "")
        return self._session

    def items(self, collection, **where):
        resp = self.session.get("%s/%s/" % (self.url, collection), params={"where": json.dumps(where)}, timeout=10)
        resp.raise_for_status()
        return [dict((d["name"], d["value"]) for d in item["data"]) for item in resp.json()["collection"]["items"]]


class PlaybookRun:
    def __init__(self, proc, requests_made):
        self.proc = proc
        self.output = proc.stdout + proc.stderr
        self.requests = requests_made
        match = RECAP.search(proc.stdout)
        self.recap = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()[1:]))) if match else {}

    @property
    def writes(self):
        """Write requests to the API's resources; the token request is a login, not a change."""
        return [r for r in self.requests if r[0] in WRITES and not r[1].startswith("/oauth2/token")]


@pytest.fixture(scope="module")
def pixstor_server(tmp_path_factory):
    if not (BIN / "pixstor-mgmt").exists() or not (BIN / "ansible-playbook").exists():
        pytest.fail("%s needs pixstor-mgmt and ansible-playbook installed next to it" % sys.executable)
    server = PixstorServer(tmp_path_factory.mktemp("pixstor")).start()
    model = server.models / "project_template"
    for folder in ("assets/models", "assets/rigs", "maya", "nuke", "published"):
        (model / folder).mkdir(parents=True)
    (model / "README.txt").write_text("project layout\n")
    yield server
    server.stop()


@pytest.fixture
def playbook(pixstor_server, tmp_path):
    """playbook(name, check=False, **vars) -> PlaybookRun of a real ansible-playbook."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n")

    def run(name, check=False, **extra_vars):
        variables = dict(pixstor_url=pixstor_server.url, pixstor_username="tester", pixstor_password=PASSWORD,
                         model=str(pixstor_server.models / "project_template"))
        variables.update(extra_vars)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                   PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
        for key in ("PIXSTOR_URL", "PIXSTOR_USERNAME", "PIXSTOR_PASSWORD", "PIXSTOR_TOKEN", "PIXSTOR_VALIDATE_CERTS"):
            env.pop(key, None)
        command = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / name),
                   "-e", json.dumps(variables), "--diff"] + (["--check"] if check else [])
        offset = pixstor_server.log_size()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        return PlaybookRun(proc, pixstor_server.requests_since(offset))

    return run


def pytest_report_header(config):
    return "ansible-playbook: %s" % (shutil.which("ansible-playbook", path=str(BIN)) or "missing")
