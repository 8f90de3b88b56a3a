#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: pixstor_template
short_description: Build and delete PixStor space templates
version_added: 0.1.0
description:
  - Makes sure a template (a directory layout with files, permissions and dependent filesets, copied into
    each space created with it) exists, or does not exist.
  - Creating a template starts a builder job that copies the model at O(template_location) into the template
    store. Once built, the template's content is fixed; later changes to the model do not reach it, and the
    API reads C(template_location) back as null.
  - A template is present when a template of that O(name) exists. Its content is never compared with the
    model, so a second run reports no change. To rebuild from a changed model, remove the template and
    create it again (spaces already created keep their content).
author:
  - pixstor-mgmt contributors (@pixstor-mgmt)
options:
  name:
    description:
      - Name of the template. Letters, digits, V(-) and V(_) only.
    type: str
    required: true
  type:
    description:
      - Kind of template.
    type: str
    choices: [filesystemtemplate]
    default: filesystemtemplate
  template_location:
    description:
      - Path of the model to build the template from, on the server, for example V(/mmfs1/project_template).
      - Required to create a template; not compared once it exists.
    type: str
extends_documentation_fragment:
  - pixstor.mgmt.pixstor
  - pixstor.mgmt.pixstor.state
  - pixstor.mgmt.pixstor.attributes
seealso:
  - module: pixstor.mgmt.pixstor_space
"""

EXAMPLES = r"""
- name: Build the project template from its model
  pixstor.mgmt.pixstor_template:
    url: https://pixstor.example.com
    username: admin
    password: "{{ pixstor_password }}"
    name: project_template
    template_location: /mmfs1/project_template

- name: Remove the template
  pixstor.mgmt.pixstor_template:
    url: https://pixstor.example.com
    token: "{{ pixstor_token }}"
    name: project_template
    state: absent
"""

RETURN = r"""
template:
  description:
    - The template as the API reports it after the task, data fields by name.
    - Empty after O(state=absent). In check mode, the predicted fields of a template that would be created.
  returned: always
  type: dict
  contains:
    id:
      description: Unique identifier of the template.
      type: str
      sample: e00e872b-f4c5-2557-795d-4ccf4715b602
    href:
      description: Path of the template in the API.
      type: str
      sample: /templates/e00e872b-f4c5-2557-795d-4ccf4715b602
    name:
      description: Name of the template.
      type: str
      sample: project_template
    type:
      description: Kind of template.
      type: str
      sample: filesystemtemplate
    status:
      description: V(NEW), V(PENDING), V(INPROGRESS), V(ACTIVE) or V(ERRORED).
      type: str
      sample: ACTIVE
    template_location:
      description: Null once the template is built.
      type: str
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
  description: The builder or deletion job, when there was one (C(href), and C(status) once waited for).
  returned: always
  type: dict
  sample: {"href": "/jobs/407ee461-5cc1-43e5-8f3e-a375f8f9b9c8", "status": "COMPLETED"}
"""

from ansible_collections.pixstor.mgmt.plugins.module_utils.pixstor import ItemManager, pixstor_module, run_module


def observe(item):
    return dict(name=item.get("name"), type=item.get("type"))


def manage(module, client):
    params = module.params
    label = "template %r" % params["name"]
    manager = ItemManager(module, client, "templates", "template", label, observe,
                          lookup=lambda: client.find_one("templates", dict(name=params["name"]), label))
    current = manager.lookup()
    if params["state"] == "absent":
        return manager.absent(current)
    if current is None and not params["template_location"]:
        module.fail_json(msg="%s does not exist; creating it needs template_location, the path of its model"
                             % label)
    desired = dict(name=params["name"], type=params["type"])
    create_body = dict(desired, template_location=params["template_location"])
    return manager.present(current, desired, create_body)


def main():
    module = pixstor_module(
        dict(
            name=dict(type="str", required=True),
            type=dict(type="str", default="filesystemtemplate", choices=["filesystemtemplate"]),
            template_location=dict(type="str"),
        ),
    )
    run_module(module, lambda client: manage(module, client))


if __name__ == "__main__":
    main()
