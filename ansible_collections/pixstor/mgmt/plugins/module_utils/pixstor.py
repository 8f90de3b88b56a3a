# -*- coding: utf-8 -*-
# Copyright: (c) 2025, pixstor-mgmt contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""The one Collection+JSON client every pixstor.mgmt module uses, and the
present/absent logic the managing modules share."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
import time
import traceback
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from urllib3.exceptions import NewConnectionError
except ImportError:
    requests = None
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

HAS_REQUESTS = requests is not None

CJ = "application/vnd.collection+json"
USER_AGENT = "pixstor.mgmt-ansible/0.2.0"
RETRIES = 3
RETRY_STATUSES = (502, 503, 504)
PAGE_SIZE = 1000
ITEM_DONE = ("ACTIVE", "ERRORED")
JOB_DONE = ("COMPLETED", "ERRORED")
STDERR_TAIL = 2000
TOKEN_CACHE_DIR = "~/.ansible/pixstor/tokens"
# A cached token with less life left than this is not reused: it could expire mid-task.
TOKEN_CACHE_MARGIN = 60

# Sizes as Ansible's human_to_bytes, GPFS mmsetquota and the storage vendors' collections
# read them: every prefix is a power of 1024, with or without B or i (4G = 4GB = 4GiB = 4 * 2**30).
SIZE_UNITS = {"b": 1}
for _power, _letter in enumerate("kmgtp", start=1):
    for _suffix in ("", "b", "i", "ib"):
        SIZE_UNITS[_letter + _suffix] = 1024 ** _power
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
BINARY_UNITS = ("PiB", "TiB", "GiB", "MiB", "KiB")


class PixstorError(Exception):
    """A failure worth a fail_json: carries the HTTP status, the API's C+J error and what
    else the failed result must tell (`result`: changed, the item, the job)."""

    def __init__(self, msg, status=None, error=None, result=None):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.error = error
        self.result = dict(result or {})

    def fail_kwargs(self):
        kwargs = dict(self.result, msg=self.msg)
        if self.status is not None:
            kwargs["status_code"] = self.status
        if self.error is not None:
            kwargs["api_error"] = self.error
        return kwargs


class WaitFailed(PixstorError):
    """A wait that ended without the wanted state: the job failed or the time ran out.
    `item` is the item as last read (None once gone), `job` the job's href and last status."""

    def __init__(self, msg, item=None, job=None):
        super().__init__(msg)
        self.item = item
        self.job = job


class NotFound(PixstorError):
    """A reference (name, id or href) that matches nothing."""


# Pure helpers ---------------------------------------------------------------

def parse_size(value, allow_zero=False):
    """Bytes from an int or a string: '4294967296' (bytes), '4G' = '4GB' = '4GiB' = '4Gi'
    (powers of 1024, any case), '500M', '1.5T'. A number with a fraction and no unit (a YAML
    float such as 1.5 or 1.0e10) is refused: bytes are whole, and the unit was likely forgotten.
    Zero is refused unless `allow_zero` (a file size condition may be 0 bytes, a quota not)."""
    if isinstance(value, bool):
        raise ValueError("size %r is not a size" % (value,))
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int):
        number, unit, text = Decimal(value), "b", str(value)
    else:
        text = str(value)
        match = SIZE_RE.match(text)
        if not match:
            raise ValueError("size %r is neither a number of bytes nor a size such as 4G, 4GiB or 500M" % (value,))
        try:
            number = Decimal(match.group(1))
        except InvalidOperation:
            raise ValueError("size %r is not a number" % (value,))
        unit = match.group(2).lower() or "b"
        if not match.group(2) and "." in match.group(1):
            raise ValueError("size %r has a fraction but no unit: a number without a unit is a count of bytes, "
                             "which is whole (YAML reads 1.5 as a float); give the unit, for example %sG"
                             % (value, match.group(1)))
    if unit not in SIZE_UNITS:
        raise ValueError("size %r has an unknown unit %r; use B, or K, M, G, T, P (powers of 1024, also written "
                         "KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB)" % (value, unit))
    total = number * SIZE_UNITS[unit]
    if total != total.to_integral_value():
        raise ValueError("size %r is not a whole number of bytes" % (value,))
    if total < 0 or (total == 0 and not allow_zero):
        raise ValueError("size %r must be %s zero" % (value, "at least" if allow_zero else "greater than"))
    return int(total)


