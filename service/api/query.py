"""The query-string language of collection GETs: ``where``, ``projection``, ``sort`` and paging.

``where`` comes in two syntaxes, told apart by the first non-space character:

* ``{`` -> Mongo-style JSON: ``{"name": "x"}``, several keys are AND-ed, operator objects
  ``{"size": {"$gt": 1, "$lte": 10}}`` with ``$eq $ne $gt $gte $lt $lte $in $nin $regex
  ($options "i") $exists``, and ``$and`` / ``$or`` holding lists of such objects.
* anything else -> a Python-style expression such as ``name == "a" and (size > 10 or not
  fileset is None)``. It is parsed with ``ast`` and only comparisons between a whitelisted
  field and literal values, ``and``/``or``/``not`` and parentheses are accepted; nothing is
  ever evaluated. ``"<id>" in templates`` tests membership of a many-to-many field.

Null semantics follow the client's intuition rather than SQL's three-valued logic: ``$ne``,
``$nin``, ``!=``, ``not in`` and ``not`` also match rows whose (nullable) field is NULL.

Values are checked against the field type before they reach SQL; foreign keys and
many-to-many fields accept an id or an href (``/profiles/<id>``, the last path segment is the id).

SQLite has no REGEXP function of its own: the database layer calls
``register_sqlite_functions(db)`` on its SqliteDatabase so that ``$regex`` works there too.
PostgreSQL uses its native ``~`` operator (peewee chooses it). Patterns are validated with
Python's ``re``; the common syntax behaves the same in both engines.
"""
from __future__ import annotations

import ast
import datetime
import decimal
import functools
import json
import math
import operator
import re
import sqlite3
import uuid
from typing import Any, Iterable

import peewee
import re2

from service import inputs

MAX_LENGTH = 32 * 1024  # characters per parameter; query strings are never legitimately longer
MAX_DEPTH = 32  # nesting of and/or/not and $and/$or; keeps recursion (ours and peewee's) bounded
MAX_PATTERN_LENGTH = 512
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20     # a compiled pattern's memory is bounded too
MAX_OFFSET = 2**62  # (page - 1) * max_results must fit a 64-bit OFFSET on every backend

__all__ = [
    "QueryError",
    "parse_where",
    "parse_projection",
    "parse_sort",
    "parse_paging",
    "register_sqlite_functions",
]


class QueryError(ValueError):
    """A query parameter the client got wrong; the message says what (the API answers 400)."""


# --------------------------------------------------------------------------- shared helpers


def _show(value: Any) -> str:
    """A short rendering of a client value for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_text(text: Any, param: str) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise QueryError(f"{param}: expected text, got {_show(text)}")
    if len(text) > MAX_LENGTH:
        raise QueryError(f"{param}: longer than {MAX_LENGTH} characters")
    return text.strip()


def _reject_duplicates(param: str):
    # json.loads silently keeps the last of duplicate keys; a client who repeats one means something else.
    def hook(pairs):
        doc = {}
        for key, value in pairs:
            if key in doc:
                raise QueryError(f'{param}: duplicate key "{key}"')
            doc[key] = value
        return doc

    return hook


def _load_literal(text: str, param: str) -> Any:
    """JSON first; Python literals (single quotes, tuples) as the fallback, as Eve clients send both."""
    def reject_constant(name: str):
        raise QueryError(f"{param}: {name} is not allowed")

    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates(param), parse_constant=reject_constant)
    except json.JSONDecodeError as json_error:
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise QueryError(
                f"{param}: invalid JSON: {json_error.msg} (line {json_error.lineno} column {json_error.colno}),"
                " nor a Python literal"
            ) from None
    except RecursionError:
        raise QueryError(f"{param}: nested too deeply") from None


def _combine(parts: list, op):
    """AND/OR a list of expressions as a balanced tree, so long lists don't nest deeply."""
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    return op(_combine(parts[:middle], op), _combine(parts[middle:], op))


