#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_space
short_description: Create, resize and delete PixStor spaces
version_added: 0.1.0
description:
  - Makes sure a space (an independent fileset with a block quota, placed by a profile and reached through
    exposers) exists with the given size, or does not exist.
  - A space is identified by O(name) and O(profile). Spaces with the same name may exist under different
    profiles; then O(profile) is needed to say which one.
  - A space can be secured to a group of users (O(owner), O(group), O(permissions), O(acl)); the storage job
    applies them to the space's root and to the template content copied into it.
  - A new space can start from a snapshot of another space (O(source_snapshot)) instead of templates.
  - O(size) (a resize job), O(owner), O(group), O(permissions) and O(acl) (a job that applies them again on disk),
    O(snapshot_policies), O(comment) and O(extras) (no job) can change once the space exists. O(relativepath),
    O(exposers) and O(templates) are fixed at creation; asking for other values fails and says so, it never recreates
    the space.
  - Only the options given in the task are compared and changed; the others keep the value they have on the server
    (on creation, the server's defaults).
  - Lists are compared as sets, in any order, so a second run reports no change.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  name:
    description:
      - Name of the space. Letters, digits, V(-) and V(_) only.
    type: str
    required: true
  profile:
    description:
      - Profile that places the space's data, by name (for example V(mmfs1-sas1), the default profile of pool
        C(sas1) on filesystem C(mmfs1)), by id or by href (V(/profiles/<id>)).
      - Required to create a space; optional otherwise, unless several spaces share O(name).
    type: str
  relativepath:
    description:
      - Path of the space relative to its exposers (the filesystem mountpoint), for example V(projects/sleepy_snake).
      - Required to create a space. Leading and trailing slashes are ignored when comparing.
    type: str
  exposers:
    description:
      - Exposers that give access to the space, by name, id or href.
      - A name is the C(gpfsnative) exposer of that filesystem, for example V(mmfs1).
      - Required to create a space. Compared in any order.
    type: list
    elements: str
  templates:
    description:
      - Templates whose content is copied into the space when it is created, by name, id or href, applied in
        the order given.
      - Compared in any order once the space exists.
    type: list
    elements: str
  size:
    description:
      - Hard limit (block quota) of the space. The soft limit is set to 90% of it by the service.
      - Either a number of bytes (V(4294967296)) or a number with a unit.
      - Every unit is a power of 1024, as C(ansible.builtin.human_to_bytes) and GPFS C(mmsetquota) read them,
        with or without V(B) or V(i), in any case. V(4G), V(4GB), V(4Gi) and V(4GiB) are all 4294967296 bytes.
        Units are V(B), V(K), V(M), V(G), V(T) and V(P). A fraction is allowed with a unit when the result is a
        whole number of bytes (V(1.5T)).
      - A number without a unit is bytes. A number with a fraction and no unit (a YAML float such as V(1.5))
        is refused, as the unit was probably forgotten.
      - The server refuses a size below its minimum (C(storage.min_size), 1 MiB unless configured otherwise)
        and says which unit was probably meant.
      - Required to create a space. A different size on an existing space resizes it. Shrinking a space below
        its C(used) bytes (as the service last measured them) needs O(force=true).
    type: str
  owner:
    description:
      - User that owns the space's root folder, by name (V(alice)) or numeric id (V('1001')).
      - The server refuses (HTTP 422) a user it does not know, and checks again in the job.
      - Not set, the space is created with the server's default owner.
    type: str
    version_added: 0.3.0
  group:
    description:
      - Group the space is secured to, by name (V(render)) or numeric id (V('2001')). The space's root and the
        folders copied from its templates get this group, and with the setgid bit of O(permissions) new files and
        folders keep it.
      - The server refuses (HTTP 422) a group it does not know, and checks again in the job.
    type: str
    version_added: 0.3.0
  permissions:
    description:
      - Mode of the space's root folder, as a quoted string of 3 or 4 octal digits. The server's default is
        V('2770'), where owner and group may read, write and enter, others nothing, and the setgid bit (the leading
        V(2)) makes new files and folders take the space's group.
      - Compared as a mode, so V('770') and V('0770') are the same value; a 3-digit value has no setuid, setgid or
        sticky bit, so V('770') is not V('2770'). Give four digits to keep the setgid bit.
      - A number is refused, as YAML reads an unquoted V(0770) as 504.
    type: raw
    version_added: 0.3.0
  acl:
    description:
      - POSIX ACL entries of the space's root folder, in C(setfacl) syntax, for example V(group:render:rwx), and
        default entries that new files and folders inherit, V(default:group:render:rwx).
      - Compared as a set (an ACL is a set of entries), so the order does not matter. Entries are compared and sent
        in the long form the server keeps (as C(getfacl) writes them), so setfacl's short forms V(g:render:rwx) and
        V(d:g:render:rx) are the same as V(group:render:rwx) and V(default:group:render:r-x).
      - The owner's, the group's and others' own entries come from O(permissions); the server refuses them here.
      - V([]) removes every extended entry.
    type: list
    elements: str
    version_added: 0.3.0
  snapshot_policies:
    description:
      - Snapshot policies that apply to the space, by name, id or href (see M(pixstor.mgmt.pixstor_snapshot_policy)).
        The server's scheduler takes the space's snapshots on their schedules and prunes them by their retention.
      - Compared as a set, in any order. When given, the space ends up with exactly these policies; V([]) takes them
        all off (the snapshots they took are kept). A change needs no job.
    type: list
    elements: str
    version_added: 0.3.0
  source_snapshot:
    description:
      - Snapshot the new space starts from, instead of templates, by name, id or href. The space's content is the
        snapshot's (on btrfs a writable snapshot sharing its data, elsewhere a copy).
      - A name is looked up among the snapshots of O(source_space) when given, else among every snapshot, and must then
        name one only (policies give the snapshots of every space they apply to the same names).
      - The snapshot must be of a space on the filesystem where O(profile) places the new space.
      - Used only when the space is created, and not with O(templates). An existing space is not compared with it (the
        server forgets it once the snapshot is deleted), so a second run reports no change.
      - To make an existing space's content that of one of its own snapshots, see
        M(pixstor.mgmt.pixstor_space_revert).
    type: str
    version_added: 0.3.0
  source_space:
    description:
      - The space whose snapshot O(source_snapshot) names, by name, id or href.
    type: str
    version_added: 0.3.0
  force:
    description:
      - With O(state=absent), delete the space even when it still holds data or has snapshots.
        Without it, the API refuses (HTTP 409) to delete a space holding data, and the data stays.
      - With O(state=present), shrink the space even below the bytes it uses (as last measured).
        Without it, such a resize fails and nothing is changed.
    type: bool
    default: false
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.state
  - pixstor.mgmt.pixstor.notes
  - pixstor.mgmt.pixstor.attributes
