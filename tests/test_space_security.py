"""Spaces secured to a group (issue 12, item 3): `owner`, `group`, `permissions` and `acl` are
checked at request time (422 naming the field), applied by the space's jobs to its folder and
to the template content copied in, and applied again by a PATCH — read back with `stat` and
`getfacl`, on posix and on a loop-mounted btrfs; a member's new files inherit the group.
Links planted in a space while a PATCH waits: tests/test_confinement.py ("Space security")."""
import os
import pwd
import stat
import subprocess

import pytest

from tests.fileservers import open_to_all, require_tools, unix_group, unix_user
from tests.harness import CJ, Server, cj_body, data_of, make_model, wait_status

MEMBER = "pixtrender"       # a member of `render` whose own group is another
OTHER_GROUP = "pixtcomp"
ACL = ["group:render:rwx", "default:group:render:rwx", "default:other::---"]
DEFAULT_ACL = ["default:user::rwx", "default:group::rwx", "default:group:render:rwx", "default:mask::rwx",
               "default:other::---"]
# the walkthrough's model, with modes its author chose
MODEL_MODES = {".": 0o755, "assets": 0o755, "assets/models": 0o755, "assets/rigs": 0o755, "flame": 0o755,
               "houdini": 0o755, "maya": 0o755, "mudbox": 0o755, "nuke": 0o755, "published": 0o750,
               "rendering": 0o770}


@pytest.fixture(scope="module")
def accounts():
    """(render group, member account): made when missing, kept afterwards."""
    require_tools("the acl tools and account tools", "getfacl", "setfacl", "setpriv", "groupadd", "useradd",
                  "usermod")
    member = unix_user(MEMBER)
    render = unix_group("render", [MEMBER])
    unix_group(OTHER_GROUP)
    assert member.pw_gid != render.gr_gid, "the member's own group must not be render: inheritance is the point"
    return render, member


def getfacl(path):
    """getfacl's report of `path` (named as given relative to its folder), effective-rights comments left out."""
    path = str(path)
    result = subprocess.run(["getfacl", "-E", os.path.basename(path)], cwd=os.path.dirname(path),
                            capture_output=True, text=True, check=True)
    return result.stdout


def report(name, owner, group, setgid, entries):
    flags = ["# flags: -s-"] if setgid else []
    return "\n".join([f"# file: {name}", f"# owner: {owner}", f"# group: {group}", *flags, *entries]) + "\n\n"


def base_entries(mode):
    return [f"user::{perms(mode >> 6)}", f"group::{perms(mode >> 3)}", f"other::{perms(mode)}"]


def perms(bits):
    return "".join(c if bits & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))


