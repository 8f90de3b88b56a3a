"""The Bottle application: routes, and the generic handlers every collection shares."""
import hashlib
import itertools
import json
import logging
import uuid
from urllib.parse import unquote_plus

import bottle
import peewee

from service import db, inputs, tasks
from service.api import auth, logins, proxies, query
from service.api.cj import (MEDIA_TYPE, encode, ApiError, collection_document, error_document, item_document,
                            paging_links, read_write_body)
from service.api.registry import VIEWS
from service.api.views import BUSY, busy
from service.models import Job, database, now
from service.tasks.runner import one_line

log = logging.getLogger("service.api")
SECRET_PARAMETERS = frozenset({"password", "access_token", "token", "client_secret"})
MAX_QUERY_VALUE = 8192
UNAVAILABLE_RETRY = 5   # Retry-After (seconds) when the database cannot be reached
QUEUE_RETRY = 30        # ... when the queue cannot


_REQUEST_IDS = itertools.count()
_ID_PREFIX = uuid.uuid4().hex[:20]


def _request_id():
    """32 hex digits like a uuid4's, unique without asking the kernel for randomness each time:
    this process's random prefix and a counter."""
    return f"{_ID_PREFIX}{next(_REQUEST_IDS) % (1 << 48):012x}"


def redacted(query_string):
    """A query string fit for a log: the values of credential parameters replaced."""
    parts = []
    for part in query_string.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}=***" if sep and unquote_plus(name) in SECRET_PARAMETERS else part)
    return "&".join(parts)


