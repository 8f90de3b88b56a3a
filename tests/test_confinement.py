"""Hostile trees: jobs that nobody can steer outside their roots (issue 9, first "Checked by").

A table of scenarios, each played by a hostile project member against a real `serve
--no-worker` process, on the posix and the btrfs drivers:

  phase 0  the prerequisites of every scenario (templates, ACTIVE spaces, snapshots, planted
           links) are made with a standalone worker running, which is then stopped;
  phase 1  every scenario sends its request: 202 (or the request-time answer it expects);
  phase 2  links are planted and folders swapped while the jobs wait in the queue;
  phase 3  one `pixstor-mgmt worker` runs them all (polled, with a deadline);
  phase 4  one test per scenario asserts its one expected outcome, that the scenario's
           outside tree is exactly as it was, and what else it must find on disk.

The rule the service follows (README, service/storage/confined.py): a symbolic link, or a
non-directory, found where a job walks a path component (the parent folders of a space, the
components of a template's model folder and the model folder itself, `.snapshots` inside a
space, `.pixstor` and `.pixstor/filesets` at a mountpoint) fails the job; the item ends
ERRORED with a one-line status_message that says "symbolic link" (for a link) and names the
component (as the end of a path or a quoted name, not merely as a folder along a longer
path), and nothing is touched. A link that is user data inside a tree being copied (a model,
a space being snapshotted) or removed (a forced delete, a snapshot delete) is copied as a link
or unlinked, never followed, and the job succeeds. Copies skip devices and sockets, copy
fifos, and drop set-user/group-id bits of files.

"Outside" is a tree the test makes beside the mountpoints (for btrfs also one beside the loop
mount and one on a btrfs outside every configured mountpoint): folders and files of known
modes and contents, and a link to `/` in one space. Each scenario has its own outside subtree
and asserts it unchanged (path, type, mode, owner, size, content hash, link target); a last
test asserts every outside tree, and `/` itself, unchanged, with no new entry anywhere.

Scenarios that would wreck the record folder of the filesystem they run on (`.pixstor` or
`.pixstor/filesets` swapped, a link into the records) run on filesystems of their own
(mmfs2..mmfs4), so that a wrong answer in one cannot change the outcome of the others.
"""
from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.btrfs_fixture import Unavailable, give_up, mounted_btrfs, require_btrfs
from tests.fileservers import unix_group
from tests.harness import CJ, Server, cj_body, data_of

ACTIVE, ERRORED, GONE = "ACTIVE", "ERRORED", "gone"
FILESYSTEMS = ("mmfs1", "mmfs2", "mmfs3", "mmfs4")
SETUP_TIMEOUT = 60      # seconds for all prerequisites of one setup step
RUN_TIMEOUT = 75        # seconds for the worker to finish every queued job
GiB = 1 << 30


