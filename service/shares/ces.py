"""IBM Storage Scale's Cluster Export Services: NFS exports and SMB shares made cluster-wide
by `mmnfs export` and `mmsmb export` ([shares] nfs = "ces" / smb = "ces", gpfs driver only).

The commands run as every other mm* command of the gpfs driver does (its prefix, sudo and
timeout; argument lists, never a shell). Publishing reads what CES has and makes it match:

- NFS, one export per path: `mmnfs export add PATH --client "HOST(ATTR=V,...);..." --pseudo
  /NAME` (NFSv4 clients mount /NAME, as with the ganesha backend) when the path has no
  export, else `mmnfs export change PATH` with `--nfsadd` (new hosts), then
  `--nfschange` (hosts whose attributes differ), then `--nfsremove` (hosts no longer listed):
  one command each, never an export without clients in between. Each client carries every
  attribute `nfs_attributes()` sets, defaults included, so the export does not depend on the
  cluster's defaults and a re-run finds nothing to change.
- SMB, one share per name: `mmsmb export add NAME PATH --option "name=value" ...`, else
  `mmsmb export change NAME --option ...` for the options that differ, then a separate
  `--remove` command for options the definition no longer sets (mmsmb takes --option or
  --remove in one command, not both).

An export of the path or a share of the name that is already there is made to match: it is
the exposer's from then on. Withdrawing removes it (`--force`: no confirmation prompt); one
already gone is left alone. Clients are compared as a set: CES keeps them in the order they
were added. A command that fails stops the job with its message (StorageError); what the
commands before it did stays, and publishing again finishes the change.

CES has nowhere to keep the exposer's id beside an export (a share's `comment` is what Windows
shows), so `published()` finds nothing for populate: these shares are recorded by the API.
"""
import logging
import re

from service.shares import render
from service.storage import StorageError
from service.storage.commands import raise_for_status
from service.storage.gpfs import GpfsDriver
from service.storage.gpfs_parse import parse

log = logging.getLogger(__name__)

# exportfs option -> mmnfs client attribute. Without anonuid/anongid: CES's own default id.
NFS_SQUASH = {"root_squash": "ROOT_SQUASH", "no_root_squash": "NO_ROOT_SQUASH", "all_squash": "ALL_SQUASH"}
ANONYMOUS = "-2"
# kernel-only options; sync/async, which NFS-Ganesha ignores, are CES's NFS_COMMIT
NFS_IGNORES = render.GANESHA_IGNORES - {"sync", "async"}
# answers of a list naming an export or share that is not there (some releases exit non-zero)
_ABSENT = re.compile(r"no (?:nfs |smb )?exports? (?:found|defined)|not found|does not exist", re.IGNORECASE)

# exposer field -> (Samba option, kind)
SMB_OPTIONS = {
    "read_only": ("read only", "bool"), "browseable": ("browseable", "bool"), "guest_ok": ("guest ok", "bool"),
    "valid_users": ("valid users", "list"), "write_list": ("write list", "list"),
    "hosts_allow": ("hosts allow", "list"), "create_mask": ("create mask", "mask"),
    "directory_mask": ("directory mask", "mask"), "inherit_permissions": ("inherit permissions", "bool"),
    "inherit_acls": ("inherit acls", "bool"),
}
SMB_KINDS = dict(SMB_OPTIONS.values())
_TRUE, _FALSE = ("yes", "true", "1", "on"), ("no", "false", "0", "off")


