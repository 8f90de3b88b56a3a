"""Space sizes at the API: a size below storage.min_size is refused with the unit the user
probably meant, and a resize below the space's measured `used` needs ?force=true."""
import pytest

from tests.harness import CJ, Server, cj_body, data_of, wait_status

MIB, GIB = 1 << 20, 1 << 30


def error_of(resp):
    return resp.json()["collection"]["error"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A server whose minimum is the default 1 MiB, and the refs a space needs."""
    srv = Server(tmp_path_factory.mktemp("sizes")).start()
    session = srv.session()

    def first(collection, where):
        resp = session.get(srv.url + f"/{collection}/", params={"where": where})
        return resp.json()["collection"]["items"][0]["href"]
    refs = dict(profile=first("profiles", '{"name": "mmfs1-sas1"}'),
                exposers=first("exposers", '{"name": "mmfs1", "type": "gpfsnative"}'))
    yield srv, session, refs
    srv.stop()


def post_space(env, name, size):
    srv, session, refs = env
    return session.post(srv.url + "/spaces/", json=cj_body(name=name, relativepath=f"projects/{name}",
                                                          size=size, **refs), headers=CJ)


def active_space(env, name, size):
    resp = post_space(env, name, size)
    assert resp.status_code == 202, resp.text
    assert wait_status(env[1], resp.headers["Location"]) == "ACTIVE"
    return resp.json()["collection"]["items"][0]["href"]


@pytest.mark.parametrize("size, meant", [
    (4, "4GiB"),            # a bare 4 meant 4 GiB
    (1, "1GiB"),
    (1000, "1000GiB"),      # 1000 MiB is still below 1 GiB
    (2000, "2000MiB"),      # the smallest unit that makes it at least 1 GiB
    (600000, "600000MiB"),
])
def test_a_size_below_the_minimum_is_refused_naming_the_unit_meant(env, size, meant):
    resp = post_space(env, f"small-{size}", size)
    assert resp.status_code == 422, resp.text
    assert error_of(resp)["details"] == {"size": f"{size} bytes is below the minimum space size of 1MiB "
                                                 f"(1048576 bytes); a size without a unit is bytes: did you mean "
                                                 f"{meant}?"}
    srv, session, _ = env
    assert session.get(srv.url + "/spaces/", params={"where": f'{{"name": "small-{size}"}}'}).json()[
        "collection"]["items"] == []


def test_the_minimum_itself_is_accepted_and_a_resize_below_it_is_refused(env):
    srv, session, _ = env
    href = active_space(env, "at-minimum", MIB)
    resp = session.patch(srv.url + href, json={"size": MIB - 1})
    assert resp.status_code == 422, resp.text
    assert error_of(resp)["details"]["size"].startswith("1048575 bytes is below the minimum space size of 1MiB")
    assert data_of(session.get(srv.url + href).json())["size"] == MIB


def test_the_minimum_is_configurable(tmp_path):
    srv = Server(tmp_path, env={"PIXSTOR_STORAGE_MIN_SIZE": str(GIB)}).start()
    try:
        session = srv.session()
        refs = {field: session.get(srv.url + f"/{c}/", params={"where": w}).json()["collection"]["items"][0]["href"]
                for field, c, w in (("profile", "profiles", '{"name": "mmfs1-sas1"}'),
                                    ("exposers", "exposers", '{"type": "gpfsnative"}'))}
        resp = session.post(srv.url + "/spaces/", json=cj_body(name="half", relativepath="projects/half",
                                                              size=512 * MIB, **refs), headers=CJ)
        assert resp.status_code == 422, resp.text
        # 512 MiB in bytes is no forgotten unit: nothing to suggest
        assert error_of(resp)["details"]["size"] == ("536870912 bytes is below the minimum space size of 1GiB "
                                                     "(1073741824 bytes)")
        resp = session.post(srv.url + "/spaces/", json=cj_body(name="one", relativepath="projects/one",
                                                              size=GIB, **refs), headers=CJ)
        assert resp.status_code == 202, resp.text
    finally:
        srv.stop()


def test_shrinking_below_the_measured_use_needs_force(env):
    srv, session, _ = env
    href = active_space(env, "full", 8 * MIB)
    space = data_of(session.get(srv.url + href).json())
    (srv.mountpoint / "projects" / "full" / "data.bin").write_bytes(b"x" * (3 * MIB))
    measured = srv.cli("usage").stdout
    assert f"sas1-full\t{3 * MIB}" in measured.splitlines(), measured
    assert data_of(session.get(srv.url + href).json())["used"] == 3 * MIB

    resp = session.patch(srv.url + href, json={"size": 2 * MIB})
    assert resp.status_code == 409, resp.text
    assert error_of(resp)["message"] == (f"space full uses {3 * MIB} bytes (3MiB, as last measured): a size of "
                                         f"{2 * MIB} bytes (2MiB) is below that; nothing was changed; resize "
                                         "with ?force=true to shrink it anyway")
    assert error_of(resp)["details"] == {"size": f"below the {3 * MIB} bytes used"}
    after = data_of(session.get(srv.url + href).json())
    assert (after["size"], after["status"]) == (space["size"], "ACTIVE")

    # shrinking, but not below the use, needs no force
    resp = session.patch(srv.url + href, json={"size": 4 * MIB})
    assert resp.status_code == 202, resp.text
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    assert data_of(session.get(srv.url + href).json())["size"] == 4 * MIB

    resp = session.patch(srv.url + href, params={"force": "true"}, json={"size": 2 * MIB})
    assert resp.status_code == 202, resp.text
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    assert data_of(session.get(srv.url + href).json())["size"] == 2 * MIB
