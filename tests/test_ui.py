"""The browsable admin view (issue 16) in a real headless Chromium, driven by Selenium, against
a real server and worker: sign in, forms derived from the C+J template, jobs watched to the
end on their pages, the API's 422 beside the field, roles, CSRF, sign-out; and the C+J
answers untouched by content negotiation.

Screenshots (dashboard.png, spaces.png, failed-job.png) are saved in pytest's temporary folder
(`ui-screenshots0/`), and also into $PIXSTOR_UI_SCREENSHOTS when it is set (docs/ui holds the
ones the README shows)."""
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from service.ui.negotiation import prefers_html
from tests.harness import CJ, Server, cj_body, data_of, make_model, require, wait_status

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
WAIT = 20       # seconds any one thing may take to show


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("ui-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(srv):
    session = srv.session()
    refs = {}
    for name in ("profiles", "exposers"):
        items = session.get(srv.url + f"/{name}/").json()["collection"]["items"]
        refs[name] = {data_of({"collection": {"items": [i]}})["name"]: i["href"] for i in items}
    return session, refs


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Debian's chromium and chromium-driver)."""
    require(os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK),
            f"{CHROMIUM} and {CHROMEDRIVER} are needed (make system-packages installs chromium and chromium-driver)")
    profile = tempfile.mkdtemp(prefix="ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _gone(element):
    """Has the page `element` was on been replaced? (selenium's staleness_of, plus Chromium's
    answer while it swaps documents: the node "does not belong to the document".)"""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


class Page:
    """The browser on the server under test."""

    def __init__(self, driver, srv, shots):
        self.driver, self.srv, self.shots = driver, srv, shots

    def go(self, path):
        self.driver.get(self.srv.url + path)

    def path(self):
        return self.driver.current_url.removeprefix(self.srv.url)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def absent(self, css):
        with pytest.raises(NoSuchElementException):
            self.find(css)

    def text(self, css):
        return self.find(css).text

    def wait(self, what, check, timeout=WAIT):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(lambda _: check(), message=what)

    def wait_text(self, css, wanted, timeout=WAIT):
        """Poll until the element's text is `wanted` (no reload: the page refreshes itself)."""
        self.wait(f"{css} to read {wanted!r}", lambda: self.text(css) == wanted, timeout)

    def fill(self, css, text):
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def click(self, css):
        """Click what stays on the page (a summary, a box)."""
        self.find(css).click()

    def submit(self, css):
        """Click what leads to another page, and wait until that page has loaded."""
        before = self.find("html")
        self.find(css).click()
        self.wait("the next page", lambda: _gone(before) and self.driver.execute_script(
            "return document.readyState") == "complete")

    def sign_in(self, user, password):
        """By keyboard alone: the user name box has the focus, Tab to the password, Enter."""
        self.go("/")
        if not self.path().startswith("/ui/sign-in"):
            self.sign_out()
            self.go("/")
        assert self.path() == "/ui/sign-in?next=%2F"
        active = self.driver.switch_to.active_element
        assert active.get_attribute("id") == "username"
        active.send_keys(user, Keys.TAB)
        self.driver.switch_to.active_element.send_keys(password, Keys.ENTER)
        self.wait("the dashboard", lambda: self.path() == "/")

    def sign_out(self):
        self.submit("form.sign-out button")
        self.wait("the sign-in page", lambda: self.path().startswith("/ui/sign-in"))

    def job_finishes(self, wanted="COMPLETED"):
        """On a job's page (where a form led): the status badge turns `wanted` by itself."""
        assert self.path().startswith("/jobs/"), self.text("main")
        self.wait_text("#fields dl div:first-child dd .badge", wanted)
        return self.path()

    def labelled(self):
        """Every control of the page has a label (checkboxes: within theirs)."""
        unlabelled = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))"
            ".filter(e => e.labels.length === 0).map(e => e.name)")
        assert unlabelled == []

    def screenshot(self, name):
        """The whole page as PNG, in the test output (and $PIXSTOR_UI_SCREENSHOTS)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(900, height))
        try:
            png = self.driver.get_screenshot_as_png()
        finally:
            self.driver.set_window_size(1280, 900)
        targets = [self.shots] + ([Path(os.environ["PIXSTOR_UI_SCREENSHOTS"])]
                                  if os.environ.get("PIXSTOR_UI_SCREENSHOTS") else [])
        for folder in targets:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.png").write_bytes(png)
        assert png.startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def page(browser, srv, shots):
    page = Page(browser, srv, shots)
    page.sign_in("admin", srv.admin_password)
    return page


def api_error(session, url, **values):
    resp = session.post(url, json=cj_body(**values), headers=CJ)
    return resp.status_code, resp.json()["collection"]["error"]


# Content negotiation ---------------------------------------------------------

@pytest.mark.parametrize("accept, html", [
    (BROWSER_ACCEPT, True),
    ("text/html", True),
    ("text/*", True),
    ("text/html, */*;q=0.5", True),
    (None, False),
    ("*/*", False),
    ("application/json", False),
    ("application/vnd.collection+json", False),
    ("application/vnd.collection+json, application/json;q=0.9, text/plain;q=0.5", False),   # the collection's
    ("text/html, application/vnd.collection+json", False),
    ("text/html;q=0.5, */*", False),
    ("text/html;q=0", False),
    ("text/html;q=nan", False),
])
def test_html_only_when_the_request_prefers_it(accept, html):
    assert prefers_html(accept) is html


def test_cj_answers_do_not_change_with_accept(srv, api):
    """The same C+J bytes and headers for every Accept that does not prefer HTML; a browser's
    Accept gets a page (or the sign-in page, without a session)."""
    session, _ = api
    token = session.auth[0]
    answers = []
    for accept in (None, "*/*", "application/vnd.collection+json", "application/json", "text/html;q=0.1, */*"):
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "same"}
        if accept:
            headers["Accept"] = accept
        resp = requests.get(srv.url + "/profiles/?sort=name", headers=headers)
        answers.append((resp.status_code, resp.content, {k: v for k, v in resp.headers.items() if k != "Date"}))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 200 and answers[0][2]["Content-Type"] == "application/vnd.collection+json"
    page = requests.get(srv.url + "/profiles/", headers={"Accept": BROWSER_ACCEPT, "Authorization": f"Bearer {token}"},
                        allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"] == "/ui/sign-in?next=%2Fprofiles%2F"


def csrf_of(page):
    """The CSRF value of a page's form (each sign-in page sets a new one, and its cookie)."""
    return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]


