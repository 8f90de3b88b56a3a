"""Peewee fields that also carry what the API needs to know about them.

A field's `help_text` is its C+J prompt.  Extra keywords say how clients may
use it, so the template, validation, queries and OpenAPI are all derived from
the model alone:

- validators: callables `value -> None` raising ValueError with the reason
- read_only:  shown, never written by clients (status, fileset, ...)
- immutable:  written at creation only (a PATCH of it is a 422)
- hidden:     never shown nor written (password hashes, job logs, ...)
- required:   must be given on creation (default: not null and no default)
- in_template: listed in the C+J template (default); optional fields the walkthrough's
              templates do not show (comment, extras) are written all the same
- shape:      callable turning a coerced value into the value stored (a comma-separated
              string into a list, '664' into '0664'); raises ValueError like a validator
"""
import json
import re

import peewee


class ApiField:
    def __init__(self, *args, validators=(), read_only=False, immutable=False, hidden=False,
                 required=None, shape=None, in_template=True, **kwargs):
        self.validators = list(validators)
        self.shape = shape
        self.in_template = in_template
        self.read_only = read_only
        self.immutable = immutable
        self.hidden = hidden
        self._required = required
        super().__init__(*args, **kwargs)

    @property
    def writable(self):
        return not (self.read_only or self.hidden)

    @property
    def required(self):
        if self._required is not None:
            return self._required
        return not self.null and self.default is None


class CharField(ApiField, peewee.CharField):
    pass


class TextField(ApiField, peewee.TextField):
    pass


class BigIntegerField(ApiField, peewee.BigIntegerField):
    pass


class IntegerField(ApiField, peewee.IntegerField):
    pass


class BooleanField(ApiField, peewee.BooleanField):
    pass


class DateTimeField(ApiField, peewee.DateTimeField):
    pass


class JSONField(ApiField, peewee.TextField):
    """A JSON value kept as text (a list of NFS clients, a list of user names); its `shape`
    checks what a client sent, its `schema` (JSON Schema) describes it in the OpenAPI document.
    Not queryable with `where` as a whole (the column holds text); a `keyed` one (an object)
    is, by its top-level keys."""

    def __init__(self, *args, schema=None, keyed=False, **kwargs):
        self.schema = schema or {}
        self.keyed = keyed      # an object whose top-level keys `where` may name: field.KEY
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class ForeignKeyField(ApiField, peewee.ForeignKeyField):
    pass


class ManyToManyField(ApiField, peewee.ManyToManyField):
    """Peewee's through model has an auto-increment id: ordering by it keeps the
    order in which the client listed the items (templates apply in order)."""

    def __init__(self, model, help_text=None, null=False, **kwargs):
        super().__init__(model, **kwargs)
        # peewee numbers fields as they are declared but skips this class; the
        # number orders the C+J template, so take one too.
        peewee.Field._field_counter += 1
        self._order = peewee.Field._field_counter
        self.help_text = help_text
        self.null = null


# Validators ----------------------------------------------------------------

def matches(pattern, why):
    regex = re.compile(pattern)

    def check(value):
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise ValueError(why)
    return check


def one_of(*choices):
    def check(value):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
    check.choices = choices     # forms offer them (service/ui)
    return check


def positive(value):
    if value <= 0:
        raise ValueError("must be greater than 0")


def not_negative(value):
    if value < 0:
        raise ValueError("must not be negative")


def percentage(value):
    if not 0 <= value <= 100:
        raise ValueError("must be a percentage from 0 to 100")


NAME = matches(r"[A-Za-z0-9_-]+", "may only contain letters, numbers, hyphens and underscores")
