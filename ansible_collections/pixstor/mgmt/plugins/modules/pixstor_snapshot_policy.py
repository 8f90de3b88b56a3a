#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_snapshot_policy
short_description: Create, change and delete PixStor snapshot policies
version_added: 0.3.0
description:
  - Makes sure a snapshot policy exists with the given schedule and retention, or does not exist.
  - A policy applies to the spaces that list it (O(pixstor.mgmt.pixstor_space#module:snapshot_policies)). The server's
    scheduler takes a snapshot of each of those spaces at every slot of the O(schedule), named
    C({prefix}-{YYYYMMDDTHHMMZ}) after the slot's UTC time, and deletes the policy's own snapshots beyond
    O(retain_count) per space, or once they are O(retain_duration) old. Snapshots taken by hand are never pruned.
    A slot missed while no worker ran is taken once when one runs again, not once per missed slot.
  - A policy is identified by O(name). O(schedule), O(retain_count), O(retain_duration), O(comment) and O(extras) can
    change once it exists, without a job; O(prefix) is fixed once created.
  - Only the options given in the task are compared and changed; the others keep the value they have on the server.
  - Writing policies needs an operator or admin user.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  name:
    description:
      - Name of the policy. Letters, digits, V(-) and V(_) only.
    type: str
    required: true
  schedule:
    description:
      - When snapshots are taken, in UTC, as four cron fields separated by spaces, V(minute hour day-of-month
        day-of-week), such as V(0 * * *) (hourly, on the hour) or V(30 2 * 1-5) (02:30 on weekdays).
      - Each field is V(*), a number, a range V(a-b), any of these with a step (V(*/15), V(8-18/2)), or a
        comma-separated list of them. Minutes are 0-59, hours 0-23, days of the month 1-31, days of the week 0-7 (0
        and 7 are Sunday). As in cron, when both day fields are restricted, a day matches when either does.
      - Compared with the fields separated by single spaces. The server checks the values and refuses what it cannot
        read (HTTP 422, naming the field).
      - Required to create a policy.
    type: str
  prefix:
    description:
      - The policy's snapshots are named C({prefix}-{YYYYMMDDTHHMMZ}). Letters, digits, V(-) and V(_) only.
      - Defaults to O(name) when the policy is created; fixed once created.
    type: str
  retain_count:
    description:
      - Keep this many of the newest snapshots the policy took, per space; the older ones are deleted.
      - V(0) removes the count, leaving O(retain_duration) alone to prune.
      - Creating a policy needs O(retain_count), O(retain_duration) or both, and a policy always keeps at least one of
        them, as it would otherwise keep every snapshot it takes.
    type: int
  retain_duration:
    description:
      - Keep each snapshot this long from its slot, a whole number and a unit, V(m), V(h), V(d) or V(w), such as V(7d)
        or V(12h). It sets the C(expires) of each snapshot the policy takes; a change applies to snapshots taken after it.
      - V('') removes the duration, leaving O(retain_count) alone to prune.
    type: str
  force:
    description:
      - With O(state=absent), delete the policy even when spaces list it; it is taken off them and the snapshots it
        took are kept. Without it, the API refuses (HTTP 409) and names the spaces.
    type: bool
    default: false
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.state
  - pixstor.mgmt.pixstor.notes
  - pixstor.mgmt.pixstor.attributes
seealso:
  - module: pixstor.mgmt.pixstor_space
  - module: pixstor.mgmt.pixstor_snapshot
  - module: pixstor.mgmt.pixstor_info
"""

EXAMPLES = r"""
- name: Hourly snapshots of the render spaces, the last 24 kept
  pixstor.mgmt.pixstor_snapshot_policy:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: hourly
    schedule: "0 * * *"
    retain_count: 24

- name: Nightly snapshots at 02:30 UTC on weekdays, each kept two weeks
  pixstor.mgmt.pixstor_snapshot_policy:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: nightly
    prefix: night
    schedule: "30 2 * 1-5"
    retain_duration: 2w
    comment: Weekday nights

- name: Apply both to a space
  pixstor.mgmt.pixstor_space:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: sleepy-snake
    profile: mmfs1-sas1
    snapshot_policies: [hourly, nightly]

- name: Delete the hourly policy, taking it off the spaces that list it
  pixstor.mgmt.pixstor_snapshot_policy:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: hourly
    state: absent
    force: true
"""

RETURN = r"""
snapshot_policy:
  description:
    - The policy as the API reports it after the task, data fields by name.
    - Empty after O(state=absent). In check mode, the predicted fields of a policy that would be created.
  returned: always
  type: dict
  contains:
    id:
      description: Unique identifier of the policy.
      type: str
    href:
      description: Path of the policy in the API.
      type: str
      sample: /snapshotpolicies/6a1e0c0b-47f2-4d7e-a3b5-2f9e4e0d8a11
    name:
      description: Name of the policy.
      type: str
      sample: hourly
    schedule:
      description: The four cron fields, in UTC.
      type: str
      sample: "0 * * *"
    prefix:
      description: Prefix of the names of the policy's snapshots.
      type: str
      sample: hourly
    retain_count:
      description: How many of its newest snapshots the policy keeps per space, or null.
      type: int
      sample: 24
    retain_duration:
      description: How long each of its snapshots is kept, or null.
      type: str
      sample: 2w
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    comment:
      description: Free text, or null.
      type: str
    extras:
      description: Your own keys and values, or null.
      type: dict
    links:
      description: Links of the item by name, for example C(Jobs).
      type: dict
actions:
  description: What the task did (or would do in check mode) - V(create), V(update) or V(delete).
  returned: always
  type: list
  elements: str
  sample: [create]
job:
  description:
    - The job of the creation or deletion, when there was one (C(href), and C(status) once waited for).
    - Null after a change, which needs no job.
  returned: always
  type: dict
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED"}
"""

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import (
    ItemManager, check_duration, desired_notes, notes_argument_spec, observed_notes, pixstor_module, run_module,
)

MUTABLE = ("schedule", "retain_count", "retain_duration", "comment", "extras")
CRON_FIELDS = 4


def schedule_text(value):
    """A schedule as the API keeps it: its fields separated by single spaces."""
    return " ".join(str(value).split()) if value is not None else None


def observe(item):
    seen = dict(name=item.get("name"), schedule=schedule_text(item.get("schedule")), prefix=item.get("prefix"),
                retain_count=item.get("retain_count") or 0, retain_duration=item.get("retain_duration") or "")
    seen.update(observed_notes(item))
    return seen


def desired_policy(module, label):
    """The task's policy in observe()'s shape (None: not managed); fails on a schedule or duration
    the API would refuse for its form, before any request."""
    params = module.params
    schedule = schedule_text(params["schedule"])
    if schedule is not None and len(schedule.split()) != CRON_FIELDS:
        module.fail_json(msg="%s: schedule %r: expected four cron fields, minute hour day-of-month day-of-week (such as "
                             "'0 * * *' hourly)" % (label, params["schedule"]))
    if params["retain_count"] is not None and params["retain_count"] < 0:
        module.fail_json(msg="%s: retain_count must be a positive number, or 0 to remove it; got %d"
                             % (label, params["retain_count"]))
    duration = params["retain_duration"]
    if duration not in (None, ""):
        try:
            duration = check_duration(duration)
        except ValueError as exc:
            module.fail_json(msg="%s: retain_duration: %s" % (label, exc))
    desired = dict(name=params["name"], schedule=schedule, prefix=params["prefix"],
                   retain_count=params["retain_count"], retain_duration=duration)
    desired.update(desired_notes(params))
    return desired


def manage(module, client):
    params = module.params
    name = params["name"]
    label = "snapshot policy %r" % name
    manager = ItemManager(module, client, "snapshotpolicies", "snapshot_policy", label, observe, mutable=MUTABLE,
                          lookup=lambda: client.find_one("snapshotpolicies", dict(name=name), label),
                          describe=lambda before, changes: "(%s)" % ", ".join(sorted(changes)))
    current = manager.lookup()
    if params["state"] == "absent":
        return manager.absent(current, dict(force=params["force"]))
    desired = desired_policy(module, label)
    # Retention removed is sent as null: 0 and '' are the module's words for "none".
    sent = dict(retain_count=desired["retain_count"] or None, retain_duration=desired["retain_duration"] or None)
    after = dict(observe(current) if current is not None else {},
                 **dict((k, v) for k, v in desired.items() if v is not None))
    if not after.get("retain_count") and not after.get("retain_duration"):
        module.fail_json(msg="%s: give retain_count, retain_duration or both: a policy without retention would keep "
                             "every snapshot it takes" % label)
    create_body = None
    if current is None:
        if desired["schedule"] is None:
            module.fail_json(msg="%s does not exist; creating it needs schedule" % label)
        desired["prefix"] = desired["prefix"] or name
        create_body = dict((key, sent.get(key, value)) for key, value in desired.items()
                           if value not in (None, "", 0))
    return manager.present(current, desired, create_body, sent)


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            schedule=dict(type="str"),
            prefix=dict(type="str"),
            retain_count=dict(type="int"),
            retain_duration=dict(type="str"),
            force=dict(type="bool", default=False),
            **notes_argument_spec()
        ),
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