def format_size(size):
    """Largest exact binary unit: 4294967296 -> '4GiB', 1536 MiB -> '1536MiB', 1001 -> '1001B'."""
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return str(size)
    for unit in BINARY_UNITS:
        factor = SIZE_UNITS[unit.lower()]
        if size % factor == 0:
            return "%d%s" % (size // factor, unit)
    return "%dB" % size


def describe_size(size):
    """'3MiB (3145728 bytes)' when a binary unit divides it, else '3145743 bytes (about 3.0MiB)'."""
    exact = format_size(size)
    if not isinstance(size, int) or exact.endswith("iB"):
        return "%s (%s bytes)" % (exact, size) if isinstance(size, int) else exact
    for unit in BINARY_UNITS:
        factor = SIZE_UNITS[unit.lower()]
        if size >= factor:
            return "%d bytes (about %.1f%s)" % (size, size / factor, unit)
    return "%d bytes" % size


def flatten(item):
    """A C+J item as a plain dict: data by name, plus href and links (name -> href)."""
    flat = dict((d.get("name"), d.get("value")) for d in item.get("data") or [] if d.get("name"))
    flat["href"] = item.get("href")
    flat["links"] = dict((link.get("name"), link.get("href")) for link in item.get("links") or [] if link.get("name"))
    return flat


def link_href(flat, name):
    """Href of a link by name, case-insensitively (servers spell 'Stdout' and 'stdout')."""
    for key, href in (flat.get("links") or {}).items():
        if key.lower() == name.lower():
            return href
    return None


def cj_template(data):
    return {"template": {"data": [{"name": key, "value": value} for key, value in data.items()]}}


def path_of(url):
    """Path and query of a URL: hrefs are path-absolute, headers carry absolute URLs."""
    if not url:
        return url
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def ref_id(ref):
    return path_of(str(ref)).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def as_href(ref, collection):
    """'/<collection>/<id>' for an id or an href (absolute or not); None stays None."""
    if ref in (None, ""):
        return None
    return "/%s/%s" % (collection, ref_id(ref))


def split_list(value):
    """Items of a list or of a comma-separated string, strings stripped, empty ones dropped."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() if isinstance(v, str) else v for v in value if v is not None and str(v).strip() != ""]


def ref_list(value, collection):
    """Sorted, de-duplicated hrefs from a list or a comma-separated string of ids/hrefs."""
    return sorted(set(as_href(v, collection) for v in split_list(value)))


def str_set(value):
    """Sorted, de-duplicated strings from a list or a comma-separated string (users, options)."""
    return sorted(set(str(v) for v in split_list(value)))


def norm_path(path):
    """Relative path compared without leading/trailing/double slashes."""
    if path in (None, ""):
        return path
    stripped = str(path).strip("/")
    return posixpath.normpath(stripped) if stripped else ""


# Durations as the API reads them (retain_for, a policy's retain_duration): a whole number and a unit,
# m (minutes), h (hours), d (days) or w (weeks).
DURATION_RE = re.compile(r"^[1-9][0-9]{0,5}[mhdw]$")


def check_duration(value):
    """A duration such as '7d' or '12h', stripped; ValueError otherwise."""
    text = str(value).strip()
    if not DURATION_RE.match(text):
        raise ValueError("%r is not a duration: a whole number and a unit, m (minutes), h (hours), d (days) or "
                         "w (weeks), such as 7d or 12h" % (value,))
    return text


def utc_timestamp(value):
    """An ISO 8601 time as the API shows it, in UTC to the second: '2026-12-01T01:00:00+01:00' and
    '2026-12-01T00:00:00Z' are '2026-12-01T00:00:00Z'; a date alone is its midnight, a time without
    a zone UTC. ValueError otherwise."""
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise ValueError("%r is not an ISO 8601 time such as 2026-12-01T00:00:00Z" % (value,))
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_timestamp(value):
    """A time the API shows, compared as utc_timestamp() writes it ('' for none; kept as it is when
    it does not parse)."""
    if value in (None, ""):
        return ""
    try:
        return utc_timestamp(value)
    except ValueError:
        return str(value)


def resolve_or_assume(module, client, collection, ref, what, where=None, remembered=False):
    """The href of `ref`; in check mode, an item an earlier task would create is a placeholder
    '/<collection>/(ref)' (with a warning) instead of a failure."""
    try:
        return client.resolve(collection, ref, what, where=where, remembered=remembered)
    except NotFound as exc:
        if not module.check_mode:
            raise
        module.warn("%s; check mode assumes an earlier task would create it" % exc.msg)
        return "/%s/(%s)" % (collection, ref)


def public(flat):
    return dict(flat) if flat else {}


OCTAL_MODE_RE = re.compile(r"^[0-7]{3,4}$")


def octal_mode(value):
    """A mode as four octal digits ('770' and '0770' are '0770', '2770' stays); '' for none."""
    return "%04o" % int(str(value), 8) if value not in (None, "") else ""


def check_octal_mode(module, label, key, value, example, blank=None):
    """Fail unless `value` is None, a string of 3 or 4 octal digits, or '' when `blank` says
    what '' means. A number is refused: YAML reads an unquoted 0664 as the number 436."""
    if value is None or (isinstance(value, str) and ((value == "" and blank) or OCTAL_MODE_RE.match(value))):
        return
    if isinstance(value, int) and not isinstance(value, bool):
        trap = "0" + example[-3:]       # what YAML 1.1 reads as an octal number
        module.fail_json(msg="%s: %s must be a quoted string of 3 or 4 octal digits such as '%s'; got the number %d: "
                             "quote it (YAML reads an unquoted %s as the number %d)"
                             % (label, key, example, value, trap, int(trap, 8)))
    module.fail_json(msg="%s: %s must be 3 or 4 octal digits such as '%s'%s; got %r" % (
        label, key, example, ", or '' for %s" % blank if blank else "", value))


def observed_notes(item):
    """An item's comment and extras as compared: no comment is '', no extras is {}."""
    return dict(comment=item.get("comment") or "", extras=item.get("extras") or {})


def desired_notes(params):
    """The task's comment and extras (None: not managed by the task)."""
    return dict(comment=params.get("comment"), extras=params.get("extras"))


def notes_argument_spec():
    """comment/extras; documented in the pixstor.mgmt.pixstor.notes doc fragment."""
    return dict(comment=dict(type="str"), extras=dict(type="dict"))


# Module plumbing -------------------------------------------------------------

def pixstor_argument_spec():
    """Connection options; documented once in the pixstor.mgmt.pixstor doc fragment."""
    return dict(
        url=dict(type="str", required=True, fallback=(env_fallback, ["PIXSTOR_URL"])),
        auth_url=dict(type="str"),
        username=dict(type="str", fallback=(env_fallback, ["PIXSTOR_USERNAME"])),
        password=dict(type="str", no_log=True, fallback=(env_fallback, ["PIXSTOR_PASSWORD"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["PIXSTOR_TOKEN"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["PIXSTOR_VALIDATE_CERTS"])),
        ca_path=dict(type="path", fallback=(env_fallback, ["PIXSTOR_CA_PATH"])),
        timeout=dict(type="int", default=30, fallback=(env_fallback, ["PIXSTOR_TIMEOUT"])),
        token_cache=dict(type="bool", default=True, fallback=(env_fallback, ["PIXSTOR_TOKEN_CACHE"])),
    )


def wait_argument_spec():
    """wait/wait_timeout, of every module that writes."""
    return dict(wait=dict(type="bool", default=True), wait_timeout=dict(type="int", default=300))


def state_argument_spec():
    """state/wait/wait_timeout; documented in the pixstor.mgmt.pixstor.state doc fragment."""
    return dict(state=dict(type="str", default="present", choices=["present", "absent"]), **wait_argument_spec())


def pixstor_module(argument_spec, managed=True, **kwargs):
    spec = pixstor_argument_spec()
    if managed:
        spec.update(state_argument_spec())
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    check_connection_params(module)
    return module


def check_connection_params(module):
    """Credentials and TLS options that cannot work fail before any request.

    Not required_together/mutually_exclusive: environment fallbacks may fill token and
    username at once (PIXSTOR_TOKEN with PIXSTOR_USERNAME), and then the token simply wins.
    """
    params = module.params
    if not params.get("token"):
        if not params.get("username"):
            module.fail_json(msg="no credentials: set token (or PIXSTOR_TOKEN), or username and password "
                                 "(or PIXSTOR_USERNAME and PIXSTOR_PASSWORD)")
        if params.get("password") is None:
            module.fail_json(msg="username %r is set but password is not: set password (or PIXSTOR_PASSWORD), "
                                 "or give a token instead" % params["username"])
    ca_path = params.get("ca_path")
    if params["validate_certs"] and ca_path and not os.path.isfile(ca_path):
        module.fail_json(msg="ca_path %s: %s; give the PEM file of the CA that signed the server's certificate"
                             % (ca_path, "is not a file" if os.path.exists(ca_path) else "no such file"))
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds, got %d" % params["timeout"])


def run_module(module, manage):
    """Log in, run manage(client) -> result dict, and turn PixstorError into fail_json."""
    try:
        client = PixstorClient(module)
        client.login()
        result = manage(client)
    except PixstorError as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(**result)


def token_cache_path(auth_url, username, password):
    """Cache file of a login. The password is part of the key, so a new password never
    reuses a token obtained with the old one."""
    folder = os.path.expanduser(os.environ.get("PIXSTOR_TOKEN_CACHE_DIR") or TOKEN_CACHE_DIR)
    key = hashlib.sha256("\0".join((auth_url, username, password)).encode("utf-8")).hexdigest()
    return os.path.join(folder, key)


def ref_cache_path(url):
    """Reference cache of one server: names resolved to hrefs (no secret in it)."""
    folder = os.path.expanduser(os.environ.get("PIXSTOR_TOKEN_CACHE_DIR") or TOKEN_CACHE_DIR)
    return os.path.join(folder, "refs-" + hashlib.sha256(url.rstrip("/").encode("utf-8")).hexdigest()[:32])


def _ref_key(collection, ref, where):
    return "%s %s %s" % (collection, json.dumps(where, sort_keys=True), ref)


def _never_sent(exc):
    """True when a connection error happened before the request reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError) or isinstance(exc.args[0] if exc.args else None, NewConnectionError)


class Accepted(object):
    """What a write answered: the item (flat), where to poll it, and the job."""

    def __init__(self, item, location, job):
        self.item = item
        self.location = location
        self.job = job

    @property
    def href(self):
        return (self.item or {}).get("href") or (path_of(self.location) or "").split("?", 1)[0] or None


# The client ------------------------------------------------------------------

class PixstorClient(object):

    def __init__(self, module):
        self.module = module
        params = module.params
        self.url = params["url"].rstrip("/")
        self.auth_url = (params.get("auth_url") or params["url"]).rstrip("/")
        self.timeout = params["timeout"]
        # Passed on every request: a request's own verify wins over REQUESTS_CA_BUNDLE and
        # CURL_CA_BUNDLE, where the session's would lose to them (requests merges the
        # environment into each request and only then falls back to the session).
        self.verify = (params.get("ca_path") or True) if params["validate_certs"] else False
        self.session = requests.Session()
        self.session.verify = self.verify
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = CJ + ", application/json;q=0.9, text/plain;q=0.5"
        self._refs = {}
        self._names = {}        # href -> name, of every item resolved or named so far
        self.token_cache = None
        if params["token_cache"] and not params.get("token") and params.get("username"):
            self.token_cache = token_cache_path(self.auth_url, params["username"], params["password"] or "")
        self._token_from_cache = False
        # Hrefs of names resolved by earlier tasks (resolve(..., remembered=True)), beside the
        # token cache: a no-op task then costs one request, not one per reference.
        self.ref_cache = ref_cache_path(self.url) if params["token_cache"] else None
        self._remembered = None
        self.used_remembered = False

    # HTTP ------------------------------------------------------------------

    def absolute(self, href):
        return href if "://" in href else self.url + (href if href.startswith("/") else "/" + href)

    def _send(self, method, url, idempotent, **kwargs):
        """One request with bounded retries on connection errors and 502/503/504.

        A POST that may have reached the server is not resent (it could create twice):
        it is retried only when the connection never opened or the answer is 503.
        """
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                resp = self.session.request(method, url, timeout=self.timeout, verify=self.verify, **kwargs)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if last or not (idempotent or _never_sent(exc)):
                    raise PixstorError("%s %s failed: %s" % (method, path_of(url), exc))
            else:
                retry = resp.status_code in RETRY_STATUSES and (idempotent or resp.status_code == 503)
                if last or not retry:
                    return resp
            time.sleep(0.5 * 2 ** attempt)
        raise PixstorError("%s %s failed after %d attempts" % (method, path_of(url), RETRIES + 1))

    def request(self, method, href, ok=(200,), missing_ok=False, **kwargs):
        url = self.absolute(href)
        idempotent = method != "POST"
        resp = self._send(method, url, idempotent, **kwargs)
        if resp.status_code == 401 and self._token_from_cache:
            # The server refused the cached token (revoked, or the server's key changed). A 401
            # comes before any work is done, so even a POST is safe to send again.
            self._drop_cached_token()
            self._password_login()
            resp = self._send(method, url, idempotent, **kwargs)
        if resp.status_code in ok or (missing_ok and resp.status_code == 404):
            return resp
        raise api_error(resp, method, path_of(url))

    def login(self):
        params = self.module.params
        if params.get("token"):
            self.session.auth = (params["token"], "")
            return
        token = self._cached_token()
        if token:
            self.session.auth = (token, "")
            self._token_from_cache = True
            return
        self._password_login()

    def _password_login(self):
        params = self.module.params
        self._token_from_cache = False
        url = self.auth_url + "/oauth2/token"
        logged_in_at = time.time()
        form = dict(grant_type="password", username=params["username"], password=params["password"])
        # A second token request is harmless, so this POST is retried like a read.
        resp = self._send("POST", url, idempotent=True, data=form, headers={"Accept": "application/json"})
        body = _json_or_none(resp)
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            why = ""
            if isinstance(body, dict) and body.get("error"):
                why = ": %s" % body["error"] + (" (%s)" % body["error_description"] if body.get("error_description") else "")
            raise PixstorError("could not obtain an access token from %s as %r: HTTP %d%s"
                               % (url, params["username"], resp.status_code, why),
                               status=resp.status_code, error=body if isinstance(body, dict) else None)
        self.session.auth = (body["access_token"], "")
        expires_in = body.get("expires_in")
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            self._cache_token(body["access_token"], logged_in_at + expires_in)

    # Token cache -------------------------------------------------------------

    def _cached_token(self):
        """The cached access token while it has more than TOKEN_CACHE_MARGIN seconds left."""
        if not self.token_cache:
            return None
        try:
            with open(self.token_cache, encoding="utf-8") as cached:
                entry = json.load(cached)
            token, expires_at = entry["access_token"], float(entry["expires_at"])
        except (OSError, ValueError, TypeError, KeyError):
            return None     # missing or corrupt: the next login replaces it
        # `not ... >` so that a NaN expiry counts as expired.
        if not isinstance(token, str) or not token or not expires_at - time.time() > TOKEN_CACHE_MARGIN:
            return None
        return token

    def _cache_token(self, token, expires_at):
        """Write the cache atomically (hosts and forks log in at once); never fail the task."""
        if not self.token_cache:
            return
        folder = os.path.dirname(self.token_cache)
        temp = None
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")     # mkstemp makes it 0600
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(dict(access_token=token, expires_at=expires_at), out)
            os.replace(temp, self.token_cache)
        except (OSError, ValueError) as exc:
            if temp:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
            self.module.warn("could not cache the access token in %s: %s; set PIXSTOR_TOKEN_CACHE_DIR to a "
                             "writable folder, or token_cache=false" % (folder, exc))

    def _drop_cached_token(self):
        try:
            os.unlink(self.token_cache)
        except OSError:
            pass

    # Reads -----------------------------------------------------------------

    def find(self, collection, where=None):
        """Every item of a collection matching a Mongo-style `where`, as flat dicts."""
        items, page = [], 1
        while True:
            params = {"max_results": PAGE_SIZE}
            if where:
                params["where"] = json.dumps(where, sort_keys=True)
            if page > 1:
                params["page"] = page
            resp = self.request("GET", "/%s/" % collection, params=params)
            batch = [flatten(i) for i in _collection(resp).get("items") or []]
            items.extend(batch)
            total = resp.headers.get("X-Total-Count")
            # The total decides when it is there: a server may cap pages below max_results.
            if not batch or (len(items) >= int(total) if total is not None else len(batch) < PAGE_SIZE):
                return items
            page += 1

    def find_one(self, collection, where, what):
        found = self.find(collection, where)
        if len(found) > 1:
            raise PixstorError("%d %s match %s: %s; say which one" % (
                len(found), collection, what, ", ".join(sorted(i["href"] for i in found))))
        return found[0] if found else None

    def get(self, href):
        """(flat item, ETag) of an item, or (None, None) when it is gone."""
        resp = self.request("GET", href, missing_ok=True)
        if resp.status_code == 404:
            return None, None
        items = _collection(resp).get("items") or []
        return (flatten(items[0]) if items else None), resp.headers.get("ETag")

    def resolve(self, collection, ref, what, where=None, remembered=False):
        """Href of an item named `ref`, or given by id or href; NotFound otherwise.

        `remembered`: a name an earlier task resolved is taken from the reference cache without a
        request. The caller must then check the href against what the server shows (an item that
        refers to it) and call forget_remembered() and resolve again when they disagree: names
        never change and an item's id never names another, so an href the server's items refer
        to under the name remembered is right, and anything else is found out."""
        # A name this task resolved already (a list naming it twice) is not taken from the cache again.
        if remembered and "/" not in ref and (collection, ref, json.dumps(where, sort_keys=True)) not in self._refs:
            href = self._remembered_refs().get(_ref_key(collection, ref, where))
            if href:
                self.used_remembered = True
                self._refs.setdefault((collection, ref, json.dumps(where, sort_keys=True)), {"href": href})
                return href
        href = self.resolve_item(collection, ref, what, where)["href"]
        if remembered and "/" not in ref:
            self._remember(_ref_key(collection, ref, where), href)
        return href

    def forget_remembered(self):
        """Resolve again from the server: what came from the reference cache is dropped (here and
        in the file)."""
        if not self.used_remembered:
            return
        remembered = self._remembered_refs()
        for key in list(self._refs):
            cached = remembered.get(_ref_key(key[0], key[1], json.loads(key[2])))
            if cached and self._refs[key].get("href") == cached and len(self._refs[key]) == 1:
                del self._refs[key]
        self._remembered = {}
        self._write_remembered()
        self.used_remembered = False

    def _remembered_refs(self):
        if self._remembered is None:
            self._remembered = {}
            if self.ref_cache:
                try:
                    with open(self.ref_cache, encoding="utf-8") as cached:
                        entries = json.load(cached)
                    if isinstance(entries, dict):
                        self._remembered = dict((k, v) for k, v in entries.items()
                                                if isinstance(k, str) and isinstance(v, str) and v.startswith("/"))
                except (OSError, ValueError):
                    pass
        return self._remembered

    def _remember(self, key, href):
        remembered = self._remembered_refs()
        if remembered.get(key) != href:
            remembered[key] = href
            self._write_remembered()

    def _write_remembered(self):
        """Atomically, like the token cache; never fails the task (the cache is only a shortcut)."""
        if not self.ref_cache:
            return
        temp = None
        try:
            folder = os.path.dirname(self.ref_cache)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._remembered or {}, out, sort_keys=True)
            os.replace(temp, self.ref_cache)
        except (OSError, ValueError):
            if temp:
                try:
                    os.unlink(temp)
                except OSError:
                    pass

    def resolve_item(self, collection, ref, what, where=None):
        """The item (flat) named `ref`, or given by id or href, as first read; NotFound otherwise."""
        key = (collection, ref, json.dumps(where, sort_keys=True))
        if key in self._refs:
            return self._refs[key]
        if "/" in ref:
            prefix = path_of(ref).lstrip("/").split("/", 1)[0]
            if prefix != collection:
                raise PixstorError("%s %r is not an href of /%s/" % (what, ref, collection))
            item = self.get(as_href(ref, collection))[0]
        else:
            item = self.find_one(collection, dict(where or {}, name=ref), "%s %r" % (what, ref))
            if item is None:
                # Not a name: perhaps an id, which the API accepts wherever an href goes.
                item = self.get(as_href(ref, collection))[0]
        if item is None:
            raise NotFound("%s %r not found in /%s/" % (what, ref, collection))
        self._refs[key] = item
        if item.get("name"):
            self._names[item["href"]] = item["name"]
        return item

    def name_of(self, href):
        """The name of the item at `href` (read once, then remembered); the href itself when
        it has none or cannot be read. A check-mode placeholder '/templates/(name)' is 'name'."""
        if not isinstance(href, str) or not href.startswith("/"):
            return href
        placeholder = re.match(r"^/[a-z]+/\((.*)\)$", href)
        if placeholder:
            return placeholder.group(1)
        if href not in self._names:
            try:
                item = self.get(href)[0]
            except PixstorError:
                item = None
            self._names[href] = (item or {}).get("name") or href
        return self._names[href]

    def names(self, value):
        """`value` with every href (alone or in a list) replaced by the item's name."""
        if isinstance(value, list):
            return [self.name_of(v) for v in value]
        return self.name_of(value)

    def job_stderr(self, job_href):
        """Tail of a job's stderr log ('' when it cannot be read)."""
        if not job_href:
            return ""
        try:
            job = self.get(job_href)[0] or {}
            resp = self.request("GET", link_href(job, "stderr") or job_href.rstrip("/") + "/stderr")
        except PixstorError:
            return ""
        return resp.text[-STDERR_TAIL:].strip()

    # Writes ----------------------------------------------------------------

    def create(self, collection, data):
        resp = self.request("POST", "/%s/" % collection, ok=(200, 201, 202),
                            data=json.dumps(cj_template(data)), headers={"Content-Type": CJ})
        return _accepted(resp)

    def update(self, href, data, etag=None, force=False):
        headers = {"Content-Type": CJ}
        if etag:
            headers["If-Match"] = etag
        resp = self.request("PATCH", href, ok=(200, 202), data=json.dumps(cj_template(data)), headers=headers,
                            params={"force": "true"} if force else None)
        return _accepted(resp)

    def act(self, href, action, data, force=False):
        """POST {href}/{action} (an item's action, such as a space's revert) with `data`: the
        answer as Accepted (the item, its Location and the job)."""
        resp = self.request("POST", "%s/%s" % (href.rstrip("/"), action), ok=(200, 202),
                            data=json.dumps(cj_template(data)), headers={"Content-Type": CJ},
                            params={"force": "true"} if force else None)
        return _accepted(resp)

    def delete(self, href, force=False):
        """(deleted, job href): deleted is False when the item was already gone (404);
        the job is None when it went at once."""
        resp = self.request("DELETE", href, ok=(200, 202, 204), missing_ok=True,
                            params={"force": "true"} if force else None)
        return resp.status_code != 404, (_job_link(resp) if resp.status_code == 202 else None)

    # Waiting ---------------------------------------------------------------

    def wait(self, href, location=None, job=None, timeout=300, until="done", what="item"):
        """Poll the job and the item until both are done; (flat item or None, job summary).

        `until` is "done" (ACTIVE or ERRORED), "gone" (404) or "settled" (either).

        The job is read before the item on each round: an item that still reads ACTIVE
        right after a resize was accepted is not mistaken for the resize being done.
        """
        deadline = time.monotonic() + timeout
        delay = 0.1
        job_status = job_message = None
        while True:
            if job and job_status not in JOB_DONE:
                job_item = self.get(job)[0] or {}
                job_status, job_message = job_item.get("status"), job_item.get("message")
            item = self.get(location or href)[0]
            status = (item or {}).get("status")
            job_finished = not job or job_status in JOB_DONE
            # An item ERRORED before this job (a resize of a broken space) is judged by the job;
            # a deletion is judged by the item: once it answers 404 it is gone, as wanted.
            failed = job_status == "ERRORED" or (job_finished and status == "ERRORED")
            if failed and not (until == "gone" and item is None):
                full = (self.get(href)[0] if item is not None and location else item) or {}
                stderr = self.job_stderr(job)
                raise WaitFailed("%s (%s) ended ERRORED: %s%s" % (
                    what, href, full.get("status_message") or ("job %s failed" % job if job else "no reason given"),
                    "\njob stderr:\n" + stderr if stderr else ""), item=full or None,
                    job={"href": job, "status": job_status} if job else None)
            settled = {"done": status in ITEM_DONE, "gone": item is None,
                       "settled": item is None or status in ITEM_DONE}[until]
            if job_finished and settled:
                if item is not None and location:
                    item = self.get(href)[0]    # the Location may carry a projection
                summary = {"href": job, "status": job_status} if job else None
                if job and job_message:
                    summary["message"] = job_message    # a job that has something to say
                return item, summary
            if time.monotonic() >= deadline:
                if item is not None and location:
                    item = self.get(href)[0] or item    # the Location may carry a projection
                raise WaitFailed("timed out after %ds waiting for %s (%s, status %s, job %s %s); the job goes on "
                                 "on the server: raise wait_timeout or use wait=false"
                                 % (timeout, what, href, status or "gone", job or "-", job_status or "-"),
                                 item=item, job={"href": job, "status": job_status} if job else None)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def _json_or_none(resp):
    try:
        return resp.json()
    except ValueError:
        return None


def _collection(resp):
    body = _json_or_none(resp)
    if not isinstance(body, dict) or not isinstance(body.get("collection"), dict):
        raise PixstorError("%s %s answered HTTP %d without a Collection+JSON document"
                           % (resp.request.method if resp.request else "GET", path_of(resp.url), resp.status_code))
    return body["collection"]


def _job_link(resp):
    return path_of((resp.links.get("job") or {}).get("url"))


def _accepted(resp):
    body = _json_or_none(resp)
    items = ((body or {}).get("collection") or {}).get("items") or [] if isinstance(body, dict) else []
    location = resp.headers.get("Location")
    return Accepted(flatten(items[0]) if items else None, path_of(location), _job_link(resp))


def api_error(resp, method, path):
    """PixstorError quoting the API's C+J error (message and per-field details)."""
    body = _json_or_none(resp)
    error = ((body.get("collection") or {}).get("error") if isinstance(body, dict) else None) or None
    msg = "%s %s failed: HTTP %d" % (method, path, resp.status_code)
    if isinstance(error, dict):
        msg += " %s" % (error.get("message") or error.get("title") or "")
        details = error.get("details")
        if isinstance(details, dict) and details:
            msg += " (%s)" % "; ".join("%s: %s" % (k, v) for k, v in sorted(details.items()))
        elif details:
            msg += " (%s)" % details
    elif resp.text:
        msg += " %s" % resp.text.strip()[:300]
    if resp.status_code == 401:
        msg += "; check token, or username and password"
    elif resp.status_code == 405 and resp.headers.get("Allow"):
        msg += "; allowed for this user: %s" % resp.headers["Allow"]
    elif resp.status_code == 412:
        msg += "; the item changed on the server meanwhile, run again"
    return PixstorError(msg.strip(), status=resp.status_code, error=error)


# Present/absent, shared by the managing modules --------------------------------

PAST = {"create": "created", "delete": "deleted", "resize": "resized", "update": "updated", "revert": "reverted"}


class ItemManager(object):
    """Drive one item to its state.

    `observe(item)` and `desired` use the same normalised shape (sorted hrefs,
    stripped paths, bytes) so comparisons are order-insensitive and a second run
    finds nothing to do. A None in `desired` means "not managed by this task", except
    for the `nullable` fields, where None is a value the task wants (no condition).
    `lookup()` finds the item again when a creation loses a race (HTTP 409).
    `references` are the fields holding hrefs: diffs and messages show them by name.
    `update_action` names an update in `actions`: a string, or `update_action(changes)`.
    `describe(before, changes)` words an update for the result's msg.
    `wait` is the task's unless set: a write that a later write depends on is waited for.
    """

    def __init__(self, module, client, collection, kind, label, observe, mutable=(), update_action="update",
                 lookup=None, references=(), describe=None, nullable=()):
        self.module = module
        self.lookup = lookup
        self.label = label
        self.client = client
        self.collection = collection
        self.kind = kind
        self.observe = observe
        self.mutable = mutable
        self.update_action = update_action
        self.references = references
        self.describe = describe
        self.nullable = nullable
        self.update_params = {}
        self.params = module.params
        self.wait = module.params["wait"]
        self.result = dict(changed=False, actions=[], job=None, diff=dict(before={}, after={}))

    def shown(self, fields):
        """Fields as a person reads them: references by name."""
        return dict((k, self.client.names(v) if k in self.references and v is not None else v)
                    for k, v in fields.items())

    def done(self, item, before, after, detail=None):
        self.result[self.kind] = public(item)
        # Names cost a read each for items this run did not resolve: only when a diff is shown.
        shown = self.shown if getattr(self.module, "_diff", False) else dict
        self.result["diff"] = dict(before=shown(before), after=shown(after))
        actions = self.result["actions"]
        if actions:
            action = actions[-1]
            done = PAST.get(action, action)
            self.result["msg"] = "%s %s%s" % (self.label, "would be " + done if self.module.check_mode else done,
                                              " " + detail if detail else "")
        else:
            self.result["msg"] = "%s is %s as requested: nothing to change" % (
                self.label, "absent" if item is None else "present")
        return self.result

    def act(self, action):
        self.result["changed"] = True
        self.result["actions"].append(action)

    def wait_for(self, href, location, job, until="done"):
        try:
            return self.client.wait(href, location=location, job=job, timeout=self.params["wait_timeout"],
                                    until=until, what=self.label)
        except WaitFailed as exc:
            # What was written stays written: the failed result says so, with the item and its job.
            exc.result.update(changed=self.result["changed"], actions=self.result["actions"],
                              job=exc.job or self.result["job"])
            exc.result[self.kind] = public(exc.item) if exc.item else dict(href=href)
            raise

    def absent(self, current, delete_params=None):
        if current is None:
            return self.done(None, {}, {})
        before = self.observe(current)
        if self.module.check_mode:
            self.act("delete")
            return self.done(None, before, {})
        href = current["href"]
        try:
            deleted, job = self.client.delete(href, **(delete_params or {}))
        except PixstorError as exc:
            # 409 because another job runs on the item (the same task on another host deleting
            # it, or an earlier wait=false): let that job end, then decide. A 409 on a settled
            # item (a space holding data) is a refusal and fails.
            busy = exc.status == 409 and self.wait and (
                self.client.get(href)[0] or {}).get("status") not in ITEM_DONE
            if not busy:
                raise
            if self.wait_for(href, None, None, until="settled")[0] is None:
                return self.done(None, {}, {})      # removed meanwhile, not by this task
            deleted, job = self.client.delete(href, **(delete_params or {}))
        if not deleted:
            return self.done(None, {}, {})          # removed meanwhile, not by this task
        self.act("delete")
        self.result["job"] = {"href": job, "status": None} if job else None
        if job and self.wait:
            self.result["job"] = self.wait_for(href, None, job, until="gone")[1]
        return self.done(None, before, {})

    def present(self, current, desired, create_body, sent=None):
        """`sent` maps a field to the value a PATCH sends when it differs from the compared
        form in `desired` (a list in the user's order where the comparison sorts it)."""
        label = self.label
        after = dict((k, v) for k, v in desired.items() if v is not None or k in self.nullable)
        if current is None:
            if self.module.check_mode:
                self.act("create")
                return self.done(after, {}, after)
            try:
                accepted = self.client.create(self.collection, create_body)
            except PixstorError as exc:
                # The same task on several hosts at once: one creates, the others find it made.
                current = self.lookup() if exc.status == 409 and self.lookup else None
                if current is None:
                    raise
                return self.present(current, desired, create_body, sent)
            self.act("create")
            return self.finish(accepted, accepted.href, {}, after)

        before = self.observe(current)
        changes = dict((k, v) for k, v in desired.items()
                       if (v is not None or k in self.nullable) and before.get(k) != v)
        frozen = sorted(k for k in changes if k not in self.mutable)
        if frozen:
            shown_before, shown_changes = self.shown(before), self.shown(changes)
            self.module.fail_json(
                msg="%s: %s cannot be changed once created (%s). Keep the current value in the task, or remove "
                    "the %s (state: absent) and create it again." % (
                        label, ", ".join(frozen), "; ".join("%s is %s, requested %s" % (
                            k, _show(shown_before.get(k)), _show(shown_changes[k])) for k in frozen), self.kind),
                **{self.kind: public(current)})
        if changes:
            detail = self.describe(before, changes) if self.describe else None
            self.act(self.update_action(changes) if callable(self.update_action) else self.update_action)
            if self.module.check_mode:
                return self.done(dict(current, **changes), before, dict(before, **changes), detail)
            etag = self.client.get(current["href"])[1]
            body = dict((k, (sent or {}).get(k, v)) for k, v in changes.items())
            accepted = self.client.update(current["href"], body, etag, **self.update_params)
            return self.finish(accepted, current["href"], before, dict(before, **changes), detail)

        status = current.get("status")
        if status == "ERRORED":
            self.module.fail_json(
                msg="%s is ERRORED: %s. Remove it (state: absent) and create it again; the job log of %s says more."
                    % (label, current.get("status_message") or "no reason given", link_href(current, "Jobs")),
                **{self.kind: public(current)})
        if status not in ITEM_DONE and self.wait:
            # Created earlier with wait=false: wait for it without writing anything.
            current = self.wait_for(current["href"], None, None)[0] or current
        return self.done(current, before, before)

    def finish(self, accepted, href, before, after, detail=None):
        item = accepted.item
        self.result["job"] = {"href": accepted.job, "status": None} if accepted.job else None
        if self.wait and (accepted.job or accepted.location):
            item, self.result["job"] = self.wait_for(href, accepted.location, accepted.job)
        elif item is None and href:
            item = self.client.get(href)[0]
        return self.done(item, before, after, detail)


def _show(value):
    return json.dumps(value) if not isinstance(value, str) else repr(value)
