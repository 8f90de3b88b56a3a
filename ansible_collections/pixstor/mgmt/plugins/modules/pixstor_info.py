#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_info
short_description: Read spaces, templates, snapshots, snapshot policies, profiles, ILM steps, exposers, datastores and jobs from PixStor
version_added: 0.1.0
description:
  - Lists items of the PixStor Management REST API as plain dictionaries (C+J data fields by name, plus
    C(href) and C(links)). Reads only; never reports a change.
  - Exposers are also returned grouped by type in RV(exposers_by_type), the filesystems' V(gpfsnative) exposers
    apart from the NFS exports (V(nfs)) and the SMB shares (V(cifs)).
  - When both profiles and ILM steps are gathered, each profile also lists its steps by their C(order), in
    C(ilm_steps).
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  gather:
    description:
      - Which collections to read. V(all) reads every one, jobs included.
    type: list
    elements: str
    choices: [all, spaces, templates, snapshots, snapshotpolicies, profiles, ilmsteps, exposers, datastores, jobs]
    default: [spaces, templates, snapshots, snapshotpolicies, profiles, ilmsteps, exposers, datastores]
    aliases: [gather_subset]
  where:
    description:
      - >-
        Filter applied to every gathered collection, as the API's Mongo-style C(where) query, for example
        V({"name": "sleepy-snake"}) or V({"status": {"$ne": "ACTIVE"}}).
      - >-
        References may be given by id or href, for example V({"profile": "/profiles/<id>"}).
      - A field a collection does not have is an error of the API (HTTP 400), so filter one collection at a time
        unless the field is common (C(id), C(name), C(status)).
    type: dict
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.attributes
attributes:
  diff_mode:
    description: Reads only, so there is never a difference to show.
    support: none
seealso:
  - module: pixstor.mgmt.pixstor_space
  - module: pixstor.mgmt.pixstor_profile
"""

EXAMPLES = r"""
- name: Find the profiles and exposers a new space can use
  pixstor.mgmt.pixstor_info:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    gather: [profiles, exposers]
  register: pixstor

- name: Show the names of the profiles
  ansible.builtin.debug:
    msg: "{{ pixstor.profiles | map(attribute='name') }}"

- name: List the NFS exports and SMB shares
  pixstor.mgmt.pixstor_info:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    gather: [exposers]
  register: pixstor

- name: Show which directories are exported, and to whom
  ansible.builtin.debug:
    msg: "{{ pixstor.exposers_by_type.nfs | items2dict(key_name='path', value_name='clients') }}"

- name: Read the profiles with their ILM steps
  pixstor.mgmt.pixstor_info:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    gather: [profiles, ilmsteps]
  register: pixstor

- name: Show what each step of profile render does, in order
  ansible.builtin.debug:
    msg: "{{ (pixstor.profiles | selectattr('name', '==', 'render') | first).ilm_steps | map(attribute='action') }}"

- name: List the spaces of project code SNK (a key of their extras)
  pixstor.mgmt.pixstor_info:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    gather: [spaces]
    where:
      extras.project_code: SNK
  register: snake

- name: List spaces that are not ACTIVE
  pixstor.mgmt.pixstor_info:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    gather: [spaces]
    where:
      status:
        $ne: ACTIVE
  register: unhealthy
"""

RETURN = r"""
spaces:
  description: Spaces (C(id), C(name), C(status), C(size), C(used), C(fileset), C(path), C(profile), ...).
  returned: when gathered
  type: list
  elements: dict
  sample: [{"name": "sleepy-snake", "size": 4294967296, "status": "ACTIVE", "href": "/spaces/de95cf28-fdf9-5455-b1d9-831cf8a1869b"}]
templates:
  description: Templates (C(id), C(name), C(type), C(status), ...).
  returned: when gathered
  type: list
  elements: dict
snapshots:
  description:
    - Snapshots (C(id), C(name), C(type), C(space), C(exposer), C(path), C(status), C(expires), C(policy), ...).
  returned: when gathered
  type: list
  elements: dict
snapshotpolicies:
  description:
    - Snapshot policies (C(id), C(name), C(schedule), C(prefix), C(retain_count), C(retain_duration), C(comment), ...).
      A space lists the policies that apply to it in its C(snapshot_policies).
  returned: when gathered
  type: list
  elements: dict
  sample: [{"name": "hourly", "schedule": "0 * * *", "prefix": "hourly", "retain_count": 24, "retain_duration": null}]
  version_added: 0.3.0