# -- fingerprints ----------------------------------------------------------------------------
def fingerprint(top, skip=()):
    """{relative path: (type, mode, uid, gid, size, sha256 | link target)} of a tree, links
    not followed; `skip` names top-level entries left out."""
    top = Path(top)
    found = {}

    def visit(path, rel):
        st = os.lstat(path)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            found[rel] = ("dir", oct(mode), st.st_uid, st.st_gid)
            for name in sorted(os.listdir(path)):
                if not (rel == "." and name in skip):
                    visit(path / name, name if rel == "." else f"{rel}/{name}")
        elif stat.S_ISLNK(st.st_mode):
            found[rel] = ("link", st.st_uid, st.st_gid, os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            found[rel] = ("file", oct(mode), st.st_uid, st.st_gid, st.st_size, digest)
        else:
            found[rel] = ("other", stat.S_IFMT(st.st_mode), oct(mode), st.st_uid, st.st_gid)

    if os.path.lexists(top):
        visit(top, ".")
    return found


def changes(before, after, where):
    """What differs between two fingerprints, one line per entry."""
    lines = [f"{where}/{p}: new entry {after[p]}" for p in sorted(set(after) - set(before))]
    lines += [f"{where}/{p}: gone (was {before[p]})" for p in sorted(set(before) - set(after))]
    lines += [f"{where}/{p}: {before[p]} -> {after[p]}" for p in sorted(set(before) & set(after))
              if before[p] != after[p]]
    return lines


def root_stat():
    st = os.lstat("/")
    return oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid


def names(message, component):
    """Does the message name `component` itself (end of a path, or quoted), not merely pass
    through it on the way to something else?"""
    return re.search(r"(?<![\w.-])" + re.escape(component) + r"(?![\w./-])", message) is not None


# -- making trees ----------------------------------------------------------------------------
def write(path, text, mode=0o644):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def victims(folder):
    """The standard outside targets: folders and files of known modes and contents."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "dir755" / "f644", "outside 644\n", 0o644)
    write(folder / "dir755" / "f600", "outside 600\n", 0o600)
    write(folder / "dir755" / "sub" / "deep", "outside deep\n", 0o644)
    write(folder / "dir555" / "f644", "read-only folder's file\n", 0o644)
    write(folder / "file600", "outside secret\n", 0o600)
    write(folder / "file644", "outside public\n", 0o644)
    os.chmod(folder / "dir755", 0o755)
    os.chmod(folder / "dir755" / "sub", 0o755)
    os.chmod(folder / "dir555", 0o555)
    return folder


def absent(path):
    assert not os.path.lexists(path), f"{path} exists"


def swap(path, target):
    """Replace folder `path` by a symbolic link to `target`; the folder moves beside it."""
    path = Path(path)
    os.rename(path, path.with_name(path.name + ".moved"))
    os.symlink(str(target), path)


# -- the scenarios ---------------------------------------------------------------------------
SCENARIOS = []


class Scenario:
    """One hostile scenario. `expect`: ACTIVE, ERRORED or GONE after the job, or the HTTP
    status the request itself must get (409, 422) with `why` in the error."""
    fs = "mmfs1"
    expect = ERRORED
    link = True          # the ERRORED message must say "symbolic link"
    component = None     # ... and name this component
    why = None           # request-time answer: (detail field or None for the message, words)

    def __init_subclass__(cls):
        SCENARIOS.append(cls)

    def __init__(self, run, index):
        self.t = run
        self.name = type(self).__name__
        self.mp = run.mounts[self.fs]
        self.dir = self.mp / self.name                      # the scenario's folder in its filesystem
        self.out = run.outside_roots[index % len(run.outside_roots)] / self.name
        self.outside = [self.out]                           # outside subtrees it asserts unchanged
        self.error = None                                   # why it could not be played
        self.response = self.href = self.outcome = None
        self.state = {}

    def rel(self, *parts):
        return "/".join((self.name,) + parts)

    # hooks
    def setup(self):
        """Phase 0, a generator: each `yield` waits for the prerequisites sent so far."""
        return
        yield

    def finish(self):
        """End of phase 0, after every scenario's setup."""

    def request(self):
        """Phase 1: send the request; return (response, href of the item whose outcome counts).
        Every scenario defines it."""
        raise TypeError(f"scenario {type(self).__name__} defines no request")

    def plant(self):
        """Phase 2: change the tree while the job is queued."""

    def check(self):
        """Phase 4: what must be on disk besides the outcome."""


# Space create ------------------------------------------------------------------------------
class create_parent_swapped_after_202(Scenario):
    """The space's parent folder is swapped for a link to outside while the create is queued."""
    component = "swapped-parent"

    def setup(self):
        (self.dir / "swapped-parent").mkdir()
        victims(self.out)
        yield

    def request(self):
        return self.t.create_space(self, self.rel("swapped-parent", "space"))

    def plant(self):
        swap(self.dir / "swapped-parent", self.out / "dir755")

    def check(self):
        absent(self.dir / "swapped-parent.moved" / "space")


class create_parent_link_outside_before_request(Scenario):
    """A parent component is a link to outside when the request comes: refused at once."""
    expect = 422
    why = ("relativepath", "leaves the mountpoint")

    def setup(self):
        victims(self.out)
        os.symlink(self.out / "dir755", self.dir / "outlink")
        yield

    def request(self):
        return self.t.create_space(self, self.rel("outlink", "space"))

    def check(self):
        assert self.t.count("spaces", name=self.name) == 0


class create_parent_link_to_space_after_202(Scenario):
    """A parent component becomes a link into another space while the create is queued."""
    component = "via"

    def setup(self):
        self.state["other"] = self.t.prereq_space(self, self.rel("other"), name=self.name + "-other")
        yield
        write(self.dir / "other" / "keep", "the other space's data\n")

    def request(self):
        return self.t.create_space(self, self.rel("via", "inner"))

    def plant(self):
        os.symlink("other", self.dir / "via")

    def check(self):
        assert sorted(os.listdir(self.dir / "other")) == ["keep"]
        assert self.t.status(self.state["other"]) == ACTIVE


class create_parent_link_to_space_before_request(Scenario):
    """A parent component is already a link into another space (inside the mountpoint, so the
    request passes): the job refuses it."""
    component = "via"

    def setup(self):
        self.state["other"] = self.t.prereq_space(self, self.rel("other"), name=self.name + "-other")
        yield
        write(self.dir / "other" / "keep", "the other space's data\n")
        os.symlink(self.dir / "other", self.dir / "via")

    def request(self):
        return self.t.create_space(self, self.rel("via", "inner"))

    def check(self):
        assert sorted(os.listdir(self.dir / "other")) == ["keep"]
        assert self.t.status(self.state["other"]) == ACTIVE


class create_parent_link_into_records(Scenario):
    """A parent component becomes a link into `.pixstor/filesets` while the create is queued:
    no folder may appear where a record file belongs."""
    fs = "mmfs4"
    component = "rec"

    def setup(self):
        self.t.prereq_space(self, self.rel("first"), name=self.name + "-first")
        yield

    def request(self):
        return self.t.create_space(self, self.rel("rec", "trap.json"))

    def plant(self):
        os.symlink(self.mp / ".pixstor" / "filesets", self.dir / "rec")

    def check(self):
        records = self.mp / ".pixstor" / "filesets"
        absent(records / "trap.json")
        odd = [p.name for p in records.iterdir() if not stat.S_ISREG(os.lstat(p).st_mode)]
        assert odd == [], f"non-files in the record folder: {odd}"


class create_parent_is_a_file(Scenario):
    """The space's parent is a regular file."""
    link = False
    component = "afile"

    def setup(self):
        write(self.dir / "afile", "a file where a folder should be\n")
        yield

    def request(self):
        return self.t.create_space(self, self.rel("afile", "space"))

    def check(self):
        assert (self.dir / "afile").read_text() == "a file where a folder should be\n"


class create_grandparent_swapped(Scenario):
    """A grandparent folder is swapped for a link to an outside tree of the same shape."""
    component = "grand"

    def setup(self):
        (self.dir / "grand" / "mid").mkdir(parents=True)
        victims(self.out)
        (self.out / "lookalike" / "mid").mkdir(parents=True)
        yield

    def request(self):
        return self.t.create_space(self, self.rel("grand", "mid", "space"))

    def plant(self):
        swap(self.dir / "grand", self.out / "lookalike")


class create_from_template_parent_swapped(Scenario):
    """A create from a built template (its store copy is fine), parent swapped while queued."""
    component = "swapped-parent"

    def setup(self):
        (self.dir / "swapped-parent").mkdir()
        victims(self.out)
        yield

    def request(self):
        return self.t.create_space(self, self.rel("swapped-parent", "space"), templates=self.t.plain)

    def plant(self):
        swap(self.dir / "swapped-parent", self.out / "dir755")

    def check(self):
        changed = changes(self.t.plain_before, fingerprint(self.t.plain_store), "plain template store")
        assert not changed, "; ".join(changed)
        assert self.t.status(self.t.plain) == ACTIVE


class create_from_template_with_links(Scenario):
    """A template whose model holds links to outside: the space gets the links, as links."""
    expect = ACTIVE

    def setup(self):
        victims(self.out)
        model = self.t.models / self.name
        write(model / "data" / "readme", "model data\n")
        os.symlink(self.out / "dir555", model / "dlink")
        os.symlink(self.out / "file600", model / "flink")
        os.symlink("data", model / "rel")
        self.state["template"] = self.t.prereq_template(self, self.name, model)
        yield

    def request(self):
        return self.t.create_space(self, self.rel("space"), templates=self.state["template"])

    def check(self):
        space = self.dir / "space"
        assert os.readlink(space / "dlink") == str(self.out / "dir555")
        assert os.readlink(space / "flink") == str(self.out / "file600")
        assert os.readlink(space / "rel") == "data"
        assert (space / "data" / "readme").read_text() == "model data\n"


class create_control(Scenario):
    """Nothing hostile: missing parents are made, the space is ACTIVE (the jobs do run)."""
    expect = ACTIVE

    def request(self):
        return self.t.create_space(self, self.rel("new", "deep", "space"))

    def check(self):
        space = self.dir / "new" / "deep" / "space"
        assert stat.S_ISDIR(os.lstat(space).st_mode)


class create_pixstor_swapped(Scenario):
    """`.pixstor` at the mountpoint replaced by a link to an outside copy while queued."""
    fs = "mmfs2"
    component = ".pixstor"

    def __init__(self, run, index):
        super().__init__(run, index)
        self.outside.append(run.fake_path(self.fs))

    def finish(self):
        self.t.make_fake(self.fs, ".pixstor")

    def request(self):
        return self.t.create_space(self, self.rel("space"))

    def plant(self):
        self.t.swap_once(self.mp / ".pixstor", self.t.fake_path(self.fs))

    def check(self):
        absent(self.dir / "space")


class create_filesets_swapped(Scenario):
    """`.pixstor/filesets` replaced by a link to an outside copy while queued."""
    fs = "mmfs3"
    component = "filesets"

    def __init__(self, run, index):
        super().__init__(run, index)
        self.outside.append(run.fake_path(self.fs))

    def finish(self):
        self.t.make_fake(self.fs, ".pixstor/filesets")

    def request(self):
        return self.t.create_space(self, self.rel("space"))

    def plant(self):
        self.t.swap_once(self.mp / ".pixstor" / "filesets", self.t.fake_path(self.fs))

    def check(self):
        absent(self.dir / "space")


# Space resize ------------------------------------------------------------------------------
class resize_control(Scenario):
    """Nothing hostile: a resize ends ACTIVE with the new size."""
    expect = ACTIVE

    def setup(self):
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield

    def request(self):
        return self.t.session.patch(self.t.url + self.state["space"], json={"size": 2 * GiB}), self.state["space"]

    def check(self):
        assert self.t.data(self.state["space"])["size"] == 2 * GiB


class resize_pixstor_swapped(Scenario):
    """A resize whose filesystem's `.pixstor` is replaced by a link to an outside copy."""
    fs = "mmfs2"
    component = ".pixstor"

    def __init__(self, run, index):
        super().__init__(run, index)
        self.outside.append(run.fake_path(self.fs))

    def setup(self):
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield

    def finish(self):
        self.t.make_fake(self.fs, ".pixstor")

    def request(self):
        return self.t.session.patch(self.t.url + self.state["space"], json={"size": 3 * GiB}), self.state["space"]

    def plant(self):
        self.t.swap_once(self.mp / ".pixstor", self.t.fake_path(self.fs))


# Space delete ------------------------------------------------------------------------------
class delete_forced_links_to_outside(Scenario):
    """A forced delete of a space holding links to outside folders (0555, 0755), a file (0600)
    and to `/`: the links go, their targets keep their modes and contents."""
    expect = GONE

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        space = self.dir / "space"
        write(space / "work" / "shot.exr", "pixels\n")
        os.symlink(self.out / "dir555", space / "dlink555")
        os.symlink(self.out / "dir755", space / "work" / "dlink755")
        os.symlink(self.out / "file600", space / "flink")
        os.symlink("/", space / "rootlink")

    def request(self):
        return self.t.delete(self.state["space"], force=True), self.state["space"]

    def check(self):
        absent(self.dir / "space")
        assert root_stat() == self.t.root_before


class delete_forced_folder_swapped_while_queued(Scenario):
    """A folder inside the space is swapped for a link to outside while the forced delete is
    queued: the link is unlinked, not followed."""
    expect = GONE

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / "work" / "shot.exr", "pixels\n")

    def request(self):
        return self.t.delete(self.state["space"], force=True), self.state["space"]

    def plant(self):
        swap(self.dir / "space" / "work", self.out / "dir555")

    def check(self):
        absent(self.dir / "space")


