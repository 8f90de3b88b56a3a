"""Fileset records kept by the posix and btrfs drivers: one JSON file per fileset.

They live in `{mountpoint}/.pixstor/filesets/` so they travel with the filesystem, in folders
only the service may write (checked on every open: a member cannot slip in a link or a
folder of their own), and are written atomically so a crash never leaves half a record.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace

from .base import FilesetInfo, StorageError, check_name
from .confined import Root, open_service_folder, read_text_at, write_text_at
from .tree import SERVICE_FOLDER
RECORDS = os.path.join(SERVICE_FOLDER, "filesets")


@dataclass(frozen=True)
class Record:
    name: str
    path: str
    pool: str
    parent: str | None = None
    hard: int = 0
    soft: int = 0
    made: list[str] = field(default_factory=list)   # parent folders the create made, top first

    def info(self) -> FilesetInfo:
        return FilesetInfo(name=self.name, path=self.path, parent=self.parent, pool=self.pool)

    def with_quota(self, hard: int, soft: int) -> "Record":
        return replace(self, hard=hard, soft=soft)


class RecordStore:
    """The records of one filesystem, reached through its opened mountpoint."""

    def __init__(self, root: Root):
        self.root = root
        self.folder = os.path.join(root.path, RECORDS)

    def _open(self, create: bool) -> int | None:
        try:
            top = open_service_folder(self.root.fd, SERVICE_FOLDER, self.root.path, create)
        except FileNotFoundError:
            return None
        try:
            return open_service_folder(top, "filesets", os.path.join(self.root.path, SERVICE_FOLDER), create)
        except FileNotFoundError:
            return None
        finally:
            os.close(top)

    def _read(self, fd: int, file: str) -> Record | None:
        text = read_text_at(fd, file)
        if text is None:
            return None
        try:
            return Record(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise StorageError(f"fileset record {os.path.join(self.folder, file)} is unreadable: {exc}") from exc

    def get(self, name: str) -> Record | None:
        check_name("fileset", name)
        fd = self._open(create=False)
        if fd is None:
            return None
        try:
            return self._read(fd, f"{name}.json")
        finally:
            os.close(fd)

    def all(self) -> list[Record]:
        fd = self._open(create=False)
        if fd is None:
            return []
        try:
            names = sorted(n for n in os.listdir(fd) if n.endswith(".json") and not n.startswith("."))
            records = (self._read(fd, n) for n in names)
            return [r for r in records if r is not None]
        finally:
            os.close(fd)

    def put(self, record: Record) -> None:
        check_name("fileset", record.name)
        fd = self._open(create=True)
        try:
            write_text_at(fd, f"{record.name}.json", json.dumps(asdict(record), indent=1) + "\n", 0o600)
        finally:
            os.close(fd)

    def delete(self, name: str) -> None:
        check_name("fileset", name)
        fd = self._open(create=False)
        if fd is None:
            return
        try:
            os.unlink(f"{name}.json", dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
