"""A `View` serves one model: what fields show, which are writable, how values
are coerced and validated, which relations become links.  All of it is read
off the model's field declarations; resource modules subclass View only to add
the rules a model cannot state (paths on disk, who may be deleted).
"""
import json
import re
from dataclasses import dataclass

import peewee

from service import fields as f
from service import inputs
from service.api.cj import ApiError, invalid, jsonable, link
from service.models import Job, Resource, database

TRAILING = ("comment", "extras")
HREF = re.compile(r"^(?:https?://[^/]+)?/(?P<collection>[a-z]+)/(?P<id>[^/?#]+)/?$")


@dataclass(frozen=True)
class Action:
    """An item action, POST /{collection}/{id}/{name} (service.api.app): a job other than
    create, update or delete, declared once in its view's `actions` ({name: Action}), which
    the routing and the OpenAPI document (service.api.openapi) read."""
    summary: str
    fields: dict            # the body's fields, every one required: {name: description}
    force: str | None = None    # what ?force=true allows; None: the action takes no force


class View:
    collection_methods = ("GET",)
    item_methods = None     # default: GET, and PATCH where the model has writable fields
    actions = {}            # item actions: {name: Action}

    def __init__(self, model):
        self.model = model
        self.collection = model._meta.collection
        declared = list(model._meta.sorted_fields) + list(model._meta.manytomany.values())
        # backrefs peewee adds (Exposer.spaces) are not declared here, so not shown
        declared = [fld for fld in declared if isinstance(fld, f.ApiField) and not fld.hidden]
        # status and id first (as in the walkthrough), then declaration order
        first = [n for n in ("status", "id") if n in model._meta.fields]
        # then declaration order, the user's own comment and extras last
        rest = sorted((fld for fld in declared if fld.name not in first),
                      key=lambda fld: (fld.name in TRAILING, fld._order))
        self.visible = {n: model._meta.fields[n] for n in first}
        self.visible.update((fld.name, fld) for fld in rest)
        self.writable = {n: fld for n, fld in self.visible.items() if getattr(fld, "writable", False)}
        self.many = {n: fld for n, fld in self.visible.items() if isinstance(fld, peewee.ManyToManyField)}
        self.foreign = {n: fld for n, fld in self.visible.items() if isinstance(fld, peewee.ForeignKeyField)}
        self.queryable = [n for n, fld in self.visible.items() if not isinstance(fld, f.JSONField)]
        self.keyed = [n for n, fld in self.visible.items() if getattr(fld, "keyed", False)]
        if self.item_methods is None:
            self.item_methods = ("GET", "PATCH") if self.writable else ("GET",)
        # every item of every answer is rendered by these, made once from the declarations:
        # {name: reader(data, related) -> value}, and (name, prompt, JSON reader) in order, the
        # reader None where the value is the item's own (the item_document reads it inline)
        self.readers = {name: _reader(name, fld) for name, fld in self.visible.items()}
        self.rendered = [(name, fld.help_text, _json_reader(self.readers[name], fld))
                         for name, fld in self.visible.items()]
        # what links() reads of the relations: [(name, target collection, prompt)]
        self.many_links, self.foreign_links = ([(n, fld.rel_model._meta.collection, fld.help_text)
                                                for n, fld in fields.items()] for fields in (self.many, self.foreign))
        self.links_jobs = issubclass(model, Resource)

    # Reading ---------------------------------------------------------------

    def href(self, obj):
        return f"/{self.collection}/{obj.id}"

    def related(self, objects):
        """{m2m name: {item id: [related ids in order]}} for a page of items, every relation read
        by one statement (a statement costs more than its rows when threads share the GIL)."""
        ids = [obj.id for obj in objects]
        result = {name: {i: [] for i in ids} for name in self.many}
        if ids and self.many:
            names = list(self.many)
            sql = _related_sql(tuple(self.many.values()), len(ids))
            for which, own_id, other_id, _ in database.execute_sql(sql, ids * len(names)):
                result[names[which]][own_id].append(other_id)
        return result

    def page(self, where, order, page, max_results, sort=None):
        """One page of items, in `order`: the statement built with one placeholder for the
        selected columns, which are spelled out once per model (building them for each request
        cost more than running the query). A page without `where` (`sort`: the text of the
        order asked for) is built once."""
        key = self.statement_key()
        unfiltered = (*key, sort, page, max_results) if where is None else None
        statement = _PAGES.get(unfiltered)
        if statement is None:
            select = self.model.select(peewee.SQL(_COLUMNS_MARK))
            if where is not None:
                select = select.where(where)
            sql, params = select.order_by(*order).paginate(page, max_results).sql()
            if key not in _COLUMNS:
                everything = self.model.select().sql()[0]
                _COLUMNS[key] = everything[len("SELECT "):everything.index(" FROM ")]
            statement = sql.replace(_COLUMNS_MARK, _COLUMNS[key], 1), params
            if unfiltered:
                if len(_PAGES) > 1000:      # pages of every size and number asked: kept bounded
                    _PAGES.clear()
                _PAGES[unfiltered] = statement
        return self.load(*statement)

    def count(self, where):
        """How many items match `where`: COUNT(*) of the table itself, which SQLite answers from
        its smallest index (peewee's count() wraps the query as a subquery, which reads every row
        of it); built once without a `where`."""
        key = self.statement_key()
        if where is None and key in _COUNTS:
            return database.execute_sql(_COUNTS[key]).fetchone()[0]
        counted = self.model.select(peewee.fn.COUNT(peewee.SQL("*")))
        if where is not None:
            return counted.where(where).scalar()
        _COUNTS[key] = counted.sql()[0]
        return counted.scalar()

    def get(self, item_id):
        """The item with id `item_id`, or None: every item request reads one, by a statement
        built once (building it each time cost more than running it)."""
        key = self.statement_key()
        if key not in _BY_ID:
            _BY_ID[key] = self.model.select().where(self.model.id == "").sql()[0]
        found = self.load(_BY_ID[key], (item_id,))
        return found[0] if found else None

    def statement_key(self):
        """What a statement built once for this view depends on: the model and the database's kind."""
        return self.model, database.param, type(database.obj)

    def load(self, sql, params):
        """The items of a statement selecting every column in declaration order, made as
        peewee's cursor makes them (the same values, nothing marked dirty) without its work per
        column and row: only the columns whose database value differs from Python's (times,
        booleans, JSON) are converted."""
        model = self.model
        names, convert = _loader(model)
        items = []
        for row in database.execute_sql(sql, params).fetchall():
            obj = model.__new__(model)
            data = obj.__data__ = dict(zip(names, row))
            for name, python_value in convert:
                if data[name] is not None:
                    data[name] = python_value(data[name])
            obj._dirty = set()
            obj.__rel__ = {}
            items.append(obj)
        return items

    def value(self, obj, name, related):
        """A field's value as the API shows it: relations as hrefs."""
        return self.readers[name](obj.__data__, related)

    def links(self, obj, related):
        links = []
        data = obj.__data__
        for name, target, prompt in self.many_links:
            ids = related[name].get(data["id"])
            if ids:
                where = f'id=="{ids[0]}"' if len(ids) == 1 else "id in " + json.dumps(ids)
                links.append(link(f"/{target}/?where={where}", name, prompt, f"{target} collection"))
        for name, target, prompt in self.foreign_links:
            target_id = data.get(name)
            if target_id:
                links.append(link(f"/{target}/{target_id}", name, prompt, f"{name} item"))
        if self.links_jobs:
            # json.dumps({"resource_type": ..., "resource_id": ...}) spelled out: one per item of a page
            where = f'{{"resource_type": {_json_text(self.collection)}, "resource_id": {_json_text(data["id"])}}}'
            links.append(link(f"/jobs?where={where}", "Jobs", "Jobs", "jobs"))
        return links

    def queries(self):
        queries = []
        if "name" in self.visible:
            queries.append({
                "prompt": "Search by Name",
                "href": f'/{self.collection}?where={{"name":"{{name}}"}}',
                "data": [{"prompt": self.visible["name"].help_text, "name": "name", "value": ""}],
                "rel": "search", "encoding": "uri-template"})
        return queries

    # Writing ---------------------------------------------------------------

    def parse(self, values, item=None):
        """Coerce and validate a write; returns {name: value} or raises 422."""
        errors, clean = {}, {}
        for name, value in values.items():
            fld = self.visible.get(name)
            if fld is None:
                errors[name] = "unknown field"
            elif not fld.writable:
                errors[name] = "read-only field"
            elif item is not None and fld.immutable:
                current = self.value(item, name, self.related([item]))
                if not _same(current, value, fld):
                    errors[name] = "cannot be changed once the item is created"
            else:
                try:
                    clean[name] = self.coerce(fld, value)
                    if clean[name] is not None:
                        for check in fld.validators:
                            check(clean[name])
                except ValueError as exc:
                    errors[name] = str(exc)
        if item is None:
            for name, fld in self.writable.items():
                if fld.required and clean.get(name) in (None, []) and name not in errors:
                    errors[name] = "required field"
        if errors:
            raise invalid(errors)
        if item is not None:    # an unchanged immutable field is accepted and ignored
            clean = {n: v for n, v in clean.items() if not self.writable[n].immutable}
        return clean

    def coerce(self, fld, value):
        if isinstance(fld, peewee.ManyToManyField):
            return self.references(fld, value)
        if value in (None, ""):
            return None
        value = self.plain(fld, value)
        return fld.shape(value) if getattr(fld, "shape", None) else value

    def plain(self, fld, value):
        """The value as the field's type: references, whole numbers, booleans, text."""
        if isinstance(fld, f.JSONField):
            return value
        if isinstance(fld, peewee.ForeignKeyField):
            found = self.references(fld, value)
            if len(found) != 1:
                raise ValueError(f"expected one {fld.rel_model._meta.collection} href or id")
            return found[0]
        if isinstance(fld, (f.BigIntegerField, f.IntegerField)):
            return inputs.whole_number(value)
        if isinstance(fld, f.BooleanField):
            return inputs.boolean(value)
        return inputs.text(value, getattr(fld, "max_length", None) or inputs.PATH_BYTES)

    @staticmethod
    def references(fld, value):
        """Items named by hrefs or ids: a list, or one comma-separated string."""
        if value in (None, ""):
            return []
        if isinstance(value, str):
            refs = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            refs = value
        else:
            raise ValueError("expected hrefs or ids, as a list or a comma-separated string")
        for ref in refs:
            inputs.text(ref, inputs.PATH_BYTES)
        target = fld.rel_model
        found = []
        for ref in refs:
            match = HREF.match(ref)
            if match and match["collection"] != target._meta.collection:
                raise ValueError(f"{ref} is not a {target._meta.collection} href")
            item = target.get_or_none(target.id == (match["id"] if match else ref))
            if item is None:
                raise ValueError(f"no {target._meta.collection} item {ref}")
            if item.id not in [i.id for i in found]:
                found.append(item)
        return found

    # Hooks for resource modules --------------------------------------------

    def check_create(self, values, retried=None):
        """Extra rules for a new item (`retried`: the ERRORED item being created again); raise ApiError."""

    def check_update(self, item, values):
        """Extra rules for a change; return True when it needs a storage job."""
        return False

    def check_delete(self, item, force):
        """Refuse a delete with ApiError (e.g. 409)."""

    def guard(self, action, values, item):
        """Rules that must hold when the write happens, not only when it was checked: called
        inside the write's transaction, after the item itself was claimed (create: before the
        insert; `item` is the ERRORED item a create retries, or None). Take the locks the rule
        needs here (service.db.lock, or a conditional UPDATE of a row) and raise ApiError to
        refuse: the transaction rolls back. Locks are taken item first, then its parents."""

    def duplicate(self, values):
        """The existing item a create would duplicate, from the model's unique indexes."""
        for columns in _unique_sets(self.model):
            given = {c: values.get(c) for c in columns}
            # as in SQL, a null never collides (a space snapshot has no exposer)
            if all(v is not None for v in given.values()):
                query = self.model.select().where(*[
                    getattr(self.model, c) == (v.id if isinstance(v, peewee.Model) else v) for c, v in given.items()])
                found = query.first()
                if found:
                    return found, columns
        return None, None