class _Fields:
    """The whitelisted fields of one model, as seen by one query parameter."""

    def __init__(self, model, fields: Iterable[str], param: str):
        self.model = model
        self.allowed = frozenset(fields)
        self.param = param

    def unknown(self, name: Any) -> QueryError:
        shown = f'"{name}"' if isinstance(name, str) else _show(name)
        allowed = ", ".join(sorted(self.allowed))
        return QueryError(f"{self.param}: unknown field {shown} (allowed: {allowed})")

    def get(self, name: Any):
        """The peewee Field or ManyToManyField called `name`, or the JsonKey `field.KEY` of a
        keyed JSON field (extras.project), if the client may use it."""
        if isinstance(name, str) and "." in name and self.model is not None:
            head, key = name.split(".", 1)
            field = self.model._meta.fields.get(head)
            if f"{head}.*" in self.allowed and getattr(field, "keyed", False):
                if not inputs.EXTRAS_KEY.fullmatch(key):
                    raise QueryError(f'{self.param}: "{name}": {head} keys are 1-64 letters, digits, _ or -')
                return JsonKey(field, key)
        if not isinstance(name, str) or name not in self.allowed:
            raise self.unknown(name)
        meta = self.model._meta
        if name in meta.manytomany:
            return meta.manytomany[name]
        if name in meta.fields:
            return meta.fields[name]
        raise self.unknown(name)


# --------------------------------------------------------------------------- value coercion


def _to_int(value):
    return inputs.whole_number(value)


def _to_float(value):
    if isinstance(value, str):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(value)
    return float(value)


def _to_decimal(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    number = decimal.Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError(value)
    return number


_to_bool = inputs.boolean


def _to_datetime(value):
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime.datetime):
        raise ValueError(value)
    if value.tzinfo is not None:
        # Stored date-times are naive UTC; compare like with like.
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def _to_timestamp(value):
    # TimestampField stores Unix time but converts datetimes itself: accept either.
    try:
        return _to_int(value)
    except ValueError:
        return _to_datetime(value)


def _from_iso(kind):
    def convert(value):
        if isinstance(value, str):
            return kind.fromisoformat(value.strip())
        if type(value) is kind:
            return value
        raise ValueError(value)

    return convert


def _to_uuid(value):
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        return uuid.UUID(value.strip())
    raise ValueError(value)


def _to_text(value):
    # PostgreSQL rejects NUL in text; refuse it here rather than fail at execution.
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(value)
    return value


def _to_scalar(value):
    if isinstance(value, (str, int, float)) and not (isinstance(value, str) and "\x00" in value):
        return value
    raise ValueError(value)


# Checked in order: subclasses (TimestampField < IntegerField) come before their bases.
_CONVERTERS = (
    (peewee.TimestampField, _to_timestamp, "an ISO-8601 date-time or a Unix time"),
    (peewee.BooleanField, _to_bool, "true or false"),
    (peewee.IntegerField, _to_int, "an integer"),
    (peewee.FloatField, _to_float, "a number"),
    (peewee.DecimalField, _to_decimal, "a number"),
    (peewee.DateTimeField, _to_datetime, "an ISO-8601 date-time"),
    (peewee.DateField, _from_iso(datetime.date), "an ISO-8601 date"),
    (peewee.TimeField, _from_iso(datetime.time), "an ISO-8601 time"),
    ((peewee.UUIDField, peewee.BinaryUUIDField), _to_uuid, "a UUID"),
    ((peewee.CharField, peewee.TextField), _to_text, "a string"),
    (peewee.Field, _to_scalar, "a string or a number"),  # any other field type: plain scalars
)


def _coerce(field, value: Any, name: str):
    """`value` as the Python value `field` stores, or a QueryError naming the field and the value."""
    if value is None:
        raise QueryError(f'where: field "{name}" cannot be compared with null this way')
    if isinstance(field, peewee.ForeignKeyField):
        if isinstance(value, str) and "/" in value:
            value = value.rstrip("/").rsplit("/", 1)[-1]  # href -> id
        return _coerce(field.rel_field, value, name)
    for kinds, convert, expected in _CONVERTERS:
        if isinstance(field, kinds):
            try:
                return convert(value)
            except (ValueError, TypeError, ArithmeticError):
                raise QueryError(f'where: field "{name}" expects {expected}, got {_show(value)}') from None