def make_app(settings):
    app = bottle.Bottle(catchall=False)
    app.config["pixstor.proxies"] = proxies.networks(settings.server.trusted_proxies)
    logins.configure(settings.auth.hash_concurrency)
    app.config["pixstor.max_body"] = settings.server.max_body

    def endpoint(handler, error=None):
        """Request id, database connection, and errors around a handler: C+J error documents, or
        what `error` makes of them (the browser's pages, service.ui)."""
        answer = error or _error

        def wrapper(*args, **kwargs):
            request_id = bottle.request.get_header("X-Request-Id") or _request_id()
            bottle.response.set_header("X-Request-Id", request_id)
            try:
                _check_query_string()
                with db.budget.limit(settings.server.query_budget), db.kept_connection():
                    return handler(*args, **kwargs)
            except ApiError as exc:
                return answer(exc.code, exc.message, exc.details, exc.headers)
            except bottle.HTTPResponse:
                raise
            except peewee.PeeweeException as exc:
                if db.over_budget(exc):
                    return answer(503, f"the request's queries took longer than their budget of "
                                       f"{settings.server.query_budget} s; narrow the where or page size, or try "
                                       "again", headers={"Retry-After": "5"})
                if db.unavailable(exc):
                    log.warning("request %s: %s %s: the database is unavailable: %s", request_id,
                                bottle.request.method, bottle.request.path, one_line(exc))
                    return answer(503, f"the database is unavailable; try again shortly (request id {request_id}). "
                                       "A write answered so may or may not have been recorded: read before "
                                       "retrying it", headers={"Retry-After": str(UNAVAILABLE_RETRY)})
                log.exception("request %s failed: %s %s", request_id, bottle.request.method, bottle.request.path)
                return answer(500, f"internal error; quote request id {request_id} to the administrator")
            except Exception:
                log.exception("request %s failed: %s %s", request_id, bottle.request.method,
                              bottle.request.path)
                return answer(500, f"internal error; quote request id {request_id} to the administrator")
        return wrapper

    def oauth_answer(status, body, headers=None):
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        bottle.response.set_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            bottle.response.set_header(name, value)
        return json.dumps(body)

    @app.post("/oauth2/token")
    @endpoint
    def token():
        address = proxies.view(bottle.request.environ, app.config["pixstor.proxies"])[2]
        return oauth_answer(*auth.token_endpoint(bottle.request.forms, settings.auth, address))

    @app.post("/oauth2/revoke")
    @endpoint
    def revoke():
        return oauth_answer(*auth.revoke_endpoint(bottle.request.forms))

    # a browser (Accept prefers text/html) gets the same URLs as pages: service/ui
    from service.ui.pages import Pages
    pages = Pages(settings, endpoint)
    pages.install(app)

    @app.route("/", ["GET", "HEAD", "OPTIONS"])
    @pages.browsable(pages.dashboard)
    @endpoint
    def root():
        user = auth.caller(bottle.request.get_header("Authorization"))
        links = [{"href": f"/{name}/", "prompt": name.capitalize(), "name": name, "render": "link",
                  "rel": "collection"} for name in VIEWS if auth.allowed(user.role, name, ("GET",))]
        return _cj({"collection": {"version": "1.0", "href": "/", "items": [], "links": links,
                                   "queries": []}})

    @app.route("/<name:re:[a-z0-9]+>", ["GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE", "PUT"])
    @app.route("/<name:re:[a-z0-9]+>/", ["GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE", "PUT"])
    @pages.browsable(pages.collection)
    @endpoint
    def collection(name):
        view = view_named(name)
        method = _permit(view, view.collection_methods)
        if method == "POST":
            if not bottle.request.path.endswith("/"):
                raise ApiError(405, f"POST needs the trailing slash: POST to /{name}/",
                               headers={"Allow": "HEAD, GET, OPTIONS"})
            return _create(view)
        if method == "OPTIONS":
            return _options()
        return _list(view)

    @app.route("/<name:re:[a-z0-9]+>/<item_id>", ["GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE", "PUT"])
    @app.route("/<name:re:[a-z0-9]+>/<item_id>/", ["GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE", "PUT"])
    @pages.browsable(pages.item)
    @endpoint
    def item(name, item_id):
        view = view_named(name)
        method = _permit(view, view.item_methods)
        obj = get_item(view, item_id)
        if method == "OPTIONS":
            return _options()
        if method == "PATCH":
            return _update(view, obj)
        if method == "DELETE":
            return _delete(view, obj)
        return _show(view, obj)

    @app.route("/jobs/<job_id>/<stream:re:stdout|stderr>", ["GET", "HEAD"])
    @pages.browsable(pages.job_log)
    @endpoint
    def job_log(job_id, stream):
        _permit(VIEWS["jobs"], ("GET", "HEAD"))
        job = get_item(VIEWS["jobs"], job_id)
        # exactly text/plain, as the walkthrough prints it; the bytes are UTF-8
        bottle.response.content_type = "text/plain"
        return (getattr(job, stream) or "").encode("utf-8")

    @app.route("/<name:re:[a-z0-9]+>/<item_id>/<action:re:[a-z]+>", ["POST", "OPTIONS"])
    @endpoint
    def item_action(name, item_id, action):
        """POST /{collection}/{id}/{action}: a job other than create, update or delete (a
        space's revert), with the writes' conditions (If-Match, a busy item's 409) and answer."""
        view = view_named(name)
        if action not in getattr(view, "actions", ()):
            raise ApiError(404, f"no such action: {bottle.request.path}")
        method = _permit(view, ("POST",))
        obj = get_item(view, item_id)
        if method == "OPTIONS":
            return _options()
        check_etag(view, obj, bottle.request.get_header("If-Match"))
        if obj.status in BUSY:
            raise busy(view.href(obj), obj.status, view.collection, obj.id)
        params = view.check_action(action, obj, _write_body(), _force())
        obj, related, job = act(view, obj, action, params)
        return _accepted(view, obj, related, job)

    @app.get("/openapi.json")
    @endpoint
    def openapi():
        from service.api.openapi import document
        bottle.response.content_type = "application/json"
        return json.dumps(document(VIEWS))

    def not_found(error):
        return _error_body(error.status_code, f"no such resource: {bottle.request.path}")

    app.error_handler[404] = not_found
    app.error_handler[405] = lambda error: _error_body(405, f"method {bottle.request.method} not allowed here")
    app.error_handler[500] = lambda error: _error_body(500, "internal error")
    return app


# Handlers ------------------------------------------------------------------

def _check_query_string():
    """No credentials in URLs (proxies and logs keep them); no control characters in any value."""
    if not bottle.request.query_string:
        return
    secrets_in_url = SECRET_PARAMETERS & set(bottle.request.query.keys())
    if secrets_in_url:
        raise ApiError(400, f"credentials ({', '.join(sorted(secrets_in_url))}) must not be sent in the "
                            "URL, where proxies and logs keep them: send them in the request body or the "
                            "Authorization header")
    try:
        for name, value in bottle.request.query.decode().allitems():
            inputs.text(name, 256)
            inputs.text(value, MAX_QUERY_VALUE)
    except (ValueError, UnicodeError) as exc:
        raise ApiError(400, f"query string: {exc}") from None


def _list(view):
    params = dict(bottle.request.query.decode().allitems())
    objects, total, projection, page, max_results = select_page(view, params)
    bottle.response.set_header("X-Total-Count", str(total))
    path = bottle.request.path
    query_string = bottle.request.query_string
    href = path + ("?" + unquote_plus(query_string) if query_string else "")
    paging = paging_links(path, params, page, max_results, total)
    return _cj(collection_document(view, href, objects, view.related(objects), projection, paging))