class delete_forced_parent_swapped(Scenario):
    """The space's parent is swapped for a link to an outside look-alike holding a `space`
    folder while the forced delete is queued: nothing is removed anywhere."""
    component = "parent"

    def setup(self):
        victims(self.out)
        write(self.out / "lookalike" / "space" / "precious", "outside data\n")
        os.chmod(self.out / "lookalike" / "space", 0o555)
        self.state["space"] = self.t.prereq_space(self, self.rel("parent", "space"))
        yield
        write(self.dir / "parent" / "space" / "data", "the space's data\n")

    def request(self):
        return self.t.delete(self.state["space"], force=True), self.state["space"]

    def plant(self):
        swap(self.dir / "parent", self.out / "lookalike")

    def check(self):
        assert (self.dir / "parent.moved" / "space" / "data").read_text() == "the space's data\n"


class delete_unforced_only_a_link(Scenario):
    """An unforced delete of a space holding only a link: it holds data, 409, nothing done."""
    expect = 409
    why = (None, "holds data")

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        os.symlink(self.out / "dir755", self.dir / "space" / "only")

    def request(self):
        return self.t.delete(self.state["space"]), self.state["space"]

    def check(self):
        assert os.readlink(self.dir / "space" / "only") == str(self.out / "dir755")
        assert self.t.status(self.state["space"]) == ACTIVE


class delete_forced_snapshots_swapped(Scenario):
    """A forced delete of a space with a snapshot whose `.snapshots` is replaced by a link to
    an outside folder holding a folder of the snapshot's name: the job refuses."""
    component = ".snapshots"

    def setup(self):
        victims(self.out)
        write(self.out / "fake" / "snap" / "precious", "outside data\n")
        os.chmod(self.out / "fake" / "snap", 0o555)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / "data", "the space's data\n")
        self.t.prereq_snapshot(self, "snap", self.state["space"])
        yield

    def request(self):
        return self.t.delete(self.state["space"], force=True), self.state["space"]

    def plant(self):
        space = self.dir / "space"
        os.rename(space / ".snapshots", space / "snapshots.moved")
        os.symlink(self.out / "fake", space / ".snapshots")

    def check(self):
        space = self.dir / "space"
        assert (space / "data").read_text() == "the space's data\n"
        assert (space / "snapshots.moved" / "snap" / "data").read_text() == "the space's data\n"


class delete_forced_with_snapshot_holding_links(Scenario):
    """A forced delete of a space with links to outside and a snapshot holding those links:
    space and snapshot go, the targets keep their modes."""
    expect = GONE

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        space = self.dir / "space"
        write(space / "data", "the space's data\n")
        os.symlink(self.out / "dir555", space / "dlink")
        os.symlink(self.out / "file600", space / "flink")
        self.state["snapshot"] = self.t.prereq_snapshot(self, "snap", self.state["space"])
        yield

    def request(self):
        return self.t.delete(self.state["space"], force=True), self.state["space"]

    def check(self):
        absent(self.dir / "space")
        assert self.t.session.get(self.t.url + self.state["snapshot"]).status_code == 404


