#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_space_revert
short_description: Revert a PixStor space to one of its snapshots
version_added: 0.3.0
description:
  - Makes the content of a space that of one of its own snapshots (C(POST /spaces/{id}/revert), a job). Every change
    made in the space since the snapshot was taken is lost; the snapshot itself, and the space's other snapshots,
    stay.
  - The space is never half reverted. On btrfs and posix the server builds the snapshot's content aside and swaps it
    in at once; on gpfs it runs C(mmrestorefs -j).
  - A revert is an action, not a state, so this is a module of its own (as the storage collections have theirs for a
    snapshot restore) rather than a C(state) of M(pixstor.mgmt.pixstor_snapshot), whose C(state=present) means the
    snapshot exists.
  - B(Not idempotent.) Every run outside check mode asks the server for the revert and reports C(changed=true) once it
    has been done. A space cannot be told "as the snapshot" from outside, and a revert itself changes the space's
    folders, so a second run is another revert; guard the task with C(when) (for example on a variable or a prompt)
    to run it once.
  - Without O(force), the server refuses the revert (HTTP 409) when anything in the space changed since the snapshot
    was taken (a file written, added, removed, renamed or with new permissions), names the first change and changes
    nothing; the task then fails with that message. As a revert changes the space's folders, a second revert to the
    same snapshot needs O(force) too.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  space:
    description:
      - The space to revert, by name, id or href.
    type: str
    required: true
  profile:
    description:
      - Profile of O(space), by name, id or href, when several spaces share its name.
    type: str
  snapshot:
    description:
      - The snapshot whose content the space takes, by name (among the snapshots of O(space)), id or href. It must be a
        snapshot of O(space) and V(ACTIVE).
    type: str
    required: true
  force:
    description:
      - Revert even when the space changed since the snapshot was taken. Those changes are lost.
      - Without it, such a revert fails (HTTP 409) and nothing is changed.
    type: bool
    default: false
  wait:
    description:
      - Wait until the revert's job has finished.
      - With V(false) the module returns as soon as the API accepted the revert; the space is then V(INPROGRESS).
      - When the wait times out, or the job ends V(ERRORED), the task fails with C(changed=true), the space and C(job)
        in the result.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait for the job when O(wait=true).
    type: int
    default: 300
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.attributes
attributes:
  check_mode:
    description:
      - Reads the space and the snapshot, checks what the module can (the snapshot is the space's and V(ACTIVE), the
        space is not V(ERRORED)) and reports C(changed=true) with the revert it would ask for, writing nothing.
      - The server alone can tell whether the space changed since the snapshot, and tells it only to a revert, so check
        mode cannot predict the HTTP 409 of a revert without O(force); its C(msg) says so.
    support: full
  diff_mode:
    description:
      - C(diff) shows the space's content before (as it is) and after (the snapshot's, with the time it was taken).
    support: full
notes:
  - A space that is busy with another job (a resize, a snapshot) is waited for first when O(wait=true).
seealso:
  - module: pixstor.mgmt.pixstor_snapshot
  - module: pixstor.mgmt.pixstor_space
"""

EXAMPLES = r"""
- name: Take the space back to how it was before the delivery, losing every change since
  pixstor.mgmt.pixstor_space_revert:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    space: sleepy-snake
    profile: mmfs1-sas1
    snapshot: before-delivery
    force: true
  when: revert_sleepy_snake | default(false) | bool

- name: Revert only if nothing changed since the snapshot (fails otherwise, changing nothing)
  pixstor.mgmt.pixstor_space_revert:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    space: sleepy-snake
    snapshot: hourly-20260302T0900Z
"""

RETURN = r"""
space:
  description:
    - The space as the API reports it after the revert (its C(used) bytes measured again), data fields by name.
  returned: always
  type: dict
  sample: {"name": "sleepy-snake", "status": "ACTIVE", "used": 109, "href": "/spaces/de95cf28-fdf9-5455-b1d9-831cf8a1869b"}
snapshot:
  description: The snapshot the space was (or would be) reverted to, data fields by name.
  returned: always
  type: dict
  sample: {"name": "before-delivery", "space": "/spaces/de95cf28-fdf9-5455-b1d9-831cf8a1869b", "status": "ACTIVE"}
