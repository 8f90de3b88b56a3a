"""Scale-out with configuration only: PostgreSQL, Redis, two API processes and
two workers behind nginx terminating TLS — the walkthrough's shape through it."""
import shutil
import subprocess

import requests
import urllib3

from tests.harness import (
    CJ, CLI, Server, cj_body, data_of, free_port, make_model, nginx_tls_proxy, require, wait_for, wait_status,
)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.os.path.exists("/usr/sbin/nginx") else None)


def start(args, log):
    return subprocess.Popen([CLI, *args], stdout=log, stderr=subprocess.STDOUT)


def stop(processes):
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def nginx_front(folder, upstreams):
    """nginx with a self-signed certificate on a free port, proxying to the API processes."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    process, port = nginx_tls_proxy(NGINX, folder, [f"127.0.0.1:{p}" for p in upstreams], folder / "cert.pem",
                                    folder / "key.pem")
    return process, f"https://localhost:{port}"


def test_cluster_behind_nginx(tmp_path, postgres, redis_url):
    require(NGINX, "nginx is not installed (make test installs it with apt as root)")
    urllib3.disable_warnings()
    srv = Server(tmp_path, database=postgres, queue=redis_url, trusted_proxies=["127.0.0.1"])
    srv.start()     # init on PostgreSQL, then one process serving; more below
    processes = []
    log = open(tmp_path / "cluster.log", "w")
    try:
        api_ports = [srv.port, free_port()]
        processes.append(start(["--config", str(srv.config), "serve", "--no-worker", "--port",
                                str(api_ports[1])], log))
        processes += [start(["--config", str(srv.config), "worker"], log) for _ in range(2)]
        proxy, url = nginx_front(tmp_path, api_ports)
        processes.append(proxy)
        session = requests.Session()
        session.verify = False
        session.trust_env = False   # else REQUESTS_CA_BUNDLE from the environment overrides verify
        wait_for(lambda: _answers(session, url), timeout=20, what="nginx in front of the API")
        token = session.post(url + "/oauth2/token", data={"grant_type": "password", "username": "admin",
                                                          "password": srv.admin_password}).json()["access_token"]
        session.auth = (token, "")
        model = make_model(srv.mountpoint / "project_template")
        resp = session.post(url + "/templates/", json=cj_body(
            name="project_template", type="filesystemtemplate", template_location=str(model)), headers=CJ)
        assert resp.status_code == 202
        # the Location is what the client sees through the proxy
        assert resp.headers["Location"].startswith(url + "/templates/")
        assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
        template = resp.json()["collection"]["items"][0]["href"]
        profile = session.get(url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()
        exposer = session.get(url + "/exposers/", params={"where": '{"type": "gpfsnative", "name": "mmfs1"}'})
        spaces = []
        for n in range(6):   # several at once, spread over both workers
            resp = session.post(url + "/spaces/", json=cj_body(
                name=f"proj{n}", relativepath=f"projects/proj{n}", exposers=exposer.json()["collection"]["items"][0]["href"],
                profile=profile["collection"]["items"][0]["href"], templates=template, size=1 << 30), headers=CJ)
            assert resp.status_code == 202, resp.text
            spaces.append(resp.headers["Location"])
        for location in spaces:
            assert wait_status(session, location, timeout=20) == "ACTIVE"
        listing = session.get(url + "/spaces/", params={"where": 'name in ["proj0", "proj5"]', "sort": "name"})
        assert listing.headers["X-Total-Count"] == "2"
        assert data_of(listing.json(), 1)["fileset"] == "sas1-proj5"
        assert (srv.mountpoint / "projects" / "proj3" / "assets" / "rigs").is_dir()
        job = session.get(url + f'/jobs?where={{"resource_type": "spaces"}}').json()
        assert all(data_of(job, i)["status"] == "COMPLETED" for i in range(6))
    finally:
        stop(processes)
        srv.stop()
        log.close()


def _answers(session, url):
    try:
        return session.get(url + "/").status_code == 401
    except requests.RequestException:
        return False
