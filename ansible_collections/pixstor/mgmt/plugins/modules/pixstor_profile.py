#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_profile
short_description: Create, change and delete PixStor profiles and their ILM steps
version_added: 0.3.0
description:
  - Makes sure a profile exists with the given placement (the datastore, that is the pool, its spaces' new files go to)
    and, when O(ilm_steps) is given, exactly the given ILM steps in the given order; or that it does not exist.
  - A profile is identified by O(name), an ILM step by its O(ilm_steps[].name) within the profile. Neither is ever
    renamed; a step of another name is another step.
  - Only the options given in the task are compared and changed; the others keep the value they have on the server.
  - Each write is a job that makes the filesystem's policy say what the profiles say (on gpfs, a C(SET POOL) rule for
    the placement and a C(MIGRATE) or C(DELETE) rule per step). A change of O(comment) or O(extras) alone needs
    no job.
  - A new placement applies to new files only; the files already written stay in the pool they are in (an ILM
    C(migrate) step moves them). The job says so, and the module returns its message in RV(placement_message) and
    as a warning.
  - Managing profiles needs an admin user.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  name:
    description:
      - Name of the profile. Letters, digits, V(-) and V(_) only.
    type: str
    required: true
  datastore:
    description:
      - Datastore (a pool of a filesystem) that the new files of the profile's spaces go to, by name (V(sas1)), id or
        href (V(/datastores/<id>)). A name that several filesystems have is refused; give the id or href then.
      - Required to create a profile. A profile that spaces use can only move to another datastore of the same
        filesystem.
    type: str
  ilm_steps:
    description:
      - The profile's ILM steps, in order; the first step whose conditions a file matches decides what happens to it.
      - When given, the profile ends up with exactly these steps, in this order. Steps of the profile not listed are
        deleted, V([]) deletes them all. When not given, the steps are left as they are.
      - Compared in order, so a different order is a change. Each step's position is its place in the list (the first
        is 1). The server holds each position once, so a step that takes the position another step leaves waits for
        it; a swap moves one step past the end first.
      - A step's fields are compared whole, so a condition left out means the step has no such condition, and is
        removed from an existing step. Only O(ilm_steps[].comment) and O(ilm_steps[].extras) are left as they are when not set.
      - A step that a failed job left V(ERRORED) is deleted and created again.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the step, unique within the profile. Letters, digits, V(-) and V(_) only.
        type: str
        required: true
      action:
        description:
          - V(migrate) moves the matching files to the O(ilm_steps[].target) datastore; V(delete) deletes them.
          - A V(delete) step needs at least one condition (days, sizes or name patterns), as it would otherwise
            delete every file.
        type: str
        choices: [migrate, delete]
        required: true
      target:
        description:
          - V(migrate) steps only, and required for them. Datastore the files move to, by name, id or href; another
            pool of the profile's filesystem. A name is looked up on the filesystem of the profile's datastore.
        type: str
      access_days:
        description:
          - Files not read for at least this many days.
        type: int
      modification_days:
        description:
          - Files not changed for at least this many days.
        type: int
      min_size:
        description:
          - Files of at least this size. Bytes (V(1048576)) or a number with a unit, every unit a power of 1024
            (V(1M) = V(1MiB)), as in M(pixstor.mgmt.pixstor_space).
        type: str
      max_size:
        description:
          - Files of at most this size, bytes or a number with a unit. V(0) matches empty files.
        type: str
      name_patterns:
        description:
          - Files whose name matches one of these patterns, with the wildcards V(*) and V(?) (V(*.exr)). Patterns match
            file names, not paths. Compared as a set; V([]) means no name condition.
        type: list
        elements: str
      threshold_high:
        description:
          - V(migrate) steps only. Migrate only while the source pool is fuller than this percentage, and stop at
            O(ilm_steps[].threshold_low) (Storage Scale's C(THRESHOLD(high,low))). Give both or neither.
        type: int
      threshold_low:
        description:
          - V(migrate) steps only. The percentage the source pool is emptied down to.
        type: int
      comment:
        description:
          - Free text about the step. Left as it is when not set; V('') removes it.
        type: str
      extras:
        description:
          - Your own keys and values, compared as a whole. Left as they are when not set; V({}) removes them.
        type: dict
  state:
    description:
      - V(present) makes sure the profile exists (with its O(ilm_steps), when given); V(absent) makes sure it does
        not, and its steps go with it.
      - The API refuses (HTTP 409) to delete a profile that spaces use, and names them; delete those spaces first.
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.state
  - pixstor.mgmt.pixstor.notes
  - pixstor.mgmt.pixstor.attributes
notes:
  - With several writes (the profile, then its steps), every write but the last is waited for whatever O(wait) says,
    since a step may take the position another one leaves, and a step is checked against its profile as the server
    has it.
seealso:
  - module: pixstor.mgmt.pixstor_space
  - module: pixstor.mgmt.pixstor_info
"""

EXAMPLES = r"""
- name: A profile for render output on sas1, whose frames go to sata1 after a month and whose scratch files go
  pixstor.mgmt.pixstor_profile:
    url: https://pixstor.example.com
    username: admin
    password: "{{ pixstor_password }}"
    name: render
    datastore: sas1
    comment: Render farm output
    extras:
      owner_team: pipeline
    ilm_steps:
      - name: scratch
        action: delete
        modification_days: 7
        name_patterns: ["*.tmp"]
      - name: cold
        action: migrate
        target: sata1
        access_days: 30
        name_patterns: ["*.exr", "*.dpx"]
        threshold_high: 90
        threshold_low: 70

- name: Place the new files of its spaces on sata1 (files already written stay on sas1)
  pixstor.mgmt.pixstor_profile:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: render
    datastore: sata1
  register: moved

- name: Show what the server said about the new placement
  ansible.builtin.debug:
    msg: "{{ moved.placement_message }}"
  when: moved.placement_message is defined

- name: Remove every ILM step of the profile, keep the profile
  pixstor.mgmt.pixstor_profile:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: render
    ilm_steps: []

- name: Delete the profile (no space may use it)
  pixstor.mgmt.pixstor_profile:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: render
    state: absent
"""

RETURN = r"""
profile:
  description:
    - The profile as the API reports it after the task, data fields by name.
    - Empty after O(state=absent). In check mode, the predicted fields of a profile that would be created.
  returned: always
  type: dict
  contains:
    id:
      description: Unique identifier of the profile.
      type: str
      sample: 8f01ab22-cc0b-2056-ff8c-e1d829dc806c
    href:
      description: Path of the profile in the API.
      type: str
      sample: /profiles/8f01ab22-cc0b-2056-ff8c-e1d829dc806c
    name:
      description: Name of the profile.
      type: str
      sample: render
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    datastore:
      description: Href of the datastore the profile places new files in.
      type: str
      sample: /datastores/487196a0-69b0-5160-8164-3b49abaa0859
    comment:
      description: Free text, or null.
      type: str
    extras:
      description: Your own keys and values, or null.
      type: dict
    links:
      description: Links of the item by name, for example C(Jobs).
      type: dict
ilm_steps:
  description:
    - The profile's ILM steps after the task, in order, each as the API reports it (C(name), C(order), C(action),
      C(target) as an href, the conditions, C(comment), C(extras), C(href), C(status), ...).
    - Empty after O(state=absent). In check mode, the steps as they would be.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "scratch", "order": 1, "action": "delete", "modification_days": 7, "name_patterns": ["*.tmp"]}]
