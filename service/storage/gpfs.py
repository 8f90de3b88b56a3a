"""gpfs driver: filesets, quotas and snapshots of IBM Storage Scale (PixStor), through the mm*
commands. Every command goes through `mm()`: an argument list (never a shell string), the
configured prefix, optional `sudo -n`, a timeout, and the whole stderr kept on failure.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time

from . import gpfs_parse, gpfs_policy, tree
from .base import (SNAPSHOTS, Driver, Filesystem, FilesetInfo, StorageError, check_limits, check_name,
                   find, is_below)
from .commands import raise_for_status, run
from .confined import Root

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "/usr/lpp/mmfs/bin"
DEFAULT_TIMEOUT = 300
_NOT_LINKED = ("", "-", "--")


class GpfsDriver(Driver):
    name = "gpfs"
    has_pools = True

    def __init__(self, settings):
        super().__init__(settings)
        gpfs = getattr(settings, "gpfs", None)
        self.prefix = getattr(gpfs, "command_prefix", None) or DEFAULT_PREFIX
        self.timeout = float(getattr(gpfs, "timeout", None) or DEFAULT_TIMEOUT)
        self.sudo = bool(getattr(gpfs, "sudo", False))
        self._block_sizes: dict[str, int] = {}

    # -- running commands ------------------------------------------------------------------
    def command_line(self, command: str, *args: str) -> list[str]:
        argv = [os.path.join(self.prefix, command), *args]
        return ["sudo", "-n", *argv] if self.sudo else argv

    def mm(self, command: str, *args: str, check: bool = True):
        return run(self.command_line(command, *args), timeout=self.timeout, check=check)

    def mm_rows(self, command: str, *args: str) -> list[gpfs_parse.Row]:
        return gpfs_parse.parse(self.mm(command, *args).stdout)

    # -- discovery -------------------------------------------------------------------------
    def discover(self) -> list[Filesystem]:
        attributes: dict[str, dict[str, str]] = {}
        for row in self.mm_rows("mmlsfs", "all", "-Y"):
            attributes.setdefault(row.get("deviceName", ""), {})[row.get("fieldName")] = row.get("data", "")
        wanted = [f.name for f in self.filesystems]
        missing = [name for name in wanted if name not in attributes]
        if missing:
            raise StorageError(f"filesystem(s) {', '.join(missing)} not found by mmlsfs")
        found = []
        for name, fields in sorted(attributes.items()):
            if not name or (wanted and name not in wanted):
                continue
            if fields.get("blockSize", "").isdigit():
                self._block_sizes[name] = int(fields["blockSize"])
            pools = gpfs_parse.parse_pools(self.mm("mmlspool", name, "all").stdout)
            found.append(Filesystem(name=name, mountpoint=fields.get("defaultMountPoint") or f"/{name}",
                                    pools=tuple(p for p, holds_data in pools if holds_data)))
        return found

    def block_size(self, fs: Filesystem) -> int:
        if fs.name not in self._block_sizes:
            rows = self.mm_rows("mmlsfs", fs.name, "-B", "-Y")
            sizes = [r["data"] for r in rows if r.get("fieldName") == "blockSize"]
            if not sizes or not sizes[0].isdigit():
                raise StorageError(f"mmlsfs {fs.name} -B reported no block size")
            self._block_sizes[fs.name] = int(sizes[0])
        return self._block_sizes[fs.name]

    # -- filesets --------------------------------------------------------------------------
    def list_filesets(self, fs: Filesystem) -> list[FilesetInfo]:
        rows = [r for r in self.mm_rows("mmlsfileset", fs.name, "-Y") if r.get("status") != "Deleted"]
        owners = {r.get("inodeSpace"): r["filesetName"] for r in rows if r.get("isInodeSpaceOwner") == "1"}
        return [FilesetInfo(
            name=r["filesetName"],
            path=None if r.get("status") != "Linked" or r.get("path") in _NOT_LINKED
            else os.path.normpath(r["path"]),
            parent=None if r.get("isInodeSpaceOwner", "1") == "1" else owners.get(r.get("inodeSpace")),
            pool=self._pool_of(fs, r["filesetName"]),
        ) for r in rows]

    @staticmethod
    def _pool_of(fs: Filesystem, fileset: str) -> str | None:
        prefix = fileset.split("-", 1)[0]
        return prefix if "-" in fileset and prefix in fs.pools else None

    def create_fileset(self, fs, name, path, pool, parent=None):
        check_name("fileset", name)
        path = self.check_junction(fs, path)
        filesets = self.list_filesets(fs)
        info = self.check_existing(name, path, filesets)
        if info is not None and info.path == path:
            return
        self.check_placement(fs, name, path, parent, filesets)
        with Root(fs.mountpoint) as root:
            self.check_free(root, path)
            if info is None:  # else: created by an earlier attempt that stopped before linking
                if parent is not None:
                    self.check_parent(fs, parent, filesets)
                self.mm("mmcrfileset", fs.name, name, "--inode-space", parent or "new")
            # The parents are made and checked by descriptor; mmlinkfileset itself can only take
            # a path, which it resolves again (GPFS has no descriptor-based link).
            with root.parent(path, create=True) as (fd, leaf):
                tree.remove_entry(fd, leaf)  # empty but for a marker (checked above); linking creates it
                self.mm("mmlinkfileset", fs.name, name, "-J", path)

    def delete_fileset(self, fs, name, force=False):
        filesets = self.list_filesets(fs)
        info = find(filesets, name)
        if info is None:
            return
        dependents = self.check_deletable(fs, info, filesets, force)
        # Fileset snapshots hold the inode space: they go first.
        for snapshot in self._snapshots(fs, name):
            self.mm("mmdelsnapshot", fs.name, self._snapshot_id(name, snapshot))
        for fileset in dependents + [info]:  # deepest first, the fileset itself last
            flag = ["-f"] if force else []
            if fileset.path:
                self.mm("mmunlinkfileset", fs.name, fileset.name, *flag)
            self.mm("mmdelfileset", fs.name, fileset.name, *flag)

    # -- quotas ----------------------------------------------------------------------------
    def set_quota(self, fs, fileset, hard, soft):
        check_limits(hard, soft)
        self.mm("mmsetquota", f"{fs.name}:{fileset}", "--block", f"{soft}:{hard}")
        # GPFS keeps limits in KiB rounded to its block size: read back and compare after rounding.
        applied_hard, applied_soft = self.quota(fs, fileset)
        block = self.block_size(fs)
        if abs(applied_hard - hard) >= block or abs(applied_soft - soft) >= block:
            raise StorageError(f"quota of {fileset} reads back as {applied_soft}:{applied_hard} "
                               f"bytes, not the {soft}:{hard} set")

    def _quota_row(self, fs: Filesystem, fileset: str) -> gpfs_parse.Row | None:
        rows = self.mm_rows("mmlsquota", "-j", fileset, "-Y", fs.name)
        return next((r for r in rows if r.get("quotaType") == "FILESET"
                     and r.get("name", fileset) == fileset), None)

    def quota(self, fs, fileset):
        row = self._quota_row(fs, fileset)
        if row is None:
            return 0, 0
        return gpfs_parse.kib_to_bytes(row.get("blockLimit", "")), gpfs_parse.kib_to_bytes(row.get("blockQuota", ""))

    def usage(self, fs, fileset):
        row = self._quota_row(fs, fileset)
        return gpfs_parse.kib_to_bytes(row.get("blockUsage", "")) if row else 0

    # -- snapshots -------------------------------------------------------------------------
    def _snapshots(self, fs: Filesystem, fileset: str | None) -> list[str]:
        """Names of the fileset's snapshots (of the global ones when None)."""
        result = self.mm("mmlssnapshot", fs.name, "-Y", check=False)
        if result.returncode and "No snapshots" in result.stdout + result.stderr:
            return []
        raise_for_status(result)
        return [r["directory"] for r in gpfs_parse.parse(result.stdout) if r.get("fileset") == (fileset or "")]

    def create_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        source = fs.mountpoint
        if fileset is not None:  # a fileset snapshot: check the fileset can have one
            source, _ = self.snapshot_scope(fs, fileset, self.list_filesets(fs))
        if name not in self._snapshots(fs, fileset):
            self.mm("mmcrsnapshot", fs.name, self._snapshot_id(fileset, name))
        return os.path.join(source, SNAPSHOTS, name)

    def delete_snapshot(self, fs, fileset, name):
        check_name("snapshot", name)
        if name in self._snapshots(fs, fileset):
            self.mm("mmdelsnapshot", fs.name, self._snapshot_id(fileset, name))

    def snapshot_taken(self, fs, fileset, snapshot):
        """The `created` time mmlssnapshot reports (the cluster's local time, as ctime prints it)."""
        check_name("snapshot", snapshot)
        rows = [r for r in gpfs_parse.parse(self.mm("mmlssnapshot", fs.name, "-Y").stdout)
                if r.get("directory") == snapshot and r.get("fileset") == fileset]
        if not rows:
            raise StorageError(f"fileset {fileset} has no snapshot {snapshot}")
        try:
            moment = time.mktime(time.strptime(" ".join(rows[0].get("created", "").split()), "%a %b %d %H:%M:%S %Y"))
        except ValueError:
            raise StorageError(f"mmlssnapshot: snapshot {snapshot} has no creation time I can read: "
                               f"{rows[0].get('created')!r}") from None
        return int(moment) * 1_000_000_000

    def revert_fileset(self, fs, fileset, snapshot):
        """mmrestorefs Device SnapshotName -j FilesetName: IBM's restore of an independent
        fileset from its snapshot (Storage Scale 4.1.1 and later, file system mounted, fileset
        linked); running it again restores again."""
        check_name("snapshot", snapshot)
        self.linked_path(fs, fileset)
        if snapshot not in self._snapshots(fs, fileset):
            raise StorageError(f"fileset {fileset} has no snapshot {snapshot}")
        self.mm("mmrestorefs", fs.name, snapshot, "-j", fileset)

    @staticmethod
    def _snapshot_id(fileset: str | None, name: str) -> str:
        """`fileset:snapshot` for a fileset snapshot, the bare name for a global one."""
        return name if fileset is None else f"{fileset}:{name}"

    # -- templates -------------------------------------------------------------------------
    def model_filesets(self, fs, model_path, model_root=None):
        model_path = os.path.normpath(model_path)
        filesets = self.list_filesets(fs) if fs is not None else []
        found = {os.path.relpath(f.path, model_path): f.pool or self.default_pool(fs)
                 for f in filesets if f.path and is_below(f.path, model_path)}
        try:
            with self.opened(model_path, model_root) as fd:
                found.update(self.model_markers(fs, fd))  # an explicit marker wins
        except FileNotFoundError:
            pass
        return found

    # -- placement policy ------------------------------------------------------------------
    def policy_rules(self, fs: Filesystem) -> str:
        return gpfs_policy.policy_rules(fs)

    def installed_policy(self, fs: Filesystem) -> str:
        result = self.mm("mmlspolicy", fs.name, "-L", check=False)
        text = result.stdout + result.stderr
        if gpfs_policy.NO_POLICY in text:
            return ""
        return raise_for_status(result).stdout

    def missing_placement_rules(self, fs: Filesystem) -> list[str]:
        """Pools of `fs` without their `{pool}-placement` rule in the installed policy."""
        return gpfs_policy.missing_pools(self.installed_policy(fs), fs.pools)

    def install_default_policy(self, fs: Filesystem) -> list[str]:
        """Add the missing placement rules to the installed policy (kept as it is, default rule
        last) with mmchpolicy. Returns the pools whose rule was added; nothing to add, no change."""
        current = self.installed_policy(fs)
        missing = gpfs_policy.missing_pools(current, fs.pools)
        _, rules = gpfs_policy.split_rules(current)
        if not missing and any(gpfs_policy.is_default_rule(r) for r in rules):
            return []
        self._install(fs, gpfs_policy.merge_policy(current, fs.pools, self.default_pool(fs)))
        return missing

    def install_profiles(self, fs: Filesystem, profiles: list[gpfs_policy.ProfileRules]) -> bool:
        """Install the profiles' placement and ILM rules (the service's `pixstor-` rules replaced
        whole, every other rule kept, default last). False when the installed policy says so already."""
        current = self.installed_policy(fs)
        policy = gpfs_policy.merge_profiles(current, profiles, fs.pools, self.default_pool(fs))
        if policy.strip() == current.strip():
            log.info("the policy of %s has these rules already", fs.name)
            return False
        self._install(fs, policy)
        return True

    def run_ilm(self, fs: Filesystem, profiles: list[gpfs_policy.ProfileRules], dry_run: bool) -> str:
        """mmapplypolicy over the profiles' ILM rules only (-I test for a dry run); its report."""
        rules = gpfs_policy.ilm_rules_of(profiles)
        if not rules:
            return f"{fs.name}: no ILM steps apply to any space"
        with self._policy_file(fs, "\n\n".join(rules) + "\n") as path:
            return self.mm("mmapplypolicy", fs.name, "-P", path, "-I", "test" if dry_run else "yes").stdout

    def _install(self, fs: Filesystem, policy: str) -> None:
        """mmchpolicy with the policy checked first (-I test), then installed (-I yes)."""
        with self._policy_file(fs, policy) as path:
            log.info("installing the policy of %s:\n%s", fs.name, policy)
            self.mm("mmchpolicy", fs.name, path, "-I", "test")
            self.mm("mmchpolicy", fs.name, path, "-I", "yes")

    @staticmethod
    @contextlib.contextmanager
    def _policy_file(fs: Filesystem, text: str):
        with tempfile.NamedTemporaryFile("w", prefix=f"pixstor-{fs.name}-", suffix=".pol") as f:
            f.write(text)
            f.flush()
            os.chmod(f.name, 0o644)  # readable by the mm commands when they run through sudo
            yield f.name