def _regex(field, pattern: Any, options: Any, name: str) -> str:
    """A checked pattern; `field` None for a value known to be text (a JSON key's)."""
    if field is not None and not isinstance(field, (peewee.CharField, peewee.TextField)):
        raise QueryError(f'where: $regex needs a text field; "{name}" is not one')
    if not isinstance(pattern, str) or "\x00" in pattern:
        raise QueryError(f"where: $regex expects a string, got {_show(pattern)}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise QueryError(f"where: $regex pattern longer than {MAX_PATTERN_LENGTH} characters")
    if options not in ("", "i"):
        raise QueryError(f'where: $options supports only "i", got {_show(options)}')
    if options == "i":
        pattern = "(?i)" + pattern  # embedded flag understood by both Python's re and PostgreSQL
    try:
        _compiled(pattern)
    except re2.error as error:
        raise QueryError(f"where: invalid regular expression {_show(pattern)} (RE2 syntax, no "
                         f"backreferences or lookaround): {error}") from None
    return pattern


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise QueryError(f"{what} expects true or false (1 or 0), got {_show(value)}")


# --------------------------------------------------------------------------- where


class JsonKey:
    """A top-level key of a keyed JSON object field (extras.project), compared as JSON values:
    a string with strings, a number with numbers, true/false with booleans — never across types,
    on SQLite (json_extract) and PostgreSQL (jsonb) alike. Missing keys and JSON nulls are null."""

    def __init__(self, field, key: str):
        self.field, self.key = field, key
        self.postgres = isinstance(field.model._meta.database.obj, peewee.PostgresqlDatabase)

    def _json(self):
        return peewee.Expression(peewee.Cast(self.field, "jsonb"), "->", self.key)

    def _value(self):
        """The key's value: SQLite's typed value, PostgreSQL's jsonb."""
        if self.postgres:
            return self._json()
        return peewee.fn.json_extract(self.field, f'$."{self.key}"')

    def _type_is(self, value):
        """The key holds a JSON value of `value`'s kind."""
        if self.postgres:
            kind = "boolean" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"
            return peewee.fn.jsonb_typeof(self._json()) == kind
        kinds = (("true", "false") if isinstance(value, bool) else ("integer", "real")
                 if isinstance(value, (int, float)) else ("text",))
        return peewee.fn.json_type(self.field, f'$."{self.key}"').in_(kinds)

    def _missing(self):
        if self.postgres:
            return self._json().is_null() | (peewee.fn.jsonb_typeof(self._json()) == "null")
        return self._value().is_null()

    def _literal(self, value, name):
        if isinstance(value, float) and not math.isfinite(value):
            raise QueryError(f'where: field "{name}" cannot be compared with {_show(value)}')
        if not isinstance(value, (str, int, float, bool)):
            raise QueryError(f'where: field "{name}" compares with a string, a number, true or false, '
                             f"got {_show(value)}")
        return peewee.Cast(peewee.Value(json.dumps(value)), "jsonb") if self.postgres else value

    def _compare(self, op, value, name):
        return self._type_is(value) & _COMPARE[op](self._value(), self._literal(value, name))

    def condition(self, op: str, value: Any, name: str):
        if op == "exists":
            return ~self._missing() if _flag(value, "where: $exists") else self._missing()
        if op == "regex":
            pattern, options = value
            text = peewee.Expression(peewee.Cast(self.field, "jsonb"), "->>", self.key) if self.postgres \
                else self._value()
            return self._type_is("") & text.regexp(_regex(None, pattern, options, name))
        if op in ("in", "nin"):
            values = _Where._values(value, op, name)
            parts = [self._missing() if item is None else self._compare("eq", item, name) for item in values]
            found = _combine(parts, operator.or_) if parts else peewee.Value(False)
            return found if op == "in" else ~peewee.fn.COALESCE(found, False)
        if value is None:
            if op in ("eq", "ne"):
                return self._missing() if op == "eq" else ~self._missing()
            raise QueryError(f'where: field "{name}" cannot be ordered against null')
        if op == "ne":
            return ~peewee.fn.COALESCE(self._compare("eq", value, name), False)
        return self._compare(op, value, name)


_COMPARE = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

_JSON_OPS = {
    "$eq": "eq",
    "$ne": "ne",
    "$gt": "gt",
    "$gte": "gte",
    "$lt": "lt",
    "$lte": "lte",
    "$in": "in",
    "$nin": "nin",
    "$regex": "regex",
    "$exists": "exists",
}

_PY_OPS = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Gt: "gt",
    ast.GtE: "gte",
    ast.Lt: "lt",
    ast.LtE: "lte",
    ast.In: "in",
    ast.NotIn: "nin",
    ast.Is: "eq",
    ast.IsNot: "ne",
}
_MIRRORED = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "gte": "lte", "lte": "gte"}

