"""Fileset records kept by the posix and btrfs drivers: one JSON file per fileset.

They live in `{mountpoint}/.pixstor/filesets/` so they travel with the filesystem, and are
written atomically so a crash never leaves half a record.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace

from .base import Filesystem, FilesetInfo, StorageError
from .tree import write_file_atomically

RECORDS = os.path.join(".pixstor", "filesets")


@dataclass(frozen=True)
class Record:
    name: str
    path: str
    pool: str
    parent: str | None = None
    hard: int = 0
    soft: int = 0

    def info(self) -> FilesetInfo:
        return FilesetInfo(name=self.name, path=self.path, parent=self.parent, pool=self.pool)

    def with_quota(self, hard: int, soft: int) -> "Record":
        return replace(self, hard=hard, soft=soft)


class RecordStore:
    def __init__(self, fs: Filesystem):
        self.folder = os.path.join(fs.mountpoint, RECORDS)

    def _file(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.json")

    def get(self, name: str) -> Record | None:
        try:
            with open(self._file(name), encoding="utf-8") as f:
                return Record(**json.load(f))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise StorageError(f"fileset record {self._file(name)} is unreadable: {exc}") from exc

    def all(self) -> list[Record]:
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            return []
        records = (self.get(n[:-len(".json")]) for n in names
                   if n.endswith(".json") and not n.startswith("."))
        return [r for r in records if r is not None]

    def put(self, record: Record) -> None:
        os.makedirs(self.folder, exist_ok=True)
        write_file_atomically(self._file(record.name), json.dumps(asdict(record), indent=1) + "\n")

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._file(name))
        except FileNotFoundError:
            pass