seealso:
  - module: pixstor.mgmt.pixstor_profile
  - module: pixstor.mgmt.pixstor_template
  - module: pixstor.mgmt.pixstor_snapshot
  - module: pixstor.mgmt.pixstor_snapshot_policy
  - module: pixstor.mgmt.pixstor_space_revert
  - module: pixstor.mgmt.pixstor_info
"""

EXAMPLES = r"""
- name: Create a 4 GiB templated space on pool sas1 of mmfs1
  pixstor.mgmt.pixstor_space:
    url: https://pixstor.example.com
    username: admin
    password: "{{ pixstor_password }}"
    name: sleepy-snake
    profile: mmfs1-sas1
    exposers: [mmfs1]
    relativepath: projects/sleepy_snake
    templates: [project_template]
    size: 4GiB

- name: Secure a space to the render group, new files keeping the group, with a note for the producers
  pixstor.mgmt.pixstor_space:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake
    profile: mmfs1-sas1
    exposers: [mmfs1]
    relativepath: projects/sleepy_snake
    size: 4GiB
    owner: alice
    group: render
    permissions: "2770"
    acl:
      - group:render-leads:rwx
      - default:group:render-leads:rwx
    comment: Sleepy Snake, season 2
    extras:
      project_code: SNK
      cost_centre: 4711

- name: Hourly and nightly snapshots of the space, by their policies
  pixstor.mgmt.pixstor_space:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake
    profile: mmfs1-sas1
    snapshot_policies: [hourly, nightly]

- name: A copy of the project as it was before the delivery, to compare with
  pixstor.mgmt.pixstor_space:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake-delivered
    profile: mmfs1-sas1
    exposers: [mmfs1]
    relativepath: projects/sleepy_snake_delivered
    size: 4GiB
    source_snapshot: before-delivery
    source_space: sleepy-snake

