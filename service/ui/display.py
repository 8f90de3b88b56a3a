"""How the pages show what a View holds: cells of fields, a list's columns, usage bars, times.

Read off the field declarations, as the C+J documents are: nothing here names a resource."""
import datetime
import json

import peewee

from service import fields as f
from service.models import now
from service.tasks.spaces import soft_limit

BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
MAX_COLUMNS = 6         # a list's short fields, besides status, title, usage and created


def singular(collection):
    return collection[:-1] if collection.endswith("s") else collection


def human_bytes(number):
    """'1.5 GiB' for 1610612736; whole bytes below 1 KiB."""
    value, unit = float(number), "bytes"
    for name in BYTE_UNITS:
        if abs(value) < 1024:
            break
        value, unit = value / 1024, name
    return f"{int(number)} bytes" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")


def ago(moment, current=None):
    """'3 min ago', 'in 2 h', 'just now': a stored (naive UTC) time against now."""
    seconds = int(((current or now()) - moment).total_seconds())
    later, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "days"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            amount = f"{seconds // size} {unit if unit != 'days' or seconds >= 2 * size else 'day'}"
            return f"in {amount}" if later else f"{amount} ago"


def time_cell(moment):
    return {"kind": "time", "iso": moment.isoformat() + "Z", "relative": ago(moment),
            "absolute": moment.strftime("%Y-%m-%d %H:%M:%S UTC")}


def labels(view, objects, related):
    """{href: name} of the items a page's relations point to, one query per related collection."""
    wanted = {}
    for name, fld in {**view.foreign, **view.many}.items():
        ids = wanted.setdefault(fld.rel_model, set())
        for obj in objects:
            value = view.value(obj, name, related)
            ids.update(href.rsplit("/", 1)[1] for href in (value if isinstance(value, list) else [value]) if href)
    found = {}
    for model, ids in wanted.items():
        if ids and "name" in model._meta.fields:
            rows = model.select(model.id, model.name).where(model.id.in_(sorted(ids))).tuples()
            found.update((f"/{model._meta.collection}/{i}", name) for i, name in rows)
    return found


def targets(view, obj, related):
    """{last segment: href} of an item's links to items (a job's resource): a field holding
    such an id shows as that link."""
    return {ln["href"].rsplit("/", 1)[1]: ln["href"] for ln in view.links(obj, related) if "?" not in ln["href"]}


def cell(view, obj, name, related, names, linked=None):
    """What a page shows of one field of an item: a dict with a `kind` the templates render;
    `linked`: targets(...) of the item."""
    fld = view.visible[name]
    value = view.value(obj, name, related)
    if value is None or value == []:
        return {"kind": "none"}
    if name == "status":
        return {"kind": "status", "value": value}
    if name in view.many:
        return {"kind": "links", "links": [(href, names.get(href, href)) for href in value]}
    if name in view.foreign:
        return {"kind": "link", "href": value, "text": names.get(value, value)}
    if isinstance(fld, f.DateTimeField):
        return time_cell(value)
    if isinstance(fld, f.JSONField):
        return {"kind": "json", "text": json.dumps(value, indent=2)}
    if isinstance(fld, f.BooleanField):
        return {"kind": "text", "text": "yes" if value else "no"}
    if isinstance(fld, f.BigIntegerField):
        return {"kind": "text", "text": f"{value} ({human_bytes(value)})"}
    if linked and str(value) in linked:
        return {"kind": "link", "href": linked[str(value)], "text": str(value)}
    return {"kind": "text", "text": str(value)}


def usage(obj):
    """A usage bar's numbers for an item with `used` and `size` (a space), else None."""
    size, used = getattr(obj, "size", None), getattr(obj, "used", None)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or not hasattr(obj, "used"):
        return None
    soft = soft_limit(size)
    bar = {"size": human_bytes(size), "soft": human_bytes(soft), "soft_percent": round(100 * soft / size, 1),
           "measured": used is not None}
    if used is not None:
        percent = 100 * used / size
        bar.update(used=human_bytes(used), percent=round(percent, 1), width=round(min(percent, 100), 1),
                   level="over" if used >= size else "soft" if used >= soft else "ok")
    return bar


def has_usage(view):
    return "size" in view.visible and "used" in view.visible


def title_field(view):
    return "name" if "name" in view.visible else "id"


def message_field(view):
    """The field with the one-line why of an item's status (status_message, a job's message), or None."""
    return next((name for name, fld in view.visible.items()
                 if isinstance(fld, f.TextField) and name.endswith("message") and fld.read_only), None)


def columns(view):
    """The fields a list shows besides status, title, usage and created: short scalar ones,
    in declaration order, at most MAX_COLUMNS (an item's page shows them all)."""
    skip = {"id", "status", title_field(view), "created"} | ({"size", "used"} if has_usage(view) else set())
    chosen = []
    for name, fld in view.visible.items():
        long_read_only = fld.read_only and (getattr(fld, "max_length", None) or 0) > 255
        if name in skip or name in view.many or long_read_only or isinstance(
                fld, (f.JSONField, f.TextField, f.BooleanField, f.DateTimeField)):
            continue
        chosen.append(name)
    return chosen[:MAX_COLUMNS]


def sortable(view, name):
    return name in view.queryable and not isinstance(view.visible.get(name), peewee.ManyToManyField)


def sort_links(view, names, current):
    """{field: (href query sort value, aria-sort or None)}: a header sorts by its field, and
    the other way round when the list is sorted by it already."""
    result = {}
    for name in names:
        if not sortable(view, name):
            continue
        if current == name:
            result[name] = (f"-{name}", "ascending")
        elif current == f"-{name}":
            result[name] = (name, "descending")
        else:
            result[name] = (name, None)
    return result