BUSY = ("NEW", "PENDING", "INPROGRESS")       # an item's statuses while a job of it is queued or running
ACTIVE_JOBS = ("PENDING", "INPROGRESS")


def active_job(collection, ids):
    """The first queued or running job of the items `ids` (a list or a subquery) of `collection`."""
    return (Job.select().where(Job.resource_type == collection, Job.resource_id.in_(ids),
                               Job.status.in_(ACTIVE_JOBS)).order_by(Job.created, Job.id).first())


def busy(href, status, collection, item_id):
    """409 for an item that a job holds, naming the job when it can."""
    job = active_job(collection, [item_id])
    wait = f"wait for its job /jobs/{job.id} to finish" if job else "wait for its job to finish"
    return ApiError(409, f"{href} is {status}: {wait}")


def _unique_sets(model):
    sets = [(fld.name,) for fld in model._meta.sorted_fields if fld.unique]
    sets += [tuple(cols) for cols, unique in model._meta.indexes if unique]
    return sets


_PLAIN = re.compile(r"[A-Za-z0-9_.:-]*")


def _json_text(text):
    """json.dumps(text), without the call for the plain texts ids and collection names are."""
    return f'"{text}"' if _PLAIN.fullmatch(text) else json.dumps(text)


def _reader(name, fld):
    """reader(item's data, related) -> the value the API shows of the field."""
    if isinstance(fld, peewee.ManyToManyField):
        target = fld.rel_model._meta.collection
        return lambda data, related: [f"/{target}/{i}" for i in related[name].get(data["id"], ())]
    if isinstance(fld, peewee.ForeignKeyField):
        target = fld.rel_model._meta.collection
        return lambda data, related: f"/{target}/{data[name]}" if data.get(name) else None
    return lambda data, related: data.get(name)


