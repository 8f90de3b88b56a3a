"""File trees walked by descriptor: merge-copy, data checks, read-only toggling, removal.

Every function takes open folder descriptors (see confined.py for how they are reached) and
never follows a symbolic link: links are copied as links and removed as links, modes and
owners change only on entries that are not links, and a folder swapped for a link in the
middle of a walk is not entered.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .access import ACCESS, DEFAULT, Access, Acl
from .confined import Root, checkpoint, lstat_at, open_folder, read_text_at
from .errors import StorageError, Unsafe

log = logging.getLogger(__name__)

MARKER = ".pixstor-fileset"    # marks a dependent fileset in a template model / store; content = pool
SNAPSHOTS = ".snapshots"       # snapshot folder inside a space
SERVICE_FOLDER = ".pixstor"    # the service's own folder at the top of a filesystem (records)
_FICLONE = 0x40049409          # linux/fs.h: share the source's extents (reflink) instead of copying
_COPY_CHUNK = 1 << 20
_SETID = stat.S_ISUID | stat.S_ISGID

Hook = Callable[[int], None]   # called with each folder's descriptor as a walk enters it


def scan(fd: int) -> list[tuple[str, os.stat_result]]:
    """(name, lstat) of the entries of an open folder; entries gone meanwhile are left out."""
    with os.scandir(fd) as it:
        names = [entry.name for entry in it]
    found = []
    for name in names:
        st = lstat_at(fd, name)
        if st is not None:
            found.append((name, st))
    return found


def _enter(dir_fd: int, name: str, st: os.stat_result, shown: str) -> int | None:
    """Open a sub-folder found by scan(), or None when it was swapped or removed meanwhile."""
    try:
        child = open_folder(dir_fd, name, shown)
    except (Unsafe, FileNotFoundError):
        return None
    if not os.path.samestat(os.fstat(child), st):
        os.close(child)
        return None
    return child


def walk(fd: int, skip: Callable[[str], bool] | None = None
         ) -> Iterator[tuple[int, str, str, os.stat_result]]:
    """Yield (folder descriptor, relative path, name, lstat) for every entry below folder
    `fd`, top-down. Folders for which skip(relative path) holds are yielded, not entered.
    Open descriptors are one per level, however wide the tree."""
    stack = [(os.dup(fd), "", iter(scan(fd)))]
    try:
        while stack:
            folder, rel, entries = stack[-1]
            item = next(entries, None)
            if item is None:
                os.close(folder)
                stack.pop()
                continue
            name, st = item
            path = os.path.join(rel, name) if rel else name
            yield folder, path, name, st
            if stat.S_ISDIR(st.st_mode) and not (skip and skip(path)):
                checkpoint()
                child = _enter(folder, name, st, path)
                if child is not None:
                    stack.append((child, path, iter(scan(child))))
    finally:
        for folder, _, _ in stack:
            os.close(folder)


def skipping(paths) -> Callable[[str], bool]:
    """A walk's skip test: the given relative paths, and every SNAPSHOTS folder."""
    paths = set(paths)
    return lambda rel: rel in paths or os.path.basename(rel) == SNAPSHOTS


# -- reading ------------------------------------------------------------------------------
def holds_data(fd: int, skip: Callable[[str], bool]) -> bool:
    """Is there anything but folders and MARKER files below folder `fd`?"""
    return any(not stat.S_ISDIR(st.st_mode) and name != MARKER for _, _, name, st in walk(fd, skip))


def data_bytes(fd: int, skip: Callable[[str], bool]) -> int:
    """Sum of regular file sizes below folder `fd` (links are not followed)."""
    return sum(st.st_size for _, _, _, st in walk(fd, skip) if stat.S_ISREG(st.st_mode))


def has_entries(fd: int, ignore: set[str] = frozenset()) -> bool:
    with os.scandir(fd) as it:
        return any(e.name not in ignore for e in it)


def marked_folders(fd: int) -> dict[str, str]:
    """Folders below `fd` holding MARKER: {relative path: marker content (stripped)}."""
    found = {}
    for folder, rel, name, st in walk(fd, skipping(())):
        if name == MARKER and stat.S_ISREG(st.st_mode) and os.path.dirname(rel):
            found[os.path.dirname(rel)] = (read_text_at(folder, name) or "").strip()
    return found