actions:
  description: V([revert]) (done, or in check mode to be done).
  returned: always
  type: list
  elements: str
  sample: [revert]
job:
  description:
    - The revert's job (C(href), its final C(status) and its C(message) once waited for), or null in check mode.
  returned: always
  type: dict
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED",
           "message": "space sleepy-snake holds the content of snapshot before-delivery"}
"""

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import (
    ITEM_DONE, ItemManager, NotFound, PixstorError, as_href, pixstor_module, public, run_module, shown_timestamp,
    wait_argument_spec,
)


def content(snapshot):
    """The space's content after the revert, as the diff shows it."""
    taken = shown_timestamp(snapshot.get("created"))
    return "snapshot %s%s" % (snapshot.get("name"), " (taken %s)" % taken if taken else "")


def find(module, client):
    """(space, snapshot) as read; in check mode (None, None) with a warning when either is still to be made."""
    params = module.params
    try:
        where = dict(profile=client.resolve("profiles", params["profile"], "profile")) if params["profile"] else None
        space = client.resolve_item("spaces", params["space"], "space", where=where)
        snapshot = client.resolve_item("snapshots", params["snapshot"], "snapshot",
                                       where=None if "/" in params["snapshot"] else dict(space=space["href"]))
    except NotFound as exc:
        if not module.check_mode:
            raise
        module.warn("%s; check mode assumes an earlier task would create it" % exc.msg)
        return None, None
    return space, snapshot


def check(module, label, space, snapshot):
    """What the server would refuse, said before any write."""
    if as_href(snapshot.get("space"), "spaces") != space["href"]:
        module.fail_json(msg="%s: snapshot %r is not a snapshot of this space (it is of %s); a space is reverted to "
                             "one of its own snapshots" % (label, snapshot.get("name"), snapshot.get("space") or
                                                           "a filesystem"), space=space, snapshot=snapshot)
    if snapshot.get("status") != "ACTIVE":
        module.fail_json(msg="%s: snapshot %r is %s, not ACTIVE" % (label, snapshot.get("name"), snapshot.get("status")),
                         space=space, snapshot=snapshot)
    if space.get("status") == "ERRORED":
        module.fail_json(msg="%s is ERRORED: %s; only an ACTIVE space is reverted" % (
            label, space.get("status_message") or "no reason given"), space=space, snapshot=snapshot)


def manage(module, client):
    params = module.params
    label = "space %r" % params["space"]
    manager = ItemManager(module, client, "spaces", "space", label, dict)
    space, snapshot = find(module, client)
    manager.result["snapshot"] = public(snapshot)
    manager.act("revert")
    if space is None:
        after = dict(name=params["space"], content="snapshot %s" % params["snapshot"])
        return manager.done(dict(name=params["space"]), dict(name=params["space"], content="as it is now"), after,
                            "to snapshot %r" % params["snapshot"])
    check(module, label, space, snapshot)
    before = dict(name=space.get("name"), content="as it is now")
    after = dict(name=space.get("name"), content=content(snapshot))
    detail = "to %s" % after["content"]
    if module.check_mode:
        if not params["force"]:
            detail += "; without force the server refuses it if the space changed since the snapshot was taken"
        return manager.done(space, before, after, detail)
    if space.get("status") not in ITEM_DONE and params["wait"]:
        manager.wait_for(space["href"], None, None)     # another job on the space: let it end first
    try:
        accepted = client.act(space["href"], "revert", dict(snapshot=snapshot["href"]), force=params["force"])
    except PixstorError as exc:
        if exc.status == 409 and not params["force"] and ((exc.error or {}).get("details") or {}).get("snapshot"):
            exc.msg += "; set force: true in the task to revert anyway"
        exc.result.update(changed=False, actions=[], space=public(space), snapshot=public(snapshot))
        raise
    return manager.finish(accepted, space["href"], before, after, detail)


def main():
    module = pixstor_module(
        dict(
            space=dict(type="str", required=True),
            profile=dict(type="str"),
            snapshot=dict(type="str", required=True),
            force=dict(type="bool", default=False),
            **wait_argument_spec()
        ),
        managed=False,
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
