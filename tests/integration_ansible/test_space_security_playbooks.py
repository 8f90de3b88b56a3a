"""pixstor_space secured to a group against a real server (issue 12): owner/group/permissions/acl
and comment/extras sent on creation and applied on disk, the same values otherwise spelt are no
change, a new mode and an emptied ACL are one PATCH applied on disk, a comment alone no job."""
import json
import os
import subprocess

from tests.fileservers import unix_group

GROUP = "pixtsnake"
SECURED = dict(space_group=GROUP, space_permissions="2750", space_acl=["g:%s:rx" % GROUP, "d:g:%s:rwx" % GROUP],
               space_comment="Guarded Gecko", space_extras={"project_code": "GKO", "episodes": 6})


def explain(run):
    return "ansible-playbook exited %s\n%s" % (run.proc.returncode, run.output[-6000:])


def run_and_read(playbook, tmp_path, **extra):
    results = tmp_path / "results.json"
    run = playbook("secured_space.yml", results_file=str(results), **extra)
    assert run.proc.returncode == 0, explain(run)
    return run, json.loads(results.read_text())


def named_entries(path):
    """The ACL entries of `path` that name a user or group, as getfacl writes them."""
    out = subprocess.run(["getfacl", "-cp", str(path)], capture_output=True, text=True, check=True).stdout
    entries = [line.split("#")[0].strip() for line in out.splitlines()]     # "\t#effective:r-x" dropped
    return sorted(entry for entry in entries if entry and entry.split(":")[-2])


def test_a_space_is_made_secured_and_its_notes_kept(playbook, pixstor_server, tmp_path):
    group = unix_group(GROUP)
    run, gecko = run_and_read(playbook, tmp_path, **SECURED)
    assert [(m, p.split("?")[0]) for m, p, _ in run.writes][-1:] == [("POST", "/spaces/")], explain(run)
    space = gecko["space"]
    assert (space["group"], space["permissions"], space["comment"]) == (GROUP, "2750", "Guarded Gecko")
    assert space["acl"] == ["group:%s:r-x" % GROUP, "default:group:%s:rwx" % GROUP]    # the long form, as sent
    root = pixstor_server.mountpoint / "projects" / "guarded-gecko"
    info = os.stat(root)
    assert (info.st_gid, oct(info.st_mode & 0o7777)) == (group.gr_gid, "0o2750")
    assert named_entries(root) == ["default:group:%s:rwx" % GROUP, "group:%s:r-x" % GROUP]
    # a folder copied from the template: the group, the setgid bit and the default ACL
    rigs = root / "assets" / "rigs"
    assert (os.stat(rigs).st_gid, os.stat(rigs).st_mode & 0o2000) == (group.gr_gid, 0o2000)
    assert "default:group:%s:rwx" % GROUP in named_entries(rigs)


def test_the_same_values_otherwise_spelt_are_no_change(playbook, pixstor_server, tmp_path):
    again = dict(SECURED, space_acl=["default:group:%s:rwx" % GROUP, "group:%s:r-x" % GROUP],
                 space_extras={"episodes": 6, "project_code": "GKO"})
    run, gecko = run_and_read(playbook, tmp_path, **again)
    assert (run.recap["changed"], run.writes, gecko["actions"]) == (0, [], []), explain(run)


def test_a_mode_without_setgid_and_an_empty_acl_are_one_patch_applied_on_disk(playbook, pixstor_server, tmp_path):
    run, gecko = run_and_read(playbook, tmp_path, **dict(SECURED, space_permissions="750", space_acl=[]))
    assert [(m, p.split("?")[0].rsplit("/", 1)[0]) for m, p, _ in run.writes] == [("PATCH", "/spaces")]
    assert (gecko["actions"], gecko["msg"]) == (["update"], "space 'guarded-gecko' updated (acl, permissions)")
    assert gecko["job"]["status"] == "COMPLETED"
    root = pixstor_server.mountpoint / "projects" / "guarded-gecko"
    assert oct(os.stat(root).st_mode & 0o7777) == "0o750"
    assert named_entries(root) == []


def test_a_comment_alone_is_a_patch_without_a_job(playbook, pixstor_server, tmp_path):
    run, gecko = run_and_read(playbook, tmp_path, space_comment="Guarded Gecko, season 2")
    assert (gecko["actions"], gecko["job"], gecko["space"]["comment"]) == (
        ["update"], None, "Guarded Gecko, season 2"), explain(run)
    assert [m for m, _, _ in run.writes] == ["PATCH"]
