pytest_plugins = ["tests.btrfs_fixture"]

import pytest

from tests.harness import Server


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a module's read-mostly tests."""
    srv = Server(tmp_path_factory.mktemp("srv")).start()
    yield srv
    srv.stop()
