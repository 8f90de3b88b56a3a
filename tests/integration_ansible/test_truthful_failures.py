"""Failures that tell the truth, with real ansible-playbook runs against a real server
whose worker does not run (jobs stay PENDING): a timed-out wait reports the change it
made, with the item and its job; credentials from the environment work as documented."""
import json

import pytest

from tests.integration_ansible.conftest import PixstorServer, make_model
from tests.integration_ansible.test_ansible_playbooks import explain


@pytest.fixture(scope="module")
def pixstor_server(tmp_path_factory):
    """This module's server: API only, no worker, so every job waits in the queue."""
    server = PixstorServer(tmp_path_factory.mktemp("pixstor-no-worker"), worker=False).start()
    server.models = server.folder / "models"
    make_model(server.models / "project_template")
    yield server
    server.stop()


def test_a_timed_out_wait_reports_changed_with_the_space_and_its_job(playbook, pixstor_server, tmp_path):
    results = tmp_path / "slow.json"
    run = playbook("wait_timeout.yml", results_file=str(results))
    assert run.proc.returncode == 0, explain(run)
    slow = json.loads(results.read_text())
    [space] = pixstor_server.items("spaces", name="slow-space")
    assert space["status"] == "PENDING"
    assert slow["failed"] is True and slow["changed"] is True, slow
    assert slow["actions"] == ["create"]
    assert slow["space"]["href"] == "/spaces/%s" % space["id"]
    assert (slow["space"]["name"], slow["space"]["status"]) == ("slow-space", "PENDING")
    assert slow["job"]["href"].startswith("/jobs/") and slow["job"]["status"] == "PENDING", slow["job"]
    assert slow["msg"] == ("timed out after 2s waiting for space 'slow-space' (/spaces/%s, status PENDING, job %s "
                           "PENDING); the job goes on on the server: raise wait_timeout or use wait=false"
                           % (space["id"], slow["job"]["href"]))
    assert [(m, p) for m, p, _ in run.writes] == [("POST", "/spaces/")]


def test_a_token_with_a_user_name_and_no_password_from_the_environment(playbook, pixstor_server):
    run = playbook("env_credentials.yml", environment={"PIXSTOR_URL": pixstor_server.url,
                                                       "PIXSTOR_TOKEN": pixstor_server.api.auth[0],
                                                       "PIXSTOR_USERNAME": "tester"})
    assert run.proc.returncode == 0, explain(run)
    assert run.logins == [], run.requests       # the token is used; no login is tried


def test_a_user_name_without_password_or_token_fails_saying_so(playbook, pixstor_server):
    run = playbook("env_credentials.yml", environment={"PIXSTOR_URL": pixstor_server.url,
                                                       "PIXSTOR_USERNAME": "tester"})
    assert run.proc.returncode != 0
    assert "username 'tester' is set but password is not" in run.output, explain(run)
    assert run.requests == [], run.requests