- name: Set the connection once for every pixstor.mgmt task
  module_defaults:
    group/pixstor.mgmt.pixstor:
      url: https://pixstor.example.com
      token: "{{ pixstor_token }}"
  block:
    - name: Grow the space to 8 GiB (a resize job)
      pixstor.mgmt.pixstor_space:
        name: sleepy-snake
        profile: mmfs1-sas1
        size: 8GiB

    - name: Delete the space and the data in it
      pixstor.mgmt.pixstor_space:
        name: sleepy-snake
        profile: mmfs1-sas1
        state: absent
        force: true
"""

RETURN = r"""
space:
  description:
    - The space as the API reports it after the task, data fields by name.
    - Empty after O(state=absent). In check mode, the predicted fields of a space that would be created.
  returned: always
  type: dict
  contains:
    id:
      description: Unique identifier of the space.
      type: str
      sample: de95cf28-fdf9-5455-b1d9-831cf8a1869b
    href:
      description: Path of the space in the API.
      type: str
      sample: /spaces/de95cf28-fdf9-5455-b1d9-831cf8a1869b
    name:
      description: Name of the space.
      type: str
      sample: sleepy-snake
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    status_message:
      description: Why the space has its status, mostly set when V(ERRORED).
      type: str
    size:
      description: Hard limit in bytes.
      type: int
      sample: 4294967296
    used:
      description: Bytes used, as last measured by the service.
      type: int
      sample: 109
    fileset:
      description: Fileset holding the space (C({pool}-{name})).
      type: str
      sample: sas1-sleepy-snake
    path:
      description: Path of the space on its filesystem.
      type: str
      sample: /mmfs1/projects/sleepy_snake
    relativepath:
      description: Path relative to the exposers.
      type: str
      sample: projects/sleepy_snake
    profile:
      description: Href of the profile.
      type: str
      sample: /profiles/8f01ab22-cc0b-2056-ff8c-e1d829dc806c
    exposers:
      description: Hrefs of the exposers.
      type: list
      elements: str
    templates:
      description: Hrefs of the templates.
      type: list
      elements: str
    owner:
      description: User owning the space's root folder.
      type: str
      sample: alice
      version_added: 0.3.0
    group:
      description: Group the space is secured to.
      type: str
      sample: render
      version_added: 0.3.0
    permissions:
      description: Mode of the space's root folder (octal).
      type: str
      sample: "2770"
      version_added: 0.3.0
    acl:
      description: POSIX ACL entries of the space's root folder.
      type: list
      elements: str
      sample: ["group:render-leads:rwx", "default:group:render-leads:rwx"]
      version_added: 0.3.0
    snapshot_policies:
      description: Hrefs of the snapshot policies that apply to the space.
      type: list
      elements: str
      version_added: 0.3.0
    source_snapshot:
      description: Href of the snapshot the space started from, or null (none, or deleted since).
      type: str
      version_added: 0.3.0
    comment:
      description: Free text, or null.
      type: str
      version_added: 0.3.0
    extras:
      description: Your own keys and values, or null.
      type: dict
      version_added: 0.3.0
    links:
      description: Links of the item by name, for example C(Jobs).
      type: dict
actions:
  description:
    - What the task did (or would do in check mode) - V(create), V(resize) (only O(size) changed), V(update) (other
      fields changed, with or without O(size)) or V(delete).
  returned: always
  type: list
  elements: str
  sample: [create]