def dependent_order(found: dict[str, str]) -> dict[str, str]:
    """Dependent filesets shallowest first: a nested one needs its enclosing folder to exist."""
    return dict(sorted(found.items(), key=lambda kv: (kv[0].count(os.sep), kv[0])))


# -- permissions --------------------------------------------------------------------------
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def make_read_only(fd: int) -> dict[str, int]:
    """Take write permission off folder `fd` and everything below it (never through a link).
    Returns the modes they had: {relative path: mode}, "." the folder itself, links left out
    (restore_modes gives them back to a copy)."""
    modes = {}
    for folder, rel, name, st in walk(fd):
        if not stat.S_ISLNK(st.st_mode):
            modes[rel] = stat.S_IMODE(st.st_mode)
            chmod_entry(folder, name, modes[rel] & ~_WRITE)
    modes["."] = stat.S_IMODE(os.fstat(fd).st_mode)
    os.fchmod(fd, modes["."] & ~_WRITE)
    return modes


def restore_modes(fd: int, modes: dict[str, int] | None, keep_setid: bool = False) -> None:
    """Give a copy of a tree make_read_only took write permission off (open as folder `fd`)
    its modes back: those of `modes`, as make_read_only returned them. An entry `modes` lacks,
    or every entry when `modes` is None (a snapshot taken before modes were kept), gets its
    owner's write permission back (u+w). Files lose their set-user/group-id bits unless
    `keep_setid` (as copy_into's copies do); folders keep theirs. Links are neither changed
    nor followed."""
    for folder, rel, name, st in walk(fd):
        if not stat.S_ISLNK(st.st_mode):
            chmod_entry(folder, name, _restored(modes, rel, st, keep_setid))
    os.fchmod(fd, _restored(modes, ".", os.fstat(fd), keep_setid))


def _restored(modes: dict[str, int] | None, rel: str, st: os.stat_result, keep_setid: bool) -> int:
    kept = modes.get(rel) if modes is not None else None
    mode = stat.S_IMODE(st.st_mode) | stat.S_IWUSR if kept is None else kept
    return mode if keep_setid or stat.S_ISDIR(st.st_mode) else mode & ~_SETID


def chmod_entry(dir_fd: int, name: str, mode: int) -> None:
    """chmod an entry that is not a link; one swapped for a link meanwhile is left alone."""
    try:
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
    except ValueError:   # Python's word for "it is a link now" (fchmodat refuses links)
        pass
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOENT):
            raise


def _open_up(fd: int) -> None:
    """Make a folder writable and searchable for its owner, so its entries can go."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & stat.S_IRWXU != stat.S_IRWXU:
        os.fchmod(fd, mode | stat.S_IRWXU)


# -- securing (owner, group, mode, ACLs: see access.py) ----------------------------------
@dataclass
class Secured:
    """What tree.secure changed, for the job's log."""
    folders: int = 0          # folders below the root given the group, set-group-id bit or default ACL
    files: int = 0            # files given the group
    linked: int = 0           # files left alone: they have another name, maybe outside the space

    def __str__(self) -> str:
        text = f"{self.folders} folder(s) and {self.files} file(s) below the root changed"
        if self.linked:
            text += (f"; {self.linked} file(s) with more than one hard link kept their group (another name "
                     "may lie outside the space)")
        return text


def secure(fd: int, access: Access, every_file: bool) -> Secured:
    """Give the space open as `fd` what `access` says, by descriptor:

    - the root: owner, group, mode, access ACL and default ACL;
    - every folder below: the group, the root's set-group-id bit (so what is made inside
      keeps the group) and the default ACL; its own mode and access ACL stay as they are (a
      template author's choice, or a member's);
    - files and fifos: the group — all of them when `every_file` (a new space: its create
      copied everything in), else those that had the root's group before (a new group takes
      the space's files along; a file given another group on purpose keeps it).

    A link is never changed nor followed; a file with more than one hard link keeps its group
    (another of its names may be outside the space); `.snapshots` folders are not entered.
    Running it twice changes nothing more."""
    before = os.fstat(fd)
    base = _secure_root(fd, access, before)
    default = access.default.complete(base).encode() if access.default is not None else None
    if access.acl is not None:
        _set_default(fd, default)
    regroup = access.gid is not None and (every_file or before.st_gid != access.gid)
    done = Secured()
    for folder, rel, name, st in walk(fd, skipping(())):
        if stat.S_ISDIR(st.st_mode):
            if name == SNAPSHOTS:
                continue
            child = _enter(folder, name, st, rel)
            if child is None:       # swapped meanwhile: what is there now is not entered
                continue
            try:
                done.folders += _secure_folder(child, access, default)
            finally:
                os.close(child)
        elif (regroup and (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)) and name != MARKER
              and (every_file or st.st_gid == before.st_gid) and st.st_gid != access.gid):
            changed = _regroup_file(folder, name, st, access.gid)
            done.files += changed is True
            done.linked += changed is None
    return done