class delete_forced_filesets_swapped(Scenario):
    """A forced delete whose filesystem's `.pixstor/filesets` is replaced by a link to an
    outside copy while queued: the job refuses, the space keeps its data."""
    fs = "mmfs3"
    component = "filesets"

    def __init__(self, run, index):
        super().__init__(run, index)
        self.outside.append(run.fake_path(self.fs))

    def setup(self):
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / "data", "the space's data\n")

    def finish(self):
        self.t.make_fake(self.fs, ".pixstor/filesets")

    def request(self):
        return self.t.delete(self.state["space"], force=True), self.state["space"]

    def plant(self):
        self.t.swap_once(self.mp / ".pixstor" / "filesets", self.t.fake_path(self.fs))

    def check(self):
        assert (self.dir / "space" / "data").read_text() == "the space's data\n"


# Templates ---------------------------------------------------------------------------------
class TemplateScenario(Scenario):
    def request(self):
        return self.t.create_template(self, self.name, self.state["location"])

    def check_not_stored(self):
        tid = self.href.rsplit("/", 1)[1]
        assert [p.name for p in self.t.store.iterdir() if p.name.startswith(tid)] == []


SCENARIOS.remove(TemplateScenario)


class template_links_in_model(TemplateScenario):
    """A model holding links to outside (folder, file) and a relative one: the store holds
    the links as links, not the targets' contents."""
    expect = ACTIVE

    def setup(self):
        victims(self.out)
        model = self.t.models / self.name
        write(model / "sub" / "data", "model data\n")
        os.symlink(self.out / "dir555", model / "dlink")
        os.symlink(self.out / "file600", model / "flink")
        os.symlink("sub", model / "rel")
        self.state["location"] = model
        yield

    def check(self):
        stored = self.t.store / self.href.rsplit("/", 1)[1]
        assert os.readlink(stored / "dlink") == str(self.out / "dir555")
        assert os.readlink(stored / "flink") == str(self.out / "file600")
        assert os.readlink(stored / "rel") == "sub"
        assert (stored / "sub" / "data").read_text() == "model data\n"


class template_model_swapped_after_202(TemplateScenario):
    """The model folder (in the mountpoint) is swapped for a link to outside while queued."""
    component = "model"

    def setup(self):
        victims(self.out)
        write(self.dir / "model" / "data", "model data\n")
        self.state["location"] = self.dir / "model"
        yield

    def plant(self):
        swap(self.dir / "model", self.out / "dir755")

    def check(self):
        self.check_not_stored()


class template_model_link_outside_before_request(TemplateScenario):
    """The model folder is a link to outside at request time: refused at once."""
    expect = 422
    why = ("template_location", "symbolic link")
    component = "model"

    def setup(self):
        victims(self.out)
        (self.t.models / self.name).mkdir()
        os.symlink(self.out / "dir755", self.t.models / self.name / "model")
        self.state["location"] = self.t.models / self.name / "model"
        yield

    def check(self):
        assert self.t.count("templates", name=self.name) == 0


class template_component_link_outside_before_request(TemplateScenario):
    """A component of the model's path is a link to outside at request time: refused at once."""
    expect = 422
    why = ("template_location", "symbolic link")
    component = "comp"

    def setup(self):
        victims(self.out)
        write(self.out / "lookalike" / "model" / "data", "outside model\n")
        (self.t.models / self.name).mkdir()
        os.symlink(self.out / "lookalike", self.t.models / self.name / "comp")
        self.state["location"] = self.t.models / self.name / "comp" / "model"
        yield

    def check(self):
        assert self.t.count("templates", name=self.name) == 0


class template_component_link_inside_before_request(TemplateScenario):
    """A component of the model's path is a link that stays inside the template sources: the
    request walks the model as the job will, and refuses it at once."""
    expect = 422
    why = ("template_location", "symbolic link")
    component = "alias"

    def setup(self):
        write(self.t.models / self.name / "real" / "model" / "data", "model data\n")
        os.symlink("real", self.t.models / self.name / "alias")
        self.state["location"] = self.t.models / self.name / "alias" / "model"
        yield

    def check(self):
        assert self.t.count("templates", name=self.name) == 0


class template_component_swapped_after_202(TemplateScenario):
    """A component of the model's path (in the mountpoint) is swapped for a link to an
    outside look-alike while queued: no outside file reaches the store."""
    component = "comp"

    def setup(self):
        victims(self.out)
        write(self.out / "lookalike" / "model" / "secret", "outside data\n", 0o600)
        write(self.dir / "comp" / "model" / "data", "model data\n")
        self.state["location"] = self.dir / "comp" / "model"
        yield

    def plant(self):
        swap(self.dir / "comp", self.out / "lookalike")

    def check(self):
        self.check_not_stored()


class template_model_link_inside_before_request(TemplateScenario):
    """The model folder itself is a link to a folder inside the template sources: refused at
    request time."""
    expect = 422
    why = ("template_location", "symbolic link")
    component = "alias"

    def setup(self):
        write(self.t.models / self.name / "real" / "data", "model data\n")
        os.symlink("real", self.t.models / self.name / "alias")
        self.state["location"] = self.t.models / self.name / "alias"
        yield

    def check(self):
        assert self.t.count("templates", name=self.name) == 0


class template_special_files(TemplateScenario):
    """A model with a fifo, set-uid and set-gid programs, a socket and a device: fifo copied,
    set-id bits dropped, socket and device skipped."""
    expect = ACTIVE

    def setup(self):
        model = self.t.models / self.name
        write(model / "plain", "plain file\n", 0o644)
        write(model / "setuid", "#!/bin/sh\n", 0o4755)
        write(model / "setgid", "#!/bin/sh\n", 0o2755)
        os.mkfifo(model / "fifo", 0o640)
        os.chmod(model / "fifo", 0o640)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(model / "sock"))
        try:
            os.mknod(model / "device", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:   # no CAP_MKNOD here: the rest of the scenario still holds
            pass
        self.state["location"] = model
        yield

    def check(self):
        stored = self.t.store / self.href.rsplit("/", 1)[1]
        assert (stored / "plain").read_text() == "plain file\n"
        assert oct(stat.S_IMODE(os.lstat(stored / "setuid").st_mode)) == oct(0o755)
        assert oct(stat.S_IMODE(os.lstat(stored / "setgid").st_mode)) == oct(0o755)
        fifo = os.lstat(stored / "fifo")
        assert stat.S_ISFIFO(fifo.st_mode) and oct(stat.S_IMODE(fifo.st_mode)) == oct(0o640)
        assert sorted(os.listdir(stored)) == ["fifo", "plain", "setgid", "setuid"]


class template_delete_store_holding_links(TemplateScenario):
    """Deleting a built template whose store copy holds links to outside: the copy goes
    (no `.building` left either), the targets stay."""
    expect = GONE

    def setup(self):
        victims(self.out)
        model = self.t.models / self.name
        write(model / "data", "model data\n")
        os.symlink(self.out / "dir555", model / "dlink")
        os.symlink(self.out / "file600", model / "flink")
        self.state["template"] = self.t.prereq_template(self, self.name, model)
        yield

    def request(self):
        return self.t.delete(self.state["template"]), self.state["template"]

    def check(self):
        self.check_not_stored()


# Snapshots ---------------------------------------------------------------------------------
class snapshot_create_snapshots_link_after_202(Scenario):
    """`.snapshots` appears as a link to outside while the snapshot is queued."""
    component = ".snapshots"

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / "data", "the space's data\n")

    def request(self):
        return self.t.create_snapshot(self, "snap", self.state["space"])

    def plant(self):
        os.symlink(self.out / "dir755", self.dir / "space" / ".snapshots")


