"""Reading Storage Scale command output.

`-Y` output is colon-separated. Each record type first prints a HEADER row naming its columns
(`mmlsfileset::HEADER:version:reserved:reserved:filesystemName:filesetName:...`), then data
rows (`mmlsfileset::0:1:::mmfs1:root:...`). Columns are added between releases, so values
are always looked up by column name, never by position. Values are percent-encoded
(`%3A` is ':', `%2F` is '/'). Some commands mix in report lines such as `*** Report for ...`.
"""
from __future__ import annotations

from urllib.parse import unquote

KIB = 1024


class Row(dict):
    """One data row: column name -> decoded value; `command` and `section` name its record type."""
    command: str = ""
    section: str = ""


def parse(text: str) -> list[Row]:
    headers: dict[tuple[str, str], list[str]] = {}
    rows: list[Row] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("***"):
            continue
        fields = line.split(":")
        if len(fields) < 3:
            continue  # not a -Y line (a message on stdout)
        kind = (fields[0], fields[1])
        if fields[2] == "HEADER":
            headers[kind] = fields
            continue
        names = headers.get(kind)
        if names is None:
            continue  # a message that happens to hold colons
        row = Row((name, unquote(value)) for name, value in zip(names[3:], fields[3:])
                  if name and name != "reserved")
        row.command, row.section = kind
        rows.append(row)
    return rows


def kib_to_bytes(value: str) -> int:
    """Quota block figures in -Y output are KiB; '-' or '' mean none."""
    return int(value) * KIB if value.strip().isdigit() else 0


def parse_pools(text: str) -> list[tuple[str, bool]]:
    """`mmlspool {fs} all` (it has no -Y): [(pool name, holds data)].

    Storage pools in file system at '/mmfs1':
    Name         Id   BlkSize Data Meta Total Data in (KB) ...
    system        0      4 MB   no  yes ...
    """
    pools = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in ("Name", "Storage") or len(words) < 2 or not words[1].isdigit():
            continue
        flags = [w for w in words if w in ("yes", "no")]
        pools.append((words[0], bool(flags) and flags[0] == "yes"))
    return pools