def _json_reader(read, fld):
    """The reader of a field's value in a JSON document (times as ISO 8601 texts); None for
    a value shown as stored."""
    if isinstance(fld, peewee.DateTimeField):
        return lambda data, related: jsonable(read(data, related))
    if isinstance(fld, (peewee.ManyToManyField, peewee.ForeignKeyField)):
        return read
    return None


_AS_STORED = (peewee.CharField, peewee.TextField, peewee.IntegerField, peewee.BigIntegerField)
_LOADERS = {}


def _loader(model):
    """(field names in column order, [(name, python_value)] of the fields whose database value
    needs converting) for View.load."""
    if model not in _LOADERS:
        fields = model._meta.sorted_fields
        convert = []
        for fld in fields:
            stored = fld.rel_field if isinstance(fld, peewee.ForeignKeyField) else fld
            # JSONField is text in the database but not in Python
            if not isinstance(stored, _AS_STORED) or isinstance(stored, f.JSONField):
                convert.append((fld.name, fld.python_value))
        _LOADERS[model] = ([fld.name for fld in fields], convert)
    return _LOADERS[model]


_BY_ID = {}
_COLUMNS = {}
_COUNTS = {}
_PAGES = {}
_COLUMNS_MARK = "__pixstor_columns__"
_RELATED = {}


