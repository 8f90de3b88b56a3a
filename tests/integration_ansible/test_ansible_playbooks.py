"""Real ansible-playbook runs of the pixstor.mgmt collection against a real
pixstor-mgmt server and worker (posix driver in a temp dir).

The tests share one server and run in file order: provision, run again, check
mode, resize, refused changes, tear down."""
import json
import stat
import time

import pytest

GIB = 2 ** 30


def explain(run):
    return "ansible-playbook exited %s\n%s" % (run.proc.returncode, run.output[-6000:])


def test_first_run_provisions_template_space_and_snapshot(playbook, pixstor_server):
    run = playbook("provision.yml")
    assert run.proc.returncode == 0, explain(run)
    assert run.recap["changed"] == 3, explain(run)
    writes = [(method, path.split("?")[0]) for method, path, status in run.writes]
    assert writes == [("POST", "/templates/"), ("POST", "/spaces/"), ("POST", "/snapshots/")]
    # One login for the whole play: the later tasks reuse the cached token.
    assert run.logins == [("POST", "/oauth2/token", "200")], run.requests

    space = pixstor_server.items("spaces", name="sleepy-snake")
    assert [(s["status"], s["size"], s["fileset"]) for s in space] == [("ACTIVE", 4 * GIB, "sas1-sleepy-snake")]
    assert [s["status"] for s in pixstor_server.items("snapshots", name="sleepy-snake-snap")] == ["ACTIVE"]
    # The template's model was copied into the space on disk.
    root = pixstor_server.mountpoint / "projects" / "sleepy-snake"
    assert (root / "assets" / "rigs").is_dir() and (root / "README.txt").read_text() == "project layout\n"


def test_second_run_changes_nothing_and_writes_nothing(playbook, pixstor_server):
    run = playbook("provision.yml")
    assert run.proc.returncode == 0, explain(run)
    assert run.recap["changed"] == 0, explain(run)
    # No POST at all, not even a login: the first run's token is cached.
    assert run.writes_and_logins == [], run.writes_and_logins
    assert any(method == "GET" and path.startswith("/spaces/") for method, path, _ in run.requests)
    # With a token (PIXSTOR_TOKEN wins over the password) neither a login nor the cache is needed.
    with_token = playbook("provision.yml", environment={"PIXSTOR_TOKEN": pixstor_server.api.auth[0],
                                                        "PIXSTOR_TOKEN_CACHE": "false"})
    assert (with_token.proc.returncode, with_token.recap["changed"]) == (0, 0), explain(with_token)
    assert with_token.writes_and_logins == [], with_token.writes_and_logins


def test_check_mode_on_a_fresh_name_predicts_and_creates_nothing(playbook, pixstor_server):
    run = playbook("provision.yml", check=True, space_name="fresh-space")
    assert run.proc.returncode == 0, explain(run)
    # Space and snapshot would be created; the template exists already.
    assert run.recap["changed"] == 2, explain(run)
    # the snapshot task's check-mode warning
    assert "space 'fresh-space' not found in /spaces/; check mode assumes an earlier task would create it" in \
        run.output.replace("\n", " ").replace("  ", " "), explain(run)
    assert run.writes == [], run.writes
    assert pixstor_server.items("spaces", name="fresh-space") == []
    assert not (pixstor_server.mountpoint / "projects" / "fresh-space").exists()


def test_resize_then_run_again(playbook, pixstor_server):
    run = playbook("provision.yml", space_size="8GiB", expected_size=8 * GIB)
    assert run.proc.returncode == 0, explain(run)
    assert run.recap["changed"] == 1, explain(run)
    assert [(m, p.split("?")[0].rsplit("/", 1)[0]) for m, p, _ in run.writes] == [("PATCH", "/spaces")]
    assert [s["size"] for s in pixstor_server.items("spaces", name="sleepy-snake")] == [8 * GIB]
    again = playbook("provision.yml", space_size="8 GiB", expected_size=8 * GIB)
    assert (again.proc.returncode, again.recap["changed"], again.writes) == (0, 0, []), explain(again)