placement_message:
  description:
    - What the server says about a changed placement - new files of the profile's spaces go to the new datastore,
      files already written stay (the job's message; in check mode, or with O(wait=false), the module's own words).
      Also given as a warning.
  returned: when O(datastore) changed
  type: str
  sample: >-
    placement of profile render changed from pool sas1 to sata1: new files of its spaces go to sata1; files already
    written stay in sas1 (an ILM migrate step moves them)
actions:
  description:
    - What the task did (or would do in check mode), in order - V(create), V(update) or V(delete) for the profile,
      and V(create ilm step NAME), V(update ilm step NAME), V(move ilm step NAME) (out of the way of another step,
      to a free position past the end) and V(delete ilm step NAME) for its steps.
  returned: always
  type: list
  elements: str
  sample: [create, create ilm step scratch, create ilm step cold]
job:
  description:
    - The job of the last write, when there was one (C(href), C(status) once waited for, and C(message) when the job
      has one). Null after a change of O(comment) or O(extras) alone, which needs no job.
  returned: always
  type: dict
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED"}
"""

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import (
    ItemManager, PixstorError, WaitFailed, as_href, desired_notes, notes_argument_spec, observed_notes, parse_size,
    pixstor_module, public, run_module, split_list, str_set,
)

SIZES = ("min_size", "max_size")
NUMBERS = ("access_days", "modification_days", "threshold_high", "threshold_low")
# Step fields where None is a value a task asks for (no such condition), not "leave it".
NULLABLE = ("target", "access_days", "modification_days", "min_size", "max_size", "name_patterns", "threshold_high",
            "threshold_low")
STEP_MUTABLE = ("order", "action", "comment", "extras") + NULLABLE


def observe(item):
    return dict(dict(name=item.get("name"), datastore=as_href(item.get("datastore"), "datastores")),
                **observed_notes(item))


def observe_step(item):
    seen = dict(name=item.get("name"), order=item.get("order"), action=item.get("action"),
                target=as_href(item.get("target"), "datastores"))
    seen.update((key, item.get(key)) for key in NUMBERS + SIZES)
    seen["name_patterns"] = str_set(item.get("name_patterns")) or None
    seen.update(observed_notes(item))
    return seen


def step_sizes(label, step):
    """min_size and max_size of a task's step in bytes; fails (before any request) on a bad size."""
    sizes = {}
    for key in SIZES:
        try:
            sizes[key] = parse_size(step[key], allow_zero=True) if step[key] is not None else None
        except ValueError as exc:
            raise PixstorError("%s: ILM step %r: %s: %s" % (label, step["name"], key, exc))
    return sizes


