"""Fileset records kept by the posix and btrfs drivers: one JSON file per fileset.

They live in `{mountpoint}/.pixstor/filesets/` so they travel with the filesystem, in folders
only the service may write (checked on every open: a member cannot slip in a link or a
folder of their own), and are written atomically so a crash never leaves half a record.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace

from .base import FilesetInfo, StorageError, check_name
from .confined import Root, open_service_folder, read_text_at, write_text_at
from .tree import SERVICE_FOLDER
RECORDS = os.path.join(SERVICE_FOLDER, "filesets")
# Lookups by junction path, so that a create or a delete reads the records near its path only,
# never all of them: junctions/{key} holds the name of the fileset linked at a path, and
# below/{key}/{name} says that fileset `name` is linked somewhere inside that path (one entry
# per folder above the junction). Both are written before the record and removed after it, and
# every hit is checked against the record, so an entry a crash left behind misleads nothing.
# INDEXED (in junctions/) marks a filesystem whose records are all indexed (stores made before
# the index are indexed once, from their records).
JUNCTIONS, BELOW, INDEXED = "junctions", "below", ".indexed-1"


def path_key(path: str) -> str:
    return hashlib.sha256(os.path.normpath(path).encode("utf-8", "surrogateescape")).hexdigest()


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

    def _open(self, create: bool, folder: str = "filesets") -> int | None:
        try:
            top = open_service_folder(self.root.fd, SERVICE_FOLDER, self.root.path, create)
        except FileNotFoundError:
            return None
        try:
            return open_service_folder(top, folder, os.path.join(self.root.path, SERVICE_FOLDER), create)
        except FileNotFoundError:
            return None
        finally:
            os.close(top)

    # -- lookups by path -------------------------------------------------------------------
    def at(self, path: str) -> Record | None:
        """The fileset linked at `path`, or None."""
        self._indexed()
        fd = self._open(create=False, folder=JUNCTIONS)
        if fd is None:
            return None
        try:
            name = read_text_at(fd, path_key(path))
        finally:
            os.close(fd)
        record = self.get(name.strip()) if name and name.strip() else None
        return record if record is not None and record.path == os.path.normpath(path) else None

    def inside(self, path: str) -> list[Record]:
        """The filesets linked strictly inside `path`."""
        from .base import is_below
        self._indexed()
        fd = self._open(create=False, folder=BELOW)
        if fd is None:
            return []
        try:
            try:
                sub = open_service_folder(fd, path_key(path), self.folder, create=False)
            except FileNotFoundError:
                return []
            try:
                names = sorted(os.listdir(sub))
            finally:
                os.close(sub)
        finally:
            os.close(fd)
        records = (self.get(n) for n in names if not n.startswith("."))
        return [r for r in records if r is not None and r.path and is_below(r.path, os.path.normpath(path))]

    def around(self, path: str) -> list[Record]:
        """The filesets linked at `path`, in a folder above it (up to the mountpoint) or inside it:
        all that a placement check at `path` needs."""
        path = os.path.normpath(path)
        found = {}
        folder = path
        while True:
            record = self.at(folder)
            if record is not None:
                found[record.name] = record
            if folder == self.root.path or os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
        for record in self.inside(path):
            found[record.name] = record
        return list(found.values())

    def _index(self, record: Record) -> None:
        if not record.path:
            return
        fd = self._open(create=True, folder=JUNCTIONS)
        try:
            write_text_at(fd, path_key(record.path), record.name + "\n", 0o600)
        finally:
            os.close(fd)
        fd = self._open(create=True, folder=BELOW)
        try:
            folder = os.path.dirname(record.path)
            while True:
                sub = open_service_folder(fd, path_key(folder), self.folder, create=True)
                try:
                    os.close(os.open(record.name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                     dir_fd=sub))
                except FileNotFoundError:
                    # a concurrent _unindex removed the folder, empty between our open and create:
                    # make it again (once our entry is in, it is not empty and stays)
                    continue
                finally:
                    os.close(sub)
                if folder == self.root.path or os.path.dirname(folder) == folder:
                    break
                folder = os.path.dirname(folder)
        finally:
            os.close(fd)

    def _unindex(self, record: Record) -> None:
        if not record.path:
            return
        fd = self._open(create=False, folder=JUNCTIONS)
        if fd is not None:
            try:
                if (read_text_at(fd, path_key(record.path)) or "").strip() == record.name:
                    os.unlink(path_key(record.path), dir_fd=fd)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        fd = self._open(create=False, folder=BELOW)
        if fd is None:
            return
        try:
            folder = os.path.dirname(record.path)
            while True:
                try:
                    sub = open_service_folder(fd, path_key(folder), self.folder, create=False)
                except FileNotFoundError:
                    sub = None
                if sub is not None:
                    try:
                        os.unlink(record.name, dir_fd=sub)
                    except FileNotFoundError:
                        pass
                    finally:
                        os.close(sub)
                    try:
                        os.rmdir(path_key(folder), dir_fd=fd)
                    except OSError:     # others are still inside it
                        pass
                if folder == self.root.path or os.path.dirname(folder) == folder:
                    break
                folder = os.path.dirname(folder)
        finally:
            os.close(fd)

    def _indexed(self) -> None:
        """Index the records of a store made before the index (once)."""
        if getattr(self, "_checked", False):
            return
        fd = self._open(create=False, folder=JUNCTIONS)
        if fd is not None:
            try:
                if read_text_at(fd, INDEXED) is not None:
                    self._checked = True
                    return
            finally:
                os.close(fd)
        records = self.all()
        if records:
            for record in records:
                self._index(record)
            fd = self._open(create=True, folder=JUNCTIONS)
            try:
                write_text_at(fd, INDEXED, "junctions and below indexed\n", 0o600)
            finally:
                os.close(fd)
        self._checked = True

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
        self._indexed()
        self._index(record)     # before the record: a record is always found by its path
        fd = self._open(create=True)
        try:
            write_text_at(fd, f"{record.name}.json", json.dumps(asdict(record), indent=1) + "\n", 0o600)
        finally:
            os.close(fd)

    def delete(self, name: str) -> None:
        check_name("fileset", name)
        record = self.get(name)
        fd = self._open(create=False)
        if fd is None:
            return
        try:
            os.unlink(f"{name}.json", dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
        if record is not None:
            self._unindex(record)   # after the record: an entry left behind is checked against it
