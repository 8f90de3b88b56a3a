"""NFS and SMB shares (exposers of type nfs and cifs): which fields each type has, and the
server backends that make a share real, chosen by the [shares] section of the config.

A backend publishes a share's definition (a dict of the exposer's fields and its id) and
withdraws it. Publishing is all or nothing: the share's file is written, the server's
check and reload run, and when either fails the file is put back as it was and the server
reloaded again, so a failed job leaves what was served before.
"""
import logging
import os
import signal

from service.shares import render
from service.shares.files import ManagedFolder
from service.storage import StorageError, commands

log = logging.getLogger(__name__)

SHARE_TYPES = ("nfs", "cifs")
# the fields each share type has (the others stay null); the access fields a PATCH re-publishes
TYPE_FIELDS = {
    "nfs": ("clients",),
    "cifs": ("read_only", "browseable", "guest_ok", "valid_users", "write_list", "hosts_allow",
             "create_mask", "directory_mask", "inherit_permissions", "inherit_acls"),
}
REQUIRED = {"nfs": ("clients",), "cifs": ()}
DEFAULTS = {"nfs": {}, "cifs": {"read_only": False, "browseable": True, "guest_ok": False,
                                 "inherit_permissions": False, "inherit_acls": False}}
BACKENDS = {"nfs": ("kernel", "ganesha", "ces", "none"), "smb": ("samba", "ces", "none")}
SETTING = {"nfs": "nfs", "cifs": "smb"}      # the [shares] key choosing each type's backend
DEFINITION = ("id", "name", "type", "path", "export_id") + TYPE_FIELDS["nfs"] + TYPE_FIELDS["cifs"]
TIMEOUT = 120


def definition(exposer, changes=None):
    """What a backend publishes: the exposer's fields, with `changes` (a PATCH's) applied."""
    values = {name: getattr(exposer, name) for name in DEFINITION}
    values.update(changes or {})
    return {name: value for name, value in values.items()
            if name in ("id", "name", "type", "path") or name in TYPE_FIELDS[exposer.type]
            or (name == "export_id" and exposer.type == "nfs")}


def backend_name(settings, share_type):
    return getattr(settings.shares, SETTING[share_type])


def backend(settings, share_type):
    """The backend serving `share_type` shares, or None where the config turns them off."""
    name = backend_name(settings, share_type)
    if name == "none":
        return None
    shares = settings.shares
    if name == "ces":
        from service.shares.ces import Ces
        return Ces(settings, share_type)
    if name == "kernel":
        return KernelNfs(shares)
    if name == "ganesha":
        return GaneshaNfs(shares)
    return Samba(shares)


class FileBackend:
    """A share per managed file; `activate()` makes the server serve what the files say."""
    folder: ManagedFolder

    def render(self, definition):
        raise StorageError(f"{type(self).__name__} cannot render shares")   # each backend says how

    def activate(self):
        raise StorageError(f"{type(self).__name__} cannot reload")

    def publish(self, definition):
        self._replace(definition["id"], self.render(definition))

    def withdraw(self, definition):
        self._replace(definition["id"], None)

    def published(self):
        """{id: definition} of the shares this backend's files hold (for populate)."""
        return self.folder.definitions()

    def _replace(self, item_id, text):
        before = self.folder.read(item_id)
        if before == text:
            log.info("%s already says so", self.folder.path(item_id))
        self.folder.write(item_id, text)
        log.info("%s %s", "removed" if text is None else "wrote", self.folder.path(item_id))
        try:
            self.activate()
        except Exception:
            log.error("putting %s back as it was", self.folder.path(item_id))
            self.folder.write(item_id, before)
            try:
                self.activate()
            except Exception as exc:    # the first failure is the job's
                log.error("reloading what was there before failed too: %s", exc)
            raise


class KernelNfs(FileBackend):
    """The kernel NFS server: a file per export in /etc/exports.d, then `exportfs -ra`."""

    def __init__(self, shares):
        self.folder = ManagedFolder(shares.exports_dir, "exports")
        self.command = list(shares.exportfs_command)

    render = staticmethod(render.kernel_export)

    def activate(self):
        commands.run(self.command + ["-ra"], timeout=TIMEOUT)


class GaneshaNfs(FileBackend):
    """NFS-Ganesha: an EXPORT block per export, merged into the file its config includes;
    SIGHUP makes it add, change and remove exports without a restart."""

    def __init__(self, shares):
        self.folder = ManagedFolder(shares.ganesha_dir, "conf", merged=shares.ganesha_exports_file)
        self.pidfile = shares.ganesha_pidfile

    render = staticmethod(render.ganesha_export)

    def activate(self):
        self.folder.merge()
        try:
            with open(self.pidfile, encoding="ascii") as file:
                pid = int(file.read().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise StorageError(f"nfs-ganesha could not be told to reload (pid file {self.pidfile}): {exc}") from None
        log.info("sent SIGHUP to nfs-ganesha (pid %d)", pid)


class Samba(FileBackend):
    """Samba: a [share] file per share, merged into the file smb.conf includes, checked with
    testparm before it replaces that file, then `smbcontrol smbd reload-config`."""

    def __init__(self, shares):
        self.folder = ManagedFolder(shares.samba_dir, "conf", merged=shares.samba_include)
        self.reload = list(shares.samba_reload_command)
        self.testparm = list(shares.testparm_command)

    render = staticmethod(render.samba_share)

    def activate(self):
        self.folder.merge(check=self.check)
        commands.run(self.reload, timeout=TIMEOUT)

    def check(self, candidate):
        result = commands.run(self.testparm + [candidate], timeout=TIMEOUT, check=False)
        said = [line.strip() for line in result.stderr.splitlines()
                if line.strip() and not line.startswith(TESTPARM_CHATTER)]
        # testparm exits 0 after an unknown parameter, which it then ignores: refused here
        if result.returncode or any("nknown parameter" in line for line in said):
            first = said[0] if said else f"exit status {result.returncode}"
            raise StorageError(f"testparm refused the Samba shares: {first}", details=result.stderr)


TESTPARM_CHATTER = ("Load smb config files", "Loaded services file", "Weak crypto", "Server role")