def _related_sql(fields, count):
    """SELECT (relation's position in `fields`, own id, other id) of the m2m relations `fields`
    for `count` items, each in the order its items were added; built once per view and count."""
    key = (fields, count, database.param)
    if key not in _RELATED:
        marks = ", ".join([database.param] * count)
        parts = []
        for which, fld in enumerate(fields):
            through = fld.through_model
            own, other = (through._meta.fields[n].column_name for n in _through_columns(fld))
            parts.append(f'SELECT {which}, "{own}", "{other}", "{through._meta.primary_key.column_name}" '
                         f'FROM "{through._meta.table_name}" WHERE "{own}" IN ({marks})')
        _RELATED[key] = " UNION ALL ".join(parts) + " ORDER BY 1, 4"
    return _RELATED[key]


def _through_columns(fld):
    """(own, other) column names of a m2m through model."""
    through = fld.through_model
    own = next(n for n, c in through._meta.fields.items()
               if isinstance(c, peewee.ForeignKeyField) and c.rel_model is fld.model)
    other = next(n for n, c in through._meta.fields.items()
                 if isinstance(c, peewee.ForeignKeyField) and c.rel_model is fld.rel_model)
    return own, other


def _same(current, given, fld):
    """Does a PATCH value name what the item already has (an accepted no-op)?"""
    if isinstance(fld, peewee.ManyToManyField):
        try:
            return [f"/{fld.rel_model._meta.collection}/{i.id}" for i in View.references(fld, given)] == current
        except ValueError:
            return False
    if isinstance(fld, peewee.ForeignKeyField):
        match = HREF.match(given) if isinstance(given, str) else None
        return current is not None and (match["id"] if match else given) == current.rsplit("/", 1)[1]
    return current == given


# (rel and path, link name): named as the walkthrough prints them, stdout's capitalised
JOB_LINKS = (("stderr", "stderr"), ("stdout", "Stdout"))


class JobView(View):
    """Jobs link to the item they work on and to their two logs."""

    def links(self, obj, related):
        return [link(f"/{obj.resource_type}/{obj.resource_id}", "resource", "Resource", "resource")] + [
            link(f"/jobs/{obj.id}/{rel}", name, rel.capitalize(), rel) for rel, name in JOB_LINKS]


def view_for(model):
    return JobView(model) if model is Job else View(model)


__all__ = ["View", "JobView", "ApiError", "view_for"]