def desired_step(position, step, sizes, target):
    """A task's step in observe_step's shape (comment/extras None: not managed), and the
    name_patterns as sent (the task's order, without repeats)."""
    wanted = dict(name=step["name"], order=position, action=step["action"], target=target)
    wanted.update((key, step[key]) for key in NUMBERS)
    wanted.update(sizes)
    patterns = list(dict.fromkeys(split_list(step["name_patterns"])))
    wanted["name_patterns"] = sorted(patterns) or None
    wanted.update(desired_notes(step))
    return wanted, dict(name_patterns=patterns or None)


def step_changes(current, wanted):
    """Fields of `wanted` that differ from the observed step `current` (None: not managed)."""
    seen = observe_step(current)
    return sorted(k for k, v in wanted.items() if (v is not None or k in NULLABLE) and seen.get(k) != v)


def plan_steps(current, wanted):
    """The writes that turn the steps `current` (observed, by name, with status) into `wanted`
    (a list in order, positions 1..n), in an order the server takes: ('delete', name, None),
    ('update', name, wanted step), ('move', name, free position), ('create', name, wanted step).

    Deletions come first, as they free positions. A step whose position is held by another step
    that has to move itself waits until that one has moved; when every waiting step is held
    up (a swap), the step in the way moves past the end first."""
    names = dict((step["name"], step) for step in wanted)
    ops = []
    at = {}     # name -> position, of the steps kept
    for name, step in sorted(current.items(), key=lambda item: item[1]["order"]):
        if name not in names or step.get("status") == "ERRORED":
            ops.append(("delete", name, None))
        else:
            at[name] = step["order"]
    held = dict((position, name) for name, position in at.items())
    waiting = []
    for step in wanted:
        if at.get(step["name"]) == step["order"]:
            if step_changes(current[step["name"]], step):
                ops.append(("update", step["name"], step))
        else:
            waiting.append(step)
    end = max([len(wanted)] + list(held))
    while waiting:
        free = [step for step in waiting if step["order"] not in held]
        if not free:
            blocker = held.pop(waiting[0]["order"])
            end += 1
            at[blocker], held[end] = end, blocker
            ops.append(("move", blocker, end))
            continue
        step = free[0]
        waiting.remove(step)
        name = step["name"]
        if name in at:
            del held[at[name]]
            ops.append(("update", name, step))
        else:
            ops.append(("create", name, step))
        at[name], held[step["order"]] = step["order"], name
    return ops