def _secure_root(fd: int, access: Access, st: os.stat_result) -> Acl:
    """Owner, group, mode and access ACL of the root; returns the base entries (owner, group,
    other) its ACLs build on: those of `access.mode`, else the ones it has."""
    uid = st.st_uid if access.uid is None else access.uid
    gid = st.st_gid if access.gid is None else access.gid
    if (uid, gid) != (st.st_uid, st.st_gid):
        os.fchown(fd, uid, gid)
    if access.mode is not None:
        base = Acl.from_mode(access.mode)
    else:
        current = _get_acl(fd, ACCESS)
        base = Acl(current.owner, current.group, current.other) if current else Acl.from_mode(st.st_mode)
    acl = access.acl.complete(base) if access.acl is not None else None
    if acl is not None and acl.minimal:
        _remove_acl(fd, ACCESS)
    if access.mode is not None:
        # after the chown (which may clear set-id bits) and before the ACL, which then sets
        # the group bits to its mask
        os.fchmod(fd, access.mode)
    if acl is not None and not acl.minimal:
        _set_acl(fd, ACCESS, acl.encode())
    return base


def _secure_folder(fd: int, access: Access, default: bytes | None) -> bool:
    """Group, set-group-id bit and default ACL of a folder below the root; True when changed."""
    st = os.fstat(fd)
    changed = False
    if access.gid is not None and st.st_gid != access.gid:
        os.fchown(fd, -1, access.gid)
        changed = True
    if access.mode is not None and access.mode & stat.S_ISGID and not st.st_mode & stat.S_ISGID:
        # the mode's group bits are the ACL's mask where there is one: kept as they are
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_ISGID)
        changed = True
    if access.acl is not None:
        changed |= _set_default(fd, default)
    return changed


def _set_default(fd: int, value: bytes | None) -> bool:
    """Make a folder's default ACL `value` (None: none); True when it changed."""
    try:
        current = os.getxattr(fd, DEFAULT)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.EOPNOTSUPP):
            raise
        current = None
    if current == value:
        return False
    if value is None:
        _remove_acl(fd, DEFAULT)
    else:
        _set_acl(fd, DEFAULT, value)
    return True


def _set_acl(fd: int, name: str, value: bytes) -> None:
    try:
        os.setxattr(fd, name, value)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            raise StorageError("this filesystem does not support POSIX ACLs (mount it with them, or leave the "
                               "space's acl null)") from None
        raise


def _get_acl(fd: int, name: str) -> Acl | None:
    try:
        return Acl.decode(os.getxattr(fd, name))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return None
        raise


def _remove_acl(fd: int, name: str) -> None:
    try:
        os.removexattr(fd, name)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.EOPNOTSUPP):
            raise