def test_sign_in_is_the_password_grant_with_its_throttling(srv):
    """Wrong passwords are said on the page and counted as the API counts them: past
    auth.login_failures the name is locked (429 with Retry-After), as /oauth2/token does."""
    client = requests.Session()
    answers = [client.get(srv.url + "/ui/sign-in", headers={"Accept": BROWSER_ACCEPT})]
    for _ in range(6):
        form = {"csrf": csrf_of(answers[-1]), "username": "mallory", "password": "guess", "next": "/"}
        answers.append(client.post(srv.url + "/ui/sign-in", data=form, headers={"Accept": BROWSER_ACCEPT},
                                   allow_redirects=False))
    answers = answers[1:]
    assert [a.status_code for a in answers] == [400] * 5 + [429]
    assert "bad username or password" in answers[0].text
    assert "too many failed logins" in answers[5].text and int(answers[5].headers["Retry-After"]) > 0
    api = requests.post(srv.url + "/oauth2/token", data={"grant_type": "password", "username": "mallory",
                                                         "password": "guess"})
    assert api.status_code == 429
    assert "pixstor_token" not in client.cookies
    refused = requests.post(srv.url + "/ui/sign-in", data={"username": "admin", "password": srv.admin_password},
                            headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False)
    assert refused.status_code == 403 and "pixstor_token" not in refused.cookies     # no CSRF, no session


# Pages -----------------------------------------------------------------------

def test_sign_in_keeps_the_token_in_a_strict_http_only_cookie(page, srv):
    cookies = {c["name"]: c for c in page.driver.get_cookies()}
    token = cookies["pixstor_token"]
    assert token["httpOnly"] is True and token["sameSite"] == "Strict" and token["path"] == "/"
    assert page.driver.execute_script("return document.cookie") == ""       # out of scripts' reach
    assert requests.get(srv.url + "/spaces/", auth=(token["value"], "")).status_code == 200   # the API's token