class snapshot_create_snapshots_link_before_request(Scenario):
    """`.snapshots` is a link to outside before the snapshot is asked for."""
    component = ".snapshots"

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / "data", "the space's data\n")
        os.symlink(self.out / "dir755", self.dir / "space" / ".snapshots")

    def request(self):
        return self.t.create_snapshot(self, "snap", self.state["space"])


class snapshot_create_snapshots_is_a_file(Scenario):
    """`.snapshots` is a regular file."""
    link = False
    component = ".snapshots"

    def setup(self):
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / ".snapshots", "not a folder\n")

    def request(self):
        return self.t.create_snapshot(self, "snap", self.state["space"])

    def check(self):
        assert (self.dir / "space" / ".snapshots").read_text() == "not a folder\n"


class snapshot_create_links_inside_space(Scenario):
    """A space holding links to outside (0755 folder, 0644 file): the snapshot holds them as
    links, and making it read-only does not reach their targets."""
    expect = ACTIVE

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        space = self.dir / "space"
        write(space / "sub" / "data", "the space's data\n")
        os.symlink(self.out / "dir755", space / "dlink")
        os.symlink(self.out / "file644", space / "flink")

    def request(self):
        return self.t.create_snapshot(self, "snap", self.state["space"])

    def check(self):
        snap = self.dir / "space" / ".snapshots" / "snap"
        assert os.readlink(snap / "dlink") == str(self.out / "dir755")
        assert os.readlink(snap / "flink") == str(self.out / "file644")
        assert (snap / "sub" / "data").read_text() == "the space's data\n"


class snapshot_create_parent_swapped(Scenario):
    """The space's parent is swapped for a link to an outside look-alike while the snapshot
    is queued: nothing is copied into, or made in, the look-alike."""
    component = "parent"

    def setup(self):
        victims(self.out)
        write(self.out / "lookalike" / "space" / "secret", "outside data\n", 0o600)
        self.state["space"] = self.t.prereq_space(self, self.rel("parent", "space"))
        yield
        write(self.dir / "parent" / "space" / "data", "the space's data\n")

    def request(self):
        return self.t.create_snapshot(self, "snap", self.state["space"])

    def plant(self):
        swap(self.dir / "parent", self.out / "lookalike")

    def check(self):
        absent(self.dir / "parent.moved" / "space" / ".snapshots" / "snap")


class snapshot_delete_snapshots_swapped(Scenario):
    """`.snapshots` is replaced by a link to an outside folder holding a folder of the
    snapshot's name while the delete is queued: the job refuses, the snapshot stays."""
    component = ".snapshots"

    def setup(self):
        victims(self.out)
        write(self.out / "fake" / "snap" / "precious", "outside data\n")
        os.chmod(self.out / "fake" / "snap", 0o555)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        write(self.dir / "space" / "data", "the space's data\n")
        self.state["snapshot"] = self.t.prereq_snapshot(self, "snap", self.state["space"])
        yield

    def request(self):
        return self.t.delete(self.state["snapshot"]), self.state["snapshot"]

    def plant(self):
        space = self.dir / "space"
        os.rename(space / ".snapshots", space / "snapshots.moved")
        os.symlink(self.out / "fake", space / ".snapshots")

    def check(self):
        moved = self.dir / "space" / "snapshots.moved" / "snap"
        assert (moved / "data").read_text() == "the space's data\n"


class snapshot_delete_holding_links(Scenario):
    """Deleting a snapshot that holds links to outside (0555 folder, 0600 file): the links
    go, the targets keep their modes; the space keeps its own links."""
    expect = GONE

    def setup(self):
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        space = self.dir / "space"
        write(space / "data", "the space's data\n")
        os.symlink(self.out / "dir555", space / "dlink")
        os.symlink(self.out / "file600", space / "flink")
        self.state["snapshot"] = self.t.prereq_snapshot(self, "snap", self.state["space"])
        yield

    def request(self):
        return self.t.delete(self.state["snapshot"]), self.state["snapshot"]

    def check(self):
        space = self.dir / "space"
        absent(space / ".snapshots" / "snap")
        assert os.readlink(space / "dlink") == str(self.out / "dir555")


# Space security: a PATCH of owner, group, permissions or acl ---------------------------------
SECURE_GROUP, NEW_GROUP = "render", "pixtcomp"
POSIX_ACLS = ("system.posix_acl_access", "system.posix_acl_default")


def acl_names(path):
    """The POSIX ACL attributes of `path` itself (a link is not followed)."""
    return sorted(set(os.listxattr(path, follow_symlinks=False)) & set(POSIX_ACLS))


class SecureScenario(Scenario):
    """A space made from the plain template, then secured to group render by a PATCH."""
    place = ("space",)

    def setup(self):
        unix_group(SECURE_GROUP)
        unix_group(NEW_GROUP)
        victims(self.out)
        self.state["space"] = self.t.prereq_space(self, self.rel(*self.place), templates=self.t.plain)
        yield
        self.t.prereq_patch(self, self.state["space"], group=SECURE_GROUP,
                            acl=[f"group:{SECURE_GROUP}:rwx", f"default:group:{SECURE_GROUP}:rwx"])
        yield


SCENARIOS.remove(SecureScenario)