class Steps(object):
    """The ILM steps of one profile, driven to the task's list one write at a time."""

    def __init__(self, module, client, profile_label, steps, sent):
        self.module = module
        self.client = client
        self.profile_label = profile_label
        self.current = dict(steps)      # by name, as last read
        self.sent = sent
        self.actions = []               # every write of the task, in order, the profile's included
        self.job = None                 # the job of the last write

    def step_manager(self, profile_href, name, wait):
        label = "ILM step %r of %s" % (name, self.profile_label)
        # No references: the profile's diff names the targets, once for all the steps.
        manager = ItemManager(self.module, self.client, "ilmsteps", "ilm_step", label, observe_step,
                              mutable=STEP_MUTABLE, nullable=NULLABLE,
                              lookup=lambda: self.client.find_one("ilmsteps", dict(profile=profile_href, name=name),
                                                                  label))
        manager.wait = wait
        return manager

    def apply(self, profile, ops, wait_last):
        """Run the planned writes; every write but the last is waited for (the next may take the
        position it leaves), the last as `wait_last` says."""
        for index, (kind, name, arg) in enumerate(ops):
            manager = self.step_manager(profile["href"], name, wait_last or index < len(ops) - 1)
            action = "%s ilm step %s" % (kind, name)
            try:
                if kind == "delete":
                    manager.absent(self.current.pop(name))
                else:
                    wanted = dict(name=name, order=arg) if kind == "move" else arg
                    body = step_body(profile["href"], arg, self.sent[name]) if kind == "create" else None
                    manager.present(self.current.get(name), wanted, body, self.sent.get(name))
                    self.current[name] = manager.result["ilm_step"]
            except PixstorError as exc:
                # What was written stays written: the failed result says so, this write included when
                # it was accepted (its job failed, or the wait timed out) rather than refused.
                done = self.actions + ([action] if isinstance(exc, WaitFailed) else [])
                exc.result.update(changed=bool(done), actions=done, profile=public(profile),
                                  job=exc.result.get("job") or self.job)
                if self.actions:
                    exc.msg = "%s (written before: %s)" % (exc.msg, ", ".join(self.actions))
                raise
            self.actions.append(action)
            self.job = manager.result["job"] or self.job


def step_body(profile_href, step, sent):
    """The POST of a new step: its fields as the task gives them, the profile's href."""
    body = dict(name=step["name"], profile=profile_href)
    body.update((key, sent.get(key, value)) for key, value in step.items() if key != "name" and value is not None)
    return body


def step_report(ops, current):
    """What happens to each step, in the words of the result's msg: [(name, what)]."""
    recreated = set(op[1] for op in ops if op[0] == "create") & set(current)
    what = {}
    for kind, name, arg in ops:
        if name in recreated:
            what[name] = "recreated (it was ERRORED)"
        elif kind in ("delete", "create"):
            what[name] = kind + "d"
        elif kind == "update":
            what[name] = "updated (%s)" % ", ".join(step_changes(current[name], arg))
        else:
            what.setdefault(name, "updated (order)")
    return list(what.items())


def predicted_steps(current, wanted):
    """The steps as they would be after the task (check mode), in order."""
    steps = []
    for step in wanted:
        old = current.get(step["name"])
        base = dict(old) if old is not None and old.get("status") != "ERRORED" else {}
        base.update((k, v) for k, v in step.items() if v is not None or k in NULLABLE)
        steps.append(base)
    return steps


def shown_steps(client, steps):
    """Steps for a diff: observed fields, in order, targets by name."""
    return [dict(observe_step(step), target=client.name_of(as_href(step.get("target"), "datastores")))
            for step in sorted(steps, key=lambda s: s.get("order") or 0)]


def task_steps(client, given, sizes, datastore, current):
    """The task's steps in observe_step's shape, in order, and what is sent of them by name.
    A target given by name is looked up on the filesystem of the profile's datastore (the one
    the task gives, else the one the profile found has)."""
    wanted, sent, filesystem = [], {}, None
    for position, step in enumerate(given, start=1):
        target = None
        if step["target"]:
            if filesystem is None and "/" not in step["target"]:
                store = datastore or client.get(as_href(current["datastore"], "datastores"))[0]
                filesystem = (store or {}).get("filesystem")
            target = client.resolve("datastores", step["target"], "ILM step %r target" % step["name"],
                                    where=dict(filesystem=filesystem) if filesystem else None)
        one, sent[step["name"]] = desired_step(position, step, sizes[position - 1], target)
        wanted.append(one)
    return wanted, sent


