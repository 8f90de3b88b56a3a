"""Confined filesystem work: every path below a trusted root, reached without following links.

Jobs run as root in trees that project members write, and a member can swap any folder for
a symbolic link at any moment. So a root (a mountpoint, the template store, a template
source) is opened once, and every component below it is opened relative to its parent's
descriptor with O_NOFOLLOW: a link, or something that is not a folder, anywhere on the way
stops the job with one line naming it, before anything is touched. Changes (mkdir, chmod,
chown, unlink, rename, rmdir) name one entry relative to an open folder and never follow a
link, so what was checked is what is acted on.

This module and tree.py (which walks and copies by descriptor) are the only places that
touch files for the drivers and jobs.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading

from .errors import StorageError, Unsafe

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_watch = threading.local()


def watch(check):
    """Have long walks in this thread call `check()` every so often (a job's fence: it raises
    when the run lost its job, so a superseded run stops mid-copy); None to stop."""
    _watch.check = check


def checkpoint():
    check = getattr(_watch, "check", None)
    if check is not None:
        check()


def inside(path: str, top: str, strict: bool = False) -> bool:
    """Is normalised absolute `path` `top` itself (unless strict) or below it? The one rule."""
    path, top = os.path.normpath(path), os.path.normpath(top)
    if path == top:
        return not strict
    return path.startswith(top.rstrip("/") + "/")


def components(path: str, top: str) -> list[str]:
    """The names leading from `top` to `path` (both absolute); StorageError when outside."""
    path = os.path.normpath(path)
    if not os.path.isabs(path) or not inside(path, top):
        raise StorageError(f"{path} is not inside {top}")
    rel = os.path.relpath(path, os.path.normpath(top))
    return [] if rel == "." else rel.split(os.sep)


def open_folder(dir_fd: int, name: str, shown: str) -> int:
    """Open folder `name` in `dir_fd` without following a link; Unsafe when it is not a folder."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise not_a_folder(dir_fd, name, shown) from None
        raise


