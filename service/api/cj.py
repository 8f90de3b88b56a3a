"""Collection+JSON documents: rendering items and collections, reading writes.

Everything here is derived from the model declarations through a `View`
(service/api/views.py); nothing names a particular resource.
"""
import datetime
import json
import re

import orjson
from urllib.parse import urlencode

MEDIA_TYPE = "application/vnd.collection+json"


def encode(document, sort_keys=False):
    """A document as UTF-8 JSON bytes: orjson, several times faster than json for the large
    C+J documents every read answers; json for what orjson refuses (a lone surrogate)."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS if sort_keys else 0, default=str)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(document, sort_keys=sort_keys, default=str).encode("utf-8", "surrogateescape")
INSERTION_FAILURE = "Insertion failure: 1 document(s) contain(s) error(s)"


class ApiError(Exception):
    """Answered as a C+J error document with this status."""

    def __init__(self, code, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def invalid(details):
    return ApiError(422, INSERTION_FAILURE, details)


def error_document(code, message, details=None, title="Error"):
    error = {"title": title, "code": code, "message": message}
    if details:
        error["details"] = details
    # shaped as the walkthrough and DESIGN show it: no version beside the error
    return {"collection": {"error": error}}


def jsonable(value):
    if isinstance(value, datetime.datetime):
        # whole seconds as ever; a job's times to the millisecond
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"
    return value


def link(href, name, prompt, rel, render="link"):
    return {"href": href, "prompt": prompt, "name": name, "render": render, "rel": rel}


def item_document(view, obj, related, projection=None):
    """One item: `data` for the visible fields, `links` for relations and jobs."""
    values = obj.__data__
    data = [{"prompt": prompt, "name": name, "value": read(values, related) if read else values.get(name)}
            for name, prompt, read in view.rendered if projection is None or name in projection]
    return {"href": view.href(obj), "data": data, "links": view.links(obj, related)}


def collection_document(view, href, objects, related, projection=None, paging=None):
    return {"collection": {
        "version": "1.0",
        "href": href,
        "items": [item_document(view, obj, related, projection) for obj in objects],
        "links": paging or [],
        "template": template(view),
        "queries": view.queries(),
    }}


def template(view):
    return {"data": [{"prompt": field.help_text, "name": name, "value": ""}
                     for name, field in view.writable.items() if field.in_template]}


def paging_links(path, params, page, max_results, total):
    """first/prev/next/last, keeping the caller's other query parameters."""
    last = max(1, -(-total // max_results))

    def href(number):
        query = dict(params, page=str(number), max_results=str(max_results))
        return f"{path}?{urlencode(query)}"

    links = [link(href(1), "first", "First page", "first")]
    if page > 1:
        links.append(link(href(min(page - 1, last)), "prev", "Previous page", "prev"))
    if page < last:
        links.append(link(href(page + 1), "next", "Next page", "next"))
    links.append(link(href(last), "last", "Last page", "last"))
    return links


MAX_DEPTH = 8   # {"template": {"data": [{"name", "value": [..]}]}} is 5 deep: room to spare
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(raw):
    """How deep arrays and objects nest in a JSON text, found without parsing it (a parser
    recurses: thousands of levels would exhaust its stack)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b"", raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def read_write_body(content_type, raw):
    """A write's fields as a dict, from a C+J template or a flat JSON document."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (MEDIA_TYPE, "application/json"):
        raise ApiError(400, f"unsupported Content-Type {media or '(none)'!r}: send "
                            f"{MEDIA_TYPE} with a C+J template, or application/json")
    try:
        depth = json_depth(raw or b"null")
        if depth > MAX_DEPTH:
            raise ApiError(400, f"body nests {depth} levels deep; a C+J document needs at most {MAX_DEPTH}")
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    if media == MEDIA_TYPE or (isinstance(body, dict) and set(body) == {"template"}):
        data = body.get("template", {}).get("data") if isinstance(body, dict) and isinstance(
            body.get("template"), dict) else None
        if not isinstance(data, list) or not all(isinstance(d, dict) and isinstance(d.get("name"), str)
                                                 for d in data):
            raise ApiError(400, 'body must be a C+J template: {"template": {"data": [{"name": ..., "value": ...}]}}')
        # prompts are ignored, as C+J clients may send the template back whole
        return {d["name"]: d.get("value") for d in data}
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object of field names and values")
    return body
