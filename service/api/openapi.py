"""The OpenAPI 3.1 document, derived from the views (and so from the models)."""
import peewee

from service import fields as f

PARAMETERS = {
    "where": "filter: Mongo-style JSON ({\"name\": \"x\"}) or a Python-style expression (name==\"x\" and size>10)",
    "projection": "fields to include ({\"status\":1}) or exclude ({\"size\":0})",
    "sort": "[(\"name\",1)], -name, or name,-size",
    "max_results": "items per page (default 25, at most 1000)",
    "page": "page number, from 1",
}


def _schema(fld):
    if isinstance(fld, peewee.ManyToManyField):
        return {"type": "array", "items": {"type": "string", "description": "href or id"}}
    if isinstance(fld, peewee.ForeignKeyField):
        return {"type": ["string", "null"], "description": "href or id"}
    if isinstance(fld, f.JSONField):
        kind = dict(fld.schema)
    elif isinstance(fld, (f.BigIntegerField, f.IntegerField)):
        kind = {"type": "integer"}
    elif isinstance(fld, f.BooleanField):
        kind = {"type": "boolean"}
    elif isinstance(fld, f.DateTimeField):
        kind = {"type": "string", "format": "date-time"}
    else:
        kind = {"type": "string"}
    if fld.null:
        kind["type"] = [kind["type"], "null"]
    return kind


def _error(description):
    return {"description": description,
            "content": {"application/vnd.collection+json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document(views):
    paths, schemas = {}, {}
    cj = {"application/vnd.collection+json": {"schema": {"$ref": "#/components/schemas/Collection"}}}
    for name, view in views.items():
        schemas[name] = {
            "type": "object",
            "properties": {n: dict(_schema(fld), description=fld.help_text or n,
                                   readOnly=not getattr(fld, "writable", False))
                           for n, fld in view.visible.items()},
            "required": [n for n, fld in view.writable.items() if fld.required],
        }
        ok = {"200": {"description": "a C+J collection", "content": cj}, "401": _error("no or bad token"),
              "405": _error("method not allowed for the caller")}
        collection = {"get": {"summary": f"list {name}", "parameters": [
            {"name": p, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
            for p, d in PARAMETERS.items()], "responses": dict(ok, **{"400": _error("bad query")})}}
        body = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}},
            "application/vnd.collection+json": {"schema": {"$ref": "#/components/schemas/Template"}}}}
        accepted = {"202": {"description": "accepted; a job does the storage work", "content": cj},
                    "401": _error("no or bad token"), "409": _error("conflict"), "422": _error("invalid")}
        if "POST" in view.collection_methods:
            collection["post"] = {"summary": f"create one of {name}", "requestBody": body, "responses": accepted}
        item = {"get": {"summary": f"one of {name}", "responses": dict(ok, **{"404": _error("no such item")})}}
        if "PATCH" in view.item_methods:
            item["patch"] = {"summary": "change writable fields", "requestBody": body,
                             "responses": dict(accepted, **{"200": ok["200"], "412": _error("ETag mismatch")})}
        if "DELETE" in view.item_methods:
            item["delete"] = {"summary": f"delete (force=true: with data)", "parameters": [
                {"name": "force", "in": "query", "required": False, "schema": {"type": "boolean"}}],
                "responses": accepted}
        path_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
        paths[f"/{name}/"] = collection
        paths[f"/{name}/{{id}}"] = dict(item, parameters=path_id)
        for action, declared in view.actions.items():
            schemas[f"{name}.{action}"] = {
                "type": "object", "additionalProperties": False, "required": list(declared.fields),
                "properties": {n: {"type": "string", "description": d} for n, d in declared.fields.items()}}
            force = [{"name": "force", "in": "query", "required": False, "description": declared.force,
                      "schema": {"type": "boolean"}}] if declared.force else []
            paths[f"/{name}/{{id}}/{action}"] = {"parameters": path_id, "post": {
                "summary": declared.summary, "parameters": force,
                "requestBody": {"required": True, "content": dict(body["content"], **{
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}.{action}"}}})},
                "responses": dict(accepted, **{"404": _error("no such item"), "405": ok["405"],
                                               "412": _error("ETag mismatch")})}}
    schemas["Collection"] = {"type": "object", "required": ["collection"],
                             "properties": {"collection": {"type": "object"}}}
    schemas["Template"] = {"type": "object", "required": ["template"], "properties": {"template": {
        "type": "object", "properties": {"data": {"type": "array", "items": {
            "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "value": {}}}}}}}}
    schemas["Error"] = {"type": "object", "properties": {"collection": {"type": "object", "properties": {
        "error": {"type": "object", "required": ["title", "code", "message"], "properties": {
            "title": {"type": "string"}, "code": {"type": "integer"}, "message": {"type": "string"},
            "details": {"type": "object"}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "PixStor Management REST API", "version": "1.0"},
        "components": {"schemas": schemas, "securitySchemes": {
            "token": {"type": "http", "scheme": "basic", "description": "the token as username, empty password"},
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}, {"bearer": []}],
        "paths": paths,
    }
