"""Who is calling and what they may do: passwords, tokens, roles.

Passwords are argon2 hashes; tokens are random strings of which only a
SHA-256 is stored, with an expiry.  A role grants methods per collection.
"""
import base64
import collections
import datetime
import hashlib
import secrets

from service.api import logins
from service.api.cj import ApiError
from service.models import Token, User, database, now

READ = ("HEAD", "GET", "OPTIONS")
WRITE = ("POST", "PATCH", "DELETE")
METHOD_ORDER = ("HEAD", "GET", "POST", "PATCH", "DELETE", "OPTIONS")
ROLES = {
    "admin": {"*": READ + WRITE},   # profiles and ILM steps: admins only
    "operator": {"spaces": READ + WRITE, "templates": READ + WRITE, "snapshots": READ + WRITE,
                 "snapshotpolicies": READ + WRITE, "exposers": READ + WRITE, "*": READ},
    "readonly": {"*": READ},
}
REALM = 'Basic realm="pixstor-mgmt", Bearer realm="pixstor-mgmt"'
hash_password = logins.hash_password


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user, ttl):
    token = secrets.token_urlsafe(32)
    Token.create(token_hash=_digest(token), user=user, expires=now() + datetime.timedelta(seconds=ttl))
    # expired tokens are dead weight: drop them when new ones are made
    Token.delete().where(Token.expires < now()).execute()
    return token


def caller(authorization):
    """The User behind an Authorization header, or 401."""
    token = None
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer":
        token = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            token = base64.b64decode(credentials.strip()).decode().partition(":")[0]
        except ValueError:
            token = None
    if not token:
        raise ApiError(401, "authentication required: get a token from /oauth2/token and send it as the "
                            "HTTP Basic username (empty password) or as a Bearer token",
                       headers={"WWW-Authenticate": REALM})
    row = database.execute_sql(_lookup_sql(), (_digest(token), Token.expires.db_value(now()))).fetchone()
    if row is None:
        raise ApiError(401, "invalid or expired token", headers={"WWW-Authenticate": REALM})
    return Caller(*row)


class Caller(collections.namedtuple("Caller", "id name role")):
    """Who a request's token belongs to: what the handlers read of its user."""


_LOOKUPS = {}


def _lookup_sql():
    """The token lookup as one prepared statement: every request makes it, and building it with
    the query builder cost more than running it (the token's unique index answers it)."""
    param = database.param
    if param not in _LOOKUPS:
        token, user = Token._meta.table_name, User._meta.table_name
        _LOOKUPS[param] = (f'SELECT u."id", u."name", u."role" FROM "{token}" AS t JOIN "{user}" AS u '
                           f'ON u."id" = t."{Token.user.column_name}" WHERE t."token_hash" = {param} '
                           f'AND t."expires" > {param}')
    return _LOOKUPS[param]


def allowed(role, collection, methods):
    """The methods of `methods` the role grants on the collection, in the usual order."""
    grants = ROLES.get(role, {})
    granted = set(grants.get(collection, grants.get("*", ())))
    return [m for m in METHOD_ORDER if m in methods and m in granted]


def token_endpoint(form, auth, address):
    """RFC 6749 password grant: (status, JSON body, headers). Failed logins are throttled per
    user name and per client address (429 with Retry-After)."""
    grant = form.get("grant_type")
    if not grant:
        return 400, {"error": "invalid_request", "error_description": "grant_type is required"}, {}
    if grant != "password":
        return 400, {"error": "unsupported_grant_type",
                     "error_description": f"grant_type {grant!r} is not supported; use password"}, {}
    username, password = form.get("username"), form.get("password")
    if not username or password is None:
        return 400, {"error": "invalid_request", "error_description": "username and password are required"}, {}
    limits = list(zip(logins.keys(username, address), (auth.login_failures, auth.login_failures_per_address)))
    try:
        logins.check(limits)
        user = User.get_or_none(User.name == username)
        if not logins.verify(user.password_hash if user else None, password):
            logins.failed(limits, auth.login_window, auth.lockout)
            return 400, {"error": "invalid_grant", "error_description": "bad username or password"}, {}
    except logins.Throttled as exc:
        return 429, {"error": "invalid_request", "error_description": str(exc)}, {"Retry-After": str(exc.retry_after)}
    except logins.Busy as exc:
        return 503, {"error": "temporarily_unavailable", "error_description": f"{exc}; try again"}, {"Retry-After": "1"}
    logins.succeeded(username)
    upgraded = logins.rehashed(user.password_hash, password)
    if upgraded:    # a hash of older parameters (service/api/logins.py), made again once
        User.update(password_hash=upgraded).where(User.id == user.id, User.password_hash == user.password_hash).execute()
    token = issue_token(user, auth.token_ttl)
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": auth.token_ttl}, {}


def revoke_endpoint(form):
    """RFC 7009: the token given ends now. Unknown tokens are fine (200 all the same)."""
    token = form.get("token")
    if not token:
        return 400, {"error": "invalid_request", "error_description": "token is required"}
    Token.delete().where(Token.token_hash == _digest(token)).execute()
    return 200, {}
