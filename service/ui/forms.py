"""Forms derived from the C+J template: one control per writable field, and the API write a
posted form makes.

A form sends what a C+J client would put in its template, as text: references as hrefs,
booleans as true/false, JSON fields as JSON, numbers as digits. The API's View parses it
(service.api.views.View.parse), so a form is held to exactly the API's rules and its 422
details land beside the control of the field they name.
"""
import json
import re
from urllib.parse import parse_qsl

import peewee

from service import fields as f
from service.api.cj import ApiError

MAX_OPTIONS = 200       # more items than this to choose from: a text box of hrefs or ids instead
_SIZE = re.compile(r"\s*([0-9]+)\s*([KMGTPE])(?:i?B)?\s*", re.IGNORECASE)


def text_of(view, obj, name, related):
    """A field's current value as its control holds it (a list of hrefs for several items)."""
    fld = view.visible[name]
    value = view.value(obj, name, related)
    if isinstance(fld, peewee.ManyToManyField):
        return value
    if value is None:
        return ""
    if isinstance(fld, f.JSONField):
        return json.dumps(value)
    if isinstance(fld, f.BooleanField):
        return "true" if value else "false"
    return str(value)


def choices(fld):
    """The values a field's validators allow, when they name them (one_of)."""
    for check in getattr(fld, "validators", ()):
        if getattr(check, "choices", None):
            return list(check.choices)
    return None


def _items(model):
    """(href, label) of the items of a related collection, or None when there are too many to list."""
    order = model.name if "name" in model._meta.fields else model.id
    rows = list(model.select().order_by(order).limit(MAX_OPTIONS + 1))
    if len(rows) > MAX_OPTIONS:
        return None
    label = (lambda o: f"{o.name} ({o.type})" if "type" in model._meta.fields else o.name) \
        if "name" in model._meta.fields else (lambda o: o.id)
    return [(f"/{model._meta.collection}/{o.id}", label(o)) for o in rows]


def controls(view, names, values, errors, creating):
    """The controls of a form for the fields `names`, holding `values` (texts) and `errors` (the
    API's 422 details)."""
    result = []
    for name in names:
        fld = view.visible[name]
        control = {"name": name, "label": fld.help_text or name, "value": values.get(name, ""),
                   "error": (errors or {}).get(name), "required": creating and fld.required, "hint": None,
                   "kind": "text", "options": None}
        if isinstance(fld, (peewee.ManyToManyField, peewee.ForeignKeyField)):
            options = _items(fld.rel_model)
            several = isinstance(fld, peewee.ManyToManyField)
            if options is None:
                control["hint"] = f"{fld.rel_model._meta.collection} hrefs or ids" + (
                    ", comma-separated" if several else "")
                if several:
                    control["value"] = ", ".join(control["value"] or [])
            else:
                control.update(kind="checkboxes" if several else "select", options=options)
                if several:
                    control["value"] = control["value"] or []
        elif isinstance(fld, f.BooleanField):
            control.update(kind="select", options=[("true", "yes"), ("false", "no")])
        elif choices(fld):
            control.update(kind="select", options=[(c, c) for c in choices(fld)])
        elif isinstance(fld, f.JSONField):
            control.update(kind="textarea", hint="JSON")
        elif isinstance(fld, f.BigIntegerField):
            control["hint"] = "bytes, or with a binary unit: 512MiB, 4GiB, 2TiB"
        elif isinstance(fld, f.IntegerField):
            control["hint"] = "a whole number"
        result.append(control)
    return result


def posted_values(view, form, names):
    """{name: text, or the list of hrefs of several items} of the fields `names` a form posted."""
    return {name: form.get(name, []) if isinstance(view.visible[name], peewee.ManyToManyField)
            else (form.get(name) or [""])[0] for name in names}


def write_fields(view, names, posted, initial=None):
    """The fields of the API write a posted form makes. Creating (`initial` None): the
    controls filled in. Changing: the controls whose text differs from what the form showed
    (`initial`), an emptied one as null."""
    fields = {}
    for name in names:
        fld = view.visible[name]
        several = isinstance(fld, peewee.ManyToManyField)
        text = posted.get(name, [] if several else "")
        if several and len(text) == 1:      # one box ticked, or a text box of comma-separated hrefs
            text = [ref.strip() for ref in text[0].split(",") if ref.strip()]
        if initial is not None:
            if text == initial.get(name, [] if several else ""):
                continue
        elif text in ("", []):
            continue
        fields[name] = _value(fld, text)
    return fields


def _value(fld, text):
    if isinstance(text, list) or text == "":
        return text or None
    if isinstance(fld, f.JSONField):
        try:
            return json.loads(text)
        except ValueError:
            return text         # the field's shape says what it wants (a comma-separated list may do)
    if isinstance(fld, f.BigIntegerField):
        match = _SIZE.fullmatch(text)
        if match:
            return int(match[1]) << (10 * ("KMGTPE".index(match[2].upper()) + 1))
    return text


def read_form(raw):
    """{name: [values]} of an application/x-www-form-urlencoded body (UTF-8)."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"form: {exc}") from None
    form = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form
