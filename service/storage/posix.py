"""posix driver: a fileset is a directory plus a record; quotas are recorded, not enforced.

The btrfs driver builds on this one and only swaps the hooks at the bottom (how a junction,
a snapshot and a quota are made), so both keep the same records and the same checks.
Everything below the mountpoint is reached through confined.Root: no link is followed.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os

from . import tree
from .base import (MARKER, SERVICE_FOLDER, SNAPSHOTS, Driver, Filesystem, StorageError, check_limits, check_name, find,
                   is_below)
from .confined import Root, below, exchange, open_service_folder, read_text_at, write_text_at
from .records import Record, RecordStore

log = logging.getLogger(__name__)
REVERTS = "reverts"     # in SERVICE_FOLDER: the content of reverts being built, or just swapped out


class PosixDriver(Driver):
    name = "posix"

    def discover(self) -> list[Filesystem]:
        return list(self.filesystems)

    def list_filesets(self, fs):
        with Root(fs.mountpoint) as root:
            return [r.info() for r in RecordStore(root).all()]

    # Lookups of one fileset and of those near a path read a few records, not all of them
    # (records.py: the junction index), so a create costs the same with 10 or 10,000 filesets.
    def fileset_info(self, fs, name):
        with Root(fs.mountpoint) as root:
            record = RecordStore(root).get(name)
        return record.info() if record else None

    def fileset_at(self, fs, path):
        with Root(fs.mountpoint) as root:
            record = RecordStore(root).at(os.path.normpath(path))
        return record.name if record else None

    def holds_data(self, fs, fileset):
        with Root(fs.mountpoint) as root:
            filesets = _near(RecordStore(root), fileset)
        info = find(filesets, fileset)
        return info is not None and self.holds_data_of(fs, info, filesets)

    # -- filesets --------------------------------------------------------------------------
    def create_fileset(self, fs, name, path, pool, parent=None, seed=None):
        """`seed`: a snapshot's folder the junction starts as (btrfs: a writable snapshot of it)."""
        check_name("fileset", name)
        path = self.check_junction(fs, path)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            # the filesets a check below can name: this one, the parent, those at, above or inside path
            near = {r.name: r for r in store.around(path)}
            for wanted in (name, parent):
                record = store.get(wanted) if wanted is not None and wanted not in near else None
                if record is not None:
                    near[record.name] = record
            filesets = [r.info() for r in near.values()]
            existing = self.check_existing(name, path, filesets)
            if parent is not None:
                owner = self.check_parent(fs, parent, filesets)
                if not is_below(path, owner.path):
                    raise StorageError(f"{path} is not inside parent fileset {parent} ({owner.path})")
            self.check_placement(fs, name, path, parent, filesets)
            if existing is None:
                self.check_free(root, path)
            made: list[str] = []
            try:
                with root.parent(path, create=True, made=made) as (fd, leaf):
                    self.make_junction(fd, leaf, seed)
                    if parent is not None:
                        with below(fd, leaf) as junction:
                            write_text_at(junction, MARKER, f"{pool}\n")
                if existing is None:  # written last: a record means the fileset is complete
                    store.put(Record(name=name, path=path, pool=pool, parent=parent, made=made))
            except BaseException:
                if existing is None:  # take back what this call made
                    with contextlib.suppress(StorageError, OSError):
                        self.remove_junction(root, path)
                        root.remove_empty_folders(made)
                raise

    def delete_fileset(self, fs, name, force=False):
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            record = store.get(name)
            if record is None:
                return
            filesets = [record.info()] + [r.info() for r in store.inside(record.path)] if record.path else [record.info()]
            dependents = self.check_deletable(fs, record.info(), filesets, force)
            for dependent in dependents:  # deepest first
                self.remove_junction(root, dependent.path)
                store.delete(dependent.name)
            self.remove_junction(root, record.path)
            root.remove_empty_folders(record.made)
            store.delete(name)  # last, so a retry after a crash still finds what is left

    # -- quotas ----------------------------------------------------------------------------
    def set_quota(self, fs, fileset, hard, soft):
        check_limits(hard, soft)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            record = self._record(store, fs, fileset)
            with root.folder(record.path) as fd:
                self.apply_quota(fd, hard)
            store.put(record.with_quota(hard, soft))

    def quota(self, fs, fileset):
        with Root(fs.mountpoint) as root:
            record = self._record(RecordStore(root), fs, fileset)
        return record.hard, record.soft

    def usage(self, fs, fileset):
        with Root(fs.mountpoint) as root:
            filesets = _near(RecordStore(root), fileset)
        info = self.require_fileset(fs, fileset, filesets)
        dependents, others = self.nested_filesets(info, filesets)
        # Nested filesets keep their own accounting, as on GPFS.
        skip = tree.skipping(os.path.relpath(f.path, info.path) for f in dependents + others)
        with Root(fs.mountpoint) as root, root.folder(info.path) as fd:
            return tree.data_bytes(fd, skip)

    @staticmethod
    def _record(store: RecordStore, fs: Filesystem, name: str) -> Record:
        record = store.get(name)
        if record is None:
            raise StorageError(f"fileset {name} does not exist on {fs.name}")
        return record

    # -- snapshots -------------------------------------------------------------------------
    def create_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            source, included = self.snapshot_scope(
                fs, fileset, [r.info() for r in store.all()] if fileset is None else _near(store, fileset))
            with root.folder(source) as src, _service_folder(src, SNAPSHOTS, source, create=True) as snaps:
                if not self.snapshot_complete(snaps, name):
                    for leftover in (_partial(name), name):  # what an interrupted attempt left behind
                        self.remove_snapshot(snaps, leftover)
                    # built aside, renamed into place only once complete (its modes written before)
                    modes = self.make_snapshot(src, snaps, _partial(name),
                                               [os.path.relpath(p, source) for p in included])
                    if modes is not None:
                        write_text_at(snaps, _manifest(name), json.dumps({"modes": {
                            rel: f"{mode:04o}" for rel, mode in modes.items()}}), mode=0o600)
                    os.rename(_partial(name), name, src_dir_fd=snaps, dst_dir_fd=snaps)
        return os.path.join(source, SNAPSHOTS, name)

    def delete_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        with Root(fs.mountpoint) as root:
            source = fs.mountpoint if fileset is None else self.fileset_path(fs, fileset)
            if not source:
                return
            try:
                with root.folder(source) as src, _service_folder(src, SNAPSHOTS, source, create=False) as snaps:
                    self.remove_snapshot(snaps, _partial(name))
                    self.remove_snapshot(snaps, name)
                    tree.remove_entry(snaps, _manifest(name))
            except FileNotFoundError:
                return

    @contextlib.contextmanager
    def snapshot_folder(self, root, source, name):
        check_name("snapshot", name)
        try:
            with root.folder(source) as src, _service_folder(src, SNAPSHOTS, source, create=False) as snaps, \
                    below(snaps, name, os.path.join(source, SNAPSHOTS)) as fd:
                yield fd
        except FileNotFoundError:
            raise StorageError(f"snapshot {name} of {source} does not exist") from None

    def snapshot_modes(self, root: Root, source: str, name: str) -> dict[str, int] | None:
        """The modes the entries of snapshot `name` of the fileset at `source` had before it was
        made read-only ({relative path: mode}, "." its top), from the manifest written beside
        it ({source}/.snapshots/.{name}.modes, the service's own, 0600); None for a snapshot
        taken before manifests were kept."""
        shown = os.path.join(source, SNAPSHOTS, _manifest(name))
        with root.folder(source) as src, _service_folder(src, SNAPSHOTS, source, create=False) as snaps:
            text = read_text_at(snaps, _manifest(name))
        if text is None:
            return None
        try:
            modes = {rel: int(mode, 8) for rel, mode in json.loads(text)["modes"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StorageError(f"{shown} is not a manifest of modes; nothing was copied from snapshot {name}") from None
        if not all(isinstance(rel, str) and 0 <= mode <= 0o7777 for rel, mode in modes.items()):
            raise StorageError(f"{shown} holds a mode out of range; nothing was copied from snapshot {name}")
        return modes

    def restore_modes(self, root: Root, source: str, snapshot: str, fd: int) -> None:
        """Give a copy of snapshot `snapshot` of the fileset at `source`, open as `fd`, the modes
        its entries had when it was taken (snapshot_modes), files without their set-id bits
        unless storage.keep_setid. A snapshot taken before modes were kept: every folder and
        file of the copy gets its owner's write permission back (u+w)."""
        modes = self.snapshot_modes(root, source, snapshot)
        if modes is None:
            log.info("snapshot %s has no record of its modes (taken before they were kept): its copy's folders "
                     "and files get their owner's write permission back", snapshot)
        tree.restore_modes(fd, modes, self.keep_setid)

    def create_fileset_from_snapshot(self, fs, name, path, pool, source, snapshot):
        """The copy of Driver's, then the modes its entries had before the snapshot was made
        read-only given back (restore_modes)."""
        super().create_fileset_from_snapshot(fs, name, path, pool, source, snapshot)
        with Root(fs.mountpoint) as root, root.folder(path) as target:
            self.restore_modes(root, self.linked_path(fs, source), snapshot, target)

    # -- revert ----------------------------------------------------------------------------
    def revert_fileset(self, fs, fileset, snapshot):
        """The snapshot's content is built aside, in {mountpoint}/.pixstor/reverts/{fileset};
        the space's snapshots then move into it one by one (each its own rename: a btrfs
        snapshot is a subvolume, which alone may change subvolumes), and it is swapped with the
        junction's content in one rename (RENAME_EXCHANGE); the old content goes last. Before
        the swap the fileset holds its old content, after it the new. A run cut short while
        building builds again; one cut short while the snapshots move (the content aside holds
        some) moves the rest and swaps; one cut short after the swap builds and swaps once
        more, to the same content."""
        check_name("snapshot", snapshot)
        with Root(fs.mountpoint) as root:
            store = RecordStore(root)
            record = self._record(store, fs, fileset)
            nested = store.inside(record.path)
            others = [r.name for r in nested if r.parent != fileset]
            if others:
                raise StorageError(f"cannot revert fileset {fileset}: fileset(s) {', '.join(others)} are linked "
                                   "inside it")
            with root.parent(record.path) as (parent, leaf), _reverts(root) as reverts:
                if _moving(reverts, fileset):
                    log.info("a run cut short built the content of %s aside already: finishing", fileset)
                else:
                    self.remove_snapshot(reverts, fileset)    # what a run cut short began, or left
                    self._build_aside(root, record, nested, snapshot, reverts)
                with below(parent, leaf) as current, below(reverts, fileset) as new, \
                        _service_folder(current, SNAPSHOTS, record.path, create=True) as theirs, \
                        _service_folder(new, SNAPSHOTS, record.path, create=True) as ours:
                    if not os.path.samestat(os.fstat(current), tree.lstat_at(parent, leaf)):
                        raise StorageError(f"{record.path} changed while it was reverted; nothing was swapped")
                    self.move_snapshots(theirs, ours)
                    log.info("swapping the content of %s for the snapshot's", record.path)
                    exchange(parent, leaf, reverts, fileset)
                log.info("removing the content %s held before", record.path)
                self.remove_snapshot(reverts, fileset)

    def _build_aside(self, root: Root, record: Record, nested: list[Record], snapshot: str, reverts: int) -> None:
        """The snapshot's content as {reverts}/{fileset}: the modes its entries had when it was
        taken, its dependents' junctions in place, the fileset's quota applied, no snapshots
        folder."""
        log.info("building the content of snapshot %s aside", snapshot)
        with self.snapshot_folder(root, record.path, snapshot) as snap:
            self.build_from_snapshot(snap, reverts, record.name)
        with below(reverts, record.name) as new:
            self.restore_modes(root, record.path, snapshot, new)
            tree.remove_entry(new, SNAPSHOTS)     # the copy's (btrfs: empty stand-ins)
            for dependent in sorted(nested, key=lambda r: r.path.count("/")):
                rel = os.path.relpath(dependent.path, record.path)
                with below(new, os.path.dirname(rel) or ".", create=True) as fd:
                    self.make_junction(fd, os.path.basename(rel))
                    with below(fd, os.path.basename(rel)) as junction:
                        write_text_at(junction, MARKER, f"{dependent.pool}\n")
            self.apply_quota(new, record.hard)

    # -- templates -------------------------------------------------------------------------
    def model_filesets(self, fs, model_path, model_root=None):
        with self.opened(model_path, model_root) as fd:
            return self.model_markers(fs, fd)

    # -- hooks the btrfs driver replaces ---------------------------------------------------
    def make_junction(self, dir_fd: int, name: str, seed: int | None = None) -> None:
        """Make the junction `name` in folder `dir_fd` (an empty folder there is adopted);
        posix copies a `seed` in afterwards (create_fileset_from_snapshot), so never gets one."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=dir_fd)

    def move_snapshots(self, src: int, dst: int) -> None:
        """Move every snapshot from snapshots folder `src` to `dst`, each in one rename."""
        for name, _ in tree.scan(src):
            os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)

    def build_from_snapshot(self, snap: int, dir_fd: int, name: str) -> None:
        """Make `name` in folder `dir_fd` a writable copy of the snapshot open as `snap`."""
        os.mkdir(name, 0o700, dir_fd=dir_fd)
        with below(dir_fd, name) as target:
            tree.copy_into(snap, target, keep_setid=True)

    def remove_junction(self, root: Root, path: str) -> None:
        root.remove(path)

    def apply_quota(self, fd: int, hard: int) -> None:
        """Nothing to enforce on plain directories: the record is the quota."""

    def snapshot_complete(self, snaps: int, name: str) -> bool:
        # Copies are finished and made read-only under a temporary name, then renamed.
        return tree.lstat_at(snaps, name) is not None

    def make_snapshot(self, src: int, snaps: int, name: str, dependents: list[str]) -> dict[str, int] | None:
        """Snapshot folder `src` as `name` in folder `snaps`, read-only. Returns the modes its
        entries had before they were made read-only (create_snapshot writes them beside it, for
        its copies: restore_modes); None where a snapshot keeps them (btrfs)."""
        os.mkdir(name, 0o700, dir_fd=snaps)
        with below(snaps, name) as target:
            tree.copy_into(src, target, keep_setid=True)  # dependents are plain folders: copied along
            return tree.make_read_only(target)

    def remove_snapshot(self, snaps: int, name: str) -> None:
        tree.remove_entry(snaps, name)


def _near(store: RecordStore, name: str) -> list:
    """Fileset `name` and those linked inside it (none when it does not exist)."""
    record = store.get(name)
    if record is None:
        return []
    return [record.info()] + ([r.info() for r in store.inside(record.path)] if record.path else [])


def _moving(reverts: int, name: str) -> bool:
    """Has a revert begun to move the space's snapshots into the content it built aside? (Only
    a complete build gets them; before the swap the content aside holds them, after it none.)"""
    if tree.lstat_at(reverts, name) is None:
        return False
    with below(reverts, name) as aside:
        if tree.lstat_at(aside, SNAPSHOTS) is None:
            return False
        with below(aside, SNAPSHOTS) as snaps:
            return tree.has_entries(snaps)


@contextlib.contextmanager
def _reverts(root: Root):
    """{mountpoint}/.pixstor/reverts, the service's own: where reverts build their content."""
    top = open_service_folder(root.fd, SERVICE_FOLDER, root.path, create=True)
    try:
        fd = open_service_folder(top, REVERTS, os.path.join(root.path, SERVICE_FOLDER), create=True)
    finally:
        os.close(top)
    try:
        yield fd
    finally:
        os.close(fd)


def _partial(name: str) -> str:
    return f".{name}.partial"


def _manifest(name: str) -> str:
    """The modes of snapshot `name` before it was made read-only, beside it (names never start
    with a dot, so no snapshot is called so)."""
    return f".{name}.modes"


@contextlib.contextmanager
def _service_folder(dir_fd: int, name: str, shown: str, create: bool):
    # .snapshots is readable by the space's users (they browse their snapshots), theirs to write never
    fd = open_service_folder(dir_fd, name, shown, create, mode=0o755)
    try:
        yield fd
    finally:
        os.close(fd)