def stat_of(path):
    """`stat`'s mode (octal), owner and group of `path`."""
    return subprocess.run(["stat", "-c", "%a %U:%G", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def as_member(member, script, cwd):
    """Run a shell script as the member: its own group, and its supplementary groups from /etc/group."""
    subprocess.run(["setpriv", f"--reuid={member.pw_uid}", f"--regid={member.pw_gid}", "--init-groups", "--",
                    "sh", "-ec", script], cwd=cwd, check=True, capture_output=True, text=True,
                   env=dict(os.environ, HOME="/"))


class Site:
    """A server with the walkthrough's profile, filesystem and a template built from its model."""

    def __init__(self, srv):
        self.srv, self.url = srv, srv.url
        self.session = srv.session()
        self.session.headers.update(CJ)
        self.profile = self.first("profiles", '{"name": "mmfs1-sas1"}')
        self.exposer = self.first("exposers", '{"type": "gpfsnative", "name": "mmfs1"}')
        model = make_model(srv.mountpoint / "project_template")
        (model / "nuke" / "README").write_text("comp scripts go here\n")
        os.chmod(model / "nuke" / "README", 0o640)
        for folder, mode in MODEL_MODES.items():
            os.chmod(model / folder, mode)
        resp = self.session.post(self.url + "/templates/", json=cj_body(
            name="project_template", type="filesystemtemplate", template_location=str(model)))
        assert resp.status_code == 202, resp.text
        assert wait_status(self.session, resp.headers["Location"]) == "ACTIVE"
        self.template = resp.json()["collection"]["items"][0]["href"]

    def first(self, collection, where):
        resp = self.session.get(f"{self.url}/{collection}/", params={"where": where})
        return resp.json()["collection"]["items"][0]["href"]

    def post(self, name, templates=True, **fields):
        return self.session.post(self.url + "/spaces/", json=cj_body(
            name=name, relativepath=f"projects/{name}", exposers=self.exposer, profile=self.profile,
            templates=self.template if templates else "", size=1 << 30, **fields))

    def space(self, name, **fields):
        """An ACTIVE space: (href, its folder)."""
        resp = self.post(name, **fields)
        assert resp.status_code == 202, resp.text
        assert wait_status(self.session, resp.headers["Location"]) == "ACTIVE", self.data(resp.headers["Location"])
        return resp.json()["collection"]["items"][0]["href"], self.srv.mountpoint / "projects" / name

    def data(self, href):
        return data_of(self.session.get(href if href.startswith("http") else self.url + href).json())

    def patch(self, href, **fields):
        """PATCH and, when it made a job, wait for the item to settle; returns the response."""
        resp = self.session.patch(self.url + href, json=cj_body(**fields))
        if resp.status_code == 202:
            assert wait_status(self.session, self.url + href) == "ACTIVE", self.data(href)
        return resp

    def count(self, name):
        resp = self.session.get(self.url + "/spaces/", params={"where": f'{{"name": "{name}"}}'})
        return int(resp.headers["X-Total-Count"])


@pytest.fixture(scope="module")
def site(accounts, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("secured")).start()
    try:
        yield Site(srv)
    finally:
        srv.stop()


@pytest.fixture(params=["posix", "btrfs"])
def driver_site(request, accounts, tmp_path):
    if request.param == "btrfs":
        srv = Server(tmp_path, driver="btrfs", mountpoint=request.getfixturevalue("btrfs_mount"))
    else:
        srv = Server(tmp_path)
    srv.start()
    try:
        yield Site(srv)
    finally:
        srv.stop()


def details(resp):
    assert resp.status_code == 422, resp.text
    return resp.json()["collection"]["error"]["details"]


# -- the fields ----------------------------------------------------------------------------
def test_fields_stay_out_of_the_template_and_have_their_defaults(site):
    template = site.session.get(site.url + "/spaces/").json()["collection"]["template"]["data"]
    assert [d["name"] for d in template] == ["name", "relativepath", "templates", "exposers", "profile", "size"]
    href, root = site.space("plain", templates=False)
    data = site.data(href)
    shown = ["owner", "group", "permissions", "acl", "comment", "extras"]
    assert [name for name in data if name in shown] == shown     # declaration order, the user's notes last
    assert {n: data[n] for n in ("owner", "group", "permissions", "acl")} == {
        "owner": None, "group": None, "permissions": "2770", "acl": None}
    assert stat_of(root) == "2770 root:root"
    assert getfacl(root) == report("plain", "root", "root", True, base_entries(0o770))


@pytest.mark.parametrize("field, value, words", [
    ("owner", "pixtnosuchuser", "no user 'pixtnosuchuser' on this server"),
    ("owner", "3999999999", "no user with id 3999999999 on this server"),
    ("owner", "4294967295", "out of range"),
    ("owner", "bad name", "is not a user name"),
    ("group", "pixtnosuchgroup", "no group 'pixtnosuchgroup' on this server"),
    ("group", "render:rwx", "is not a group name"),
    ("permissions", "4770", "set-user-id (4000) has no meaning on a folder"),
    ("permissions", "2777", "others may not write"),
    ("permissions", "27700", "must be at most 4 bytes"),
    ("permissions", "27a", "3 or 4 octal digits"),
    ("permissions", "rwx", "3 or 4 octal digits"),
    ("permissions", 2770, "must be a string"),
    ("acl", ["group:pixtnosuchgroup:rwx"], "no group 'pixtnosuchgroup' on this server"),
    ("acl", ["user:pixtnosuchuser:rwx"], "no user 'pixtnosuchuser' on this server"),
    ("acl", ["group::rwx"], "come from permissions"),
    ("acl", ["other::r-x"], "come from permissions"),
    ("acl", ["default:other::rwx"], "others may not write"),
    ("acl", ["group:render:rwz"], "three characters, r w x or - in that order"),
    ("acl", ["group:render:wrx"], "three characters, r w x or - in that order"),
    ("acl", ["group:render"], "write [default:]user|group|mask|other:[name]:rwx"),
    ("acl", ["owner:render:rwx"], "write [default:]user|group|mask|other:[name]:rwx"),
    ("acl", ["default:default:group:render:rwx"], "write [default:]user|group|mask|other:[name]:rwx"),
    ("acl", ["mask:render:rwx"], "a mask entry names nobody"),
    ("acl", ["group:render:rwx", "group:render:r-x"], "'group:render:r-x' is given twice"),
    ("acl", ["group:root:rwx", "g:0:r-x"], "name the same group (id 0)"),
    ("acl", ["group:ren\nder:rwx"], "is not a group name"),
    ("acl", {"group": "render"}, "must be a list of ACL entries"),
    ("acl", [f"user:{n}:r--" for n in range(65)], "at most 64 entries"),
])
def test_refused_values_are_422_naming_the_field(site, field, value, words):
    resp = site.post("refused", templates=False, **{field: value})
    assert words in details(resp)[field], details(resp)
    assert site.count("refused") == 0


def test_accepted_forms_are_stored_in_the_long_form(site):
    href, root = site.space("forms", templates=False, owner="0", group="render", permissions="750",
                            acl="g:render:r-x, d:g:render:rwx, d:o::---, m::rwx")
    data = site.data(href)
    assert (data["owner"], data["group"], data["permissions"]) == ("0", "render", "0750")
    assert data["acl"] == ["group:render:r-x", "default:group:render:rwx", "default:other::---", "mask::rwx"]
    assert stat_of(root) == "770 root:render"       # the group bits show the mask, as ls -l does
    assert getfacl(root) == report("forms", "root", "render", False, [
        "user::rwx", "group::r-x", "group:render:r-x", "mask::rwx", "other::---",
        "default:user::rwx", "default:group::r-x", "default:group:render:rwx", "default:mask::rwx",
        "default:other::---"])


# -- on disk, on posix and btrfs -------------------------------------------------------------
def test_a_space_for_render_from_the_walkthrough_template(driver_site, accounts):
    site = driver_site
    render, member = accounts
    href, root = site.space("sleepy-snake", group="render", acl=ACL)
    data = site.data(href)
    assert (data["group"], data["permissions"], data["acl"]) == ("render", "2770", ACL)

    # the root: the permissions, the group, the ACL and its default
    assert stat_of(root) == "2770 root:render"
    assert getfacl(root) == report("sleepy-snake", "root", "render", True, [
        "user::rwx", "group::rwx", "group:render:rwx", "mask::rwx", "other::---", *DEFAULT_ACL])
    # the copied folders: their author's modes with the set-group-id bit, the group, the default ACL
    for folder, mode in MODEL_MODES.items():
        if folder != ".":
            assert stat_of(root / folder) == f"{mode | 0o2000:o} root:render", folder
            assert getfacl(root / folder) == report(os.path.basename(folder), "root", "render", True,
                                                    base_entries(mode) + DEFAULT_ACL), folder
    # files keep their author's mode and take the group
    assert stat_of(root / "nuke" / "README") == "640 root:render"
    assert getfacl(root / "nuke" / "README") == report("README", "root", "render", False, base_entries(0o640))

    # what a member makes afterwards inherits the group (its own group is another) and the default ACL
    open_to_all(root.parent)
    as_member(member, "touch frame0001.exr; mkdir shot010; touch shot010/take1", cwd=root / "rendering")
    name = member.pw_name
    for made in ("frame0001.exr", "shot010/take1"):
        assert stat_of(root / "rendering" / made) == f"660 {name}:render", made
        assert getfacl(root / "rendering" / made) == report(os.path.basename(made), name, "render", False, [
            "user::rw-", "group::rwx", "group:render:rwx", "mask::rw-", "other::---"]), made
    assert stat_of(root / "rendering" / "shot010") == f"2770 {name}:render"
    assert getfacl(root / "rendering" / "shot010") == report("shot010", name, "render", True, [
        "user::rwx", "group::rwx", "group:render:rwx", "mask::rwx", "other::---", *DEFAULT_ACL])


# -- PATCH -----------------------------------------------------------------------------------
def test_a_patch_of_permissions_is_a_job_that_applies_them(site):
    href, root = site.space("repermitted", group="render")
    before = site.data(href)
    resp = site.session.patch(site.url + href, json=cj_body(permissions="2750"))
    assert resp.status_code == 202 and 'rel="job"' in resp.headers["Link"], resp.text
    assert wait_status(site.session, site.url + href) == "ACTIVE"
    assert site.data(href)["permissions"] == "2750" and before["permissions"] == "2770"
    assert stat_of(root) == "2750 root:render"
    assert stat_of(root / "published") == "2750 root:render" and stat_of(root / "maya") == "2755 root:render"


def test_patch_rules(site):
    href, root = site.space("patched", templates=False, group="render")
    assert details(site.patch(href, permissions=None)) == {
        "permissions": "cannot be emptied: give octal permissions (default 2770)"}
    assert "no group 'pixtnosuchgroup'" in details(site.patch(href, group="pixtnosuchgroup"))["group"]
    assert "others may not write" in details(site.patch(href, acl=["default:other::rwx"]))["acl"]
    assert site.data(href)["group"] == "render" and stat_of(root) == "2770 root:render"
    # set to null: recorded at once, no job, the folder as it is
    resp = site.patch(href, group=None)
    assert resp.status_code == 200 and "Link" not in resp.headers, resp.text
    assert site.data(href)["group"] is None and stat_of(root) == "2770 root:render"


def test_a_patch_of_the_group_and_acl_reaches_every_folder_and_the_files_of_the_group(site, accounts):
    href, root = site.space("regrouped", group="render", acl=ACL)
    comp = unix_group(OTHER_GROUP)
    users = pwd.getpwnam(MEMBER).pw_gid
    (root / "maya" / "scene.ma").write_text("a scene\n")         # made by root in a set-group-id folder: render
    (root / "maya" / "notes.txt").write_text("the member's own\n")
    os.chown(root / "maya" / "notes.txt", -1, users)               # a group given on purpose
    os.link(root / "maya" / "scene.ma", root / "maya" / "scene-again.ma")
    (root / "maya" / "cache").mkdir()                              # inherits the default ACL as its own
    os.chown(root / "maya" / "cache", -1, users)
    resp = site.patch(href, group=OTHER_GROUP, acl=[f"group:{OTHER_GROUP}:rwx", f"default:group:{OTHER_GROUP}:rwx"])
    assert resp.status_code == 202, resp.text
    assert site.data(href)["group"] == OTHER_GROUP
    assert stat_of(root) == f"2770 root:{OTHER_GROUP}"
    # folders, whatever their group: the new group, the set-group-id bit, the new default ACL
    defaults = ["default:user::rwx", "default:group::rwx", f"default:group:{OTHER_GROUP}:rwx",
                "default:mask::rwx", "default:other::---"]
    for folder, mode in (("maya", 0o755), ("rendering", 0o770)):
        assert getfacl(root / folder) == report(folder, "root", OTHER_GROUP, True, base_entries(mode) + defaults)
    # a folder's own access ACL stays, here the one it inherited when it was made
    assert getfacl(root / "maya" / "cache") == report("cache", "root", OTHER_GROUP, True, [
        "user::rwx", "group::rwx", "group:render:rwx", "mask::rwx", "other::---", *defaults])
    assert stat_of(root / "nuke" / "README") == f"640 root:{OTHER_GROUP}"
    # a file of another group keeps it; a file with two names keeps render
    assert os.stat(root / "maya" / "notes.txt").st_gid == users
    assert os.stat(root / "maya" / "scene.ma").st_gid == accounts[0].gr_gid
    assert comp.gr_gid != accounts[0].gr_gid

    # acl [] removes every ACL the space's folders have
    assert site.patch(href, acl=[]).status_code == 202
    assert site.data(href)["acl"] == []
    assert getfacl(root) == report("regrouped", "root", OTHER_GROUP, True, base_entries(0o770))
    assert getfacl(root / "maya") == report("maya", "root", OTHER_GROUP, True, base_entries(0o755))