# What the error says for Python syntax outside the accepted subset.
_FORBIDDEN = {
    ast.Call: "function calls are",
    ast.Attribute: "attribute access is",
    ast.Subscript: "subscripts are",
    ast.Lambda: "lambdas are",
    ast.BinOp: "arithmetic is",
    ast.UnaryOp: "arithmetic is",
    ast.Dict: "dict literals are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.IfExp: "conditional expressions are",
    ast.NamedExpr: "assignment expressions are",
    ast.JoinedStr: "f-strings are",
    ast.Starred: "starred expressions are",
    ast.Slice: "slices are",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
}


class _Where(_Fields):
    def __init__(self, model, fields: Iterable[str]):
        super().__init__(model, fields, "where")

    # ---- one condition, whichever syntax it came from

    def condition(self, name: Any, op: str, value: Any):
        field = self.get(name)
        if isinstance(field, JsonKey):
            return field.condition(op, value, name)
        if isinstance(field, peewee.ManyToManyField):
            return self._related(field, name, op, value)
        if op == "exists":
            return field.is_null(not _flag(value, "where: $exists"))
        if op == "regex":
            pattern, options = value
            return field.regexp(_regex(field, pattern, options, name))
        if op in ("in", "nin"):
            values = self._values(value, op, name)
            wanted = [_coerce(field, item, name) for item in values if item is not None]
            with_null = len(wanted) < len(values)
            if op == "in":
                expression = field.in_(wanted)
                return expression | field.is_null() if with_null else expression
            if with_null:
                return field.not_in(wanted) & field.is_null(False)
            return self._or_null(field, field.not_in(wanted))
        if value is None:
            if op in ("eq", "ne"):
                return field.is_null(op == "eq")
            raise QueryError(f'where: field "{name}" cannot be ordered against null')
        value = _coerce(field, value, name)
        if op == "ne":
            return self._or_null(field, field != value)
        return _COMPARE[op](field, value)

    @staticmethod
    def _or_null(field, expression):
        # A negative test also matches rows where the field is not set at all.
        return expression | field.is_null() if field.null else expression

    @staticmethod
    def _values(value: Any, op: str, name: str) -> list:
        if not isinstance(value, (list, tuple)):
            shown = {"in": "$in (in)", "nin": "$nin (not in)"}[op]
            raise QueryError(f'where: {shown} on field "{name}" expects a list of values, got {_show(value)}')
        return list(value)

    def _related(self, field, name: str, op: str, value: Any):
        """Rows related (or not) through the many-to-many through model to the given items."""
        through = field.through_model
        source = through._meta.model_refs[field.model][0]
        targets = [fk for fk in through._meta.model_refs[field.rel_model] if fk is not source]
        target = targets[0] if targets else source
        linked = through.select(source)
        if op == "exists":
            wanted = _flag(value, "where: $exists")
        elif op in ("eq", "ne") and value is None:
            hint = json.dumps({name: {"$exists": False}})
            raise QueryError(f'where: field "{name}" cannot be compared with null; use {hint}')
        elif op in ("eq", "ne", "in", "nin"):
            ids = self._values(value, op, name) if op in ("in", "nin") else [value]
            linked = linked.where(target.in_([_coerce(target, item, name) for item in ids]))
            wanted = op in ("eq", "in")
        else:
            raise QueryError(
                f'where: many-to-many field "{name}" supports only equality, $ne, $in, $nin and $exists'
            )
        key = source.rel_field
        return key.in_(linked) if wanted else key.not_in(linked)

    # ---- Mongo-style JSON

    def document(self, doc: Any, depth: int = 0):
        if depth > MAX_DEPTH:
            raise QueryError("where: nested too deeply")
        if not isinstance(doc, dict):
            raise QueryError(f"where: expected a JSON object, got {_show(doc)}")
        parts = []
        for key, value in doc.items():
            if key in ("$and", "$or"):
                part = self._logical(key, value, depth)
            elif isinstance(key, str) and key.startswith("$"):
                raise QueryError(f'where: unknown operator "{key}" (use $and or $or at this level)')
            else:
                part = self._field_document(key, value)
            if part is not None:
                parts.append(part)
        return _combine(parts, operator.and_) if parts else None

    def _logical(self, key: str, value: Any, depth: int):
        if not isinstance(value, list) or not value:
            raise QueryError(f"where: {key} expects a non-empty list of objects, got {_show(value)}")
        parts = [self.document(item, depth + 1) for item in value]
        # An empty object matches everything: dropped from $and, and it makes an $or always true.
        if key == "$or" and any(part is None for part in parts):
            return None
        parts = [part for part in parts if part is not None]
        return _combine(parts, operator.and_ if key == "$and" else operator.or_) if parts else None

    def _field_document(self, name: Any, value: Any):
        self.get(name)  # an unknown field is the first thing to report
        if isinstance(value, list):
            raise QueryError(f'where: field "{name}" cannot equal a list; use {{"$in": [...]}}')
        if not isinstance(value, dict):
            return self.condition(name, "eq", value)
        if not value or not all(isinstance(key, str) and key.startswith("$") for key in value):
            raise QueryError(
                f'where: field "{name}" expects a value or an operator object such as {{"$gt": 1}}, got {_show(value)}'
            )
        parts = []
        for key, argument in value.items():
            if key == "$options":
                if "$regex" not in value:
                    raise QueryError("where: $options only goes with $regex")
                continue
            op = _JSON_OPS.get(key)
            if op is None:
                supported = " ".join(_JSON_OPS)
                raise QueryError(f'where: unknown operator "{key}" (supported: {supported})')
            if op == "regex":
                argument = (argument, value.get("$options", ""))
            parts.append(self.condition(name, op, argument))
        return _combine(parts, operator.and_)

    # ---- Python-style expressions

    def expression(self, text: str):
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as error:
            where = f" (column {error.offset})" if error.offset else ""
            raise QueryError(f"where: invalid expression: {error.msg}{where}") from None
        except (ValueError, MemoryError, RecursionError) as error:
            raise QueryError(f"where: invalid expression: {error}") from None
        return self._node(tree.body, 0)

    def _node(self, node: ast.AST, depth: int):
        if depth > MAX_DEPTH:
            raise QueryError("where: nested too deeply")
        if isinstance(node, ast.BoolOp):
            parts = [self._node(value, depth + 1) for value in node.values]
            return _combine(parts, operator.and_ if isinstance(node.op, ast.And) else operator.or_)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            # COALESCE: "not x" is true where x is unknown because of a NULL, as in Python.
            return ~peewee.fn.COALESCE(self._node(node.operand, depth + 1), False)
        if isinstance(node, ast.Compare):
            parts, left = [], node.left
            for op, right in zip(node.ops, node.comparators):  # 1 < size < 10 -> two comparisons
                parts.append(self._compare(left, op, right))
                left = right
            return _combine(parts, operator.and_)
        if isinstance(node, (ast.Constant, ast.Name, ast.List, ast.Tuple, ast.Set)):
            raise QueryError(
                f'where: expected a JSON object or an expression such as name == "x", got {_show(ast.unparse(node))}'
            )
        raise self._forbidden(node)

    @staticmethod
    def _forbidden(node: ast.AST) -> QueryError:
        what = _FORBIDDEN.get(type(node), f"{type(node).__name__} is")
        column = getattr(node, "col_offset", None)
        at = f" (column {column + 1})" if column is not None else ""
        return QueryError(f"where: {what} not allowed{at}")

    def _compare(self, left: ast.AST, op: ast.cmpop, right: ast.AST):
        left_name, right_name = self._field_name(left), self._field_name(right)
        left_field, right_field = left_name is not None, right_name is not None
        if left_field and right_field:
            raise QueryError(f"where: compare a field with a value, not two fields ({left_name}, {right_name})")
        if not (left_field or right_field):
            self._literal(left)  # forbidden syntax on either side is the more useful message
            self._literal(right)
            raise QueryError(f"where: a comparison needs a field name on one side: {_show(ast.unparse(left))}")
        kind = _PY_OPS[type(op)]
        if isinstance(op, (ast.Is, ast.IsNot)):
            value_node = right if left_field else left
            singleton = isinstance(value_node, ast.Constant) and any(
                value_node.value is constant for constant in (None, True, False)
            )
            if not singleton:
                raise QueryError('where: "is" only compares with None, True or False')
        if left_field:
            return self.condition(left_name, kind, self._literal(right))
        if kind in ("in", "nin"):
            # "<id>" in templates: membership, which only a many-to-many field can answer.
            field = self.get(right_name)
            if not isinstance(field, peewee.ManyToManyField):
                raise QueryError(
                    f'where: "value in {right_name}" needs a many-to-many field; write {right_name} in [...]'
                )
            return self.condition(right_name, "eq" if kind == "in" else "ne", self._literal(left))
        return self.condition(right_name, _MIRRORED[kind], self._literal(left))

    def _field_name(self, node: ast.AST) -> str | None:
        """`name`, or `name.key` for a key of a keyed JSON field (extras.project); None for values.
        Any other attribute access is refused."""
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if f"{node.value.id}.*" in self.allowed:
                return f"{node.value.id}.{node.attr}"
            raise self._forbidden(node)
        return None

    def _literal(self, node: ast.AST):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [self._scalar(item) for item in node.elts]
        return self._scalar(node)

    def _scalar(self, node: ast.AST):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, type(None))):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)
        ):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, ast.Constant):
            raise QueryError(f"where: {type(node.value).__name__} values are not allowed")
        if isinstance(node, ast.Name):
            raise QueryError(f"where: compare a field with a value, not two fields ({node.id})")
        raise self._forbidden(node)


