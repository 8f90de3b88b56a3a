"""Schemathesis drives every operation of the derived OpenAPI document against
a real server with generated input: whatever it sends, no answer is a 5xx."""
import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import make_model

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def test_no_generated_request_gets_a_server_error(server):
    assert shutil.which(SCHEMATHESIS), "schemathesis is a pinned test dependency"
    session = server.session()
    # something to find, so item operations meet real ids as well as made-up ones
    model = make_model(server.mountpoint / "model")
    session.post(server.url + "/templates/", json={"name": "fuzz", "type": "filesystemtemplate",
                                                    "template_location": str(model)})
    token = session.auth[0]
    result = subprocess.run(
        [SCHEMATHESIS, "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error", "--max-examples", "100", "--seed", "20261125", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=server.folder)   # its caches stay out of the repo
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Tested:" in result.stdout
    assert "Traceback" not in server.log()
