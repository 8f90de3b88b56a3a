"""The pages: a dashboard at /, a page per collection and per item (a job's shows its logs),
sign-in and sign-out. Every page is read off a View; every write goes through the API's own
handlers (service.api.app: permit, create, update, delete), so a form meets exactly the API's
rules, roles and jobs."""
import datetime
import functools
import json
from pathlib import Path
from urllib.parse import urlencode

import bottle
import jinja2
import peewee

from service.api import app as api
from service.api import auth, proxies
from service.api.cj import ApiError, paging_links
from service.api.registry import VIEWS
from service.api.spaces import force_requested
from service.api.views import BUSY, busy
from service.models import JOB_STATUSES, Datastore, Exposer, Job, Profile, Resource, Space, now
from service.ui import display, forms, session
from service.ui.negotiation import prefers_html

HERE = Path(__file__).parent
PREFILL = "new."            # ?new.space=/spaces/ID fills the create form's space
REFRESH_MS = 1000           # a busy item's or running job's page reads itself again this often
ITEM_JOBS = 10              # an item's latest jobs on its page
DASHBOARD_SPACES = 10
# a form's refusals shown beside the form; 401 (sign in), 403, 404 and 405 get a page of their own
SHOWN_WITH_FORM = (400, 409, 412, 413, 422, 503)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept, Cookie",
}


def safe_next(target):
    """Where to go after signing in: a path of this site, never another site's URL."""
    target = target or "/"
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def redirect(location):
    """303 to a path of this site (not raised: the cookies set for this answer must stay)."""
    bottle.response.status = 303
    bottle.response.set_header("Location", location)
    return ""


def editable(view):
    """The fields a PATCH may change: writable, not fixed at creation."""
    return [name for name, fld in view.writable.items() if not fld.immutable]


