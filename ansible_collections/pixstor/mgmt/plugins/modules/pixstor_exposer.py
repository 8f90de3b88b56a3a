#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_exposer
short_description: Create, change and delete PixStor NFS exports and SMB shares
version_added: 0.3.0
description:
  - Makes sure an exposer of type V(nfs) (an NFS export) or V(cifs) (an SMB share) of a directory exists with the
    given access settings, or does not exist.
  - An exposer is identified by O(name) and O(type). O(name), O(type) and O(path) are fixed once it exists; asking
    for another O(path) fails and says so, it never recreates the exposer.
  - Only the options given in the task are compared and changed; the others keep the value they have on the server
    (on creation, the server's defaults). A change of access settings is a job that rewrites the export or share
    and reloads the NFS or SMB server; a change of O(comment) alone is not.
  - O(clients) are compared as a set of hosts, each with a set of options, and O(valid_users), O(write_list) and
    O(hosts_allow) as sets, so a second run with the entries in another order reports no change.
  - The V(gpfsnative) exposers (one per filesystem) are discovered by the server and cannot be managed here; use
    M(pixstor.mgmt.pixstor_info) to list them.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  name:
    description:
      - Name of the exposer. Letters, digits, V(-) and V(_) only.
      - For V(cifs) it is the SMB share name clients connect to; it is unique among SMB shares regardless of case,
        and the names Samba reserves (V(global), V(homes), V(printers), V(print$), V(ipc$)) are refused.
    type: str
    required: true
  type:
    description:
      - V(nfs) for an NFS export, V(cifs) for an SMB share.
    type: str
    choices: [nfs, cifs]
    required: true
  path:
    description:
      - Absolute path of the directory to export or share, for example the C(path) a space reports
        (V(/mmfs1/projects/sleepy_snake)). It must exist, inside the mountpoint of a V(gpfsnative) exposer.
      - Required to create an exposer; fixed once it exists. Trailing and double slashes and V(.) parts are left
        out, when sending and when comparing.
      - The server exports a directory over NFS once only, and refuses (HTTP 409) a second V(nfs) exposer of the
        same path; change the O(clients) of the first instead.
      - In check mode, an exposer that would be created without O(path) is assumed to get it from an earlier task
        (the space it shares, still to be created), with a warning.
    type: str
  comment:
    description:
      - Free text. For V(cifs) it is also the share's C(comment), shown by SMB clients.
      - A change of the comment alone answers at once, without a job.
      - V('') removes the comment.
    type: str
  clients:
    description:
      - Who may mount an V(nfs) exposer, and how. Required to create one, and never empty.
      - Compared as a set, each entry's O(clients[].options) as a set too. Each host may be listed once.
      - Not used by V(cifs) exposers.
    type: list
    elements: dict
    suboptions:
      host:
        description:
          - A host name, an IPv4 or IPv6 address, a network in CIDR notation (V(10.0.0.0/24)), a netgroup
            (V(@render)), a wildcard name (V(*.example.com)) or V(*) for everyone.
          - The server keeps addresses and networks in their canonical form (V(10.0.0.7/24) becomes V(10.0.0.0/24)),
            and they are compared so.
        type: str
        required: true
      options:
        description:
          - Export options for this host, for example V([rw, sync, root_squash]). A comma-separated string is
            split.
          - Known to the server are V(rw) V(ro) V(sync) V(async) V(root_squash) V(no_root_squash) V(all_squash)
            V(no_all_squash) V(secure) V(insecure) V(wdelay) V(no_wdelay) V(subtree_check) V(no_subtree_check)
            V(hide) V(nohide) V(crossmnt) V(no_acl) V(acl), V(anonuid=N), V(anongid=N), V(sec=sys:krb5:krb5i:krb5p)
            and V(fsid=N) (or V(fsid=root), V(fsid=uuid)); it refuses others.
          - Empty means the NFS server's defaults.
        type: list
        elements: str
        default: []
  read_only:
    description:
      - V(cifs) only. Whether the share is read-only (C(read only)), except for the users of O(write_list).
        V(false) when created without it.
    type: bool
  browseable:
    description:
      - V(cifs) only. Whether the share is listed to SMB clients (C(browseable)). V(true) when created without it.
    type: bool
  guest_ok:
    description:
      - V(cifs) only. Whether guests may connect without a password (C(guest ok)). V(false) when created without it.
    type: bool
  valid_users:
    description:
      - V(cifs) only. The users (V(alice)) and groups (V(@staff)) allowed to connect (C(valid users)).
        Empty allows everyone the server authenticates. Compared as a set.
    type: list
    elements: str
  write_list:
    description:
      - V(cifs) only. Users and groups that may write even when O(read_only=true) (C(write list)). Compared as a set.
    type: list
    elements: str
  hosts_allow:
    description:
      - V(cifs) only. Addresses, networks (V(10.0.0.0/24)) and host names allowed to connect (C(hosts allow)).
        Empty allows every host. Compared as a set, addresses and networks in their canonical form.
    type: list
    elements: str
  create_mask:
    description:
      - V(cifs) only. Mode bits new files may get (C(create mask)), as a quoted string of 3 or 4 octal digits
        such as V('0664'). A number is refused, as YAML reads an unquoted V(0664) as 436.
      - V('') removes the setting, so Samba's default applies.
    type: raw
  directory_mask:
    description:
      - V(cifs) only. Mode bits new directories may get (C(directory mask)), as a quoted string of 3 or 4 octal
        digits such as V('2775').
      - V('') removes the setting, so Samba's default applies.
    type: raw
  inherit_permissions:
    description:
      - V(cifs) only. Whether new files and directories take their permissions from their parent directory
        (C(inherit permissions)). V(false) when created without it.
    type: bool
  inherit_acls:
    description:
      - V(cifs) only. Whether new files and directories inherit the parent directory's ACLs (C(inherit acls)).
        V(false) when created without it.
    type: bool
  force:
    description:
      - With O(state=absent), delete the exposer even when spaces use it (spaces that list it in their
        C(exposers), or a space whose path holds the exposer's path). Without it, the API refuses (HTTP 409) and
        names those spaces. The spaces and their data stay either way; only the export or share goes.
    type: bool
    default: false
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.state
  - pixstor.mgmt.pixstor.attributes
notes:
  - The server writes one file per exposer (C(pixmanaged.<id>.exports) for the kernel NFS server,
    C(pixmanaged.<id>.conf) for NFS-Ganesha and Samba) and reloads the NFS or SMB server; where, and which servers,
    is the server's configuration (its C([shares]) section).
seealso:
  - module: pixstor.mgmt.pixstor_space
  - module: pixstor.mgmt.pixstor_info
"""

EXAMPLES = r"""
- name: Export a space over NFS to the render farm, read-write, and read-only to everyone else on the LAN
  pixstor.mgmt.pixstor_exposer:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake
    type: nfs
    path: /mmfs1/projects/sleepy_snake
    comment: Sleepy Snake, render farm
    clients:
      - host: 10.0.0.0/24
        options: [rw, sync, root_squash]
      - host: 192.168.0.0/16
        options: [ro, sync]

- name: Share the same space over SMB to the project's group
  pixstor.mgmt.pixstor_exposer:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake-smb
    type: cifs
    path: /mmfs1/projects/sleepy_snake
    valid_users: ["@sleepy-snake"]
    write_list: ["@sleepy-snake-leads"]
    read_only: true
    create_mask: "0664"
    directory_mask: "2775"

- name: Share a space created in the same play, at the path it reports
  block:
    - name: Create the space
      pixstor.mgmt.pixstor_space:
        name: quiet-quokka
        profile: mmfs1-sata1
        exposers: [mmfs1]
        relativepath: projects/quiet_quokka
        size: 500M
      register: quokka

    - name: Export it
      pixstor.mgmt.pixstor_exposer:
        name: quiet-quokka
        type: nfs
        path: "{{ quokka.space.path }}"
        clients:
          - host: "*.render.example.com"
            options: [rw, sync]

- name: Stop exporting it, although the space still uses the export
  pixstor.mgmt.pixstor_exposer:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake
    type: nfs
    state: absent
    force: true
"""

RETURN = r"""
exposer:
  description:
    - The exposer as the API reports it after the task, data fields by name.
    - Empty after O(state=absent). In check mode, the predicted fields of an exposer that would be created.
  returned: always
  type: dict
  contains:
    id:
      description: Unique identifier of the exposer.
      type: str
      sample: 5b1c7c43-2d0e-4f4c-9a55-0c1e3e1f8a2d
    href:
      description: Path of the exposer in the API.
      type: str
      sample: /exposers/5b1c7c43-2d0e-4f4c-9a55-0c1e3e1f8a2d
    name:
      description: Name of the exposer (for V(cifs), the SMB share name).
      type: str
      sample: sleepy-snake
    type:
      description: V(nfs) or V(cifs).
      type: str
      sample: nfs
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    status_message:
      description: Why the exposer has its status, mostly set when V(ERRORED).
      type: str
    path:
      description: The exported or shared directory.
      type: str
      sample: /mmfs1/projects/sleepy_snake
    comment:
      description: Free text.
      type: str
    clients:
      description: V(nfs) only (null for V(cifs)). Hosts and their options, as the server keeps them.
      type: list
      elements: dict
      sample: [{"host": "10.0.0.0/24", "options": ["rw", "sync", "root_squash"]}]
    export_id:
      description: V(nfs) only. The export's number (NFS-Ganesha C(Export_Id)), stable for the exposer.
      type: int
      sample: 1
    read_only:
      description: V(cifs) only (null for V(nfs)).
      type: bool
    browseable:
      description: V(cifs) only.
      type: bool
    guest_ok:
      description: V(cifs) only.
      type: bool
    valid_users:
      description: V(cifs) only.
      type: list
      elements: str
      sample: ["@sleepy-snake"]
    write_list:
      description: V(cifs) only.
      type: list
      elements: str
    hosts_allow:
      description: V(cifs) only.
      type: list
      elements: str
    create_mask:
      description: V(cifs) only. Octal string, or null for Samba's default.
      type: str
      sample: "0664"
    directory_mask:
      description: V(cifs) only. Octal string, or null for Samba's default.
      type: str
      sample: "2775"
    inherit_permissions:
      description: V(cifs) only.
      type: bool
    inherit_acls:
      description: V(cifs) only.
      type: bool
    links:
      description: Links of the item by name, for example C(Jobs).
      type: dict
actions:
  description: What the task did (or would do in check mode) - V(create), V(update) or V(delete).
  returned: always
  type: list
  elements: str
  sample: [update]
job:
  description:
    - The job of the last write, when there was one (C(href), and C(status) once waited for).
    - Null after a change of O(comment) alone, which needs no job.
  returned: always
  type: dict
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED"}
"""

import ipaddress

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import (
    ItemManager, check_octal_mode, octal_mode, pixstor_module, run_module, split_list, str_set,
)

CIFS_BOOLS = ("read_only", "browseable", "guest_ok", "inherit_permissions", "inherit_acls")
CIFS_USERS = ("valid_users", "write_list")
CIFS_LISTS = CIFS_USERS + ("hosts_allow",)
CIFS_MASKS = ("create_mask", "directory_mask")
CIFS_FIELDS = CIFS_BOOLS + CIFS_LISTS + CIFS_MASKS
NFS_FIELDS = ("clients",)
MUTABLE = ("comment",) + NFS_FIELDS + CIFS_FIELDS


def abs_path(path):
    """An absolute path without trailing or double slashes and '.' parts, as the API wants it
    ('..' stays, for the API to refuse: it is not resolved behind the user's back)."""
    if path in (None, "") or not str(path).startswith("/"):
        return path
    return "/" + "/".join(part for part in str(path).split("/") if part not in ("", "."))


def host_key(host):
    """A host as the server keeps it: addresses and networks in their canonical form
    (10.0.0.7/24 is 10.0.0.0/24, 2001:DB8::1 is 2001:db8::1), names as given."""
    host = str(host or "").strip()
    try:
        return str(ipaddress.ip_network(host, strict=False)) if "/" in host else str(ipaddress.ip_address(host))
    except ValueError:
        return host


def host_set(hosts):
    return sorted(set(host_key(host) for host in split_list(hosts)))


def client_set(clients):
    """Clients as a sorted list of unique {host, options} with sorted, unique options: one
    shape for any order of the entries and of each entry's options."""
    found = set()
    for client in clients or []:
        found.add((host_key(client.get("host")), tuple(str_set(client.get("options")))))
    return [dict(host=host, options=list(options)) for host, options in sorted(found)]


def client_list(clients):
    """Clients as sent: the task's order (the first match wins in an exports line), without repeats."""
    sent = []
    for client in clients:
        entry = dict(host=client["host"].strip(), options=list(dict.fromkeys(split_list(client["options"]))))
        if entry not in sent:
            sent.append(entry)
    return sent


def observe(item):
    seen = dict(name=item.get("name"), type=item.get("type"), path=abs_path(item.get("path")),
                comment=item.get("comment") or "")
    if item.get("type") == "nfs":
        seen["clients"] = client_set(item.get("clients"))
    elif item.get("type") == "cifs":
        seen.update((key, item.get(key)) for key in CIFS_BOOLS)
        seen.update((key, str_set(item.get(key))) for key in CIFS_USERS)
        seen["hosts_allow"] = host_set(item.get("hosts_allow"))
        seen.update((key, octal_mode(item.get(key))) for key in CIFS_MASKS)
    return seen


def check_params(module, label):
    """Fail, before any request, on what the API would refuse: the other type's fields, an empty
    client list, a path that is not absolute, a mask that is not octal."""
    params = module.params
    if params["state"] == "absent":
        return
    other, for_type = (CIFS_FIELDS, "cifs") if params["type"] == "nfs" else (NFS_FIELDS, "nfs")
    given = [key for key in other if params[key] is not None]
    if given:
        module.fail_json(msg="%s: %s %s only for %s exposers; remove %s from the task" % (
            label, ", ".join(given), "is" if len(given) == 1 else "are", for_type, "it" if len(given) == 1 else "them"))
    if params["clients"] is not None and not client_list(params["clients"]):
        module.fail_json(msg="%s: clients is empty; an NFS export needs at least one host (use state: absent to "
                             "remove it)" % label)
    if params["path"] is not None and not params["path"].startswith("/"):
        module.fail_json(msg="%s: path must be absolute, got %r" % (label, params["path"]))
    for key in CIFS_MASKS:
        check_octal_mode(module, label, key, params[key], "0664", blank="Samba's default")


def manage(module, client):
    params = module.params
    name, kind = params["name"], params["type"]
    label = "%s exposer %r" % (kind, name)
    check_params(module, label)
    manager = ItemManager(module, client, "exposers", "exposer", label, observe, mutable=MUTABLE,
                          lookup=lambda: client.find_one("exposers", dict(name=name, type=kind), label),
                          describe=lambda before, changes: "(%s)" % ", ".join(sorted(changes)))
    current = manager.lookup()
    if params["state"] == "absent":
        return manager.absent(current, dict(force=params["force"]))

    # `desired` is compared with observe(current); `sent` is what the API receives.
    desired = dict(name=name, type=kind, path=abs_path(params["path"]), comment=params["comment"])
    sent = dict(comment=params["comment"])
    if params["clients"] is not None:
        sent["clients"] = client_list(params["clients"])
        desired["clients"] = client_set(sent["clients"])
    for key in CIFS_BOOLS:
        desired[key] = sent[key] = params[key]
    for key in CIFS_LISTS:
        if params[key] is not None:
            sent[key] = list(dict.fromkeys(split_list(params[key])))
            desired[key] = host_set(sent[key]) if key == "hosts_allow" else str_set(sent[key])
    for key in CIFS_MASKS:
        if params[key] is not None:
            desired[key] = octal_mode(params[key])
            sent[key] = desired[key] or None

    create_body = None
    if current is None:
        needs = ("path", "clients") if kind == "nfs" else ("path",)
        missing = [key for key in needs if params[key] is None]
        if missing == ["path"] and module.check_mode:
            module.warn("%s does not exist and path is not set; check mode assumes an earlier task (the creation "
                        "of the space it shares) would give it" % label)
        elif missing:
            module.fail_json(msg="%s does not exist; creating it needs %s (missing: %s)"
                                 % (label, ", ".join(needs), ", ".join(missing)))
        create_body = dict(name=name, type=kind, path=desired["path"])
        create_body.update((key, value) for key, value in sent.items() if value is not None)
    return manager.present(current, desired, create_body, sent)


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            type=dict(type="str", required=True, choices=["nfs", "cifs"]),
            path=dict(type="str"),
            comment=dict(type="str"),
            clients=dict(type="list", elements="dict", options=dict(
                host=dict(type="str", required=True),
                options=dict(type="list", elements="str", default=[]),
            )),
            read_only=dict(type="bool"),
            browseable=dict(type="bool"),
            guest_ok=dict(type="bool"),
            valid_users=dict(type="list", elements="str"),
            write_list=dict(type="list", elements="str"),
            hosts_allow=dict(type="list", elements="str"),
            create_mask=dict(type="raw"),
            directory_mask=dict(type="raw"),
            inherit_permissions=dict(type="bool"),
            inherit_acls=dict(type="bool"),
            force=dict(type="bool", default=False),
        ),
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