def parse_where(text: str, model, fields: Iterable[str]) -> peewee.Expression | None:
    """The peewee expression for a `where` parameter, or None when there is nothing to filter."""
    text = _check_text(text, "where")
    if not text:
        return None
    where = _Where(model, fields)
    if text.startswith("{"):
        return where.document(_load_literal(text, "where"))
    return where.expression(text)


# --------------------------------------------------------------------------- projection


def parse_projection(text: str, fields: Iterable[str]) -> set[str] | None:
    """The field names to show: `{"status": 1}` includes, `{"size": 0}` excludes; None shows all."""
    text = _check_text(text, "projection")
    if not text:
        return None
    doc = _load_literal(text, "projection")
    if not isinstance(doc, dict):
        raise QueryError(f'projection: expected a JSON object such as {{"status": 1}}, got {_show(doc)}')
    if not doc:
        return None
    allowed = frozenset(fields)
    unknown = _Fields(None, allowed, "projection").unknown
    flags = {}
    for name, value in doc.items():
        if not isinstance(name, str) or name not in allowed:
            raise unknown(name)
        flags[name] = _flag(value, f'projection: "{name}"')
    if len(set(flags.values())) > 1:
        raise QueryError("projection: cannot mix inclusion (1) and exclusion (0)")
    if next(iter(flags.values())):
        return set(flags) | {"id"}
    if "id" in flags:
        raise QueryError('projection: "id" is always included and cannot be excluded')
    return set(allowed) - set(flags)


