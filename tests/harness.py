"""A real pixstor-mgmt: config in a temp dir, `init`, users, `serve` as a process
on a free port, torn down afterwards.  Shared by the service and end-to-end tests."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "pixstor-mgmt")
CI = os.environ.get("CI", "").lower() == "true"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Poll `predicate` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def write_config(folder, port, driver="posix", mountpoint="mmfs1", database=None, queue=None, extra="",
                 trusted_proxies=()):
    folder = Path(folder)
    config = folder / "pixstor.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
state_dir = "var"
trusted_proxies = {json.dumps(list(trusted_proxies))}
[database]
url = "{database or 'sqlite:///var/pixstor.db'}"
[queue]
url = "{queue or 'sqlite:///var/queue.db'}"
[auth]
token_ttl = 3600
[storage]
driver = "{driver}"
template_store = "var/templates"
template_sources = ["models"]
[[storage.filesystems]]
name = "mmfs1"
mountpoint = "{mountpoint}"
pools = ["sas1", "sata1"]
{extra}
""")
    (folder / "models").mkdir(exist_ok=True)
    return config


class Server:
    """`pixstor-mgmt serve` as a child process."""

    def __init__(self, folder, driver="posix", mountpoint="mmfs1", database=None, queue=None, worker=True,
                 extra="", trusted_proxies=(), env=None):
        self.folder = Path(folder)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = write_config(self.folder, self.port, driver, mountpoint, database, queue, extra,
                                   trusted_proxies)
        self.mountpoint = (self.folder / mountpoint).resolve()
        self.worker = worker
        self.env = dict(os.environ, **(env or {}))   # PIXSTOR_* overrides for every process
        self.process = None
        self.log_path = self.folder / "server.log"

    def cli(self, *args, input=None, check=True):
        result = subprocess.run([CLI, "--config", str(self.config), *args], input=input, text=True,
                                capture_output=True, timeout=120, env=self.env)
        if check and result.returncode != 0:
            raise AssertionError(f"pixstor-mgmt {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def start(self):
        init = self.cli("init")
        self.admin_password = init.stdout.split("password ", 1)[1].split()[0]
        self.cli("user", "add", "operator1", "--role", "operator", "--password-stdin", input="operator-pass\n")
        self.cli("user", "add", "reader", "--role", "readonly", "--password-stdin", input="reader-pass\n")
        return self.serve()

    def serve(self):
        """Start `serve` on the initialised state (again, after a stop)."""
        args = [CLI, "--config", str(self.config), "serve"] + ([] if self.worker else ["--no-worker"])
        self.log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env)
        wait_for(self._up, timeout=20, what=f"server on {self.url} (log: {self.log_path})")
        return self

    def _up(self):
        if self.process.poll() is not None:
            raise AssertionError(f"server exited {self.process.returncode}: {self.log_path.read_text()}")
        try:
            return requests.get(self.url + "/", timeout=1).status_code == 401
        except requests.ConnectionError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log_file.close()

    def log(self):
        return self.log_path.read_text()

    @contextlib.contextmanager
    def standalone_worker(self, name="worker", env=None, prefix=()):
        """`pixstor-mgmt worker` as its own process, for a server started with worker=False;
        several may run at once. `env` adds to the server's environment, `prefix` wraps the
        command (e.g. faketime); the output goes to `worker.log_path` ({folder}/{name}.log)."""
        log_path = self.folder / f"{name}.log"
        with open(log_path, "a") as log:
            # a session of its own: the cleanup signals the whole group, wrapper and all
            worker = subprocess.Popen([*prefix, CLI, "--config", str(self.config), "worker"], stdout=log,
                                      stderr=subprocess.STDOUT, env=dict(self.env, **(env or {})),
                                      start_new_session=True)
        worker.log_path = log_path
        try:
            yield worker
        finally:
            for signum in (signal.SIGTERM, signal.SIGCONT):     # a worker a test paused gets it too
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signum)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    @contextlib.contextmanager
    def api_process(self):
        """One more `pixstor-mgmt serve --no-worker` on the same state, on its own port; yields its url."""
        port = free_port()
        with open(self.folder / f"api-{port}.log", "a") as log:
            process = subprocess.Popen([CLI, "--config", str(self.config), "serve", "--no-worker", "--port",
                                        str(port)], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        url = f"http://127.0.0.1:{port}"

        def up():
            assert process.poll() is None, f"API process exited {process.returncode}"
            try:
                return requests.get(url + "/", timeout=1).status_code == 401
            except requests.ConnectionError:
                return False
        try:
            wait_for(up, timeout=20, what=f"API process on {url}")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)

    def token(self, username="admin", password=None):
        password = password or self.admin_password
        resp = requests.post(self.url + "/oauth2/token",
                             data={"grant_type": "password", "username": username, "password": password})
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def session(self, username="admin", password=None):
        session = requests.Session()
        session.auth = (self.token(username, password), "")
        return session