def not_a_folder(dir_fd: int, name: str, shown: str) -> Unsafe:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return Unsafe(f"{shown}: {name!r} changed while it was opened; not followed")
    if stat.S_ISLNK(st.st_mode):
        return Unsafe(f"{shown}: {name!r} is a symbolic link; not followed, nothing was done there")
    return Unsafe(f"{shown}: {name!r} is not a directory")


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def check_service_folder(fd: int, shown: str) -> None:
    """A folder the service keeps (records, .snapshots) must be the service's alone: owned by
    this process's user and writable by nobody else, or a member could have put it there."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Unsafe(f"{shown} is not the service's own folder (owner uid {st.st_uid}, mode "
                     f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it")


def open_service_folder(dir_fd: int, name: str, shown: str, create: bool = True,
                        mode: int = 0o700) -> int:
    """Open (making it with `mode` when missing and `create`) a folder the service keeps in
    `dir_fd`, checked to be the service's own; FileNotFoundError when missing otherwise."""
    shown = os.path.join(shown, name)
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=dir_fd)
    fd = open_folder(dir_fd, name, os.path.dirname(shown))
    try:
        check_service_folder(fd, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_below(dir_fd: int, names: list[str], shown: str, create: bool = False, mode: int = 0o755,
               made: list[str] | None = None) -> int:
    """Walk `names` down from folder `dir_fd`, one no-follow open each; a new descriptor of
    the last (the caller closes it). With `create`, missing folders are made with `mode`
    (`made` collects their paths, top first)."""
    fd = os.dup(dir_fd)
    try:
        for name in names:
            try:
                child = open_folder(fd, name, shown)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                    if made is not None:
                        made.append(os.path.join(shown, name))
                except FileExistsError:
                    pass
                child = open_folder(fd, name, shown)  # a link planted meanwhile is refused here
            os.close(fd)
            fd, shown = child, os.path.join(shown, name)
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def below(dir_fd: int, rel: str, shown: str = "", create: bool = False):
    """Folder `rel` (relative) below folder `dir_fd`, walked without following links (and
    made where missing, with `create`)."""
    fd = open_below(dir_fd, [n for n in rel.split("/") if n not in ("", ".")], shown or rel, create)
    try:
        yield fd
    finally:
        os.close(fd)


class Root:
    """A trusted folder opened once; paths below it are walked by descriptor.

    Paths given to its methods are absolute and must lie inside the root."""

    def __init__(self, path: str):
        self.path = os.path.normpath(path)
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(f"cannot open {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parts(self, path: str) -> list[str]:
        return components(path, self.path)

    def open(self, path: str, create: bool = False, mode: int = 0o755,
             made: list[str] | None = None) -> int:
        """A descriptor of folder `path` (the caller closes it). With `create`, missing
        folders are made (`made` collects the ones this call made, top first)."""
        return open_below(self.fd, self.parts(path), self.path, create, mode, made)

    @contextlib.contextmanager
    def folder(self, path: str, create: bool = False, mode: int = 0o755, made: list[str] | None = None):
        fd = self.open(path, create, mode, made)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def parent(self, path: str, create: bool = False, made: list[str] | None = None):
        """(descriptor of the folder holding `path`, its last name)."""
        if os.path.normpath(path) == self.path:
            raise StorageError(f"{path} is the root itself")
        with self.folder(os.path.dirname(os.path.normpath(path)), create, made=made) as fd:
            yield fd, os.path.basename(os.path.normpath(path))

    def lstat(self, path: str) -> os.stat_result | None:
        """The entry at `path` itself (a link is not followed); None when it or a parent is missing."""
        if os.path.normpath(path) == self.path:
            return os.fstat(self.fd)
        try:
            with self.parent(path) as (fd, name):
                return lstat_at(fd, name)
        except FileNotFoundError:
            return None

    def is_folder(self, path: str) -> bool:
        st = self.lstat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def remove(self, path: str) -> None:
        """Remove a file, link or whole tree at `path`; missing is fine. Never follows a link."""
        from .tree import remove_entry
        try:
            with self.parent(path) as (fd, name):
                remove_entry(fd, name)
        except FileNotFoundError:
            pass

    def rename(self, src: str, dst: str) -> None:
        with self.parent(src) as (sfd, sname), self.parent(dst) as (dfd, dname):
            os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

    def remove_empty_folders(self, folders: list[str]) -> None:
        """rmdir each folder, deepest first, while it is empty (folders the service made)."""
        for folder in sorted(folders, key=lambda p: p.count("/"), reverse=True):
            try:
                with self.parent(folder) as (fd, name):
                    os.rmdir(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    continue
                raise


_RENAME_EXCHANGE = 1 << 1      # linux/fs.h
_libc = None


def exchange(dir_a: int, name_a: str, dir_b: int, name_b: str) -> None:
    """Swap entries `name_a` of folder `dir_a` and `name_b` of folder `dir_b` in one step
    (renameat2 with RENAME_EXCHANGE): anyone looking finds the one or the other, never neither.
    Both must exist; links are swapped as links, never followed."""
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if _libc.renameat2(dir_a, os.fsencode(name_a), dir_b, os.fsencode(name_b), _RENAME_EXCHANGE) != 0:
        import ctypes
        code = ctypes.get_errno()
        raise OSError(code, f"exchanging {name_a} and {name_b}: {os.strerror(code)}")


def read_text_at(dir_fd: int, name: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unsafe(f"{name!r} is a symbolic link; not read") from None
        raise
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise Unsafe(f"{name!r} is not a regular file; not read")
        return f.read()


def write_text_at(dir_fd: int, name: str, text: str, mode: int = 0o644) -> None:
    """Replace `name` in `dir_fd` atomically: readers see the old content or the new, never half."""
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
