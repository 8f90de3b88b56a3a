"""A browser's sign-in: the API's token in an HttpOnly, SameSite=Strict cookie, and the CSRF
token every form carries.

The token is the one the password grant hands API clients (auth.token_endpoint: the same
checks, throttling and lifetime); sign-out revokes it (auth.revoke_endpoint). A signed-in
form's CSRF token is an HMAC of the session's token, so any API process can check it and it
dies with the session; the sign-in form, before any session, carries a random value that must
match a cookie of its own (double submit).
"""
import hashlib
import hmac
import secrets

import bottle

from service.api import auth
from service.api.cj import ApiError

TOKEN_COOKIE = "pixstor_token"
SIGN_IN_COOKIE = "pixstor_sign_in"
SIGN_IN_PATH = "/ui/sign-in"


def token():
    return bottle.request.get_cookie(TOKEN_COOKIE) or ""


def user():
    """The signed-in user, or 401 (the pages answer it with the sign-in page)."""
    current = token()
    if not current:
        raise ApiError(401, "sign in first")
    return auth.caller(f"Bearer {current}")


def csrf_token(session_token):
    return hmac.new(session_token.encode(), b"pixstor-mgmt ui forms", hashlib.sha256).hexdigest()


def check_csrf(form, expected):
    """403 unless the form's `csrf` field is `expected` (and that is not empty)."""
    given = (form.get("csrf") or [""])[0]
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "this form was sent without its CSRF token (or with another session's): nothing was "
                            "done; reload the page and send the form again")


def _cookie(name, value, secure, path="/", **lifetime):
    bottle.response.set_cookie(name, value, path=path, httponly=True, samesite="strict", secure=secure, **lifetime)


def keep(new_token, ttl, secure):
    _cookie(TOKEN_COOKIE, new_token, secure, max_age=ttl)
    bottle.response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)


def forget():
    if token():
        bottle.response.delete_cookie(TOKEN_COOKIE, path="/")


def sign_in_csrf(secure):
    """A fresh value for the sign-in form, also set as its cookie."""
    value = secrets.token_urlsafe(24)
    _cookie(SIGN_IN_COOKIE, value, secure, path=SIGN_IN_PATH)
    return value


def check_sign_in_csrf(form):
    check_csrf(form, bottle.request.get_cookie(SIGN_IN_COOKIE) or "")