class Ces:
    """The NFS (share_type "nfs") or SMB ("cifs") service of the CES nodes."""

    def __init__(self, settings, share_type):
        self.gpfs = GpfsDriver(settings.storage)
        self.share_type = share_type

    def publish(self, definition):
        if self.share_type == "nfs":
            self._publish_nfs(definition)
        else:
            self._publish_smb(definition)

    def withdraw(self, definition):
        if self.share_type == "nfs":
            if self._nfs_clients(definition["path"]) is None:
                log.info("no CES NFS export of %s: nothing to remove", definition["path"])
                return
            self.gpfs.mm("mmnfs", "export", "remove", definition["path"], "--force")
        else:
            if self._smb_share(definition["name"]) is None:
                log.info("no CES SMB share %s: nothing to remove", definition["name"])
                return
            self.gpfs.mm("mmsmb", "export", "remove", definition["name"], "--force")

    def published(self):
        return {}

    # -- NFS -------------------------------------------------------------------------------
    def _publish_nfs(self, definition):
        path = definition["path"]
        wanted = {client["host"]: nfs_attributes(client) for client in definition["clients"]}
        current = self._nfs_clients(path)
        if current is None:
            self.gpfs.mm("mmnfs", "export", "add", path, "--client",
                         ";".join(client_option(host, attributes) for host, attributes in wanted.items()),
                         "--pseudo", f"/{definition['name']}")
            return
        known = {host.lower(): host for host in current}
        added = [client_option(host, a) for host, a in wanted.items() if host.lower() not in known]
        changed = [client_option(host, a) for host, a in wanted.items()
                   if host.lower() in known and not same_attributes(a, current[known[host.lower()]])]
        dropped = [host for host in current if host.lower() not in {h.lower() for h in wanted}]
        for flag, clients, separator in (("--nfsadd", added, ";"), ("--nfschange", changed, ";"),
                                         ("--nfsremove", dropped, ",")):
            if clients:
                self.gpfs.mm("mmnfs", "export", "change", path, flag, separator.join(clients))
        if not (added or changed or dropped):
            log.info("CES NFS export of %s already serves its clients as asked", path)

    def _nfs_clients(self, path):
        """{host: {column: value}} of the export of `path`, or None when it has none."""
        result = self.gpfs.mm("mmnfs", "export", "list", "-Y", "--nfsdefs", path, check=False)
        rows = [r for r in nfs_rows(result.stdout) if r.get("path") == path]
        if result.returncode and not rows and _ABSENT.search(result.stdout + result.stderr):
            return None
        raise_for_status(result)
        return {row["clients"]: row for row in rows} or None

    # -- SMB -------------------------------------------------------------------------------
    def _publish_smb(self, definition):
        name, path = definition["name"], definition["path"]
        wanted = smb_options(definition)
        current = self._smb_share(name)
        if current is None:
            options = [arg for option, value in wanted.items() if value is not None
                       for arg in ("--option", f"{option}={value}")]
            self.gpfs.mm("mmsmb", "export", "add", name, path, *options)
            return
        if current.get("path") != path:
            raise StorageError(f"CES SMB share {name} exists for {current.get('path')}, not {path}: "
                               "left as it is (mmsmb cannot move a share)")
        changed = [arg for option, value in wanted.items()
                   if value is not None and not same_option(option, value, current.get(option))
                   for arg in ("--option", f"{option}={value}")]
        dropped = [arg for option, value in wanted.items() if value is None and current.get(option)
                   for arg in ("--remove", option)]
        for args in (changed, dropped):
            if args:
                self.gpfs.mm("mmsmb", "export", "change", name, *args)
        if not (changed or dropped):
            log.info("CES SMB share %s already has the options asked", name)

    def _smb_share(self, name):
        """{option: value} of share `name` (its `path` among them), or None when there is none."""
        result = self.gpfs.mm("mmsmb", "export", "list", name, "--all", "-Y", check=False)
        rows = [{key.lower(): value for key, value in row.items()} for row in parse(result.stdout)]
        rows = [row for row in rows if row.get("export", "").lower() == name.lower()]
        if result.returncode and not rows and _ABSENT.search(result.stdout + result.stderr):
            return None
        raise_for_status(result)
        return rows[0] if rows else None