def select_page(view, params):
    """The items of one page of a collection as the query parameters ask (where, projection,
    sort, max_results, page): (items, total matches, projection, page, max_results); 400 for
    anything else."""
    unknown = set(params) - {"where", "projection", "sort", "max_results", "page"}
    if unknown:
        raise ApiError(400, f"unknown query parameter {sorted(unknown)[0]!r}; use where, projection, sort, "
                            "max_results or page")
    where, projection, order, page, max_results = _query_args(view, params)
    total = view.count(where)
    objects = view.page(where, query.stable_order(view.model, order), page, max_results, params.get("sort"))
    return objects, total, projection, page, max_results


def _query_args(view, params):
    try:
        where = query.parse_where(params.get("where"), view.model, view.queryable + [f"{n}.*" for n in view.keyed])
        projection = query.parse_projection(params.get("projection"), list(view.visible))
        order = query.parse_sort(params.get("sort"), view.model, view.queryable)
        max_results, page = query.parse_paging(params.get("max_results"), params.get("page"))
    except query.QueryError as exc:
        raise ApiError(400, str(exc)) from None
    return where, projection, order, page, max_results


def _show(view, obj):
    params = dict(bottle.request.query.decode().allitems())
    unknown = set(params) - {"projection"}
    if unknown:
        raise ApiError(400, f"unknown query parameter {sorted(unknown)[0]!r} on an item; use projection")
    try:
        projection = query.parse_projection(params.get("projection"), list(view.visible))
    except query.QueryError as exc:
        raise ApiError(400, str(exc)) from None
    related = view.related([obj])     # once, for the document and its ETag
    whole = item_document(view, obj, related)
    document = collection_document(view, view.href(obj), [], related, projection)
    document["collection"]["items"] = [whole if projection is None else item_document(view, obj, related, projection)]
    bottle.response.set_header("ETag", _etag_of(whole))
    return _cj(document)


def _create(view):
    obj, related, job = create(view, _write_body())
    return _accepted(view, obj, related, job)


def create(view, fields):
    """A new item from a write's fields, and its job queued: (item, its relations, job).
    Raises ApiError (422, 409, 503) and writes nothing when it does."""
    values = view.parse(fields)
    existing, columns = view.duplicate(values)
    retry = existing is not None and existing.status == "ERRORED" and _last_action(existing) == "create"
    if existing is not None and not retry:
        raise _duplicate(view, existing, columns)
    view.check_create(values, existing)
    try:
        with database.atomic():
            if existing:
                _claim(view, existing)
            view.guard("create", values, existing)
            obj = existing or view.model()
            for name, value in values.items():
                if name not in view.many:
                    setattr(obj, name, value)
            obj.status, obj.status_message = "NEW", None
            obj.save(force_insert=existing is None)
            for name in view.many:
                relation = getattr(obj, name)
                relation.clear()
                if values.get(name):
                    relation.add(values[name])
            job = _new_job(view, obj, "create")
    except peewee.IntegrityError:
        # a concurrent request created the same item between our check and our insert
        existing, columns = view.duplicate(values)
        if existing is None:
            raise
        raise _duplicate(view, existing, columns) from None
    return (*_queued(view, obj, job), job)


def _write_body():
    """The fields of a write (C+J template or flat JSON)."""
    return read_write_body(bottle.request.content_type, body_bytes())


def body_bytes():
    """The request's body, refused whole (413) past server.max_body."""
    limit = bottle.request.app.config["pixstor.max_body"]
    length = bottle.request.content_length
    if length > limit:
        raise ApiError(413, f"request body of {length} bytes is over the limit of {limit} bytes")
    raw = bottle.request.body.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, f"request body is over the limit of {limit} bytes")
    return raw


def _duplicate(view, existing, columns):
    return ApiError(409, f"{view.collection} item with the same {' and '.join(columns)} exists: "
                         f"{view.href(existing)}", {c: "already in use" for c in columns})


def _update(view, obj):
    check_etag(view, obj, bottle.request.get_header("If-Match"))
    obj, related, job = update(view, obj, _write_body())
    if job is None:
        return _show(view, obj)
    return _accepted(view, obj, related, job)