class secure_group_links_to_outside(SecureScenario):
    """Links to outside files and folders planted in a space before a PATCH of its group and
    ACL, a folder swapped for a link to outside while it waits (and, on posix, a hard link to
    an outside file of the space's group): the space's own folders and files take the new
    group, the links stay as they are, their targets and the outside tree keep their owners,
    modes and ACLs."""
    expect = ACTIVE

    def setup(self):
        yield from super().setup()
        space = self.dir / "space"
        os.symlink(self.out / "file644", space / "to-file")
        os.symlink(self.out / "dir755", space / "to-dir")
        os.symlink(self.out / "file600", space / "shots" / "to-secret")
        if self.t.driver == "posix":     # one filesystem: a second name of an outside file of the group
            shared = write(self.out / "shared-render", "another project's file\n", 0o660)
            os.chown(shared, -1, grp.getgrnam(SECURE_GROUP).gr_gid)
            os.link(shared, space / "hard")
        write(space / "frame", "the group's file\n")
        self.state["links"] = self.links("shots")

    def links(self, shots):
        """Owner, group and target of each planted link itself (`shots`: where that folder is now)."""
        found = {}
        for path in ("to-file", "to-dir", f"{shots}/to-secret"):
            st = os.lstat(self.dir / "space" / path)
            found[os.path.basename(path)] = (st.st_uid, st.st_gid, os.readlink(self.dir / "space" / path))
        return found

    def request(self):
        href = self.state["space"]
        resp = self.t.session.patch(self.t.url + href, json={
            "group": NEW_GROUP, "acl": [f"group:{NEW_GROUP}:rwx", f"default:group:{NEW_GROUP}:rwx"]})
        self.state["while queued"] = self.t.data(href)["group"]
        return resp, href

    def plant(self):
        swap(self.dir / "space" / "shots", self.out / "dir755")

    def check(self):
        space, new = self.dir / "space", grp.getgrnam(NEW_GROUP).gr_gid
        assert (self.state["while queued"], self.t.data(self.state["space"])["group"]) == (SECURE_GROUP, NEW_GROUP)
        for own in (space, space / "shots.moved", space / "shots.moved" / "010", space / "frame", space / "readme"):
            assert os.lstat(own).st_gid == new, own
        assert os.lstat(space / "shots.moved").st_mode & stat.S_ISGID
        assert acl_names(space / "shots.moved") == ["system.posix_acl_default"]
        assert self.links("shots.moved") == self.state["links"]
        assert os.readlink(space / "shots") == str(self.out / "dir755")
        for path in [self.out, *self.out.rglob("*")]:
            assert acl_names(path) == [], path


class secure_parent_swapped(SecureScenario):
    """The space's parent folder is swapped for a link to outside while a PATCH waits."""
    component = "parent"
    place = ("parent", "space")

    def request(self):
        href = self.state["space"]
        return self.t.session.patch(self.t.url + href, json={"permissions": "2750", "group": NEW_GROUP}), href

    def plant(self):
        swap(self.dir / "parent", self.out / "dir755")

    def check(self):
        data, space = self.t.data(self.state["space"]), self.dir / "parent.moved" / "space"
        assert (data["permissions"], data["group"]) == ("2770", SECURE_GROUP)
        st = os.lstat(space)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o2770, grp.getgrnam(SECURE_GROUP).gr_gid)


class secure_group_gone_after_202(Scenario):
    """The group a PATCH asks for is removed while the job waits: the job says so and changes
    nothing."""
    link = False
    component = f"pixtgone{os.getpid()}"

    def setup(self):
        self.state["space"] = self.t.prereq_space(self, self.rel("space"))
        yield
        unix_group(self.component)

    def request(self):
        return self.t.session.patch(self.t.url + self.state["space"], json={"group": self.component}), \
            self.state["space"]

    def plant(self):
        subprocess.run(["groupdel", self.component], check=True, capture_output=True)

    def check(self):
        assert self.t.data(self.state["space"])["group"] is None
        assert os.lstat(self.dir / "space").st_gid == 0


NAMES = [cls.__name__ for cls in SCENARIOS]


# -- playing the table -----------------------------------------------------------------------
class SetupFailed(Exception):
    pass