def test_template_and_space_from_the_forms(page, srv, api):
    session, refs = api
    model = make_model(srv.mountpoint / "models" / "film")
    page.go("/templates/")
    page.click("#new summary")
    page.labelled()
    page.fill("#new-name", "film")
    Select(page.find("#new-type")).select_by_value("filesystemtemplate")
    page.fill("#new-template_location", str(model))
    page.submit("#new form button[type=submit]")
    page.job_finishes()
    page.submit("a[rel=resource]")
    page.wait_text("#fields dl div:first-child dd .badge", "ACTIVE")
    template = page.path()

    page.go("/spaces/")
    page.click("#new summary")
    page.labelled()
    page.fill("#new-name", "film-1")
    page.fill("#new-relativepath", "projects/film-1")
    page.find(f"#new input[name=templates][value='{template}']").click()
    page.find(f"#new input[name=exposers][value='{refs['exposers']['mmfs1']}']").click()
    Select(page.find("#new-profile")).select_by_value(refs["profiles"]["mmfs1-sas1"])
    page.fill("#new-size", "4GiB")
    page.submit("#new form button[type=submit]")
    page.job_finishes()
    page.submit("a[rel=resource]")
    page.wait_text("#fields dl div:first-child dd .badge", "ACTIVE")
    space = data_of(session.get(srv.url + page.path()).json())
    assert (space["name"], space["size"], space["status"]) == ("film-1", 4 << 30, "ACTIVE")
    assert (srv.mountpoint / "projects" / "film-1" / "maya").is_dir()


def test_the_apis_422_shows_beside_the_field(page, srv, api):
    session, refs = api
    page.go("/spaces/")
    page.click("#new summary")
    page.fill("#new-name", "bad name!")
    page.fill("#new-relativepath", "projects/bad")
    page.find(f"#new input[name=exposers][value='{refs['exposers']['mmfs1']}']").click()
    Select(page.find("#new-profile")).select_by_value(refs["profiles"]["mmfs1-sas1"])
    page.fill("#new-size", "4GiB")
    page.submit("#new form button[type=submit]")
    page.wait("the refusal", lambda: page.finds("#new-name-error"))
    code, error = api_error(session, srv.url + "/spaces/", name="bad name!", relativepath="projects/bad",
                            exposers=refs["exposers"]["mmfs1"], profile=refs["profiles"]["mmfs1-sas1"], size=4 << 30)
    assert code == 422
    assert page.text("#new-name-error") == f"name: {error['details']['name']}"
    assert page.find("#new-name").get_attribute("aria-invalid") == "true"
    assert page.find("#new-name").get_attribute("value") == "bad name!"       # what was typed stays
    assert page.finds("#new-relativepath-error") == []
    assert error["message"] in page.text("#new .refusal")


def test_resize_from_the_change_form(page, srv, api):
    session, _ = api
    space = session.get(srv.url + '/spaces/?where=name=="film-1"').json()["collection"]["items"][0]["href"]
    page.go(space)
    page.labelled()
    assert page.find("#edit-size").get_attribute("value") == str(4 << 30)
    page.fill("#edit-size", "8GiB")
    page.submit("#edit form button[type=submit]")
    page.job_finishes()
    assert wait_status(session, srv.url + space) == "ACTIVE"
    assert data_of(session.get(srv.url + space).json())["size"] == 8 << 30


def test_snapshot_from_the_space_page(page, srv, api):
    session, _ = api
    space = session.get(srv.url + '/spaces/?where=name=="film-1"').json()["collection"]["items"][0]["href"]
    page.go(space)
    page.submit("a[href^='/snapshots/?new.space=']")
    assert Select(page.find("#new-space")).first_selected_option.get_attribute("value") == space
    page.fill("#new-name", "before-edit")
    Select(page.find("#new-type")).select_by_value("gpfsspacesnapshot")
    page.submit("#new form button[type=submit]")
    page.job_finishes()
    assert (srv.mountpoint / "projects" / "film-1" / ".snapshots" / "before-edit" / "maya").is_dir()


def test_delete_without_force(page, srv, api):
    session, refs = api
    resp = session.post(srv.url + "/spaces/", json=cj_body(
        name="empty-1", relativepath="projects/empty-1", exposers=refs["exposers"]["mmfs1"],
        profile=refs["profiles"]["mmfs1-sata1"], size=1 << 30), headers=CJ)
    href = resp.json()["collection"]["items"][0]["href"]
    assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
    page.go(href)
    page.submit(".delete button")
    assert page.text("#plain") == "Nothing stands in the way: the delete job removes the space."
    page.absent("#force")
    page.submit("button.danger")
    page.job_finishes()
    assert session.get(srv.url + href).status_code == 404
    assert not (srv.mountpoint / "projects" / "empty-1").exists()


