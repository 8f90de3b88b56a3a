"""An unavailable database or queue: 503 with Retry-After and a C+J error, never 500; a write
that was committed and queued is answered 202 whatever happens after; a PATCH or DELETE that
cannot be queued leaves its item as it was; everything recovers by itself.

PostgreSQL and Redis are reached through a TCP proxy that the tests cut (connections dropped,
new ones refused: what a restart looks like to a client) and restore, and that can hold the
reply to a client's command while the test makes something happen."""
import contextlib
import os
import socket
import sqlite3
import threading
import time

import psycopg2
import pytest
import requests

from tests.harness import CJ, Server, cj_body, data_of, free_port, wait_for, wait_status

QUICK = {"PIXSTOR_QUEUE_REQUEUE_AFTER": "2", "PIXSTOR_QUEUE_HEARTBEAT": "1", "PIXSTOR_QUEUE_STALE_AFTER": "3"}


class Proxy:
    """127.0.0.1:`port` forwarded to 127.0.0.1:`upstream`."""

    def __init__(self, upstream):
        self.upstream, self.port = upstream, free_port()
        self.lock = threading.Lock()
        self.pairs, self.hold, self.listener = set(), None, None
        self.restore()

    def restore(self):
        """Accept connections again."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self):
        """Refuse new connections and drop the open ones."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            pairs, self.pairs = list(self.pairs), set()
        for pair in pairs:
            _close(pair)

    def hold_reply(self, command, then):
        """The next time a client sends `command`, call `then()` before its reply goes back."""
        self.hold = (command, then)

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            pair, held = (client, server), []
            with self.lock:
                self.pairs.add(pair)
            for source, sink, asking in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, pair, held, asking), daemon=True).start()

    def _pump(self, source, sink, pair, held, asking):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if asking and self.hold and self.hold[0] in data:
                    held.append(self.hold[1])
                    self.hold = None
                elif not asking and held:
                    held.pop()()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(pair)
            with self.lock:
                self.pairs.discard(pair)


def _close(pair):
    for sock in pair:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _proxied(url, proxy):
    return url.replace(f":{proxy.upstream}/", f":{proxy.port}/")


def _unavailable(answer, retry_after):
    """503, Retry-After, a C+J error document."""
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["Retry-After"] == retry_after
    assert answer.headers["Content-Type"] == "application/vnd.collection+json"
    error = answer.json()["collection"]["error"]
    assert error["code"] == 503 and error["title"] == "Error"
    return error["message"]


def _refs(session, url):
    return {field: session.get(url + f"/{collection}/", params={"where": where}).json()
            ["collection"]["items"][0]["href"]
            for field, collection, where in (("profile", "profiles", '{"name": "mmfs1-sas1"}'),
                                             ("exposers", "exposers", '{"type": "gpfsnative"}'))}


def _space(session, url, name, refs):
    answer = session.post(url + "/spaces/", headers=CJ, json=cj_body(
        name=name, relativepath=f"p/{name}", size=1 << 30, **refs))
    assert answer.status_code == 202, answer.text
    return answer


def _active_space(session, url, name):
    """(the references it was made with, its href) of a new ACTIVE space."""
    refs = _refs(session, url)
    href = _space(session, url, name, refs).headers["Location"].split("?")[0]
    assert wait_status(session, href) == "ACTIVE"
    return refs, href


def _item(session, url):
    """An item's data and ETag, to compare before and after."""
    answer = session.get(url)
    assert answer.status_code == 200, answer.text
    return data_of(answer.json()), answer.headers["ETag"]


# SQLite -----------------------------------------------------------------------------------

def test_an_unopenable_or_locked_sqlite_database_is_503_then_recovers(tmp_path):
    srv = Server(tmp_path, env={"PIXSTOR_SERVER_QUERY_BUDGET": "1"}).start()
    try:
        session = srv.session()
        refs, href = _active_space(session, srv.url, "before")
        path = tmp_path / "var" / "pixstor.db"

        # the file replaced by a folder: it cannot be opened
        os.rename(path, tmp_path / "var" / "away.db")
        os.mkdir(path)
        try:
            for answer in (session.get(href), session.get(srv.url + "/jobs/"),
                           session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
                               name="during", relativepath="p/during", size=1 << 30, **refs)),
                           requests.post(srv.url + "/oauth2/token", data={
                               "grant_type": "password", "username": "admin", "password": srv.admin_password})):
                assert "the database is unavailable" in _unavailable(answer, "5")
        finally:
            os.rmdir(path)
            os.rename(tmp_path / "var" / "away.db", path)
        assert _item(session, href)[0]["status"] == "ACTIVE"

        # locked out: another process holds the database's write lock. The API keeps a connection
        # per request thread, so reads go on (WAL) and no process can lock the readers out; a
        # write waits twice the query budget for the lock, then answers 503
        holder = sqlite3.connect(path, timeout=0, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            start = time.monotonic()
            assert "the database is unavailable" in _unavailable(session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
                name="locked", relativepath="p/locked", size=1 << 30, **refs)), "5")
            assert time.monotonic() - start < 5      # twice the query budget of 1 s, and a margin
            assert _item(session, href)[0]["status"] == "ACTIVE"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        answer = _space(session, srv.url, "after", refs)
        assert wait_status(session, answer.headers["Location"]) == "ACTIVE"
        assert "Traceback" not in srv.log()
    finally:
        srv.stop()


