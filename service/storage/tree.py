"""File-tree helpers shared by the drivers: merge-copy, data checks, read-only toggling."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile

log = logging.getLogger(__name__)

MARKER = ".pixstor-fileset"    # marks a dependent fileset in a template model / store; content = pool
SNAPSHOTS = ".snapshots"       # snapshot folder inside a space
_FICLONE = 0x40049409          # linux/fs.h: share the source's extents (reflink) instead of copying
_COPY_CHUNK = 1 << 20


# -- walking ------------------------------------------------------------------------------
def _walk_files(top: str, roots: list[str], skip: list[str]):
    """Yield lstat results of non-directory entries below `top`, ignoring MARKER files,
    the SNAPSHOTS folder of each root in `roots`, and the subtrees in `skip`."""
    skipped = set(skip) | {os.path.join(r, SNAPSHOTS) for r in roots}
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.path not in skipped:
                    stack.append(entry.path)
            elif entry.name != MARKER:
                yield entry.stat(follow_symlinks=False)


def holds_data(top: str, roots: list[str], skip: list[str] = ()) -> bool:
    return next(_walk_files(top, roots, list(skip)), None) is not None


def data_bytes(top: str, roots: list[str], skip: list[str] = ()) -> int:
    """Sum of regular file sizes (symlinks are not followed)."""
    return sum(st.st_size for st in _walk_files(top, roots, list(skip)) if stat.S_ISREG(st.st_mode))


def has_entries(folder: str, ignore: set[str] = frozenset()) -> bool:
    with os.scandir(folder) as it:
        return any(e.name not in ignore for e in it)


def marked_folders(top: str) -> dict[str, str]:
    """Folders below `top` holding MARKER: {relative path: marker content (stripped)}."""
    found = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != SNAPSHOTS]
        if MARKER in files and folder != top:
            with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
                found[os.path.relpath(folder, top)] = f.read().strip()
    return found


def write_file_atomically(path: str, text: str) -> None:
    """Readers see the old content or the new one, never a torn file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- permissions --------------------------------------------------------------------------
def _chmod_tree(top: str, change) -> None:
    """Apply change(mode) -> mode to `top` and everything below it, never through symlinks."""
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files + dirs:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(path, change(stat.S_IMODE(st.st_mode)))
    os.chmod(top, change(stat.S_IMODE(os.lstat(top).st_mode)))


_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def make_read_only(top: str) -> None:
    _chmod_tree(top, lambda mode: mode & ~_WRITE)


def make_writable(top: str) -> None:
    # Walk top-down so each folder is writable (and searchable) before its entries are touched.
    os.chmod(top, stat.S_IMODE(os.lstat(top).st_mode) | stat.S_IRWXU)
    for folder, dirs, _files in os.walk(top):
        for name in dirs:
            path = os.path.join(folder, name)
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IRWXU)


def remove_tree(top: str) -> None:
    """Remove a folder even when read-only; a missing folder is fine."""
    if not os.path.lexists(top):
        return
    if os.path.isdir(top) and not os.path.islink(top):
        make_writable(top)
        shutil.rmtree(top)
    else:
        os.unlink(top)


# -- copying ------------------------------------------------------------------------------
def copy_tree(src: str, dst: str) -> None:
    """Merge-copy `src` into `dst`: folders, files, modes, owners (as root), mtimes, symlinks
    as symlinks. Skips MARKER files and SNAPSHOTS folders. Running it twice changes nothing."""
    os.makedirs(dst, exist_ok=True)
    _copy_folder(src, dst, as_root=os.geteuid() == 0)


def _copy_folder(src: str, dst: str, as_root: bool) -> None:
    st = os.lstat(src)
    if not os.access(dst, os.W_OK | os.X_OK):
        # A read-only folder left by an earlier run: open it up until its entries are copied.
        os.chmod(dst, stat.S_IMODE(os.lstat(dst).st_mode) | stat.S_IRWXU)
    with os.scandir(src) as it:
        entries = list(it)
    for entry in entries:
        target = os.path.join(dst, entry.name)
        if entry.is_symlink():
            _copy_symlink(entry.path, target, as_root)
        elif entry.is_dir():
            if entry.name == SNAPSHOTS:
                continue
            _ensure_folder(target)
            _copy_folder(entry.path, target, as_root)
        elif entry.is_file():
            if entry.name != MARKER:
                _copy_file(entry.path, target, as_root)
        elif stat.S_ISFIFO(entry.stat(follow_symlinks=False).st_mode):
            if not os.path.lexists(target):
                os.mkfifo(target)
            _copy_metadata(entry.path, entry.stat(follow_symlinks=False), target, as_root)
        else:
            log.warning("not copying %s: devices and sockets are not part of a template", entry.path)
    # Last, so the writes above do not disturb the folder's own mode and mtime.
    _copy_metadata(src, st, dst, as_root)


def _ensure_folder(target: str) -> None:
    if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
        os.unlink(target)
    os.makedirs(target, exist_ok=True)


def _copy_symlink(src: str, target: str, as_root: bool) -> None:
    link = os.readlink(src)
    if os.path.islink(target) and os.readlink(target) == link:
        pass
    else:
        if os.path.isdir(target) and not os.path.islink(target):
            remove_tree(target)
        elif os.path.lexists(target):
            os.unlink(target)
        os.symlink(link, target)
    _copy_metadata(src, os.lstat(src), target, as_root)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns
            and stat.S_IMODE(a.st_mode) == stat.S_IMODE(b.st_mode))


def _copy_file(src: str, target: str, as_root: bool) -> None:
    st = os.lstat(src)
    if os.path.lexists(target):
        current = os.lstat(target)
        if stat.S_ISREG(current.st_mode) and _same_file(st, current) and (
                not as_root or (current.st_uid, current.st_gid) == (st.st_uid, st.st_gid)):
            return
        if stat.S_ISDIR(current.st_mode):
            remove_tree(target)
        else:
            os.unlink(target)
    # Written in place: a copy cut short keeps today's mtime, so the next run copies it again.
    with open(src, "rb") as fsrc, open(target, "xb") as fdst:
        try:
            fcntl.ioctl(fdst.fileno(), _FICLONE, fsrc.fileno())
        except OSError:
            shutil.copyfileobj(fsrc, fdst, _COPY_CHUNK)
    _copy_metadata(src, st, target, as_root)


def _copy_metadata(src: str, st: os.stat_result, target: str, as_root: bool) -> None:
    is_link = stat.S_ISLNK(st.st_mode)
    if as_root:
        os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        _copy_xattrs(src, target)
    if not is_link:  # chmod after chown (it clears set-id bits) and after the ACL xattrs (they set the mask)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_xattrs(src: str, target: str) -> None:
    """Extended attributes: user.* ones and the POSIX ACLs (system.posix_acl_*) that carry a
    template's finer permissions. A filesystem without them, or a name we may not set, is
    logged and skipped: the tree itself matters more than one attribute."""
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(target, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError as exc:
            log.warning("not copying extended attribute %s of %s: %s", name, src, exc.strerror)
