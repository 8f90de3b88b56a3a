# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""The reference cache: a name resolved by one task is an href for the next without a request,
until the caller finds it unconfirmed and forgets it."""

from __future__ import annotations

from ansible_collections.pixstor.mgmt.plugins.module_utils import pixstor as pu
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import FakeModule, cj_doc, cj_item


def new_client(**params):
    client = pu.PixstorClient(FakeModule(**params))
    client.login()
    return client


def test_a_name_resolved_once_is_remembered_by_later_clients_until_forgotten(http, clock):
    http.expect("GET", "/profiles/", where={"name": "mmfs1-sas1"}, json_body=cj_doc(cj_item("profiles", "p1")))
    first = new_client()
    assert first.resolve("profiles", "mmfs1-sas1", "profile", remembered=True) == "/profiles/p1"
    assert not first.used_remembered
    second = new_client()       # another task: no request
    assert second.resolve("profiles", "mmfs1-sas1", "profile", remembered=True) == "/profiles/p1"
    assert second.used_remembered and len(http.calls) == 1
    # the caller found it unconfirmed (the profile was made again under a new id)
    second.forget_remembered()
    http.expect("GET", "/profiles/", where={"name": "mmfs1-sas1"}, json_body=cj_doc(cj_item("profiles", "p2")))
    assert second.resolve("profiles", "mmfs1-sas1", "profile", remembered=True) == "/profiles/p2"
    assert new_client().resolve("profiles", "mmfs1-sas1", "profile", remembered=True) == "/profiles/p2"
    assert len(http.calls) == 2


def test_the_where_is_part_of_the_name_and_hrefs_are_never_remembered(http, clock):
    http.expect("GET", "/exposers/", where={"name": "mmfs1", "type": "gpfsnative"},
                json_body=cj_doc(cj_item("exposers", "e1")))
    assert new_client().resolve("exposers", "mmfs1", "exposer", where={"type": "gpfsnative"},
                                remembered=True) == "/exposers/e1"
    http.expect("GET", "/exposers/", where={"name": "mmfs1"}, json_body=cj_doc(cj_item("exposers", "e2")))
    assert new_client().resolve("exposers", "mmfs1", "exposer", remembered=True) == "/exposers/e2"
    http.expect("GET", "/exposers/e1", json_body=cj_doc(cj_item("exposers", "e1")))
    assert new_client().resolve("exposers", "/exposers/e1", "exposer", remembered=True) == "/exposers/e1"
    assert len(http.calls) == 3


def test_token_cache_false_remembers_nothing(http, clock):
    for task in range(2):
        http.expect("GET", "/profiles/", where={"name": "mmfs1-sas1"}, json_body=cj_doc(cj_item("profiles", "p1")))
        client = new_client(token_cache=False)
        assert client.resolve("profiles", "mmfs1-sas1", "profile", remembered=True) == "/profiles/p1"
        assert not client.used_remembered
        assert len(http.calls) == task + 1


def test_a_name_resolved_by_this_task_is_not_taken_from_the_cache_again(http, clock):
    """A list naming an item twice: the second is the first's answer, not a remembered one (which
    would have the caller confirm and resolve everything again)."""
    http.expect("GET", "/snapshotpolicies/", where={"name": "hourly"},
                json_body=cj_doc(cj_item("snapshotpolicies", "q1")))
    client = new_client()
    for name in ("hourly", "hourly"):
        assert client.resolve("snapshotpolicies", name, "policy", remembered=True) == "/snapshotpolicies/q1"
    assert (client.used_remembered, len(http.calls)) == (False, 1)