def test_delete_with_force_names_what_it_removes(page, srv, api):
    session, _ = api
    space = session.get(srv.url + '/spaces/?where=name=="film-1"').json()["collection"]["items"][0]["href"]
    snapshot = session.get(srv.url + '/snapshots/?where=name=="before-edit"').json()["collection"]["items"][0]["href"]
    page.go(space)
    page.submit(".delete button")
    code = session.delete(srv.url + space)      # what the API says of a plain delete: the same words
    assert code.status_code == 409
    assert page.text("#plain") == "A plain delete is refused: " + code.json()["collection"]["error"]["message"]
    assert [a.get_attribute("href").removeprefix(srv.url) for a in page.finds("#force a")] == [snapshot]
    assert page.find("button.danger").text == "Delete space film-1 with force"
    page.submit("button.danger")
    page.job_finishes()
    assert session.get(srv.url + space).status_code == 404
    assert session.get(srv.url + snapshot).status_code == 404
    assert not (srv.mountpoint / "projects" / "film-1").exists()


def test_a_failed_jobs_page_shows_its_logs(page, srv, api):
    session, refs = api
    (srv.mountpoint / "blocked").write_text("a file where a folder should be")
    resp = session.post(srv.url + "/spaces/", json=cj_body(
        name="blocked-1", relativepath="blocked/blocked-1", exposers=refs["exposers"]["mmfs1"],
        profile=refs["profiles"]["mmfs1-sas1"], size=1 << 30), headers=CJ)
    job = resp.links["job"]["url"].removeprefix(srv.url)
    page.go(job)
    page.job_finishes("ERRORED")
    stderr = session.get(srv.url + job + "/stderr").text
    assert page.find("#log-stderr").get_attribute("textContent") == stderr and "blocked" in stderr
    assert page.text("#fields dl div:first-child dd .badge") == "ERRORED"
    space = resp.json()["collection"]["items"][0]["href"]
    assert page.find("#fields a[href$='" + space.rsplit("/", 1)[1] + "']").get_attribute("href") == srv.url + space
    page.screenshot("failed-job")


def test_space_list_with_usage_bars_and_the_dashboard(page, srv, api):
    session, refs = api
    for name, size, used in (("render", 1 << 30, 950 << 20), ("comp", 1 << 30, 400 << 20),
                             ("edit", 2 << 30, 100 << 20)):
        resp = session.post(srv.url + "/spaces/", json=cj_body(
            name=name, relativepath=f"shows/{name}", exposers=refs["exposers"]["mmfs1"],
            profile=refs["profiles"]["mmfs1-sas1"], size=size), headers=CJ)
        assert wait_status(session, resp.headers["Location"]) == "ACTIVE"
        with open(srv.mountpoint / "shows" / name / "frames.bin", "wb") as data:
            data.truncate(used)         # sparse: the posix driver counts the files' sizes
    srv.cli("usage")
    page.go("/spaces/?sort=name")
    rows = {row.find_element(By.CSS_SELECTOR, "th a").text: row for row in page.finds("#items tbody tr")}
    assert rows["render"].find_element(By.CSS_SELECTOR, ".numbers").text == \
        "950 MiB of 1 GiB (92.8 %), past the soft limit; soft limit 921.6 MiB"
    assert "usage-soft" in rows["render"].find_element(By.CSS_SELECTOR, ".usage").get_attribute("class")
    assert rows["comp"].find_element(By.CSS_SELECTOR, ".numbers").text == \
        "400 MiB of 1 GiB (39.1 %); soft limit 921.6 MiB"
    soft = rows["comp"].find_element(By.CSS_SELECTOR, "line.soft")
    assert soft.get_attribute("x1") == "90.0"
    page.screenshot("spaces")
    page.go("/")
    assert [a.text for a in page.finds("#fullest tbody th a")][:3] == ["render", "comp", "edit"]
    counts = {li.find_element(By.CSS_SELECTOR, ".badge").text: li.find_element(By.CSS_SELECTOR, ".number").text
              for li in page.finds("#recent-jobs li")}
    assert counts["ERRORED"] == "1"
    assert [th.text for th in page.finds("#pools tbody th")] == ["sas1", "sata1"]
    page.screenshot("dashboard")


