"""The -Y parser and the placement policy text, on outputs shaped as IBM documents them."""
from __future__ import annotations

from pathlib import Path

import pytest

from service.storage import Filesystem
from service.storage import gpfs_parse, gpfs_policy

SAMPLES = Path(__file__).parent / "gpfs_samples"
FS = Filesystem("mmfs1", "/mmfs1", ("sas1", "sata1"))


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def by_name(rows, key="filesetName"):
    return {r[key]: r for r in rows}


# -- -Y rows --------------------------------------------------------------------------------
def test_rows_map_to_header_names_and_decode_percent_escapes():
    rows = by_name(gpfs_parse.parse(sample("mmlsfileset.Y")))
    assert list(rows) == ["root", "sas1-sleepy-snake", "sata1-sleepy-snake-8b234c97",
                          "sata1-model-assets", "sas1-archive"]
    snake = rows["sas1-sleepy-snake"]
    assert snake["path"] == "/mmfs1/projects/sleepy_snake"          # %2F and %5F
    assert snake["created"] == "Wed Mar  5 09:41:07 2025"           # %3A
    assert (snake["status"], snake["inodeSpace"], snake["isInodeSpaceOwner"]) == ("Linked", "1", "1")
    assert rows["sas1-archive"]["path"] == "--"                     # unlinked: %2D%2D
    assert rows["sas1-archive"]["comment"] == "old: kept for audit"
    assert "reserved" not in snake and snake["version"] == "1"
    assert snake.command == "mmlsfileset" and snake.section == ""


def test_columns_added_by_a_newer_release_change_nothing_we_read():
    older = gpfs_parse.parse(sample("mmlsfileset.Y"))
    newer = gpfs_parse.parse(sample("mmlsfileset-newer-release.Y"))
    assert newer[1]["filesetUid"] == "9001" and newer[1]["falStatus"] == "default"
    for old, new in zip(older, newer, strict=True):
        assert {k: new[k] for k in old} == dict(old)


def test_report_lines_are_skipped_and_each_block_keeps_its_header():
    rows = gpfs_parse.parse(sample("mmrepquota-reports.Y"))
    assert [(r["filesystemName"], r["name"]) for r in rows] == [
        ("mmfs1", "root"), ("mmfs1", "sas1-sleepy-snake"),
        ("mmfs1", "sata1-sleepy-snake-8b234c97"), ("mmfs2", "root")]
    snake = rows[1]
    assert gpfs_parse.kib_to_bytes(snake["blockLimit"]) == 4 * 1024 ** 3   # KiB in -Y output
    assert gpfs_parse.kib_to_bytes(snake["blockQuota"]) == 3774874 * 1024
    assert gpfs_parse.kib_to_bytes(snake["blockUsage"]) == 109 * 1024


def test_lines_without_a_header_and_messages_are_ignored():
    text = ("mmlsfileset: No file systems were found.\n"
            "mmlssnapshot::0:1:::mmfs1:orphan:1:Valid:x::0:0:::\n"
            "\n" + sample("mmlssnapshot.Y"))
    rows = gpfs_parse.parse(text)
    assert [(r["directory"], r["fileset"]) for r in rows] == [
        ("nightly-2025-03-05", ""), ("snake-snap", "sas1-sleepy-snake")]


def test_mmlsfs_rows_are_one_attribute_each():
    rows = gpfs_parse.parse(sample("mmlsfs-all.Y"))
    attributes = {(r["deviceName"], r["fieldName"]): r["data"] for r in rows}
    assert attributes[("mmfs2", "defaultMountPoint")] == "/gpfs/scratch"
    assert attributes[("mmfs1", "blockSize")] == "4194304"
    assert attributes[("mmfs1", "quotasEnforced")] == "user;group;fileset"


@pytest.mark.parametrize("value, expected", [("0", 0), ("12", 12288), ("-", 0), ("", 0)])
def test_kib_values(value, expected):
    assert gpfs_parse.kib_to_bytes(value) == expected


def test_pools_holding_data():
    assert gpfs_parse.parse_pools(sample("mmlspool.txt")) == [
        ("system", False), ("sas1", True), ("sata1", True)]


# -- placement policy -----------------------------------------------------------------------
def test_policy_rules_match_the_walkthrough():
    assert gpfs_policy.policy_rules(FS, default_pool="sata1") == (
        "RULE 'sas1-placement' SET POOL 'sas1'\n WHERE FILESET_NAME LIKE 'sas1-%'\n\n"
        "RULE 'sata1-placement' SET POOL 'sata1'\n WHERE FILESET_NAME LIKE 'sata1-%'\n\n"
        "RULE 'default' SET POOL 'sata1'\n")


def test_split_rules_ignores_rule_words_in_comments_and_quotes():
    preamble, rules = gpfs_policy.split_rules(sample("mmlspolicy-L.txt"))
    assert preamble.startswith("/* PixStor placement policy")
    assert [gpfs_policy.rule_name(r) for r in rules] == ["sas1-placement", "scratch", "default"]
    assert [gpfs_policy.is_default_rule(r) for r in rules] == [False, False, True]
    _, quoted = gpfs_policy.split_rules("RULE \"a\" SET POOL 'x' WHERE NAME LIKE 'RULE%'\n")
    assert len(quoted) == 1


def test_missing_pools():
    assert gpfs_policy.missing_pools(sample("mmlspolicy-L.txt"), FS.pools) == ["sata1"]
    assert gpfs_policy.missing_pools(sample("mmlspolicy-none.txt"), FS.pools) == ["sas1", "sata1"]
    unnamed = "RULE SET POOL 'sata1' WHERE FILESET_NAME LIKE 'sata1-%'"
    assert gpfs_policy.missing_pools(unnamed, FS.pools) == ["sas1"]


def test_merge_keeps_existing_rules_and_puts_the_default_last():
    merged = gpfs_policy.merge_policy(sample("mmlspolicy-L.txt"), FS.pools, "sas1")
    _, rules = gpfs_policy.split_rules(merged)
    assert [gpfs_policy.rule_name(r) for r in rules] == [
        "sas1-placement", "scratch", "sata1-placement", "default"]
    assert rules[-1] == "RULE 'default' SET POOL 'sata1'"           # the installed default wins
    assert "the 'RULE' in this comment is not a rule" in merged
    assert gpfs_policy.missing_pools(merged, FS.pools) == []


def test_merge_without_a_policy_adds_a_default_rule():
    merged = gpfs_policy.merge_policy(sample("mmlspolicy-none.txt"), FS.pools, "sas1")
    assert merged == gpfs_policy.policy_rules(FS, default_pool="sas1")
