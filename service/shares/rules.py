"""What a share definition may say: NFS clients and export options, Samba names, users, hosts
and masks, and the paths a share may expose.

Every value lands in a file that a root daemon reads, so each is checked against a closed
grammar here, once, before anything is written: a newline, a quote, a bracket or an unknown
option is refused with the rule it broke — never escaped and hoped for.
"""
import ipaddress
import re

from service import inputs

# exportfs(8) options. Flags stand alone; the others take a value checked by VALUED.
NFS_FLAGS = frozenset("""
    rw ro sync async secure insecure wdelay no_wdelay hide nohide crossmnt subtree_check no_subtree_check
    insecure_locks secure_locks auth_nlm no_auth_nlm root_squash no_root_squash all_squash no_all_squash
    acl no_acl mp pnfs no_pnfs security_label
""".split())
SEC_FLAVORS = ("sys", "krb5", "krb5i", "krb5p")
NFS_VALUED = {
    "anonuid": (re.compile(r"[0-9]{1,10}"), "a user id"),
    "anongid": (re.compile(r"[0-9]{1,10}"), "a group id"),
    "sec": (re.compile(r"(?:sys|krb5|krb5i|krb5p)(?::(?:sys|krb5|krb5i|krb5p))*"),
            "security flavours separated by ':' (" + ", ".join(SEC_FLAVORS) + ")"),
    "fsid": (re.compile(r"[0-9]{1,10}|root|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                        r"[0-9a-fA-F]{12}"), "a number, root or a UUID"),
}
# pairs that contradict each other
NFS_OPPOSITES = (("rw", "ro"), ("sync", "async"), ("root_squash", "no_root_squash"),
                 ("all_squash", "no_all_squash"), ("secure", "insecure"), ("wdelay", "no_wdelay"),
                 ("hide", "nohide"), ("subtree_check", "no_subtree_check"), ("acl", "no_acl"))
MAX_CLIENTS = 256
_HOSTNAME = re.compile(r"[A-Za-z0-9*?](?:[A-Za-z0-9*?.-]{0,252})")
_NETGROUP = re.compile(r"@[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")

# Samba: share names it keeps for itself, and the user and host grammar
SAMBA_RESERVED = frozenset({"global", "homes", "printers", "print$", "ipc$"})
SHARE_NAME_MAX = 80
_SMB_USER = re.compile(r"[@+&]?[A-Za-z0-9_][A-Za-z0-9_.$-]{0,127}(?:\\[A-Za-z0-9_][A-Za-z0-9_.$-]{0,127})?")
MAX_NAMES = 256
_MASK = re.compile(r"0?[0-7]{3,4}")

# a share path: text that every backend can write without quoting tricks
_PATH_REFUSED = re.compile(r'["\\%]')


def nfs_host(host):
    """A client of an export: *, @netgroup, an address, a network (CIDR) or a (wildcard) name."""
    if not isinstance(host, str) or not host:
        raise ValueError("host must be a non-empty string")
    if host == "*" or _NETGROUP.fullmatch(host):
        return host
    try:
        return str(ipaddress.ip_network(host, strict=False)) if "/" in host else str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _HOSTNAME.fullmatch(host) and ".." not in host:
        return host
    raise ValueError(f"host {_shown(host)} is not *, @netgroup, an address, a network or a host name")


def nfs_options(options):
    """Export options as a list: a list of strings or one comma-separated string."""
    if isinstance(options, str):
        options = [o.strip() for o in options.split(",") if o.strip()]
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ValueError("options must be a list of export options (or one comma-separated string)")
    seen = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep and name in NFS_FLAGS:
            pass
        elif sep and name in NFS_VALUED:
            pattern, what = NFS_VALUED[name]
            if not pattern.fullmatch(value):
                raise ValueError(f"option {_shown(option)}: {name}= takes {what}")
        elif name in NFS_VALUED:
            raise ValueError(f"option {_shown(name)} needs a value: {name}=...")
        else:
            raise ValueError(f"unknown export option {_shown(option)}; known: "
                             + ", ".join(sorted(NFS_FLAGS) + [f"{v}=" for v in NFS_VALUED]))
        if name in seen:
            raise ValueError(f"option {name} is given twice")
        seen[name] = option
    for one, other in NFS_OPPOSITES:
        if one in seen and other in seen:
            raise ValueError(f"options {one} and {other} contradict each other")
    return options


def nfs_clients(value):
    """[{host, options}], each host once. Shapes what was sent into that list or raises."""
    if not isinstance(value, list) or not value:
        raise ValueError('must be a non-empty list of {"host": ..., "options": [...]}')
    if len(value) > MAX_CLIENTS:
        raise ValueError(f"at most {MAX_CLIENTS} clients")
    clients, hosts = [], set()
    for entry in value:
        if not isinstance(entry, dict) or "host" not in entry or set(entry) - {"host", "options"}:
            raise ValueError('each client must be {"host": ..., "options": [...]}')
        host = nfs_host(entry["host"])
        if host in hosts:
            raise ValueError(f"host {host} is listed twice")
        hosts.add(host)
        clients.append({"host": host, "options": nfs_options(entry.get("options") or [])})
    return clients


def share_name(name):
    """A Samba share name: not one Samba keeps for itself, at most SHARE_NAME_MAX characters."""
    if name.lower() in SAMBA_RESERVED:
        raise ValueError(f"{name} is a name Samba reserves ({', '.join(sorted(SAMBA_RESERVED))})")
    if len(name) > SHARE_NAME_MAX:
        raise ValueError(f"a share name has at most {SHARE_NAME_MAX} characters")


def names_list(value, check, what):
    """A list of names, from a list of strings or one comma-separated string."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of {what} (or one comma-separated string)")
    if len(value) > MAX_NAMES:
        raise ValueError(f"at most {MAX_NAMES} {what}")
    return [check(v) for v in value]


def smb_user(name):
    if not _SMB_USER.fullmatch(name):
        raise ValueError(f"{_shown(name)} is not a user name, @group or DOMAIN\\name")
    return name


def smb_host(host):
    """hosts allow: an address, a network (CIDR) or a host name."""
    try:
        return str(ipaddress.ip_network(host, strict=False)) if "/" in host else str(ipaddress.ip_address(host))
    except ValueError:
        if _HOSTNAME.fullmatch(host) and "*" not in host and "?" not in host:
            return host
    raise ValueError(f"{_shown(host)} is not an address, a network or a host name")


def users(value):
    return names_list(value, smb_user, "users or @groups")


def hosts(value):
    return names_list(value, smb_host, "addresses, networks or host names")


def mask(value):
    """An octal mode of 3 or 4 digits, kept as 4 ('664' -> '0664')."""
    if not isinstance(value, str) or not _MASK.fullmatch(value):
        raise ValueError("must be an octal mode such as 0664 or 2775")
    return value.rjust(4, "0")[-4:]


def share_path(path):
    """An absolute, normalised path every backend writes as it is."""
    inputs.text(path, inputs.PATH_BYTES)
    if not path.startswith("/"):
        raise ValueError("must be an absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts) or path != "/" + "/".join(parts):
        raise ValueError("must be normalised: no '.', '..', '//' or trailing '/'")
    if _PATH_REFUSED.search(path):
        raise ValueError('must not contain ", \\ or % (share configurations give them meaning)')
    if path != path.strip() or any(p != p.strip() for p in parts):
        raise ValueError("no path component may start or end with white space")
    inputs.path_components(parts)
    return path


def _shown(value):
    return repr(value[:60] + ("..." if len(value) > 60 else ""))