# --------------------------------------------------------------------------- sort


def _sort_pairs(spec: Any) -> list[tuple[Any, Any]]:
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        spec = [spec]  # a lone ("name", 1)
    if not isinstance(spec, (list, tuple)) or not spec:
        raise QueryError(f'sort: expected a list such as [("name", 1)], got {_show(spec)}')
    pairs = []
    for item in spec:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise QueryError(f'sort: expected ("field", 1 or -1), got {_show(item)}')
        pairs.append(tuple(item))
    return pairs


def _sort_words(text: str) -> list[tuple[str, int]]:
    pairs = []
    for word in text.split(","):
        word = word.strip()
        direction = -1 if word.startswith("-") else 1
        name = word[1:].strip() if word[:1] in "+-" else word
        if not name:
            raise QueryError(f"sort: empty field name in {_show(text)}")
        pairs.append((name, direction))
    return pairs


def parse_sort(text: str, model, fields: Iterable[str]) -> list:
    """peewee orderings for `sort`; NULLs sort as the largest value on every backend."""
    text = _check_text(text, "sort")
    if not text:
        return []
    pairs = _sort_pairs(_load_literal(text, "sort")) if text[0] in "[(" else _sort_words(text)
    scope = _Fields(model, fields, "sort")
    order = []
    for name, direction in pairs:
        field = scope.get(name)
        if isinstance(field, peewee.ManyToManyField):
            raise QueryError(f'sort: cannot sort by many-to-many field "{name}"')
        if isinstance(direction, bool) or direction not in (1, -1):
            raise QueryError(f'sort: direction of "{name}" must be 1 or -1, got {_show(direction)}')
        if not field.null:      # no NULLs to place: plain ASC/DESC, which an index serves on SQLite too
            order.append(field.asc() if direction == 1 else field.desc())
        else:
            order.append(field.asc(nulls="last") if direction == 1 else field.desc(nulls="first"))
    return order