CJ = {"Content-Type": "application/vnd.collection+json"}


def cj_body(**values):
    return {"template": {"data": [{"name": k, "value": v} for k, v in values.items()]}}


def data_of(document, index=0):
    """An item's data as {name: value}."""
    return {d["name"]: d["value"] for d in document["collection"]["items"][index]["data"]}


def links_of(document, index=0):
    return {link["name"]: link for link in document["collection"]["items"][index]["links"]}


def wait_status(session, url, wanted=("ACTIVE", "ERRORED"), timeout=15):
    """Poll an item until its status is one of `wanted` (or it is gone: None)."""
    def check():
        resp = session.get(url)
        if resp.status_code == 404:
            return ("gone",)
        status = data_of(resp.json())["status"]
        return (status,) if status in wanted else None
    status = wait_for(check, timeout=timeout, what=f"{url} to reach {wanted}")[0]
    return None if status == "gone" else status


def make_model(root):
    """The walkthrough's project template model: assets is a dependent fileset in pool sata1."""
    root = Path(root)
    for folder in ("assets/models", "assets/rigs", "flame", "houdini", "maya", "mudbox", "nuke", "published",
                   "rendering"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "assets" / ".pixstor-fileset").write_text("sata1\n")
    return root


def nginx_tls_proxy(nginx, folder, upstreams, cert_file, key_file):
    """(process, port): nginx terminating TLS with the given certificate on a free port of
    127.0.0.1, proxying to the upstreams (host:port) with the X-Forwarded-* headers."""
    import textwrap
    folder = Path(folder)
    port = free_port()
    servers = "\n".join(f"server {upstream};" for upstream in upstreams)
    (folder / "nginx.conf").write_text(textwrap.dedent(f"""
        daemon off;
        pid {folder}/nginx.pid;
        error_log {folder}/nginx-error.log;
        events {{ worker_connections 64; }}
        http {{
          access_log {folder}/nginx-access.log;
          client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;
          fastcgi_temp_path {folder}/fcgi; uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
          upstream api {{ {servers} }}
          server {{
            listen 127.0.0.1:{port} ssl;
            ssl_certificate {cert_file}; ssl_certificate_key {key_file};
            location / {{
              proxy_pass http://api;
              proxy_set_header Host $host;
              proxy_set_header X-Forwarded-Proto $scheme;
              proxy_set_header X-Forwarded-Host $http_host;
            }}
          }}
        }}"""))
    process = subprocess.Popen([nginx, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, port


def require(available, reason):
    """Skip a test whose outside need is missing — but in CI a skip is a failure."""
    import pytest
    if not available:
        if CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


def postgres_database():
    """A fresh PostgreSQL database (url, drop function), or (None, reason)."""
    import uuid

    import psycopg2
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        return None, f"PostgreSQL not reachable at 127.0.0.1:5432: {str(exc).strip()}"
    admin.autocommit = True
    name = f"pixstor_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


def redis_queue():
    """A Redis queue url on a database (1-15) that this run owns, or (None, reason).

    Several test runs may share one Redis: a run claims a database with a marker key (SET NX,
    expiring) and clears only the queue's keys in it, so that no other run's worker takes, or
    flushes away, this run's jobs. The cleanup clears the keys and gives the database back."""
    import random
    import uuid

    import redis
    owner = uuid.uuid4().hex
    for number in random.sample(range(1, 16), 15):
        client = redis.Redis(host="127.0.0.1", port=6379, db=number, socket_connect_timeout=3)
        try:
            claimed = client.set("pixstor-tests:owner", owner, nx=True, ex=3600)
        except redis.RedisError as exc:
            return None, f"Redis not reachable at 127.0.0.1:6379: {exc}"
        if claimed:
            def clear(client=client):
                for key in client.scan_iter("huey.*"):
                    client.delete(key)

            def release(client=client):
                clear(client)
                client.delete("pixstor-tests:owner")
            clear()
            return f"redis://127.0.0.1:6379/{number}", release
    return None, "every Redis database 1-15 is held by another test run"
