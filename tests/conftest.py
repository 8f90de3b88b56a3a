pytest_plugins = ["tests.btrfs_fixture"]

import pytest

from tests.harness import Server, postgres_database, redis_queue, require


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



def _outside(made):
    """Yield the url of a server made for the test, clean up after it (skip, or fail in CI, without it)."""
    url, cleanup = made     # (url, cleanup), or (None, why not)
    require(url, cleanup)
    yield url
    cleanup()


@pytest.fixture
def postgres():
    """A fresh PostgreSQL database's url."""
    yield from _outside(postgres_database())


@pytest.fixture
def redis_url():
    """A Redis queue url on a database of this run's own."""
    yield from _outside(redis_queue())