def update(view, obj, fields):
    """A change of an item from a write's fields: (item, its relations, job), job None when the
    change needed no storage work (the item is then as changed, or as it was when nothing changed)."""
    values = view.parse(fields, item=obj)
    if obj.status in BUSY:
        raise busy(view.href(obj), obj.status, view.collection, obj.id)
    needs_job = view.check_update(obj, values)
    params = {n: v for n, v in values.items() if n not in view.many and getattr(obj, n) != v}
    # a writable relation (a space's snapshot_policies) needs no storage work: changed in place
    current = view.related([obj])
    links = {n: v for n, v in values.items() if n in view.many and [i.id for i in v] != current[n][obj.id]}
    if not params and not links:
        return obj, None, None
    with database.atomic():
        # with a job, the new values are applied by the job once storage agrees
        before = _claim(view, obj, None if needs_job else params)
        for name, items in links.items():
            relation = getattr(obj, name)
            relation.clear()
            relation.add(items)
        view.guard("update", values, obj)
        if not needs_job:
            return view.model.get_by_id(obj.id), None, None
        job = _new_job(view, obj, "update", params)
    return (*_queued(view, obj, job, before), job)


def _delete(view, obj):
    check_etag(view, obj, bottle.request.get_header("If-Match"))
    obj, related, job = delete(view, obj, _force())
    return _accepted(view, obj, related, job, location=False)


def _force():
    """?force=true (or 1, yes): a write that loses data was asked for knowingly."""
    return bottle.request.query.get("force", "false").lower() in ("1", "true", "yes")


def delete(view, obj, force):
    """The delete of an item, its job queued: (item, its relations, job)."""
    if obj.status in BUSY:
        raise busy(view.href(obj), obj.status, view.collection, obj.id)
    view.check_delete(obj, force)
    return act(view, obj, "delete", {"force": force})


def act(view, obj, action, params):
    """The job of `action` (delete, or an item action such as a space's revert) on an item the
    request checked: claimed, guarded, queued. Returns (item, its relations, job)."""
    with database.atomic():
        before = _claim(view, obj)
        view.guard(action, params, obj)
        job = _new_job(view, obj, action, params)
    return (*_queued(view, obj, job, before), job)


def _new_job(view, obj, action, params=None):
    """The job of a write, owned by the caller; the clock of `queued` is the database's, which
    the sweeper compares it with (service.tasks.runner.requeue_lost)."""
    owner = bottle.request.environ["pixstor.user"].name
    return Job.create(action=action, resource_type=view.collection, resource_id=obj.id, owner=owner,
                      queued=db.clock(), queued_by=owner,
                      params=None if params is None else json.dumps(params, default=_reference))


def _reference(value):
    """A job parameter that names another item (a profile's new datastore) is kept as its id."""
    if isinstance(value, peewee.Model):
        return value.id
    raise TypeError(f"{type(value).__name__} is not a job parameter")


def _queued(view, obj, job, before=None):
    """Hand the job to the queue: (item, its relations) for the answer. `before`: the columns an
    update or delete claimed, as they were, put back if the job cannot be queued (503).

    Once the job is queued the answer is 202, whatever happens next: the item is read again
    for the answer, but if it is gone (its delete job was quicker) or the database cannot be
    read now, the answer shows it as it was when it was queued."""
    model = type(obj)
    related = view.related([obj])
    try:
        tasks.submit(job)
    except Exception as exc:
        log.exception("could not queue job %s", job.id)
        _not_queued(view, obj, job, before, f"could not queue the job: {one_line(exc)}")
    current = None
    try:
        model.update(status="PENDING").where(model.id == obj.id, model.status == "NEW").execute()
        current = model.get_or_none(model.id == obj.id)
        if current is not None:
            obj, related = current, view.related([current])
    except peewee.PeeweeException as exc:
        log.warning("job %s was queued; its item could not be read again for the answer: %s", job.id, one_line(exc))
    if current is None:
        obj.status = "PENDING"      # what it was when the job was queued
    return obj, related


def _accepted(view, obj, related, job, location=True):
    """202 with where to watch the job."""
    base = _base_url()
    bottle.response.status = 202
    if location:
        bottle.response.set_header("Location", f'{base}{view.href(obj)}?projection={{"status":1}}')
    bottle.response.set_header("Link", f'<{base}/jobs/{job.id}>; rel="job"')
    return _cj(collection_document(view, view.href(obj), [obj], related, None))


