# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Fixtures for the collection's unit tests: the strict fake HTTP session, the
fake clock and a runner for module main() functions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# From the repo root, `ansible_collections.pixstor.mgmt` resolves once the folder
# holding `ansible_collections/` is importable (ansible-test units does this itself).
_ROOT = str(Path(__file__).resolve().parents[5])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from ansible.module_utils import basic  # noqa: E402  pylint: disable=wrong-import-position

try:
    from ansible.module_utils.testing import patch_module_args  # pylint: disable=wrong-import-position
except ImportError:     # ansible-core < 2.19: modules read their arguments from basic._ANSIBLE_ARGS
    import contextlib
    import json
    from unittest.mock import patch

    @contextlib.contextmanager
    def patch_module_args(args):
        with patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8")):
            yield

from ansible_collections.pixstor.mgmt.plugins.module_utils import pixstor as pixstor_utils  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.pixstor.mgmt.tests.unit.pixstor_fakes import (  # noqa: E402  pylint: disable=wrong-import-position
    BASE, FakeClock, FakeSession,
)


UNSET = object()


class ExitJson(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class FailJson(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


# Fixtures -----------------------------------------------------------------------

@pytest.fixture(autouse=True)
def token_cache_dir(monkeypatch, tmp_path):
    """A token cache folder of each test's own (not made yet), so that a developer's real
    cache or PIXSTOR_TOKEN_CACHE never changes an outcome."""
    folder = tmp_path / "cache" / "tokens"
    monkeypatch.setenv("PIXSTOR_TOKEN_CACHE_DIR", str(folder))
    monkeypatch.delenv("PIXSTOR_TOKEN_CACHE", raising=False)
    return folder


@pytest.fixture
def http(monkeypatch):
    fake = FakeSession()
    monkeypatch.setattr(pixstor_utils.requests, "Session", lambda: fake)
    yield fake
    if fake.queue:
        pytest.fail("answers queued but never requested: %s" % ", ".join(
            "%s %s" % (want["method"], want["path"]) for want in fake.queue))


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(pixstor_utils, "time", fake)
    return fake


@pytest.fixture
def run_module(monkeypatch, clock):
    """run_module(main, args, check_mode=False, diff=False) -> ('exit'|'fail', result)."""

    warnings = []

    def exit_json(self, **kwargs):
        raise ExitJson(dict(kwargs, warnings=list(warnings)))

    def fail_json(self, **kwargs):
        raise FailJson(dict(kwargs, warnings=list(warnings)))

    def warn(self, warning, **kwargs):
        warnings.append(warning)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)

    def run(main, args, check_mode=False, diff=False):
        """`args` with the value UNSET leave an option out, so that its environment fallback applies."""
        args = dict(dict(url=BASE, token="t0k3n"), **args)
        args = dict((key, value) for key, value in args.items() if value is not UNSET)
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args):
            try:
                main()
            except ExitJson as exc:
                return "exit", exc.result
            except FailJson as exc:
                return "fail", exc.result
        pytest.fail("the module returned without exit_json or fail_json")

    run.UNSET = UNSET
    return run