def test_shrinking_below_the_measured_use_needs_force(playbook, pixstor_server, tmp_path):
    (pixstor_server.mountpoint / "projects" / "sleepy-snake" / "data.bin").write_bytes(b"x" * (3 << 20))
    pixstor_server.cli("usage")
    assert [s["used"] > 3 << 20 for s in pixstor_server.items("spaces", name="sleepy-snake")] == [True]
    results = tmp_path / "resize.json"
    run = playbook("resize.yml", space_size="2M", results_file=str(results))
    assert run.proc.returncode == 0, explain(run)
    refused = json.loads(results.read_text())
    assert (refused["failed"], refused["changed"]) == (True, False), refused
    assert refused["msg"].startswith("space 'sleepy-snake' uses 3145743 bytes (about 3.0MiB), as last measured: "
                                     "a size of 2MiB (2097152 bytes) is below that"), refused
    assert "is below that; nothing was changed. Set force: true to shrink it anyway." in refused["msg"], refused
    assert run.writes == [], run.writes
    assert [s["size"] for s in pixstor_server.items("spaces", name="sleepy-snake")] == [8 * GIB]

    forced = playbook("resize.yml", space_size="2M", space_force=True, results_file=str(results))
    assert forced.proc.returncode == 0, explain(forced)
    resized = json.loads(results.read_text())
    assert (resized["failed"], resized["changed"], resized["msg"]) == (
        False, True, "space 'sleepy-snake' resized from 8GiB to 2MiB"), resized
    assert [(m, p.split("/spaces/")[1].split("?")[1]) for m, p, _ in forced.writes] == [("PATCH", "force=true")]
    assert [s["size"] for s in pixstor_server.items("spaces", name="sleepy-snake")] == [2 << 20]

    back = playbook("resize.yml", space_size="8G", results_file=str(results))
    assert back.proc.returncode == 0 and json.loads(results.read_text())["changed"] is True, explain(back)


def test_an_immutable_change_fails_with_what_to_do(playbook, pixstor_server):
    run = playbook("provision.yml", space_size="8GiB", relativepath="projects/elsewhere")
    assert run.proc.returncode != 0, explain(run)
    assert "relativepath cannot be changed once created" in run.output, explain(run)
    assert "state: absent" in run.output, explain(run)
    assert run.writes == [], run.writes


def test_a_space_holding_data_is_kept_without_force(playbook, pixstor_server):
    run = playbook("teardown.yml", space_force=False)
    assert run.proc.returncode != 0, explain(run)
    assert "DELETE /spaces/" in run.output and "HTTP 409" in run.output, explain(run)
    assert [m for m, _, _ in run.writes] == ["DELETE", "DELETE"]    # the snapshot, then the refused space
    assert [s["status"] for s in pixstor_server.items("spaces", name="sleepy-snake")] == ["ACTIVE"]
    assert (pixstor_server.mountpoint / "projects" / "sleepy-snake" / "README.txt").exists()


def test_absent_removes_everything_then_changes_nothing(playbook, pixstor_server):
    run = playbook("teardown.yml")
    assert run.proc.returncode == 0, explain(run)
    assert run.recap["changed"] == 2, explain(run)      # the snapshot went in the previous test
    assert [m for m, _, _ in run.writes] == ["DELETE", "DELETE"]
    for collection, name in (("snapshots", "sleepy-snake-snap"), ("spaces", "sleepy-snake"),
                             ("templates", "project_template")):
        assert pixstor_server.items(collection, name=name) == [], collection
    assert not (pixstor_server.mountpoint / "projects" / "sleepy-snake").exists()
    again = playbook("teardown.yml")
    assert (again.proc.returncode, again.recap["changed"], again.writes) == (0, 0, []), explain(again)