profiles:
  description:
    - Profiles (C(id), C(name), C(datastore), C(comment), C(extras), ...).
    - When ILM steps are gathered too, each profile has C(ilm_steps), the gathered steps of the profile by C(order).
  returned: when gathered
  type: list
  elements: dict
  sample: [{"name": "render", "datastore": "/datastores/487196a0-69b0-5160-8164-3b49abaa0859",
            "ilm_steps": [{"name": "scratch", "order": 1, "action": "delete", "modification_days": 7}]}]
ilmsteps:
  description:
    - ILM steps of every profile (C(id), C(name), C(profile), C(order), C(action), C(target), C(access_days),
      C(modification_days), C(min_size), C(max_size), C(name_patterns), C(threshold_high), C(threshold_low), ...).
  returned: when gathered
  type: list
  elements: dict
  version_added: 0.3.0
exposers:
  description:
    - Exposers of every type (C(id), C(name), C(type), C(path), C(status), ...). A V(gpfsnative) exposer has the
      C(mountpoint) of its filesystem; an V(nfs) one its C(clients) and C(export_id); a V(cifs) one its share
      settings (C(read_only), C(valid_users), ...).
  returned: when gathered
  type: list
  elements: dict
exposers_by_type:
  description:
    - The exposers of RV(exposers), grouped by C(type). The keys V(gpfsnative), V(nfs) and V(cifs) are always there
      (an empty list when there is none); a type the server adds later gets its own key.
  returned: when exposers are gathered
  type: dict
  version_added: 0.3.0
  contains:
    gpfsnative:
      description: One per filesystem, made by the server (C(mountpoint) is the filesystem's).
      type: list
      elements: dict
    nfs:
      description: NFS exports (see M(pixstor.mgmt.pixstor_exposer)).
      type: list
      elements: dict
    cifs:
      description: SMB shares (see M(pixstor.mgmt.pixstor_exposer)).
      type: list
      elements: dict
  sample: {"gpfsnative": [{"name": "mmfs1", "type": "gpfsnative", "mountpoint": "/mmfs1"}],
           "nfs": [{"name": "sleepy-snake", "type": "nfs", "path": "/mmfs1/projects/sleepy_snake"}], "cifs": []}
datastores:
  description: Datastores (C(id), C(name), C(pool), C(filesystem), ...).
  returned: when gathered
  type: list
  elements: dict
jobs:
  description: Jobs (C(id), C(action), C(resource_type), C(resource_id), C(status), C(created), C(finished), ...).
  returned: when gathered
  type: list
  elements: dict
"""

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import pixstor_module, run_module

SUBSETS = ["spaces", "templates", "snapshots", "snapshotpolicies", "profiles", "ilmsteps", "exposers", "datastores", "jobs"]
EXPOSER_TYPES = ["gpfsnative", "nfs", "cifs"]


def by_type(items):
    """{type: [items]}, every known type present, in the order read."""
    grouped = dict((kind, []) for kind in EXPOSER_TYPES)
    for item in items:
        grouped.setdefault(item.get("type"), []).append(item)
    return grouped


def with_steps(profiles, steps):
    """Each profile with its steps in order, under `ilm_steps`."""
    grouped = {}
    for step in sorted(steps, key=lambda s: s.get("order") or 0):
        grouped.setdefault(step.get("profile"), []).append(step)
    return [dict(profile, ilm_steps=grouped.get(profile["href"], [])) for profile in profiles]


def manage(module, client):
    gather = module.params["gather"]
    subsets = SUBSETS if "all" in gather else [s for s in SUBSETS if s in gather]
    result = dict(changed=False)
    for subset in subsets:
        result[subset] = client.find(subset, module.params["where"])
    if "exposers" in result:
        result["exposers_by_type"] = by_type(result["exposers"])
    if "profiles" in result and "ilmsteps" in result:
        result["profiles"] = with_steps(result["profiles"], result["ilmsteps"])
    return result


def main():
    module = pixstor_module(
        dict(
            gather=dict(type="list", elements="str", aliases=["gather_subset"],
                        choices=["all"] + SUBSETS, default=SUBSETS[:-1]),
            where=dict(type="dict"),
        ),
        managed=False,
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