class Run:
    """One driver's play of the whole table against one server."""

    def __init__(self, driver, srv, mounts, outside_roots):
        self.driver, self.srv, self.url = driver, srv, srv.url
        self.mounts, self.outside_roots = mounts, outside_roots
        self.session = srv.session()
        self.models = srv.folder / "models"
        self.store = srv.folder / "var" / "templates"
        self.profiles = {fs: self.find("profiles", name=f"{fs}-sas1") for fs in FILESYSTEMS}
        self.exposers = {fs: self.find("exposers", name=fs, type="gpfsnative") for fs in FILESYSTEMS}
        self.scenarios = {cls.__name__: cls(self, i) for i, cls in enumerate(SCENARIOS)}
        self.pending = []           # (scenario, href, what) waiting to be ACTIVE
        self.unfinished = None

    # API helpers
    def find(self, collection, **where):
        resp = self.session.get(f"{self.url}/{collection}/", params={"where": json.dumps(where)})
        assert resp.status_code == 200 and resp.headers["X-Total-Count"] == "1", (collection, where, resp.text)
        return resp.json()["collection"]["items"][0]["href"]

    def count(self, collection, **where):
        resp = self.session.get(f"{self.url}/{collection}/", params={"where": json.dumps(where)})
        return int(resp.headers["X-Total-Count"])

    def data(self, href):
        return data_of(self.session.get(self.url + href).json())

    def status(self, href):
        return self.data(href)["status"]

    def outcome_of(self, href):
        resp = self.session.get(self.url + href)
        if resp.status_code == 404:
            return GONE, None
        data = data_of(resp.json())
        return data["status"], data.get("status_message")

    @staticmethod
    def created(resp):
        return resp, (resp.json()["collection"]["items"][0]["href"] if resp.status_code == 202 else None)

    def create_space(self, sc, relativepath, name=None, templates="", size=GiB, fs=None):
        fs = fs or sc.fs
        body = cj_body(name=name or sc.name, relativepath=relativepath, exposers=self.exposers[fs],
                       profile=self.profiles[fs], templates=templates, size=size)
        return self.created(self.session.post(self.url + "/spaces/", json=body, headers=CJ))

    def create_template(self, sc, name, location):
        body = cj_body(name=name, type="filesystemtemplate", template_location=str(location))
        return self.created(self.session.post(self.url + "/templates/", json=body, headers=CJ))

    def create_snapshot(self, sc, name, space):
        body = cj_body(name=name, type="gpfsspacesnapshot", space=space)
        return self.created(self.session.post(self.url + "/snapshots/", json=body, headers=CJ))

    def delete(self, href, force=False):
        return self.session.delete(self.url + href, params={"force": "true"} if force else None)

    # prerequisites (phase 0)
    def _prereq(self, sc, made, what):
        resp, href = made
        if href is None:
            raise SetupFailed(f"{what}: {resp.status_code} {resp.text[:300]}")
        self.pending.append((sc, href, what))
        return href

    def prereq_space(self, sc, relativepath, name=None, templates=""):
        return self._prereq(sc, self.create_space(sc, relativepath, name=name, templates=templates),
                            f"space {relativepath}")

    def prereq_template(self, sc, name, location):
        return self._prereq(sc, self.create_template(sc, name, location), f"template {name}")

    def prereq_snapshot(self, sc, name, space):
        return self._prereq(sc, self.create_snapshot(sc, name, space), f"snapshot {name}")

    def prereq_patch(self, sc, href, **fields):
        return self._prereq(sc, self.created(self.session.patch(self.url + href, json=fields)),
                            f"PATCH of {href} with {fields}")

    def settle(self):
        """Wait for every prerequisite sent; a scenario whose prerequisite did not become
        ACTIVE cannot be played (it fails, alone)."""
        deadline = time.monotonic() + SETUP_TIMEOUT
        for sc, href, what in self.pending:
            while True:
                status, message = self.outcome_of(href)
                if status in (ACTIVE, ERRORED, GONE) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if status != ACTIVE and sc is None:
                raise AssertionError(f"{what} ended {status}: {message}")
            if status != ACTIVE and sc.error is None:
                sc.error = f"prerequisite {what} ended {status}: {message}"
        self.pending = []

    # shared outside copies of a filesystem's record folder
    def fake_path(self, fs):
        return self.outside_roots[0] / f"{fs}-records-copy"

    def make_fake(self, fs, folder):
        fake, real = self.fake_path(fs), self.mounts[fs] / folder
        if not fake.exists():
            if real.is_dir():
                shutil.copytree(real, fake, symlinks=True)
            else:
                fake.mkdir()

    @staticmethod
    def swap_once(path, target):
        if not path.is_symlink():
            swap(path, target)

    # the phases
    def guarded(self, sc, step, *args):
        if sc.error is None:
            try:
                return step(*args)
            except Exception as exc:  # one scenario's trouble is its own failure, not the table's
                sc.error = f"{step.__name__}: {type(exc).__name__}: {exc}"
        return None

    def play(self):
        scenarios = list(self.scenarios.values())
        for root in self.outside_roots:
            root.mkdir(parents=True, exist_ok=True)
        # Phase 0: prerequisites, with a worker.
        for sc in scenarios:
            sc.dir.mkdir(parents=True)
            sc.out.mkdir(parents=True)
        model = self.models / "plain"
        write(model / "readme", "the plain model\n")
        (model / "shots" / "010").mkdir(parents=True)
        with self.srv.standalone_worker():
            resp, self.plain = self.create_template(None, "plain", model)
            assert self.plain, resp.text
            self.pending.append((None, self.plain, "template plain"))
            self.settle()
            steps = {sc.name: sc.setup() for sc in scenarios}
            while steps:
                for sc in scenarios:
                    if sc.name in steps and self.guarded(sc, next, steps[sc.name], "done") == "done":
                        del steps[sc.name]
                    if sc.error is not None:
                        steps.pop(sc.name, None)
                self.settle()
        for sc in scenarios:
            self.guarded(sc, sc.finish)
        self.plain_store = self.store / self.plain.rsplit("/", 1)[1]
        self.plain_before = fingerprint(self.plain_store)
        self.root_before = root_stat()
        self.before = {root: fingerprint(root) for root in self.outside_roots}
        self.sc_before = {sc.name: {p: fingerprint(p) for p in sc.outside} for sc in scenarios}
        # Phase 1: every request, no worker.
        for sc in scenarios:
            made = self.guarded(sc, sc.request)
            if made:
                sc.response, sc.href = made
        # Phase 2: plant while queued.
        for sc in scenarios:
            if sc.response is not None and sc.response.status_code == 202:
                self.guarded(sc, sc.plant)
        # Phase 3: one worker runs everything.
        busy = {"where": json.dumps({"status": {"$in": ["PENDING", "INPROGRESS"]}}), "max_results": 1}
        with self.srv.standalone_worker():
            deadline = time.monotonic() + RUN_TIMEOUT
            while True:
                left = int(self.session.get(self.url + "/jobs/", params=busy).headers["X-Total-Count"])
                if left == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.unfinished = left
        for sc in scenarios:
            if sc.href and sc.error is None:
                sc.outcome = self.outcome_of(sc.href)


@pytest.fixture(scope="module", params=["posix", "btrfs"])
def run(request, tmp_path_factory):
    driver = request.param
    with contextlib.ExitStack() as stack:
        folder = tmp_path_factory.mktemp(f"confinement-{driver}")
        if driver == "btrfs":
            require_btrfs()
            try:
                main = Path(stack.enter_context(mounted_btrfs(str(tmp_path_factory.mktemp("btrfs")))))
                other = Path(stack.enter_context(mounted_btrfs(str(tmp_path_factory.mktemp("btrfs-iso")))))
            except Unavailable as exc:
                give_up(exc)
            mounts = {"mmfs1": main, "mmfs2": other / "fs2", "mmfs3": other / "fs3", "mmfs4": other / "fs4"}
            for path in mounts.values():
                path.mkdir(exist_ok=True)
            # beside the loop mount, on a btrfs outside every mountpoint, beside the server
            outside_roots = [main.parent / "outside", other / "outside", folder / "outside"]
        else:
            mounts = {fs: folder / fs for fs in FILESYSTEMS}
            outside_roots = [folder / "outside"]
        extra = "".join(f'\n[[storage.filesystems]]\nname = "{fs}"\nmountpoint = "{mounts[fs]}"\n'
                        f'pools = ["sas1", "sata1"]\n' for fs in FILESYSTEMS[1:])
        srv = Server(folder, driver=driver, mountpoint=str(mounts["mmfs1"]), worker=False, extra=extra)
        srv.start()
        stack.callback(srv.stop)
        root_mode = os.lstat("/").st_mode
        try:
            played = Run(driver, srv, mounts, outside_roots)
            played.play()
            yield played
        finally:
            if os.lstat("/").st_mode != root_mode:   # a job chmodded `/` through a link: undo it
                os.chmod("/", stat.S_IMODE(root_mode))