class Pages:
    def __init__(self, settings, endpoint):
        self.settings = settings
        self.endpoint = endpoint
        self.trusted = proxies.networks(settings.server.trusted_proxies)
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    # Wiring ------------------------------------------------------------------

    def browsable(self, page):
        """A decorator for an API route: a browser's GET, HEAD or POST goes to `page` instead."""
        page = self.endpoint(page, error=self.error)

        def decorate(handler):
            @functools.wraps(handler)
            def choose(*args, **kwargs):
                if bottle.request.method in ("GET", "HEAD", "POST") and prefers_html(
                        bottle.request.get_header("Accept")):
                    return page(*args, **kwargs)
                return handler(*args, **kwargs)
            return choose
        return decorate

    def install(self, app):
        """The pages' own URLs: sign-in, sign-out, the stylesheet and the script."""
        for methods, path, handler in ((["GET", "HEAD"], session.SIGN_IN_PATH, self.sign_in_page),
                                       (["POST"], session.SIGN_IN_PATH, self.sign_in),
                                       (["POST"], "/ui/sign-out", self.sign_out)):
            app.route(path, methods, self.endpoint(handler, error=self.error))
        app.route("/ui/static/<filename:re:[a-z]+\\.(?:css|js)>", ["GET", "HEAD"],
                  lambda filename: bottle.static_file(filename, root=HERE / "static",
                                                      headers={"Cache-Control": "no-cache"}))

    def render(self, template, status=200, headers=None, **context):
        bottle.response.status = status
        bottle.response.content_type = "text/html; charset=utf-8"
        for name, value in {**HEADERS, **(headers or {})}.items():
            bottle.response.set_header(name, value)
        context.setdefault("refresh", False)
        return self.templates.get_template(template).render(**context)

    def error(self, code, message, details=None, headers=None):
        """An error as a page; 401 (no session, or an expired one) as the sign-in page."""
        if code == 401:
            session.forget()
            here = bottle.request.path
            if bottle.request.method in ("GET", "HEAD") and bottle.request.query_string:
                here += "?" + bottle.request.query_string
            return redirect(f"{session.SIGN_IN_PATH}?{urlencode({'next': here})}")
        return self.render("error.html", code, headers, frame=bottle.request.environ.get("pixstor.ui.frame"),
                           code=code, message=message, details=details, reason=bottle.HTTP_CODES.get(code, ""))

    def secure(self):
        return proxies.view(bottle.request.environ, self.trusted)[0] == "https"

    def signed_in(self):
        """(user, what every page's frame shows): the collections the user may read, sign-out."""
        user = session.user()
        nav = [(name.capitalize(), f"/{name}/") for name in VIEWS if auth.allowed(user.role, name, ("GET",))]
        frame = {"user": user.name, "role": user.role, "csrf": session.csrf_token(session.token()), "nav": nav,
                 "path": bottle.request.path}
        bottle.request.environ["pixstor.ui.frame"] = frame      # an error page shows it too
        return user, frame

    def read_form(self):
        media = (bottle.request.content_type or "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise ApiError(400, f"a form is sent as application/x-www-form-urlencoded, not {media or '(none)'!r}")
        return forms.read_form(api.body_bytes())

    def posted(self):
        """A signed-in form's fields, its CSRF token checked (403)."""
        form = self.read_form()
        session.check_csrf(form, session.csrf_token(session.token()))
        return form

    # Signing in and out ------------------------------------------------------

    def sign_in_page(self):
        target = safe_next(bottle.request.query.get("next"))
        if session.token():
            try:
                session.user()
                return redirect(target)
            except ApiError:
                session.forget()
        return self.sign_in_form(target)

    def sign_in_form(self, target, username="", message=None, status=200, headers=None):
        return self.render("sign_in.html", status, headers, frame=None, csrf=session.sign_in_csrf(self.secure()),
                           next=target, username=username, message=message)

    def sign_in(self):
        """The API's password grant (its checks and throttling); the token kept in a cookie."""
        form = self.read_form()
        session.check_sign_in_csrf(form)
        first = {name: (form.get(name) or [""])[0] for name in ("username", "password", "next")}
        target = safe_next(first["next"])
        address = proxies.view(bottle.request.environ, self.trusted)[2]
        status, body, headers = auth.token_endpoint(
            {"grant_type": "password", "username": first["username"], "password": first["password"]},
            self.settings.auth, address)
        if status != 200:
            return self.sign_in_form(target, first["username"], body["error_description"], status, headers)
        session.keep(body["access_token"], body["expires_in"], self.secure())
        return redirect(target)

    def sign_out(self):
        """The session's token revoked (as POST /oauth2/revoke does), its cookie dropped."""
        current = session.token()
        if current:
            session.check_csrf(self.read_form(), session.csrf_token(current))
            auth.revoke_endpoint({"token": current})
        session.forget()
        return redirect(session.SIGN_IN_PATH)

    # The dashboard -----------------------------------------------------------

    def dashboard(self):
        user, frame = self.signed_in()
        may_read = {name for name in VIEWS if auth.allowed(user.role, name, ("GET",))}
        since = now() - datetime.timedelta(days=1)
        spaces = jobs = filesystems = None
        if "spaces" in may_read:
            ratio = Space.used.cast("DOUBLE PRECISION") / Space.size     # SQLite and PostgreSQL alike
            fullest = (Space.select().where(Space.used.is_null(False), Space.size > 0)
                       .order_by(ratio.desc(), Space.name).limit(DASHBOARD_SPACES))
            spaces = [{"href": VIEWS["spaces"].href(s), "name": s.name, "status": s.status,
                       "usage": display.usage(s)} for s in fullest]
        if "jobs" in may_read:
            counts = dict(Job.select(Job.status, peewee.fn.COUNT(Job.id)).where(Job.created >= since)
                          .group_by(Job.status).tuples())
            jobs = [{"status": status, "count": counts.get(status, 0), "href": "/jobs/?" + urlencode({
                "where": json.dumps({"status": status, "created": {"$gte": since.isoformat() + "Z"}}),
                "sort": "-created"})} for status in JOB_STATUSES]
        if "datastores" in may_read:
            filesystems = self.pools()
        return self.render("dashboard.html", frame=frame, spaces=spaces, jobs=jobs, filesystems=filesystems,
                           since=display.time_cell(since))

    @staticmethod
    def pools():
        """Each filesystem with its pools: the spaces placed in each, their sizes and use."""
        placed = {ds: (count, size, used) for ds, count, size, used in (
            Space.select(Profile.datastore, peewee.fn.COUNT(Space.id), peewee.fn.SUM(Space.size),
                         peewee.fn.SUM(Space.used)).join(Profile).group_by(Profile.datastore).tuples())}
        mounted = {e.name: e for e in Exposer.select().where(Exposer.type == "gpfsnative")}
        result = {}
        for store in Datastore.select().order_by(Datastore.filesystem, Datastore.pool):
            exposer = mounted.get(store.filesystem)
            entry = result.setdefault(store.filesystem, {
                "name": store.filesystem, "pools": [],
                "href": VIEWS["exposers"].href(exposer) if exposer else None,
                "mountpoint": exposer.mountpoint if exposer else None})
            count, size, used = placed.get(store.id, (0, 0, 0))
            entry["pools"].append({"pool": store.pool, "href": VIEWS["datastores"].href(store),
                                   "status": store.status, "spaces": count,
                                   "spaces_href": "/spaces/?" + urlencode({"where": json.dumps(
                                       {"profile": {"$in": [p.id for p in store.profiles]}})}),
                                   "size": display.human_bytes(size or 0), "used": display.human_bytes(used or 0)})
        return list(result.values())

    # Collections ---------------------------------------------------------------

    def collection(self, name):
        view = api.view_named(name)
        user, frame = self.signed_in()
        if bottle.request.method == "POST":
            return self.create(view, user, frame)
        api.permit(view, view.collection_methods, user, "GET")
        params = dict(bottle.request.query.decode().allitems())
        search = next((q for q in view.queries() if q["rel"] == params.get("query")), None)
        if search is not None:
            return redirect(self.fill(search, params))
        return self.collection_page(view, user, frame, params)

    @staticmethod
    def fill(search, params):
        """A C+J query's uri-template with the values its form sent (each JSON-escaped, as the
        template puts them inside a JSON string), its parameters URL-encoded."""
        path, _, template = search["href"].partition("?")
        filled = {}
        for part in template.split("&"):
            name, _, value = part.partition("=")
            for item in search["data"]:
                value = value.replace("{" + item["name"] + "}", json.dumps(params.get(item["name"], ""))[1:-1])
            filled[name] = value
        return f"{path}?{urlencode(filled)}"

    def collection_page(self, view, user, frame, params, written=None, status=200):
        """A collection's page: search, a sortable table, paging, and the create form. `written`:
        (the texts a refused create sent, its ApiError)."""
        prefill = {k[len(PREFILL):]: v for k, v in params.items() if k.startswith(PREFILL)}
        params = {k: v for k, v in params.items() if not k.startswith(PREFILL)}
        query_error = None
        try:
            objects, total, projection, page, max_results = api.select_page(view, params)
        except ApiError as exc:
            if exc.code != 400:
                raise
            objects, total, projection, page, max_results, query_error = [], 0, None, 1, 25, exc.message
            status = max(status, 400)
        related = view.related(objects)
        names = display.labels(view, objects, related)
        title = display.title_field(view)
        shown = [n for n in display.columns(view) if projection is None or n in projection]
        message = display.message_field(view)
        rows = [{"href": view.href(obj), "title": getattr(obj, title),
                 "status": getattr(obj, "status", None),
                 "message": getattr(obj, message) if message else None,
                 "usage": display.usage(obj) if display.has_usage(view) else None,
                 "cells": [display.cell(view, obj, n, related, names, display.targets(view, obj, related))
                           for n in shown],
                 "created": display.time_cell(obj.created) if "created" in view.visible else None}
                for obj in objects]
        path = bottle.request.path
        headers = [("status", "status")] if "status" in view.visible else []
        headers += [(title, title)] + ([("usage", "used")] if display.has_usage(view) else [])
        headers += [(n, n) for n in shown] + ([("created", "created")] if "created" in view.visible else [])
        sorts = display.sort_links(view, [field for _, field in headers], params.get("sort", ""))
        keep = {k: v for k, v in params.items() if k not in ("page", "sort")}
        columns = [{"label": label, "field": field,
                    "href": f"{path}?{urlencode({**keep, 'sort': sorts[field][0]})}" if field in sorts else None,
                    "sorted": sorts[field][1] if field in sorts else None} for label, field in headers]
        last = max(1, -(-total // max_results))
        allowed = auth.allowed(user.role, view.collection, view.collection_methods)
        create = None
        if "POST" in allowed:
            values, error = written if written else (prefill, None)
            create = {"controls": forms.controls(view, list(view.writable), values,
                                                 error.details if error else None, creating=True),
                      "error": error, "open": bool(written or prefill)}
        return self.render("collection.html", status, frame=frame, view=view, title=display.singular(view.collection),
                           rows=rows, columns=columns, total=total, page=page, last=last,
                           paging=paging_links(path, params, page, max_results, total) if objects else [],
                           where=params.get("where", ""), query_error=query_error, queries=view.queries(),
                           create=create)

    def create(self, view, user, frame):
        form = self.posted()
        api.permit(view, view.collection_methods, user, "POST")
        names = list(view.writable)
        values = forms.posted_values(view, form, names)
        try:
            _, _, job = api.create(view, forms.write_fields(view, names, values))
        except ApiError as exc:
            if exc.code not in SHOWN_WITH_FORM:
                raise
            return self.collection_page(view, user, frame, {}, (values, exc), exc.code)
        return redirect(f"/jobs/{job.id}")

    # Items ---------------------------------------------------------------------

    def item(self, name, item_id):
        view = api.view_named(name)
        user, frame = self.signed_in()
        if bottle.request.method == "POST":
            return self.change(view, user, frame, item_id)
        api.permit(view, view.item_methods, user, "GET")
        obj = api.get_item(view, item_id)
        if bottle.request.query.get("action") == "delete":
            return self.delete_page(view, user, frame, obj)
        return self.item_page(view, user, frame, obj)

    def item_page(self, view, user, frame, obj, written=None, status=200):
        """Every field and link of an item, its latest jobs, a job's logs, and the PATCH form.
        `written`: (the texts a refused change sent, its ApiError)."""
        related = view.related([obj])
        names = display.labels(view, [obj], related)
        linked = display.targets(view, obj, related)
        fields = [{"name": n, "prompt": fld.help_text, "cell": display.cell(view, obj, n, related, names, linked)}
                  for n, fld in view.visible.items()]
        jobs = None
        if issubclass(view.model, Resource):
            recent = (Job.select().where(Job.resource_type == view.collection, Job.resource_id == obj.id)
                      .order_by(Job.created.desc(), Job.id.desc()).limit(ITEM_JOBS))
            jobs = [{"href": f"/jobs/{j.id}", "action": j.action, "status": j.status, "owner": j.owner,
                     "created": display.time_cell(j.created), "message": j.message} for j in recent]
        allowed = auth.allowed(user.role, view.collection, view.item_methods)
        edit = None
        if "PATCH" in allowed and editable(view):
            values, error = written if written else (self.texts(view, obj, related), None)
            edit = {"controls": forms.controls(view, editable(view), values, error.details if error else None,
                                               creating=False),
                    "error": error, "etag": api.etag(view, obj)}
        links = view.links(obj, related)
        # a link below the item (a job's stdout and stderr) is a text the page shows too
        logs = [(ln["rel"], getattr(obj, ln["rel"]) or "") for ln in links
                if ln["href"] == f"{view.href(obj)}/{ln['rel']}" and ln["rel"] in view.model._meta.fields]
        message = display.message_field(view)
        return self.render(
            "item.html", status, frame=frame, view=view, obj=obj, title=display.singular(view.collection),
            outcome=getattr(obj, message) if message and "status" in view.visible else None,
            heading=getattr(obj, display.title_field(view)), fields=fields, links=links, usage=display.usage(obj),
            jobs=jobs, edit=edit, can_delete="DELETE" in allowed, logs=logs, offers=self.offers(view, user, obj),
            refresh=REFRESH_MS if getattr(obj, "status", None) in BUSY else False)

    @staticmethod
    def texts(view, obj, related):
        return {name: forms.text_of(view, obj, name, related) for name in editable(view)}

    @staticmethod
    def offers(view, user, obj):
        """Links to what refers to this item: the items of other collections that name it (as
        a list), and their create forms with it filled in, when the role may create them."""
        found = []
        title = getattr(obj, display.title_field(view))
        for other in VIEWS.values():
            may_create = "POST" in auth.allowed(user.role, other.collection, other.collection_methods)
            for name, fld in {**other.foreign, **other.many}.items():
                if fld.rel_model is not view.model:
                    continue
                if name in other.foreign:
                    found.append((f"/{other.collection}/?{urlencode({'where': json.dumps({name: obj.id})})}",
                                  f"{other.collection.capitalize()} with {name} {title}"))
                if may_create and name in other.writable:
                    found.append((f"/{other.collection}/?{urlencode({PREFILL + name: view.href(obj)})}#new",
                                  f"New {display.singular(other.collection)} with {name} {title}"))
        return found

    def change(self, view, user, frame, item_id):
        """A form's PATCH or DELETE (a form can only POST: its _method says which)."""
        form = self.posted()
        method = (form.get("_method") or [""])[0].upper()
        if method not in ("PATCH", "DELETE"):
            raise ApiError(400, "a form posted to an item says what it does: _method PATCH or DELETE")
        api.permit(view, view.item_methods, user, method)
        obj = api.get_item(view, item_id)
        if method == "DELETE":
            try:
                api.check_etag(view, obj, (form.get("etag") or [""])[0])
                _, _, job = api.delete(view, obj, force_requested())
            except ApiError as exc:
                if exc.code not in SHOWN_WITH_FORM:
                    raise
                return self.delete_page(view, user, frame, obj, exc)
            return redirect(f"/jobs/{job.id}")
        names = editable(view)
        values = forms.posted_values(view, form, names)
        try:
            api.check_etag(view, obj, (form.get("etag") or [""])[0])
            changes = forms.write_fields(view, names, values, self.texts(view, obj, view.related([obj])))
            obj, _, job = api.update(view, obj, changes)
        except ApiError as exc:
            if exc.code not in SHOWN_WITH_FORM:
                raise
            return self.item_page(view, user, frame, obj, (values, exc), exc.code)
        return redirect(f"/jobs/{job.id}" if job else view.href(obj))

    def delete_page(self, view, user, frame, obj, refused=None):
        """The delete's confirmation: what a plain delete would meet (the API's own checks,
        run without writing), and what force would remove with the item."""
        api.permit(view, view.item_methods, user, "DELETE")
        plain = forced = None
        if getattr(obj, "status", None) in BUSY:
            plain = forced = busy(view.href(obj), obj.status, view.collection, obj.id).message
        else:
            try:
                view.check_delete(obj, False)
            except ApiError as exc:
                plain = exc.message
                try:
                    view.check_delete(obj, True)
                except ApiError as again:
                    forced = again.message
        goes_with = []
        for fk, model in view.model._meta.backrefs.items():
            if fk.on_delete == "CASCADE" and getattr(model._meta, "collection", None) in VIEWS:
                title = display.title_field(VIEWS[model._meta.collection])
                goes_with += [(VIEWS[model._meta.collection].href(o), display.singular(model._meta.collection),
                               getattr(o, title)) for o in model.select().where(fk == obj.id)]
        return self.render("delete.html", refused.code if refused else 200, frame=frame, view=view, obj=obj,
                           title=display.singular(view.collection), heading=getattr(obj, display.title_field(view)),
                           plain=plain, forced=forced, goes_with=goes_with, usage=display.usage(obj),
                           refused=refused, etag=api.etag(view, obj))

    def job_log(self, job_id, stream):
        """A job's log as the API serves it (text/plain), for a signed-in browser."""
        user = session.user()
        view = VIEWS["jobs"]
        api.permit(view, ("GET",), user, "GET")
        job = api.get_item(view, job_id)
        bottle.response.content_type = "text/plain; charset=utf-8"
        for name, value in HEADERS.items():
            bottle.response.set_header(name, value)
        return (getattr(job, stream) or "").encode("utf-8")
