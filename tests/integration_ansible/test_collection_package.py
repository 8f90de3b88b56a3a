"""The collection as published: the tarball `ansible-galaxy collection build` makes, what it
ships and leaves out, and the copy installed from it that the playbook tests run."""
import json
import os
import re
import shutil
import subprocess
import tarfile

from tests.integration_ansible.conftest import BIN, COLLECTION, REPO

# Litter a working tree gathers, which galaxy.yml's build_ignore keeps out of the tarball.
LITTER = [".ansible/collections/x.txt", ".pytest_cache/v/cache/nodeids", ".DS_Store", "plugins/.DS_Store",
          "site.retry", "playbooks/walkthrough.retry", "tests/output/junit/x.xml", "plugins/modules/x.pyc",
          "plugins/__pycache__/x.cpython-311.pyc", "roles/project_space/molecule/default/.molecule/state.yml",
          "molecule/default/.molecule/state.yml", "extensions/molecule/default/.molecule/state.yml"]


def members(tarball):
    with tarfile.open(tarball) as tar:
        return set(tar.getnames())


def test_the_tarball_ships_the_licence_changelog_and_docs(installed_collection):
    _, tarball = installed_collection
    names = members(tarball)
    for shipped in ("LICENSE", "README.md", "MANIFEST.json", "FILES.json", "meta/runtime.yml",
                    "changelogs/changelog.yaml", "CHANGELOG.rst", "plugins/modules/pixstor_space.py"):
        assert shipped in names, shipped
    with tarfile.open(tarball) as tar:
        assert tar.extractfile("LICENSE").read() == (REPO / "LICENSE").read_bytes()
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License\n")


def test_the_client_names_the_collection_version_it_is_part_of():
    version = re.search(r"^version:\s*(\S+)", (COLLECTION / "galaxy.yml").read_text(), re.M).group(1)
    client = (COLLECTION / "plugins" / "module_utils" / "pixstor.py").read_text()
    assert 'USER_AGENT = "pixstor.mgmt-ansible/%s"' % version in client
    assert "\nv%s\n" % version in (COLLECTION / "CHANGELOG.rst").read_text()     # released, with notes


def test_build_ignore_keeps_a_working_tree_s_litter_out(tmp_path):
    tree = tmp_path / "src" / "pixstor" / "mgmt"
    shutil.copytree(COLLECTION, tree, ignore=shutil.ignore_patterns("output", "__pycache__", ".pytest_cache"))
    for litter in LITTER:
        (tree / litter).parent.mkdir(parents=True, exist_ok=True)
        (tree / litter).write_text("litter\n")
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(tree), "--output-path",
                            str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    [tarball] = tmp_path.glob("pixstor-mgmt-*.tar.gz")
    names = members(tarball)
    assert [litter for litter in LITTER if litter in names] == []
    assert not [name for name in names if name.startswith((".ansible/", ".pytest_cache", "tests/output"))
                or name.endswith((".pyc", ".retry", ".DS_Store")) or "/.molecule" in name]


def test_the_playbooks_use_the_installed_copy_only(installed_collection, tmp_path):
    path, _ = installed_collection
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_NOCOLOR="1")
    listed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list", "pixstor.mgmt", "--format", "json"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert list(json.loads(listed.stdout)) == [str(path / "ansible_collections")]
    installed = path / "ansible_collections" / "pixstor" / "mgmt"
    assert (installed / "plugins" / "module_utils" / "pixstor.py").read_bytes() == (
        COLLECTION / "plugins" / "module_utils" / "pixstor.py").read_bytes()
