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
  - A snapshot may expire (O(expires), or O(retain_for) when it is taken); the server's scheduler then deletes it
    once that time has come. O(expires) can change once the snapshot exists, without a job.
  - To make a space's content that of one of its snapshots, see M(pixstor.mgmt.pixstor_space_revert); to start a
    new space from a snapshot, O(pixstor.mgmt.pixstor_space#module:source_snapshot).
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
  expires:
    description:
      - When the server deletes the snapshot, as an ISO 8601 time such as V(2026-12-01T00:00:00Z). A time with another
        zone (V(2026-12-01T01:00:00+01:00)) is the same time in UTC; a time without a zone is UTC; a date alone
        (V(2026-12-01)) is its midnight UTC.
      - Compared as a time in UTC to the second, so the same time otherwise written is no change. A different time on an
        existing snapshot extends or shortens its life (a change without a job).
      - V('') removes the expiry; the snapshot is then kept until deleted. Not set, the snapshot's expiry is left as it is.
      - The server refuses a time that is not in the future; delete the snapshot (O(state=absent)) to remove it now.
      - Mutually exclusive with O(retain_for).
    type: str
    version_added: 0.3.0
  retain_for:
    description:
      - How long to keep the snapshot from when it is taken, a whole number and a unit, V(m) (minutes), V(h) (hours),
        V(d) (days) or V(w) (weeks), such as V(7d) or V(12h). The server sets the snapshot's C(expires) from it.
      - Used only when the snapshot is taken. An existing snapshot is not compared with it and keeps its C(expires)
        (set O(expires) to change that), so a second run reports no change.
      - Once the snapshot has expired and gone, the next run takes it again, with a new expiry.
      - Mutually exclusive with O(expires).
    type: str
    version_added: 0.3.0
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

- name: Snapshot a space before a delivery, kept for two weeks
  pixstor.mgmt.pixstor_snapshot:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: before-delivery
    space: sleepy-snake
    retain_for: 2w

- name: Keep that snapshot until the end of the year instead
  pixstor.mgmt.pixstor_snapshot:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: before-delivery
    space: sleepy-snake
    expires: "2026-12-31T23:59:59Z"

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
    expires:
      description: When the server deletes the snapshot (ISO 8601, UTC), or null when it is kept until deleted.
      type: str
      sample: "2026-12-01T00:00:00Z"
      version_added: 0.3.0
    policy:
      description: Href of the snapshot policy that took the snapshot, or null for a snapshot taken by hand.
      type: str
      version_added: 0.3.0
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    links:
      description: Links of the item by name, for example C(Jobs).
      type: dict
actions:
  description: What the task did (or would do in check mode) - V(create), V(update) (O(expires) changed) or V(delete).
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
    ItemManager, NotFound, as_href, check_duration, pixstor_module, run_module, shown_timestamp, utc_timestamp,
)


def observe(item):
    return dict(name=item.get("name"), type=item.get("type"),
                space=as_href(item.get("space"), "spaces"), exposer=as_href(item.get("exposer"), "exposers"),
                expires=shown_timestamp(item.get("expires")))


def lifetime(module, label):
    """(expires as compared, retain_for as sent) of the task: '' expires is no expiry, None not
    managed. Fails on a time or duration the API would refuse for its form, before any request."""
    params = module.params
    try:
        expires = utc_timestamp(params["expires"]) if params["expires"] not in (None, "") else params["expires"]
        retain_for = check_duration(params["retain_for"]) if params["retain_for"] is not None else None
    except ValueError as exc:
        module.fail_json(msg="%s: %s: %s" % (label, "expires" if params["retain_for"] is None else "retain_for", exc))
    return expires, retain_for


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
    manager = ItemManager(module, client, "snapshots", "snapshot", label, observe, mutable=("expires",),
                          references=("space", "exposer"),
                          describe=lambda before, changes: "(expires %s)" % (changes["expires"] or "removed"))
    expires, retain_for = lifetime(module, label) if params["state"] == "present" else (None, None)
    field, parent = find_parent(module, client)
    manager.lookup = lambda: client.find_one("snapshots", {"name": params["name"], field: parent},
                                             "%s of %s" % (label, parent))
    current = manager.lookup() if parent else None
    if params["state"] == "absent":
        return manager.absent(current)
    desired = dict(name=params["name"], type=params["type"])
    desired[field] = parent or "/%ss/(%s)" % (field, params[field])     # check mode: still to be created
    desired["expires"] = expires
    create_body = None
    if current is None:
        create_body = dict((key, value) for key, value in desired.items() if value not in (None, ""))
        if retain_for is not None:
            desired["retain_for"] = create_body["retain_for"] = retain_for
    return manager.present(current, desired, create_body, sent=dict(expires=None) if expires == "" else None)


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            type=dict(type="str", default="gpfsspacesnapshot", choices=["gpfsspacesnapshot", "gpfsfilesystemsnapshot"]),
            space=dict(type="str"),
            profile=dict(type="str"),
            exposer=dict(type="str"),
            expires=dict(type="str"),
            retain_for=dict(type="str"),
        ),
        required_if=[("type", "gpfsspacesnapshot", ["space"]), ("type", "gpfsfilesystemsnapshot", ["exposer"])],
        mutually_exclusive=[("space", "exposer"), ("expires", "retain_for")],
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