def test_a_failed_job_fails_the_task_with_its_stderr(playbook, pixstor_server):
    # A file where the space's parent folder should be: the API accepts, the storage job fails.
    (pixstor_server.mountpoint / "blocked").write_text("in the way\n")
    names = dict(space_name="errored-space", relativepath="blocked/errored-space")
    run = playbook("provision.yml", **names)
    assert run.proc.returncode != 0, explain(run)
    assert "ended ERRORED" in run.output and "job stderr:" in run.output, explain(run)
    assert "'blocked' is not a directory" in run.output, explain(run)
    assert [s["status"] for s in pixstor_server.items("spaces", name="errored-space")] == ["ERRORED"]

    again = playbook("provision.yml", **names)
    assert again.proc.returncode != 0, explain(again)
    assert "space 'errored-space' is ERRORED" in again.output, explain(again)
    assert again.writes == [], again.writes

    cleanup = playbook("teardown.yml", **names)
    assert cleanup.proc.returncode == 0, explain(cleanup)
    assert pixstor_server.items("spaces", name="errored-space") == []


def test_the_same_task_on_many_hosts_changes_once(playbook, pixstor_server):
    run = playbook("parallel.yml", hosts=4, template_name="raced_template")
    assert run.proc.returncode == 0, explain(run)
    assert sorted(r["changed"] for r in run.recaps.values()) == [0, 0, 0, 1], explain(run)
    gone = playbook("parallel.yml", hosts=4, template_name="raced_template", template_state="absent")
    assert gone.proc.returncode == 0, explain(gone)
    assert sorted(r["changed"] for r in gone.recaps.values()) == [0, 0, 0, 1], explain(gone)


def test_the_same_removal_on_many_hosts_ends_absent_everywhere(playbook, pixstor_server):
    made = playbook("parallel.yml", template_name="shared_template")
    assert made.proc.returncode == 0, explain(made)
    run = playbook("parallel.yml", hosts=4, template_name="shared_template", template_state="absent")
    assert run.proc.returncode == 0, explain(run)
    assert 1 <= sum(r["changed"] for r in run.recaps.values()), explain(run)
    assert pixstor_server.items("templates", name="shared_template") == []


def test_info_reads_populated_objects(playbook):
    run = playbook("info.yml")
    assert run.proc.returncode == 0, explain(run)
    assert (run.recap["changed"], run.writes) == (0, []), explain(run)


def test_the_token_cache_is_private_and_a_refused_token_means_one_fresh_login(playbook, token_cache_file):
    assert stat.S_IMODE(token_cache_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_cache_file.parent.stat().st_mode) == 0o700
    # A token the server does not know (revoked, or issued by another server) that looks valid.
    token_cache_file.write_text(json.dumps({"access_token": "not-a-token-of-this-server",
                                            "expires_at": time.time() + 3600}))
    run = playbook("info.yml")
    assert (run.proc.returncode, run.recap["changed"]) == (0, 0), explain(run)
    assert [s for _, _, s in run.requests].count("401") == 1, run.requests
    assert run.logins == [("POST", "/oauth2/token", "200")], run.requests
    assert json.loads(token_cache_file.read_text())["access_token"] != "not-a-token-of-this-server"
    again = playbook("info.yml")
    assert (again.proc.returncode, again.logins, again.writes_and_logins) == (0, [], []), explain(again)


def test_errors_quote_the_api_and_write_nothing_lasting(playbook, pixstor_server):
    run = playbook("errors.yml")
    assert run.proc.returncode == 0, explain(run)     # the failures are expected, the asserts pass
    assert "ignored=6" in run.output, explain(run)
    assert pixstor_server.items("templates", name="missing_model") == []
    assert pixstor_server.items("spaces", name="tiny-space") == []
    # the float is refused by the module: no request for it reached the API
    assert [(m, p.split("?")[0]) for m, p, _ in run.writes] == [("POST", "/templates/"), ("POST", "/spaces/"),
                                                                ("POST", "/spaces/")]