# -- phase 4 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_scenario(run, name):
    sc = run.scenarios[name]
    assert sc.error is None, f"{name} could not be played: {sc.error}"
    problems = []
    resp = sc.response
    if isinstance(sc.expect, int):
        if resp.status_code != sc.expect:
            problems.append(f"request answered {resp.status_code}, expected {sc.expect}: {resp.text[:300]}")
        else:
            error = resp.json()["collection"]["error"]
            field, words = sc.why
            said = error.get("details", {}).get(field, "") if field else error["message"]
            if words not in said:
                problems.append(f"the {sc.expect} says {said!r}, not {words!r}")
            elif sc.component and not names(said, sc.component):
                problems.append(f"the {sc.expect} does not name {sc.component!r}: {said!r}")
    elif resp.status_code != 202:
        problems.append(f"request answered {resp.status_code}, expected 202: {resp.text[:300]}")
    else:
        status, message = sc.outcome
        if status != sc.expect:
            problems.append(f"ended {status} ({message}), expected {sc.expect}")
        elif status == ERRORED:
            if not message or not message.strip() or "\n" in message:
                problems.append(f"status_message is not one non-empty line: {message!r}")
            else:
                if sc.link and "symbolic link" not in message.lower():
                    problems.append(f"status_message does not say 'symbolic link': {message!r}")
                if not names(message, sc.component):
                    problems.append(f"status_message does not name {sc.component!r}: {message!r}")
    try:
        sc.check()
    except AssertionError as exc:
        problems.append(f"on disk: {str(exc).splitlines()[0] if str(exc) else 'assertion failed'}")
    except OSError as exc:
        problems.append(f"on disk: {type(exc).__name__}: {exc}")
    for path in sc.outside:
        problems += changes(run.sc_before[name][path], fingerprint(path), str(path))
    assert not problems, f"{name}: " + "; ".join(problems)


def test_every_job_finished(run):
    assert run.unfinished == 0, f"{run.unfinished} job(s) still queued or running after {RUN_TIMEOUT}s"


def test_nothing_outside_changed(run):
    """Every outside tree, listed and hashed, and `/` itself, as they were before phase 1."""
    problems = [f"/: {run.root_before} -> {root_stat()}"] if root_stat() != run.root_before else []
    for root, before in run.before.items():
        problems += changes(before, fingerprint(root), str(root))
    assert not problems, "\n".join(problems[:50])


# -- a failed create, then a forced delete, leaves the mountpoint as it was --------------------
@pytest.fixture(params=["posix", "btrfs"])
def lone_server(request, tmp_path):
    if request.param == "btrfs":
        srv = Server(tmp_path, driver="btrfs", mountpoint=request.getfixturevalue("btrfs_mount"), worker=False)
    else:
        srv = Server(tmp_path, worker=False)
    srv.start()
    yield srv
    srv.stop()


def wait_final(session, urls, wanted, timeout=30):
    """Poll every url until each is in `wanted` (GONE: 404); returns {url: (status, message)}."""
    deadline = time.monotonic() + timeout
    found = {}
    while True:
        for url in urls:
            resp = session.get(url)
            found[url] = (GONE, None) if resp.status_code == 404 else (
                data_of(resp.json())["status"], data_of(resp.json()).get("status_message"))
        if all(status in wanted for status, _ in found.values()) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_failed_creates_then_forced_deletes_leave_everything_as_before(lone_server, tmp_path):
    """A space create that fails after the 202 (its template's store copy vanished; its parent
    swapped for a link to outside) and a template build that fails (model swapped), then a
    forced DELETE of each: the mountpoint (minus `.pixstor`), the template store and the
    outside tree are exactly as before the creates."""
    srv = lone_server
    session = srv.session()
    mp = srv.mountpoint
    store = srv.folder / "var" / "templates"
    outside = victims(tmp_path / "outside")
    profile = session.get(srv.url + "/profiles/", params={"where": '{"name": "mmfs1-sas1"}'}).json()[
        "collection"]["items"][0]["href"]
    exposer = session.get(srv.url + "/exposers/").json()["collection"]["items"][0]["href"]
    model = srv.folder / "models" / "project"
    write(model / "readme", "model\n")
    (model / "shots").mkdir()
    with srv.standalone_worker():
        resp = session.post(srv.url + "/templates/", json=cj_body(
            name="project", type="filesystemtemplate", template_location=str(model)), headers=CJ)
        template = resp.json()["collection"]["items"][0]["href"]
        assert wait_final(session, [srv.url + template], (ACTIVE, ERRORED))[srv.url + template][0] == ACTIVE
    write(mp / "keep" / "file", "kept\n")
    (mp / "projects" / "swapped").mkdir(parents=True)
    write(srv.folder / "models" / "doomed" / "data", "model\n")
    before = fingerprint(mp, skip={".pixstor"})
    store_before = fingerprint(store)
    outside_before = fingerprint(outside)

    def post_space(name, relativepath):
        resp = session.post(srv.url + "/spaces/", json=cj_body(
            name=name, relativepath=relativepath, exposers=exposer, profile=profile, templates=template,
            size=GiB), headers=CJ)
        assert resp.status_code == 202, resp.text
        return srv.url + resp.json()["collection"]["items"][0]["href"]

    vanished = post_space("vanished", "fresh/a/b/space")
    swapped = post_space("swapped", "projects/swapped/space")
    resp = session.post(srv.url + "/templates/", json=cj_body(
        name="doomed", type="filesystemtemplate", template_location=str(srv.folder / "models" / "doomed")),
        headers=CJ)
    assert resp.status_code == 202, resp.text
    doomed = srv.url + resp.json()["collection"]["items"][0]["href"]
    # while queued: the template's store copy goes aside, a parent and a model become links
    plain_copy = store / template.rsplit("/", 1)[1]
    os.rename(plain_copy, srv.folder / "var" / "aside")
    swap(mp / "projects" / "swapped", outside / "dir755")
    swap(srv.folder / "models" / "doomed", outside / "dir755")
    with srv.standalone_worker():
        failed = wait_final(session, [vanished, swapped, doomed], (ACTIVE, ERRORED, GONE))
        problems = [f"{url} ended {status} ({message}), expected ERRORED"
                    for url, (status, message) in failed.items() if status != ERRORED]
        # undo what the test did, so only what the service did (or left) can differ
        os.unlink(mp / "projects" / "swapped")
        os.rename(mp / "projects" / "swapped.moved", mp / "projects" / "swapped")
        os.unlink(srv.folder / "models" / "doomed")
        os.rename(srv.folder / "models" / "doomed.moved", srv.folder / "models" / "doomed")
        os.rename(srv.folder / "var" / "aside", plain_copy)
        for url in (vanished, swapped):
            resp = session.delete(url, params={"force": "true"})
            if resp.status_code != 202:
                problems.append(f"forced DELETE {url}: {resp.status_code} {resp.text[:200]}")
        resp = session.delete(doomed)
        if resp.status_code != 202:
            problems.append(f"DELETE {doomed}: {resp.status_code} {resp.text[:200]}")
        deleted = wait_final(session, [vanished, swapped, doomed], (GONE, ERRORED))
        problems += [f"{url} after DELETE: {status} ({message}), expected gone"
                     for url, (status, message) in deleted.items() if status != GONE]
    problems += changes(before, fingerprint(mp, skip={".pixstor"}), "mountpoint")
    problems += changes(store_before, fingerprint(store), "template store")
    problems += changes(outside_before, fingerprint(outside), "outside")
    assert not problems, "\n".join(problems)
