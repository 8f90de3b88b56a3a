#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_info
short_description: Read spaces, templates, snapshots, profiles, exposers, datastores and jobs from PixStor
version_added: 0.1.0
description:
  - Lists items of the PixStor Management REST API as plain dictionaries (C+J data fields by name, plus
    C(href) and C(links)). Reads only; never reports a change.
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  gather:
    description:
      - Which collections to read. V(all) reads every one, jobs included.
    type: list
    elements: str
    choices: [all, spaces, templates, snapshots, profiles, exposers, datastores, jobs]
    default: [spaces, templates, snapshots, profiles, exposers, datastores]
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
  description: Snapshots (C(id), C(name), C(type), C(space), C(exposer), C(path), C(status), ...).
  returned: when gathered
  type: list
  elements: dict
profiles:
  description: Profiles (C(id), C(name), C(datastore), ...).
  returned: when gathered
  type: list
  elements: dict
exposers:
  description: Exposers (C(id), C(name), C(type), C(mountpoint), ...).
  returned: when gathered
  type: list
  elements: dict
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

SUBSETS = ["spaces", "templates", "snapshots", "profiles", "exposers", "datastores", "jobs"]


def manage(module, client):
    gather = module.params["gather"]
    subsets = SUBSETS if "all" in gather else [s for s in SUBSETS if s in gather]
    result = dict(changed=False)
    for subset in subsets:
        result[subset] = client.find(subset, module.params["where"])
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
