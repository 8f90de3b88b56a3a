"""Who may use a space: the rules of its `owner`, `group`, `permissions` and `acl` fields.

One definition each, used twice: by the API, where a value that breaks a rule, or names a user
or group this server does not know, is a 422 naming the field; and by the jobs, which resolve
every name again when they act (`plan`): a user or group gone since the request fails the job
before anything is changed. What the plan does on disk: service/storage/tree.py, `secure`.

- owner, group: a user or group name, or a numeric id; either must exist on this server.
- permissions: the mode of the space's folder as 3 or 4 octal digits, stored as 4 ("770" is
  "0770"); default 2770 (set-group-id: what members make inside keeps the group). Refused:
  set-user-id (4000: no meaning on a folder) and write for others (a space is secured to its
  owner and group; others may read and enter at most). Sticky (1000: members remove only
  their own entries in the folder) is allowed.
- acl: POSIX ACL entries in getfacl's text form: `user:NAME:rwx`, `group:NAME:r-x`,
  `mask::rwx`, and default entries `default:user::rwx`, `default:user:NAME:rwx`,
  `default:group::rwx`, `default:group:NAME:rwx`, `default:mask::rwx`, `default:other::---`
  (`d:`, `u:`, `g:`, `m:`, `o:` as setfacl has them). Permissions are exactly three
  characters of r, w, x or -. The access entries user::, group:: and other:: come from
  `permissions`; a default ACL's base entries left out are copied from them (as setfacl does).
  No entry twice, no write for others, at most 64 entries. Stored in the long form.
"""
import grp
import pwd
import re
import stat

from service.storage.access import EXECUTE, READ, WRITE, Access, Acl, perms_text

DEFAULT_PERMISSIONS = "2770"
FIELDS = ("owner", "group", "permissions", "acl")
MAX_ACL_ENTRIES = 64
MAX_ID = (1 << 32) - 2          # (uid_t)-1 means "leave unchanged" to chown: never an id
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]{0,254}\$?")
_ID = re.compile(r"[0-9]{1,10}")
_MODE = re.compile(r"[0-7]{3,4}")
_PERMS = re.compile(r"[r-][w-][x-]")
_TAGS = {"user": "user", "u": "user", "group": "group", "g": "group", "mask": "mask", "m": "mask",
         "other": "other", "o": "other"}
_KINDS = {"user": (pwd.getpwnam, pwd.getpwuid, "pw_uid"), "group": (grp.getgrnam, grp.getgrgid, "gr_gid")}


def _shown(text, limit=40):
    return repr(text if len(text) <= limit else text[:limit] + "...")


# owner and group -----------------------------------------------------------------------------
def resolve(kind, text):
    """The id of user or group (`kind`) `text`, a name or a numeric id; ValueError when this
    server knows none such."""
    by_name, by_id, attribute = _KINDS[kind]
    if not isinstance(text, str):
        raise ValueError(f"must be a {kind} name or a numeric {kind} id")
    if _ID.fullmatch(text):
        number = int(text)
        if number > MAX_ID:
            raise ValueError(f"{kind} id {number} is out of range (0 to {MAX_ID})")
        try:
            by_id(number)
        except KeyError:
            raise ValueError(f"no {kind} with id {number} on this server") from None
        return number
    if not _NAME.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not a {kind} name (letters, digits, _ . @ -, not starting with a "
                         "digit or -) nor a numeric id")
    try:
        return getattr(by_name(text), attribute)
    except KeyError:
        raise ValueError(f"no {kind} {text!r} on this server") from None


def owner(value):
    """The `owner` field: a user that exists here (name or id), kept as given."""
    resolve("user", value)
    return value


def group(value):
    """The `group` field: a group that exists here (name or id), kept as given."""
    resolve("group", value)
    return value


# permissions ---------------------------------------------------------------------------------
def mode(value):
    """The mode `permissions` stands for; ValueError saying which rule it breaks."""
    if not isinstance(value, str) or not _MODE.fullmatch(value):
        raise ValueError('must be 3 or 4 octal digits, e.g. "2770" (set-group-id, rwx for the owner and the group, '
                         'nothing for others)')
    bits = int(value, 8)
    if bits & stat.S_ISUID:
        raise ValueError("set-user-id (4000) has no meaning on a folder: leave it out")
    if bits & stat.S_IWOTH:
        raise ValueError("others may not write: a space is secured to its owner and group (others may read and "
                         "enter at most, e.g. 2775)")
    return bits


def permissions(value):
    """The `permissions` field, as 4 octal digits."""
    return f"{mode(value):04o}"