def stable_order(model, order):
    """`order` (by default: created) then id, in the direction of the key before it: an order
    in which pages neither repeat nor skip items, and that an index on (key, id) serves read
    forwards or backwards (Job has one on (created, id))."""
    order = list(order) or [model.created]
    return order + [model.id.desc() if getattr(order[-1], "direction", "ASC") == "DESC" else model.id]


# --------------------------------------------------------------------------- paging


def _positive_int(value: Any, param: str, default: int) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryError(f"{param}: expected a positive integer, got {_show(value)}")
    if value < 1:
        raise QueryError(f"{param}: must be at least 1, got {value}")
    return value


def parse_paging(max_results, page, default: int = 25, cap: int = 1000) -> tuple[int, int]:
    """(max_results, page) from the query string; max_results is clamped to `cap`."""
    size = min(_positive_int(max_results, "max_results", default), cap)
    number = _positive_int(page, "page", 1)
    if (number - 1) * size > MAX_OFFSET:
        raise QueryError(f"page: {number} is too large")
    return size, number


# --------------------------------------------------------------------------- SQLite support


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str):
    # RE2 runs in time linear in the text: no pattern can stall the process (Python's re
    # backtracks, so "(a+)+$" takes seconds on a few dozen characters).
    return re2.compile(pattern, _RE2_OPTIONS)


def _sqlite_regexp(pattern, value):
    # SQLite evaluates "value REGEXP pattern" as regexp(pattern, value); NULL in, NULL out as in SQL.
    if pattern is None or value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _compiled(pattern).search(str(value)) is not None


def register_sqlite_functions(db) -> None:
    """Install regexp(pattern, value) so that peewee's REGEXP ($regex) works on SQLite.

    The database layer calls this once on its SqliteDatabase (or DatabaseProxy of one); peewee
    installs registered functions on every connection it opens, and on the open one right away.
    A plain sqlite3.Connection is accepted too. Other databases need nothing and are left alone.
    """
    if isinstance(db, peewee.DatabaseProxy):
        db = db.obj
    if isinstance(db, peewee.SqliteDatabase):
        db.register_function(_sqlite_regexp, "regexp", 2, deterministic=True)
    elif isinstance(db, sqlite3.Connection):
        db.create_function("regexp", 2, _sqlite_regexp, deterministic=True)