def manage(module, client):
    params = module.params
    name = params["name"]
    label = "profile %r" % name
    manager = ItemManager(module, client, "profiles", "profile", label, observe, mutable=("datastore", "comment", "extras"),
                          references=("datastore",), lookup=lambda: client.find_one("profiles", dict(name=name), label),
                          describe=lambda before, changes: "(%s)" % ", ".join(sorted(changes)))
    manager.result["ilm_steps"] = []
    if params["state"] == "absent":
        return manager.absent(manager.lookup())

    # What the task itself gets wrong fails before any request.
    given = params["ilm_steps"]
    names = [step["name"] for step in given or []]
    repeated = sorted(set(n for n in names if names.count(n) > 1))
    if repeated:
        module.fail_json(msg="%s: ILM step names must be unique within the profile; repeated: %s"
                             % (label, ", ".join(repeated)))
    sizes = [step_sizes(label, step) for step in given or []]
    current = manager.lookup()
    datastore = client.resolve_item("datastores", params["datastore"], "datastore") if params["datastore"] else None
    if current is None and datastore is None:
        module.fail_json(msg="%s does not exist; creating it needs datastore" % label)

    steps = {}
    if current is not None:
        found = client.find("ilmsteps", dict(profile=current["href"]))
        steps = dict((step["name"], step) for step in found)
    wanted, sent = task_steps(client, given or [], sizes, datastore, current)
    ops = plan_steps(steps, wanted) if given is not None else []

    desired = dict(name=name, datastore=datastore["href"] if datastore else None)
    desired.update(desired_notes(params))
    create_body = None
    if current is None:
        create_body = dict((key, value) for key, value in desired.items() if value is not None)
    # Steps that go, go first: a new placement is never checked against steps about to go. Then
    # the profile (made or changed: the steps are checked against it as the server has it), then
    # the other steps. Every write but the last is waited for.
    deletes = [op for op in ops if op[0] == "delete" and op[1] not in set(o[1] for o in ops if o[0] == "create")]
    rest = [op for op in ops if op not in deletes]
    profile_changes = current is None or any(
        value is not None and observe(current).get(key) != value for key, value in desired.items())
    steps_run = Steps(module, client, label, steps, sent)
    if deletes and not module.check_mode:
        steps_run.apply(current, deletes, params["wait"] or bool(rest) or profile_changes)
    manager.wait = params["wait"] or bool(rest)
    result = manager.present(current, desired, create_body)
    before, after = result["diff"]["before"], result["diff"]["after"]
    placement = warn_placement(module, client, label, result, before, after)

    profile_actions, profile_job = list(result["actions"]), result["job"]
    steps_run.actions.extend(profile_actions)
    steps_run.job = profile_job or steps_run.job
    if rest and not module.check_mode:
        steps_run.apply(result["profile"], rest, params["wait"])
    if module.check_mode:
        steps_run.actions = ["%s ilm step %s" % op[:2] for op in deletes] + profile_actions + [
            "%s ilm step %s" % op[:2] for op in rest]
        final = predicted_steps(steps, wanted) if given is not None else list(steps.values())
    elif ops:
        final = client.find("ilmsteps", dict(profile=result["profile"]["href"]))
    else:
        final = list(steps.values())
    result.update(actions=steps_run.actions, changed=bool(steps_run.actions), job=steps_run.job)
    result["ilm_steps"] = sorted([public(step) for step in final], key=lambda s: s.get("order") or 0)
    if placement:
        result["placement_message"] = placement
    if given is not None and getattr(module, "_diff", False):
        before["ilm_steps"] = shown_steps(client, steps.values())
        after["ilm_steps"] = shown_steps(client, result["ilm_steps"])
    if ops:
        verb = "would be " if module.check_mode else ""
        report = step_report(ops, steps)
        result["msg"] = "%s; ILM step%s %s" % (
            result["msg"] if profile_actions else "%s unchanged" % label, "s" if len(report) > 1 else "",
            ", ".join("%s %s%s" % (step_name, verb, what) for step_name, what in report))
    return result


def warn_placement(module, client, label, result, before, after):
    """The job's message about a new placement (new files only), also as a warning; the module's own
    words in check mode or when the job was not waited for."""
    if not before or before.get("datastore") == after.get("datastore"):
        return None
    job = result.get("job") or {}
    message = job.get("message")
    if not message:
        verb = ("would change" if module.check_mode else "changed" if job.get("status")
                else "changes (its job was not waited for)")
        message = ("placement of %s %s from datastore %s to %s: a new placement applies to new files only; files "
                   "already written stay where they are (an ILM migrate step moves them)" % (
                       label, verb, client.name_of(before["datastore"]), client.name_of(after["datastore"])))
    module.warn(message)
    return message


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            datastore=dict(type="str"),
            ilm_steps=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                action=dict(type="str", required=True, choices=["migrate", "delete"]),
                target=dict(type="str"),
                access_days=dict(type="int"),
                modification_days=dict(type="int"),
                min_size=dict(type="str"),
                max_size=dict(type="str"),
                name_patterns=dict(type="list", elements="str"),
                threshold_high=dict(type="int"),
                threshold_low=dict(type="int"),
                **notes_argument_spec()
            )),
            **notes_argument_spec()
        ),
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