# acl -----------------------------------------------------------------------------------------
class Entry:
    """One ACL entry: default or access, tag (user, group, mask, other), qualifier (a name or
    id, or '' for the base entries), permissions (r=4, w=2, x=1)."""

    def __init__(self, text):
        if not isinstance(text, str):
            raise ValueError("entries are strings such as \"group:render:rwx\"")
        parts = text.split(":")
        self.default = len(parts) == 4 and parts[0] in ("default", "d")
        if self.default:
            parts = parts[1:]
        if len(parts) != 3 or parts[0] not in _TAGS:
            raise ValueError(f"entry {_shown(text)}: write [default:]user|group|mask|other:[name]:rwx, "
                             "e.g. group:render:rwx")
        tag, self.qualifier, perms = parts
        self.tag = _TAGS[tag]
        if not _PERMS.fullmatch(perms):
            raise ValueError(f"entry {_shown(text)}: permissions are three characters, r w x or - in that order "
                             "(rwx, r-x, ---)")
        self.perms = (READ if perms[0] == "r" else 0) | (WRITE if perms[1] == "w" else 0) | (
            EXECUTE if perms[2] == "x" else 0)
        if self.qualifier and self.tag in ("mask", "other"):
            raise ValueError(f"entry {_shown(text)}: a {self.tag} entry names nobody ({self.tag}::{perms})")
        if not self.qualifier and not self.default and self.tag != "mask":
            raise ValueError(f"entry {_shown(text)}: the owner's, the group's and others' own entries come from "
                             "permissions; name a user or group, or give a default: entry")
        if self.tag == "other" and self.perms & WRITE:
            raise ValueError(f"entry {_shown(text)}: others may not write")

    @property
    def key(self):
        return self.default, self.tag, self.qualifier

    def __str__(self):
        return f"{'default:' if self.default else ''}{self.tag}:{self.qualifier}:{perms_text(self.perms)}"


def entries(value):
    """The entries of an `acl` value: a list of strings, or one comma-separated string."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list):
        raise ValueError('must be a list of ACL entries (or one comma-separated string), e.g. '
                         '["group:render:rwx", "default:group:render:rwx", "default:other::---"]')
    if len(value) > MAX_ACL_ENTRIES:
        raise ValueError(f"at most {MAX_ACL_ENTRIES} entries, got {len(value)}")
    found = [Entry(item) for item in value]
    seen = set()
    for entry in found:
        if entry.key in seen:
            raise ValueError(f"entry {str(entry)!r} is given twice")
        seen.add(entry.key)
    return found


def build(found):
    """(access Acl, default Acl or None) of parsed entries, every name resolved now; ValueError
    for a name this server does not know, or two entries that name the same id."""
    scopes = {False: {}, True: {}}          # access, default: {Acl field: value}
    named = {}                              # (default, tag, id): the entry that names it
    for entry in found:
        fields = scopes[entry.default]
        if not entry.qualifier:
            fields["owner" if entry.tag == "user" else entry.tag] = entry.perms
            continue
        try:
            ident = resolve(entry.tag, entry.qualifier)
        except ValueError as exc:
            raise ValueError(f"entry {str(entry)!r}: {exc}") from None
        first = named.setdefault((entry.default, entry.tag, ident), entry)
        if first is not entry:
            raise ValueError(f"entries {str(first)!r} and {str(entry)!r} name the same {entry.tag} (id {ident})")
        fields[entry.tag + "s"] = fields.get(entry.tag + "s", ()) + ((ident, entry.perms),)
    return Acl(**scopes[False]), (Acl(**scopes[True]) if any(e.default for e in found) else None)


def acl(value):
    """The `acl` field: its entries in the long form, each name known here."""
    found = entries(value)
    build(found)
    return [str(entry) for entry in found]


# the plan a job applies -------------------------------------------------------------------
def plan(owner=None, group=None, permissions=None, acl=None):
    """The `Access` a job applies for a space's owner, group, permissions and acl, every name
    resolved now; ValueError naming the field when a value no longer holds."""
    def checked(field, rule, value):
        if value is None:
            return None
        try:
            return rule(value)
        except ValueError as exc:
            raise ValueError(f"{field if isinstance(value, list) else f'{field} {value}'}: {exc}") from None
    uid = checked("owner", lambda v: resolve("user", v), owner)
    gid = checked("group", lambda v: resolve("group", v), group)
    bits = checked("permissions", mode, permissions)
    if acl is None:
        return Access(uid=uid, gid=gid, mode=bits)
    access, default = checked("acl", lambda v: build(entries(v)), acl)
    return Access(uid=uid, gid=gid, mode=bits, acl=access, default=default)