job:
  description:
    - The storage job of the last write, when there was one.
    - Null after a change of O(snapshot_policies), O(comment) or O(extras) alone, which needs no job.
  returned: always
  type: dict
  contains:
    href:
      description: Path of the job in the API.
      type: str
      sample: /jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8
    status:
      description: Final status (V(COMPLETED)), or null when O(wait=false).
      type: str
      sample: COMPLETED
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED"}
"""

import re

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import (
    ItemManager, NotFound, as_href, check_octal_mode, describe_size, desired_notes, format_size, norm_path,
    notes_argument_spec, observed_notes, octal_mode, parse_size, pixstor_module, ref_list, resolve_or_assume,
    run_module, split_list,
)

CREATE_NEEDS = ("profile", "relativepath", "exposers", "size")
SECURITY = ("owner", "group", "permissions", "acl")
MUTABLE = ("size", "snapshot_policies", "comment", "extras") + SECURITY
ACL_TAGS = {"u": "user", "g": "group", "m": "mask", "o": "other"}
ACL_PERMS_RE = re.compile(r"^[rwx-]{1,3}$")


def acl_entry(entry):
    """One ACL entry as setfacl and getfacl agree on it: tags spelt out, permissions as rwx with
    dashes ('d:g:render:rx' is 'default:group:render:r-x'); what is not understood is kept."""
    parts = [part.strip() for part in str(entry).strip().split(":")]
    prefix = []
    if parts and parts[0].lower() in ("d", "default") and len(parts) > 3:
        prefix, parts = ["default"], parts[1:]
    if len(parts) != 3:
        return ":".join(prefix + parts)
    tag, qualifier, perms = parts
    tag = ACL_TAGS.get(tag.lower(), tag.lower())
    if ACL_PERMS_RE.match(perms):
        perms = "".join(bit if bit in perms else "-" for bit in "rwx")
    return ":".join(prefix + [tag, qualifier, perms])


def acl_set(entries):
    return sorted(set(acl_entry(entry) for entry in split_list(entries)))


def observe(item):
    size = item.get("size")
    seen = dict(
        name=item.get("name"),
        profile=as_href(item.get("profile"), "profiles"),
        relativepath=norm_path(item.get("relativepath")),
        exposers=ref_list(item.get("exposers"), "exposers"),
        templates=ref_list(item.get("templates"), "templates"),
        size=int(size) if size is not None else None,
        owner=str(item["owner"]) if item.get("owner") is not None else None,
        group=str(item["group"]) if item.get("group") is not None else None,
        permissions=octal_mode(item.get("permissions")) or None,
        acl=acl_set(item.get("acl")),
        snapshot_policies=ref_list(item.get("snapshot_policies"), "snapshotpolicies"),
    )
    seen.update(observed_notes(item))
    return seen


def update_action(changes):
    return "resize" if list(changes) == ["size"] else "update"


def describe(before, changes):
    """'from 4GiB to 8GiB' for a resize; '(comment, group, size from 4GiB to 8GiB)' otherwise."""
    size = "from %s to %s" % (format_size(before["size"]), format_size(changes["size"])) if "size" in changes else None
    if list(changes) == ["size"]:
        return size
    return "(%s)" % ", ".join(key + (" " + size if key == "size" else "") for key in sorted(changes))


def confirmed(current, **refs):
    """Does the space found name the references resolved (some from the reference cache)?
    `refs`: field -> hrefs resolved, None when the task does not give them."""
    if current is None:
        return False
    seen = observe(current)
    return all(hrefs is None or sorted(set(hrefs)) == seen[field] for field, hrefs in refs.items())


def resolve_all(module, client, collection, what, names, remembered=False):
    """Hrefs in the given order; in check mode an item still to be created is a placeholder."""
    return [resolve_or_assume(module, client, collection, ref, what, remembered=remembered) for ref in names]


def resolve_source(module, client):
    """Href of the snapshot a new space starts from (source_snapshot, within source_space when given)."""
    params = module.params
    where = None
    if params["source_space"]:
        where = dict(space=resolve_or_assume(module, client, "spaces", params["source_space"], "source_space"))
        if where["space"].endswith(")"):
            return "/snapshots/(%s)" % params["source_snapshot"]    # check mode: its space is still to be created
    return resolve_or_assume(module, client, "snapshots", params["source_snapshot"], "source_snapshot", where=where)


def manage(module, client):
    params = module.params
    name = params["name"]
    label = "space %r" % name
    try:
        size = parse_size(params["size"]) if params["size"] is not None else None
    except ValueError as exc:
        module.fail_json(msg="%s: %s" % (label, exc))
    check_octal_mode(module, label, "permissions", params["permissions"], "2770")

    if params["source_snapshot"] and params["templates"]:
        module.fail_json(msg="%s: a space starts from a snapshot or from templates, not both: give source_snapshot or "
                             "templates" % label)
    manager = ItemManager(module, client, "spaces", "space", label, observe, mutable=MUTABLE,
                          update_action=update_action, describe=describe,
                          references=("profile", "exposers", "templates", "snapshot_policies", "source_snapshot"))
    # References by name come from the reference cache first (module_utils: resolve remembered=True),
    # confirmed by the space the server shows: a no-op task is one request. Anything not confirmed
    # (no such space, other references) is resolved again from the server before it counts.
    for remembered in (True, False):
        try:
            profile = client.resolve("profiles", params["profile"], "profile", remembered=remembered) \
                if params["profile"] else None
        except NotFound:
            if params["state"] == "absent":
                return manager.absent(None)   # no such profile, so no such space either
            raise
        where = dict(name=name, profile=profile) if profile else dict(name=name)
        manager.lookup = lambda where=where, profile=profile: client.find_one(
            "spaces", where, label + ("" if profile else " (set profile to choose)"))
        current = manager.lookup()
        if params["state"] == "absent":
            if current is None and client.used_remembered:
                client.forget_remembered()
                continue
            return manager.absent(current, dict(force=params["force"]))
        exposers = [client.resolve("exposers", ref, "exposer", where=None if "/" in ref else {"type": "gpfsnative"},
                                   remembered=remembered)
                    for ref in params["exposers"]] if params["exposers"] is not None else None
        templates = resolve_all(module, client, "templates", "template", params["templates"], remembered) \
            if params["templates"] is not None else None
        policies = resolve_all(module, client, "snapshotpolicies", "snapshot policy", params["snapshot_policies"],
                               remembered) if params["snapshot_policies"] is not None else None
        if not client.used_remembered or confirmed(
                current, exposers=exposers, templates=templates, snapshot_policies=policies):
            break
        client.forget_remembered()
    desired = dict(
        name=name,
        profile=profile,
        relativepath=norm_path(params["relativepath"]),
        exposers=sorted(set(exposers)) if exposers is not None else None,
        templates=sorted(set(templates)) if templates is not None else None,
        size=size,
        owner=params["owner"],
        group=params["group"],
        permissions=octal_mode(params["permissions"]) if params["permissions"] is not None else None,
        acl=acl_set(params["acl"]) if params["acl"] is not None else None,
        snapshot_policies=sorted(set(policies)) if policies is not None else None,
    )
    desired.update(desired_notes(params))
    # What the API receives: the ACL in the task's order, in the long form, without repeats; the mode in four
    # digits; the policies in the task's order.
    sent = dict(acl=list(dict.fromkeys(acl_entry(entry) for entry in split_list(params["acl"])))
                if params["acl"] is not None else None,
                snapshot_policies=list(dict.fromkeys(policies)) if policies is not None else None)
    create_body = None
    used = (current or {}).get("used")
    if size is not None and isinstance(used, int) and size < used and size != observe(current)["size"]:
        if not params["force"]:
            module.fail_json(msg="%s uses %s, as last measured: a size of %s is below that; nothing was changed. "
                                 "Set force: true to shrink it anyway." % (
                                     label, describe_size(used), describe_size(size)), space=current)
        manager.update_params = dict(force=True)
    if current is None:
        missing = [key for key in CREATE_NEEDS if params[key] in (None, [])]
        if missing:
            module.fail_json(msg="%s does not exist; creating it needs %s (missing: %s)"
                                 % (label, ", ".join(CREATE_NEEDS), ", ".join(missing)))
        create_body = dict(name=name, relativepath=params["relativepath"], exposers=exposers,
                           profile=profile, templates=templates or [], size=size)
        create_body.update((key, sent.get(key, desired[key])) for key in MUTABLE[1:] if desired[key] is not None)
        if params["source_snapshot"]:
            desired["source_snapshot"] = create_body["source_snapshot"] = resolve_source(module, client)
    return manager.present(current, desired, create_body, sent)


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            profile=dict(type="str"),
            relativepath=dict(type="str"),
            exposers=dict(type="list", elements="str"),
            templates=dict(type="list", elements="str"),
            size=dict(type="str"),
            owner=dict(type="str"),
            group=dict(type="str"),
            permissions=dict(type="raw"),
            acl=dict(type="list", elements="str"),
            snapshot_policies=dict(type="list", elements="str"),
            source_snapshot=dict(type="str"),
            source_space=dict(type="str"),
            force=dict(type="bool", default=False),
            **notes_argument_spec()
        ),
        required_by=dict(source_space="source_snapshot"),
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