def _regroup_file(dir_fd: int, name: str, st: os.stat_result, gid: int) -> bool | None:
    """Give a file (or fifo) found by the walk the group `gid`, through a descriptor of that
    very file: True when done, None when it has other hard links (left alone), False when it
    changed or went meanwhile. Opening it neither follows a link nor blocks on a fifo."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            return False
        raise
    try:
        now = os.fstat(fd)
        if not os.path.samestat(now, st) or stat.S_IFMT(now.st_mode) != stat.S_IFMT(st.st_mode):
            return False
        if now.st_nlink != 1:
            log.info("%s keeps its group: it has %d hard links", name, now.st_nlink)
            return None
        os.fchown(fd, -1, gid)      # the kernel drops a file's set-id bits here, as for any chown
        return True
    finally:
        os.close(fd)


# -- removing -----------------------------------------------------------------------------
def remove_entry(dir_fd: int, name: str, enter: Hook | None = None) -> None:
    """Remove `name` from folder `dir_fd`: a file or link is unlinked, a folder emptied by
    descriptor and removed. `enter(fd)` runs on each folder before it is emptied (btrfs makes
    read-only subvolumes writable there). Missing is fine."""
    st = lstat_at(dir_fd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        _unlink(dir_fd, name)
        return
    child = _enter(dir_fd, name, st, name)
    if child is None:   # swapped meanwhile: whatever is there now is removed as itself
        return remove_entry(dir_fd, name, enter)
    try:
        _clear(child, enter)
    finally:
        os.close(child)
    os.rmdir(name, dir_fd=dir_fd)


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except PermissionError:
        _open_up(dir_fd)
        os.unlink(name, dir_fd=dir_fd)


def _clear(fd: int, enter: Hook | None) -> None:
    """Remove everything inside folder `fd`, depth first, one descriptor per level."""
    if enter:
        enter(fd)
    _open_up(fd)
    stack = [(os.dup(fd), None, iter(scan(fd)))]
    try:
        while stack:
            folder, name, entries = stack[-1]
            item = next(entries, None)
            if item is None:
                os.close(folder)
                stack.pop()
                if name is not None:
                    os.rmdir(name, dir_fd=stack[-1][0])
                continue
            child_name, st = item
            if not stat.S_ISDIR(st.st_mode):
                _unlink(folder, child_name)
                continue
            child = _enter(folder, child_name, st, child_name)
            if child is None:
                remove_entry(folder, child_name, enter)
                continue
            if enter:
                enter(child)
            _open_up(child)
            checkpoint()
            stack.append((child, child_name, iter(scan(child))))
    finally:
        for folder, _, _ in stack:
            os.close(folder)


# -- copying ------------------------------------------------------------------------------
def copy_tree(src: str, dst: str, src_root: str | None = None, dst_root: str | None = None,
              keep_setid: bool = False) -> None:
    """Merge-copy folder `src` into `dst` (made when missing), each reached from its root
    (default: its parent folder) without following links. See copy_into."""
    with Root(src_root or os.path.dirname(os.path.normpath(src))) as sroot:
        try:
            sfd = sroot.open(src)
        except FileNotFoundError:
            raise StorageError(f"cannot copy {src}: not a directory") from None
        try:
            with Root(dst_root or os.path.dirname(os.path.normpath(dst))) as droot, \
                    droot.folder(dst, create=True) as dfd:
                copy_into(sfd, dfd, keep_setid)
        finally:
            os.close(sfd)


def copy_into(src: int, dst: int, keep_setid: bool = False) -> None:
    """Merge-copy folder `src` into folder `dst`: folders, files (reflinked where the
    filesystem can, holes kept), modes, owners (as root), mtimes, extended attributes (POSIX
    ACLs), symlinks as symlinks, fifos. Skips MARKER files, SNAPSHOTS folders, devices and
    sockets; drops set-user/group-id bits of files unless `keep_setid`. Running it twice
    changes nothing."""
    as_root = os.geteuid() == 0
    _open_up(dst)
    stack = [(os.dup(src), os.dup(dst), iter(scan(src)))]
    try:
        while stack:
            sfd, dfd, entries = stack[-1]
            item = next(entries, None)
            if item is None:
                # Last, so the writes above do not disturb the folder's own mode and mtime.
                _set_metadata(dfd, os.fstat(sfd), sfd, as_root, keep_setid)
                os.close(sfd)
                os.close(dfd)
                stack.pop()
                continue
            name, st = item
            kind = stat.S_IFMT(st.st_mode)
            if kind == stat.S_IFDIR:
                if name == SNAPSHOTS:
                    continue
                child = _enter(sfd, name, st, name)
                if child is None:
                    log.warning("not copying %s: it changed while being copied", name)
                    continue
                stack.append((child, _folder_in(dfd, name), iter(scan(child))))
            elif kind == stat.S_IFLNK:
                _copy_link(sfd, dfd, name, st, as_root)
            elif kind == stat.S_IFREG:
                if name != MARKER:
                    checkpoint()
                    _copy_file(sfd, dfd, name, as_root, keep_setid)
            elif kind == stat.S_IFIFO:
                _copy_fifo(dfd, name, st, as_root, keep_setid)
            else:
                log.warning("not copying %s: devices and sockets are not part of a template", name)
    finally:
        for sfd, dfd, _ in stack:
            os.close(sfd)
            os.close(dfd)


def _folder_in(dfd: int, name: str) -> int:
    """Open (making it, replacing a non-folder) folder `name` in `dfd`, writable for now."""
    current = lstat_at(dfd, name)
    if current is not None and not stat.S_ISDIR(current.st_mode):
        remove_entry(dfd, name)
    try:
        os.mkdir(name, 0o700, dir_fd=dfd)
    except FileExistsError:
        pass
    child = open_folder(dfd, name, name)
    _open_up(child)
    return child


def _copy_link(sfd: int, dfd: int, name: str, st: os.stat_result, as_root: bool) -> None:
    target = os.readlink(name, dir_fd=sfd)
    current = lstat_at(dfd, name)
    if current is None or not stat.S_ISLNK(current.st_mode) or os.readlink(name, dir_fd=dfd) != target:
        if current is not None:
            remove_entry(dfd, name)
        os.symlink(target, name, dir_fd=dfd)
    if as_root:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def _copy_fifo(dfd: int, name: str, st: os.stat_result, as_root: bool, keep_setid: bool) -> None:
    current = lstat_at(dfd, name)
    if current is not None and not stat.S_ISFIFO(current.st_mode):
        remove_entry(dfd, name)
        current = None
    if current is None:
        os.mkfifo(name, 0o600, dir_fd=dfd)
    if as_root:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    chmod_entry(dfd, name, _mode(st, keep_setid))
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def _mode(st: os.stat_result, keep_setid: bool) -> int:
    mode = stat.S_IMODE(st.st_mode)
    # A set-id program copied by root into a project would run as its owner for anyone.
    return mode if keep_setid or stat.S_ISDIR(st.st_mode) else mode & ~_SETID


def _same_file(src: os.stat_result, dst: os.stat_result, as_root: bool, keep_setid: bool) -> bool:
    return (stat.S_ISREG(dst.st_mode) and src.st_size == dst.st_size and src.st_mtime_ns == dst.st_mtime_ns
            and _mode(src, keep_setid) == stat.S_IMODE(dst.st_mode)
            and (not as_root or (src.st_uid, src.st_gid) == (dst.st_uid, dst.st_gid)))


def _copy_file(sfd: int, dfd: int, name: str, as_root: bool, keep_setid: bool) -> None:
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=sfd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT):
            log.warning("not copying %s: it changed while being copied", name)
            return
        raise
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            log.warning("not copying %s: it changed while being copied", name)
            return
        current = lstat_at(dfd, name)
        if current is not None:
            if _same_file(st, current, as_root, keep_setid):
                return
            remove_entry(dfd, name)
        # Written in place: a copy cut short keeps today's mtime, so the next run copies it again.
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=dfd)
        try:
            _copy_data(src, dst, st.st_size)
            _set_metadata(dst, st, src, as_root, keep_setid)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_data(src: int, dst: int, size: int) -> None:
    """Share extents where the filesystem can; else copy the data and leave the holes."""
    try:
        fcntl.ioctl(dst, _FICLONE, src)
        return
    except OSError:
        pass
    offset = 0
    while offset < size:
        try:
            start = os.lseek(src, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:    # only a hole is left
                break
            start = offset                  # no hole support: copy everything
        end = os.lseek(src, start, os.SEEK_HOLE)
        while start < end:
            chunk = os.pread(src, min(_COPY_CHUNK, end - start), start)
            if not chunk:
                break
            os.pwrite(dst, chunk, start)
            start += len(chunk)
        offset = end
    os.ftruncate(dst, size)


def _set_metadata(fd: int, st: os.stat_result, src: int, as_root: bool, keep_setid: bool) -> None:
    if as_root:
        os.fchown(fd, st.st_uid, st.st_gid)
    _copy_xattrs(src, fd)
    # chmod after chown (it clears set-id bits) and after the ACL xattrs (they set the mask)
    os.fchmod(fd, _mode(st, keep_setid))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_xattrs(src: int, dst: int) -> None:
    """Extended attributes: user.* ones and the POSIX ACLs (system.posix_acl_*) that carry a
    template's finer permissions. A filesystem without them, or a name we may not set, is
    logged and skipped: the tree itself matters more than one attribute."""
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError as exc:
            log.warning("not copying extended attribute %s: %s", name, exc.strerror)