def _not_queued(view, obj, job, before, why):
    """The job could not be queued: a create's item and job turn ERRORED (a POST of the same
    retries it); an update's or delete's job is taken back and the item is as it was. Raises
    503 — or returns, when a worker has taken the job meanwhile (the message did get through)."""
    model = type(obj)
    try:
        with database.atomic():
            if before is None:
                taken_back = Job.update(status="ERRORED", finished=now(), message=why,
                                        stderr=f"ERROR:service.api:{why}\n").where(
                    Job.id == job.id, Job.status == "PENDING").execute()
                item = {"status": "ERRORED", "status_message": why}
                state = f"{view.href(obj)} is ERRORED: send the same request again once the queue is back"
            else:
                taken_back = Job.delete().where(Job.id == job.id, Job.status == "PENDING").execute()
                item = before
                state = f"{view.href(obj)} is as it was: send the request again once the queue is back"
            if taken_back:
                model.update(**item).where(model.id == obj.id, model.status == "NEW").execute()
    except peewee.PeeweeException as exc:
        log.warning("job %s: not queued, and the database could not be told: %s", job.id, one_line(exc))
        raise ApiError(503, f"{why}; nor could the database be told: job /jobs/{job.id} will be queued by a "
                            "worker once both are back; read it before retrying",
                       headers={"Retry-After": str(QUEUE_RETRY)}) from None
    if taken_back:
        raise ApiError(503, f"{why}; {state}", headers={"Retry-After": str(QUEUE_RETRY)})
    log.warning("job %s was taken by a worker although queueing it failed: answering 202", job.id)


def _claim(view, obj, changes=None):
    """Mark the item NEW for a new job (or, given `changes`, write them in place) in one
    conditional UPDATE that no job holds the item: of two concurrent requests for the same
    item only one gets it, the other is 409; a change never lands while a job runs.
    Returns the columns it changed, as they were."""
    model = view.model
    values = {"status": "NEW", "status_message": None} if changes is None else changes
    claimed = model.update(**values, updated=now()).where(model.id == obj.id, model.status.not_in(BUSY)).execute()
    if not claimed:
        current = model.get_or_none(model.id == obj.id)
        if current is None:
            raise ApiError(404, f"{view.href(obj)} is gone")
        raise busy(view.href(obj), current.status, view.collection, obj.id)
    return {name: getattr(obj, name) for name in (*values, "updated")}


def _last_action(obj):
    job = (Job.select(Job.action).where(Job.resource_id == obj.id)
           .order_by(Job.created.desc(), Job.id.desc()).first())
    return job.action if job else None


# Helpers -------------------------------------------------------------------

def view_named(name):
    view = VIEWS.get(name)
    if view is None:
        raise ApiError(404, f"no such collection /{name}/; collections: "
                            + ", ".join(f"/{n}/" for n in VIEWS))
    return view


def _permit(view, methods):
    """The request's method, if both the URL and the caller's role allow it; else 401/405."""
    return permit(view, methods, auth.caller(bottle.request.get_header("Authorization")), bottle.request.method)


def permit(view, methods, user, method):
    """`method`, if both the URL and `user`'s role allow it; else 405."""
    allowed = auth.allowed(user.role, view.collection, methods + ("HEAD", "OPTIONS"))
    bottle.request.environ["pixstor.allowed"] = allowed
    bottle.request.environ["pixstor.user"] = user
    if method not in allowed:
        raise ApiError(405, f"method {method} is not allowed on {bottle.request.path} for role {user.role}",
                       headers={"Allow": ", ".join(allowed)})
    return method


def _options():
    bottle.response.set_header("Allow", ", ".join(bottle.request.environ["pixstor.allowed"]))
    bottle.response.status = 200
    return ""


def get_item(view, item_id):
    obj = view.get(item_id)
    if obj is None:
        raise ApiError(404, f"no such item: /{view.collection}/{item_id}")
    return obj


def etag(view, obj):
    return _etag_of(item_document(view, obj, view.related([obj])))


def _etag_of(document):
    return '"' + hashlib.sha1(encode(document, sort_keys=True)).hexdigest() + '"'


def check_etag(view, obj, wanted):
    """412 unless `wanted` (If-Match: ETags, or *) names the item's ETag; nothing wanted, no condition."""
    if wanted and wanted.strip() != "*" and etag(view, obj) not in [t.strip() for t in wanted.split(",")]:
        raise ApiError(412, f"{view.href(obj)} has changed since you read it (If-Match does not match its ETag)")


def _base_url():
    """Absolute base for Location, as the client sees it (through a trusted proxy)."""
    scheme, host, _ = proxies.view(bottle.request.environ, bottle.request.app.config["pixstor.proxies"])
    return f"{scheme}://{host}"


def _cj(document):
    bottle.response.content_type = MEDIA_TYPE
    return encode(document)


def _error(code, message, details=None, headers=None):
    bottle.response.status = code
    for name, value in (headers or {}).items():
        bottle.response.set_header(name, value)
    return _cj(error_document(code, message, details))


def _error_body(code, message):
    bottle.response.content_type = MEDIA_TYPE
    return json.dumps(error_document(code, message))
