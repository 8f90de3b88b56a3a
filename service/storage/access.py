"""Who may use a space: the plan a job applies to its folders, and POSIX ACLs as Linux keeps them.

A plan (`Access`) holds numbers only — user and group ids, a mode, ACL entries with ids —
resolved from the space's fields by service/security.py when the job runs. tree.secure
applies it by descriptor. Nothing in this module touches a file.

Linux keeps a POSIX ACL in an extended attribute: `system.posix_acl_access` holds the ACL of
the file or folder itself, `system.posix_acl_default` (folders only) the entries that what is
created inside inherits. Both have the format of include/uapi/linux/posix_acl_xattr.h, all
little-endian:

    header   u32 a_version = 2
    entries  u16 e_tag, u16 e_perm, u32 e_id        (8 bytes each)

e_tag is one of USER_OBJ (the owner: user::), USER (user:ID:), GROUP_OBJ (the owning group:
group::), GROUP (group:ID:), MASK (mask::) and OTHER (other::); e_perm is r=4, w=2, x=1;
e_id is the uid or gid of USER and GROUP entries and UNDEFINED_ID for the others. The kernel
refuses (EINVAL) an ACL whose entries are not in tag order with ids ascending within USER and
GROUP, that names one id twice, or that has named entries and no MASK. Writing the access ACL
sets the mode's group bits to the mask (they are the mask while named entries exist), as
`setfacl` does; an access ACL of the three base entries alone is no ACL: the kernel keeps the
mode and drops the attribute.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, replace

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"

VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED_ID = 0xFFFFFFFF
READ, WRITE, EXECUTE = 4, 2, 1
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")

Named = tuple[tuple[int, int], ...]       # ((uid or gid, perms), ...)


def perms_text(perms: int) -> str:
    """4|2|1 as getfacl shows it: 5 -> 'r-x'."""
    return "".join(c if perms & bit else "-" for c, bit in (("r", READ), ("w", WRITE), ("x", EXECUTE)))


@dataclass(frozen=True)
class Acl:
    """One POSIX ACL. The base entries (owner, group, other) may be None until `complete`
    fills them in; `mask` None means the union of the group class (group::, named users and
    groups), as setfacl computes it."""
    owner: int | None = None
    group: int | None = None
    other: int | None = None
    users: Named = ()
    groups: Named = ()
    mask: int | None = None

    @classmethod
    def from_mode(cls, mode: int) -> "Acl":
        """The three base entries a mode stands for (what a file without an ACL has)."""
        return cls(owner=mode >> 6 & 7, group=mode >> 3 & 7, other=mode & 7)

    def complete(self, base: "Acl") -> "Acl":
        """This ACL with the base entries it leaves open taken from `base`."""
        return replace(self, owner=base.owner if self.owner is None else self.owner,
                       group=base.group if self.group is None else self.group,
                       other=base.other if self.other is None else self.other)

    @property
    def minimal(self) -> bool:
        """Only the base entries: what a plain mode says."""
        return not self.users and not self.groups and self.mask is None

    def effective_mask(self) -> int:
        if self.mask is not None:
            return self.mask
        union = self.group or 0
        for _, perms in self.users + self.groups:
            union |= perms
        return union

    def encode(self) -> bytes:
        """The extended attribute's value. Entries come out in the order the kernel demands."""
        if None in (self.owner, self.group, self.other):
            raise ValueError("an ACL needs its owner, group and other entries to be encoded")
        for kind, named in (("user", self.users), ("group", self.groups)):
            ids = [i for i, _ in named]
            if len(set(ids)) != len(ids):
                raise ValueError(f"an ACL names a {kind} id twice")
        entries = [(USER_OBJ, UNDEFINED_ID, self.owner)]
        entries += [(USER, uid, perms) for uid, perms in sorted(self.users)]
        entries.append((GROUP_OBJ, UNDEFINED_ID, self.group))
        entries += [(GROUP, gid, perms) for gid, perms in sorted(self.groups)]
        if not self.minimal:
            entries.append((MASK, UNDEFINED_ID, self.effective_mask()))
        entries.append((OTHER, UNDEFINED_ID, self.other))
        return _HEADER.pack(VERSION) + b"".join(_ENTRY.pack(tag, perms, ident) for tag, ident, perms in entries)

    @classmethod
    def decode(cls, raw: bytes) -> "Acl":
        """An ACL from an extended attribute's value (ValueError when it is not one)."""
        if len(raw) < _HEADER.size or (len(raw) - _HEADER.size) % _ENTRY.size:
            raise ValueError(f"not a POSIX ACL: {len(raw)} bytes")
        if _HEADER.unpack_from(raw)[0] != VERSION:
            raise ValueError(f"POSIX ACL version {_HEADER.unpack_from(raw)[0]}, not {VERSION}")
        found: dict = {"users": [], "groups": []}
        for offset in range(_HEADER.size, len(raw), _ENTRY.size):
            tag, perms, ident = _ENTRY.unpack_from(raw, offset)
            if tag in (USER, GROUP):
                found["users" if tag == USER else "groups"].append((ident, perms))
            elif tag in _BASE:
                found[_BASE[tag]] = perms
            else:
                raise ValueError(f"unknown POSIX ACL entry tag {tag:#x}")
        return cls(owner=found.get("owner"), group=found.get("group"), other=found.get("other"),
                   users=tuple(found["users"]), groups=tuple(found["groups"]), mask=found.get("mask"))


_BASE = {USER_OBJ: "owner", GROUP_OBJ: "group", MASK: "mask", OTHER: "other"}


@dataclass(frozen=True)
class Access:
    """What a space's folders get (see tree.secure for where each part goes).

    uid      owner of the space's root; None: left as it is
    gid      group of the root, of every folder below it and of the files that go along; None: left
    mode     mode of the root; its set-group-id bit is given to every folder below; None: left
    acl      named entries (and mask) of the root's access ACL, its base entries being the
             root's mode; None: no ACL is touched anywhere
    default  the default ACL of the root and every folder below, base entries it leaves open
             taken from the root's; None (with `acl` given): default ACLs are removed
    """
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None
    acl: Acl | None = None
    default: Acl | None = None
