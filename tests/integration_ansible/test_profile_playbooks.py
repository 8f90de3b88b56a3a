"""pixstor_profile and pixstor_info against a real server (issue 12): ILM steps made in order,
reordered without ever asking the server for a position another step holds (it would accept the
PATCH and fail its job), a new placement's message, and the profile's removal."""
import json

GIB = 2 ** 30


def explain(run):
    return "ansible-playbook exited %s\n%s" % (run.proc.returncode, run.output[-6000:])


def writes(run):
    return [(method, path.split("?")[0].rsplit("/", 1)[0] + "/") for method, path, _ in run.writes]


def steps(pixstor_server):
    """(name, order, status) of profile render's steps, by order."""
    profile = pixstor_server.items("profiles", name="render")[0]
    found = pixstor_server.items("ilmsteps", profile="/profiles/" + profile["id"])
    return sorted((s["name"], s["order"], s["status"]) for s in found)


def run_and_read(playbook, tmp_path, **extra):
    results = tmp_path / "results.json"
    run = playbook("profile.yml", results_file=str(results), **extra)
    assert run.proc.returncode == 0, explain(run)
    return run, json.loads(results.read_text())


def test_a_profile_with_steps_is_made_in_order_then_left_alone(playbook, pixstor_server, tmp_path):
    run, results = run_and_read(playbook, tmp_path)
    assert run.recap["changed"] == 1, explain(run)
    assert writes(run) == [("POST", "/profiles/"), ("POST", "/ilmsteps/"), ("POST", "/ilmsteps/")]
    assert results["render"]["actions"] == ["create", "create ilm step scratch", "create ilm step cold"]
    assert sorted(steps(pixstor_server), key=lambda s: s[1]) == [("scratch", 1, "ACTIVE"), ("cold", 2, "ACTIVE")]
    render = [p for p in results["profiles"] if p["name"] == "render"][0]
    assert [s["name"] for s in render["ilm_steps"]] == ["scratch", "cold"]
    assert render["comment"] == "Render farm output"
    again = playbook("profile.yml")
    assert (again.proc.returncode, again.recap["changed"], again.writes) == (0, 0, []), explain(again)


def test_a_swap_detours_past_the_end_and_no_step_ends_errored(playbook, pixstor_server, tmp_path):
    run, results = run_and_read(playbook, tmp_path, step_order=["cold", "scratch"])
    assert run.recap["changed"] == 1, explain(run)
    assert writes(run) == [("PATCH", "/ilmsteps/")] * 3
    assert results["render"]["actions"] == ["move ilm step scratch", "update ilm step cold",
                                            "update ilm step scratch"]
    assert sorted(steps(pixstor_server), key=lambda s: s[1]) == [("cold", 1, "ACTIVE"), ("scratch", 2, "ACTIVE")]
    again = playbook("profile.yml", step_order=["cold", "scratch"])
    assert (again.proc.returncode, again.recap["changed"], again.writes) == (0, 0, []), explain(again)


def test_a_step_put_first_shifts_the_others_and_one_left_out_goes(playbook, pixstor_server, tmp_path):
    # from cold, scratch: scratch keeps 2, cold moves from 1 to the free 3, empties takes 1
    run, results = run_and_read(playbook, tmp_path, step_order=["empties", "scratch", "cold"])
    assert results["render"]["actions"] == ["update ilm step cold", "create ilm step empties"], explain(run)
    assert writes(run) == [("PATCH", "/ilmsteps/"), ("POST", "/ilmsteps/")]
    assert sorted(steps(pixstor_server), key=lambda s: s[1]) == [
        ("empties", 1, "ACTIVE"), ("scratch", 2, "ACTIVE"), ("cold", 3, "ACTIVE")]
    run, results = run_and_read(playbook, tmp_path, step_order=["scratch"])
    assert results["render"]["actions"] == ["delete ilm step empties", "delete ilm step cold",
                                            "update ilm step scratch"], explain(run)
    assert steps(pixstor_server) == [("scratch", 1, "ACTIVE")]


def test_a_new_placement_says_it_applies_to_new_files(playbook, pixstor_server, tmp_path):
    run, results = run_and_read(playbook, tmp_path, profile_datastore="sata1", step_order=["scratch"])
    message = ("placement of profile render changed from pool sas1 to sata1: new files of its spaces go to sata1; "
               "files already written stay in sas1 (an ILM migrate step moves them)")
    assert results["render"]["placement_message"] == message
    assert message in " ".join(run.output.split()), explain(run)        # the warning
    assert writes(run) == [("PATCH", "/profiles/")]


def test_absent_removes_the_profile_and_its_steps(playbook, pixstor_server, tmp_path):
    run, results = run_and_read(playbook, tmp_path, profile_state="absent")
    assert (results["render"]["actions"], writes(run)) == (["delete"], [("DELETE", "/profiles/")]), explain(run)
    assert pixstor_server.items("profiles", name="render") == []
    assert pixstor_server.items("ilmsteps", name="scratch") == []
    again = playbook("profile.yml", profile_state="absent")
    assert (again.proc.returncode, again.recap["changed"], again.writes) == (0, 0, []), explain(again)