# PostgreSQL + Redis -------------------------------------------------------------------------

@pytest.fixture
def proxied(tmp_path, postgres, redis_url):
    """An API process and a standalone worker on PostgreSQL and Redis, each behind a proxy."""
    database, queue = Proxy(5432), Proxy(6379)
    srv = Server(tmp_path, database=_proxied(postgres, database), queue=_proxied(redis_url, queue),
                 worker=False, env=QUICK).start()
    srv.database, srv.queue, srv.direct_database = database, queue, postgres
    try:
        with srv.standalone_worker() as worker:
            srv.worker_process = worker
            yield srv
    finally:
        srv.stop()
        for proxy in (database, queue):
            proxy.cut()


def test_postgresql_down_is_503_and_recovers(proxied):
    srv = proxied
    session = srv.session()
    refs, href = _active_space(session, srv.url, "before")
    srv.database.cut()
    try:
        for answer in (session.get(href), session.patch(href, json={"size": 2 << 30}),
                       session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
                           name="during", relativepath="p/during", size=1 << 30, **refs))):
            assert "the database is unavailable" in _unavailable(answer, "5")
    finally:
        srv.database.restore()
    wait_for(lambda: session.get(href).status_code == 200, timeout=10, what="the API to recover")
    answer = _space(session, srv.url, "after", refs)
    assert wait_status(session, answer.headers["Location"], timeout=30) == "ACTIVE"     # the worker too
    assert session.get(srv.url + "/spaces/", params={"where": '{"name": "during"}'}).headers["X-Total-Count"] == "0"
    assert "Traceback" not in srv.log()


def test_a_write_committed_and_queued_is_202_when_the_database_goes_after(proxied):
    """PostgreSQL goes away between the queueing and the answer (the API re-reads the item for
    it): seen answering 500 to POSTs whose jobs then ran. Now 202; the job runs once it is back."""
    srv = proxied
    session = srv.session()
    refs = _refs(session, srv.url)
    srv.queue.hold_reply(b"LPUSH", srv.database.cut)
    answer = session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
        name="raced", relativepath="p/raced", size=1 << 30, **refs))
    assert answer.status_code == 202, answer.text
    assert data_of(answer.json())["status"] == "PENDING"
    assert answer.headers["Location"].endswith('?projection={"status":1}') and answer.links["job"]
    srv.database.restore()
    assert wait_status(session, answer.headers["Location"], timeout=30) == "ACTIVE"


def test_a_delete_whose_job_finished_before_the_answer_is_202(proxied):
    srv = proxied
    session = srv.session()
    _, href = _active_space(session, srv.url, "quick")
    item_id = href.rsplit("/", 1)[1]

    def gone():     # asked straight, not through the proxy
        with psycopg2.connect(srv.direct_database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM space WHERE id = %s", (item_id,))
            return cursor.fetchone()[0] == 0
    srv.queue.hold_reply(b"LPUSH", lambda: wait_for(gone, timeout=30, what="the delete job to finish"))
    answer = session.delete(href)
    assert answer.status_code == 202, answer.text
    assert data_of(answer.json())["id"] == item_id
    assert session.get(href).status_code == 404


def test_a_patch_or_delete_that_cannot_be_queued_leaves_the_item_as_it_was(proxied):
    srv = proxied
    session = srv.session()
    refs, href = _active_space(session, srv.url, "steady")
    jobs = srv.url + "/jobs/?where=" + '{"resource_id": "%s"}' % href.rsplit("/", 1)[1]
    before, jobs_before = _item(session, href), session.get(jobs).json()
    srv.queue.cut()
    try:
        for answer in (session.patch(href, json={"size": 2 << 30}), session.delete(href, params={"force": "true"})):
            message = _unavailable(answer, "30")
            assert "could not queue the job" in message and f"{href.split(srv.url)[1]} is as it was" in message
            assert _item(session, href) == before
            assert session.get(jobs).json() == jobs_before
        # a create that cannot be queued is ERRORED, and a POST of the same retries it
        created = session.post(srv.url + "/spaces/", headers=CJ, json=cj_body(
            name="later", relativepath="p/later", size=1 << 30, **refs))
        assert "is ERRORED" in _unavailable(created, "30")
    finally:
        srv.queue.restore()
    resize = session.patch(href, json={"size": 2 << 30})
    assert resize.status_code == 202, resize.text
    assert wait_status(session, href, timeout=30) == "ACTIVE"
    assert _item(session, href)[0]["size"] == 2 << 30
    retried = _space(session, srv.url, "later", refs)
    assert wait_status(session, retried.headers["Location"], timeout=30) == "ACTIVE"
