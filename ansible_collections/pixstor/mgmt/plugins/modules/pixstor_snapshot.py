#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_snapshot
short_description: Take and delete snapshots of PixStor spaces and filesystems
version_added: 0.1.0
description:
  - Makes sure a snapshot of a space (V(gpfsspacesnapshot), the default) or of a whole filesystem
    (V(gpfsfilesystemsnapshot)) exists, or does not exist.
  - A snapshot is identified by O(name) and its O(space) (or O(exposer) for a filesystem snapshot). An existing
    snapshot is never taken again, so a second run reports no change.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  name:
    description:
      - Name of the snapshot. Letters, digits, V(-) and V(_) only.
    type: str
    required: true
  type:
    description:
      - V(gpfsspacesnapshot) snapshots the fileset of O(space); V(gpfsfilesystemsnapshot) the filesystem of O(exposer).
    type: str
    choices: [gpfsspacesnapshot, gpfsfilesystemsnapshot]
    default: gpfsspacesnapshot
  space:
    description:
      - The space to snapshot, by name, id or href. Required when O(type=gpfsspacesnapshot).
    type: str
  profile:
    description:
      - Profile of O(space), by name, id or href, when several spaces share its name.
    type: str
  exposer:
    description:
      - The filesystem to snapshot, as its C(gpfsnative) exposer's name (the filesystem name), id or href.
      - Required when O(type=gpfsfilesystemsnapshot).
    type: str
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.state
  - pixstor.mgmt.pixstor.attributes
seealso:
  - module: pixstor.mgmt.pixstor_space
"""

EXAMPLES = r"""
- name: Snapshot a space before a risky change
  pixstor.mgmt.pixstor_snapshot:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: snake-snap
    space: sleepy-snake

- name: Snapshot the whole mmfs1 filesystem
  pixstor.mgmt.pixstor_snapshot:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: nightly
    type: gpfsfilesystemsnapshot
    exposer: mmfs1

- name: Delete the space snapshot
  pixstor.mgmt.pixstor_snapshot:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: snake-snap
    space: sleepy-snake
    profile: mmfs1-sas1
    state: absent
"""

RETURN = r"""
snapshot:
  description:
    - The snapshot as the API reports it after the task, data fields by name.
    - Empty after O(state=absent). In check mode, the predicted fields of a snapshot that would be taken.
  returned: always
  type: dict
  contains:
    id:
      description: Unique identifier of the snapshot.
      type: str
    href:
      description: Path of the snapshot in the API.
      type: str
      sample: /snapshots/0b6a1e0c-47f2-4d7e-a3b5-2f9e4e0d8a11
    name:
      description: Name of the snapshot.
      type: str
      sample: snake-snap
    type:
      description: V(gpfsspacesnapshot) or V(gpfsfilesystemsnapshot).
      type: str
    space:
      description: Href of the space, or null for a filesystem snapshot.
      type: str
    exposer:
      description: Href of the exposer, or null for a space snapshot.
      type: str
    path:
      description: Where the snapshot can be read.
      type: str
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    links:
      description: Links of the item by name, for example C(Jobs).
      type: dict
actions:
  description: What the task did (or would do in check mode) - V(create) or V(delete).
  returned: always
  type: list
  elements: str
  sample: [create]
job:
  description: The snapshot or deletion job, when there was one (C(href), and C(status) once waited for).
  returned: always
  type: dict
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED"}
"""

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import (
    ItemManager, NotFound, as_href, pixstor_module, run_module,
)


def observe(item):
    return dict(name=item.get("name"), type=item.get("type"),
                space=as_href(item.get("space"), "spaces"), exposer=as_href(item.get("exposer"), "exposers"))


def find_parent(module, client):
    """(field, href) of what the snapshot is of; href None when it does not exist (yet)."""
    params = module.params
    try:
        if params["type"] == "gpfsfilesystemsnapshot":
            ref = params["exposer"]
            where = None if "/" in ref else {"type": "gpfsnative"}
            return "exposer", client.resolve("exposers", ref, "exposer", where=where)
        where = None
        if params["profile"]:
            where = dict(profile=client.resolve("profiles", params["profile"], "profile"))
        return "space", client.resolve("spaces", params["space"], "space", where=where)
    except NotFound as exc:
        if params["state"] == "absent":
            return None, None
        if not module.check_mode:
            raise
        module.warn("%s; check mode assumes an earlier task would create it" % exc.msg)
        return ("exposer" if params["type"] == "gpfsfilesystemsnapshot" else "space"), None


def manage(module, client):
    params = module.params
    label = "snapshot %r" % params["name"]
    manager = ItemManager(module, client, "snapshots", "snapshot", label, observe, references=("space", "exposer"))
    field, parent = find_parent(module, client)
    manager.lookup = lambda: client.find_one("snapshots", {"name": params["name"], field: parent},
                                             "%s of %s" % (label, parent))
    current = manager.lookup() if parent else None
    if params["state"] == "absent":
        return manager.absent(current)
    desired = dict(name=params["name"], type=params["type"])
    desired[field] = parent or "/%ss/(%s)" % (field, params[field])     # check mode: still to be created
    return manager.present(current, desired, desired)


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            type=dict(type="str", default="gpfsspacesnapshot", choices=["gpfsspacesnapshot", "gpfsfilesystemsnapshot"]),
            space=dict(type="str"),
            profile=dict(type="str"),
            exposer=dict(type="str"),
        ),
        required_if=[("type", "gpfsspacesnapshot", ["space"]), ("type", "gpfsfilesystemsnapshot", ["exposer"])],
        mutually_exclusive=[("space", "exposer")],
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
