"""A share's definition as each server reads it. Values were checked against
service/shares/rules.py on the way in; nothing here escapes anything."""
import logging

from service.shares.files import header

log = logging.getLogger(__name__)

# exportfs option -> NFS-Ganesha CLIENT setting; options without one are kernel-only
GANESHA_SQUASH = {"no_root_squash": "No_Root_Squash", "all_squash": "All_Squash", "root_squash": "Root_Squash"}
GANESHA_IGNORES = frozenset({"sync", "async", "wdelay", "no_wdelay", "hide", "nohide", "crossmnt", "subtree_check",
                             "no_subtree_check", "insecure_locks", "secure_locks", "auth_nlm", "no_auth_nlm",
                             "no_all_squash", "acl", "no_acl", "mp", "pnfs", "no_pnfs", "security_label", "fsid"})


def kernel_export(definition):
    """One /etc/exports.d line: "PATH" host(opts) ..., hosts and their options without spaces."""
    clients = " ".join(f"{c['host']}({','.join(c['options'])})" if c["options"] else c["host"]
                       for c in definition["clients"])
    return header(definition) + f'"{definition["path"]}" {clients}\n'


def ganesha_export(definition):
    """One EXPORT block: nobody but the listed clients (Access_Type = None by default)."""
    lines = [header(definition).rstrip("\n"), "EXPORT {",
             f"    Export_Id = {definition['export_id']};",
             f'    Path = "{definition["path"]}";',
             f'    Pseudo = "/{definition["name"]}";',
             "    Access_Type = None;", "    Squash = Root_Squash;", "    SecType = sys;",
             "    Protocols = 4;", "    Transports = TCP;", "    FSAL { Name = VFS; }"]
    for client in definition["clients"]:
        lines.append("    CLIENT {")
        lines += [f"        {setting}" for setting in ganesha_client(client)]
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def ganesha_client(client):
    """The CLIENT settings of one exportfs-style client. Like exportfs: read-only unless rw."""
    options = dict(o.partition("=")[::2] for o in client["options"])
    settings = [f"Clients = {client['host']};", f"Access_Type = {'RW' if 'rw' in options else 'RO'};"]
    squash = next((GANESHA_SQUASH[o] for o in GANESHA_SQUASH if o in options), "Root_Squash")
    settings.append(f"Squash = {squash};")
    if "anonuid" in options:
        settings.append(f"Anonymous_Uid = {options['anonuid']};")
    if "anongid" in options:
        settings.append(f"Anonymous_Gid = {options['anongid']};")
    if "sec" in options:
        settings.append(f"SecType = {', '.join(options['sec'].split(':'))};")
    if "secure" in options or "insecure" in options:
        settings.append(f"PrivilegedPort = {'true' if 'secure' in options else 'false'};")
    ignored = sorted(GANESHA_IGNORES & set(options))
    if ignored:
        log.info("client %s: %s not used by NFS-Ganesha", client["host"], ", ".join(ignored))
    return settings


def samba_share(definition):
    """One [share] section; `comment` stays in the API (Samba substitutes % in it)."""
    yes_no = {True: "yes", False: "no"}
    lines = [header(definition).rstrip("\n"), f"[{definition['name']}]", f"    path = {definition['path']}"]
    for field in ("read_only", "browseable", "guest_ok", "inherit_permissions", "inherit_acls"):
        if definition.get(field) is not None:
            lines.append(f"    {field.replace('_', ' ')} = {yes_no[definition[field]]}")
    for field in ("valid_users", "write_list", "hosts_allow"):
        if definition.get(field):
            lines.append(f"    {field.replace('_', ' ')} = {' '.join(definition[field])}")
    for field in ("create_mask", "directory_mask"):
        if definition.get(field):
            lines.append(f"    {field.replace('_', ' ')} = {definition[field]}")
    return "\n".join(lines) + "\n\n"