def test_search_filter_sort_and_paging_are_the_apis(page, srv, api):
    session, _ = api
    page.go("/spaces/")
    page.fill("#query-search-name", "comp")
    page.submit("form.query button")
    assert page.path() == "/spaces?where=%7B%22name%22%3A%22comp%22%7D"
    assert [a.text for a in page.finds("#items tbody th a")] == ["comp"]
    page.fill("#where", "size > 1073741824 and status == \"ACTIVE\"")
    page.submit("form.where button")
    assert [a.text for a in page.finds("#items tbody th a")] == ["edit"]
    page.fill("#where", "size >")
    page.submit("form.where button")
    resp = session.get(srv.url + "/spaces/", params={"where": "size >"})
    assert resp.status_code == 400 and page.text("#where-error") == resp.json()["collection"]["error"]["message"]
    page.go("/spaces/?max_results=2")
    page.submit("#items thead a[href*='sort=name']")
    assert page.find("#items thead th[aria-sort]").text.startswith("name")
    assert page.find("#items thead th[aria-sort]").get_attribute("aria-sort") == "ascending"
    first = [a.text for a in page.finds("#items tbody th a")]
    page.submit("#items thead a[href*='sort=-name']")
    assert page.find("#items thead th[aria-sort]").get_attribute("aria-sort") == "descending"
    names = sorted(data_of(session.get(srv.url + "/spaces/").json(), i)["name"] for i in range(4))
    assert first == names[:2] and [a.text for a in page.finds("#items tbody th a")] == names[::-1][:2]
    page.submit(".paging a[rel=next]")
    assert [a.text for a in page.finds("#items tbody th a")] == names[::-1][2:4]
    assert page.text("#items caption") == "Spaces, page 2 of 2"


def test_a_form_without_its_csrf_token_is_refused(page, srv, api):
    session, refs = api
    before = session.get(srv.url + "/templates/").headers["X-Total-Count"]
    page.go("/templates/")
    page.driver.execute_script("document.querySelector('#new input[name=csrf]').remove()")
    page.click("#new summary")
    page.fill("#new-name", "forged")
    Select(page.find("#new-type")).select_by_value("filesystemtemplate")
    page.fill("#new-template_location", str(make_model(srv.mountpoint / "models" / "forged")))
    page.submit("#new form button[type=submit]")
    assert page.text("h1") == "403 Forbidden"
    assert session.get(srv.url + "/templates/").headers["X-Total-Count"] == before


def test_readonly_sees_no_write_controls_and_posting_anyway_is_405(page, srv, api):
    session, _ = api
    admin_token = page.driver.get_cookie("pixstor_token")["value"]
    page.sign_out()
    assert requests.get(srv.url + "/spaces/", auth=(admin_token, "")).status_code == 401     # revoked
    page.sign_in("reader", "reader-pass")
    space = session.get(srv.url + '/spaces/?where=name=="render"').json()["collection"]["items"][0]["href"]
    for path in ("/spaces/", "/templates/", "/snapshots/", space):
        page.go(path)
        page.absent("#new")
        page.absent("#edit")
        page.absent(".delete")
    # the create form posted anyway, with the session's own CSRF token (from the sign-out form)
    page.go("/spaces/")
    page.driver.execute_script("""
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/spaces/';
        for (const [name, value] of [['csrf', document.querySelector('form.sign-out input[name=csrf]').value],
                                     ['name', 'sneaky']]) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();""")
    page.wait("the refusal", lambda: page.text("h1") == "405 Method Not Allowed")
    cookies = {"pixstor_token": page.driver.get_cookie("pixstor_token")["value"]}
    page.go("/spaces/")
    csrf = page.find("form.sign-out input[name=csrf]").get_attribute("value")
    resp = requests.post(srv.url + space, data={"csrf": csrf, "_method": "DELETE"}, cookies=cookies,
                         headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False)
    assert resp.status_code == 405 and resp.headers["Allow"] == "HEAD, GET, OPTIONS"
    assert session.get(srv.url + space).status_code == 200
    assert session.get(srv.url + '/spaces/?where=name=="sneaky"').headers["X-Total-Count"] == "0"


def test_no_script_error_nor_blocked_resource_in_the_browser(page):
    """The pages' own script and stylesheet load under their Content-Security-Policy, and the
    script raised nothing (answers of 4xx the tests asked for are the only errors logged)."""
    errors = [entry["message"] for entry in page.driver.get_log("browser")
              if entry["level"] == "SEVERE" and "the server responded with a status of 4" not in entry["message"]]
    assert errors == []