def nfs_attributes(client):
    """The mmnfs attributes of one exportfs-style client, all of them, in a stable order.
    Like exportfs: read-only and root squashed unless told otherwise."""
    options = dict(option.partition("=")[::2] for option in client["options"])
    attributes = {
        "ACCESS_TYPE": "RW" if "rw" in options else "RO",
        "SQUASH": next((NFS_SQUASH[o] for o in NFS_SQUASH if o in options), "ROOT_SQUASH"),
        "ANONYMOUS_UID": options.get("anonuid", ANONYMOUS),
        "ANONYMOUS_GID": options.get("anongid", ANONYMOUS),
        "SECTYPE": ":".join(flavour.upper() for flavour in options.get("sec", "sys").split(":")),
        "PRIVILEGEDPORT": "TRUE" if "secure" in options else "FALSE",   # else any port, as CES does
        "NFS_COMMIT": "TRUE" if "sync" in options else "FALSE",         # sync: commit every write
    }
    ignored = sorted(NFS_IGNORES & set(options))
    if ignored:
        log.info("client %s: no CES NFS equivalent of %s: left out", client["host"], ", ".join(ignored))
    return attributes


def client_option(host, attributes):
    return f"{host}({','.join(f'{name}={value}' for name, value in attributes.items())})"


def same_attributes(wanted, listed):
    """Whether a listed client has the wanted attributes (columns a release does not list are
    taken as they are)."""
    return all(_nfs_value(name, value) == _nfs_value(name, listed[name.lower()])
               for name, value in wanted.items() if name.lower() in listed)


def _nfs_value(name, value):
    value = value.strip().upper()
    if name == "SQUASH":
        value = value.replace("_", "")
        return {"NOIDSQUASH": "NOROOTSQUASH", "NONE": "NOROOTSQUASH", "ROOT": "ROOTSQUASH",
                "ALL": "ALLSQUASH", "ALLANONYMOUS": "ALLSQUASH"}.get(value, value)
    if name == "SECTYPE":
        return frozenset(f for f in re.split(r"[,:\s]+", value) if f)
    if name.startswith("ANONYMOUS_"):
        return int(value) % 2**32 if re.fullmatch(r"-?[0-9]+", value) else value
    return {"YES": "TRUE", "1": "TRUE", "NO": "FALSE", "0": "FALSE"}.get(value, value)


def nfs_rows(text):
    """The rows of `mmnfs export list -Y`, columns lowercased. An IPv6 client's colons are not
    encoded by every release: the surplus fields at the Clients column are joined again."""
    lines, width, at = [], None, None
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2] == "HEADER":
            names = [name.lower() for name in fields]
            width, at = len(fields), names.index("clients") if "clients" in names else None
        elif width and at is not None and len(fields) > width:
            surplus = len(fields) - width
            fields[at:at + surplus + 1] = ["%3A".join(fields[at:at + surplus + 1])]   # parse() decodes it
            line = ":".join(fields)
        lines.append(line)
    return [{key.lower(): value for key, value in row.items()} for row in parse("\n".join(lines))]


def smb_options(definition):
    """{Samba option: value or None (not set)} of a cifs definition."""
    options = {}
    for field, (option, kind) in SMB_OPTIONS.items():
        value = definition.get(field)
        if kind == "bool":
            options[option] = None if value is None else ("yes" if value else "no")
        elif kind == "list":
            options[option] = " ".join(value) if value else None
        else:
            options[option] = value or None
    return options


def same_option(option, wanted, listed):
    """Whether the listed value of `option` says what `wanted` says (yes/no, names in any
    order, modes with or without their leading 0)."""
    if listed is None:
        return False
    kind, listed = SMB_KINDS[option], listed.strip()
    if kind == "bool":
        return (listed.lower() in _TRUE) == (wanted == "yes") and listed.lower() in _TRUE + _FALSE
    if kind == "list":
        return set(re.split(r"[,\s]+", listed)) - {""} == set(wanted.split())
    return re.fullmatch(r"[0-7]+", listed) is not None and int(listed, 8) == int(wanted, 8)
