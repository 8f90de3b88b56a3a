"""Throttled logins: failed password grants counted per user name and per client address.

Counters live in the database, so the limit holds across API processes. A key that reaches
its limit within the window is locked for `auth.lockout` seconds (429 with Retry-After). An
unknown user costs a password hash like a known one, so timing does not tell which names
exist, and hashing runs at most `auth.hash_concurrency` at a time so that a burst of logins
cannot starve the other requests.
"""
import ctypes
import datetime
import threading

from argon2 import PasswordHasher

from service.models import LoginFailure, database, now

# argon2id with OWASP's first choice of parameters: 19 MiB and 2 passes, one lane. argon2-cffi's
# defaults (64 MiB, 3 passes, 4 lanes) cost ~190 ms of CPU and 64 MiB per login: eight logins at
# once took half a GiB. These take ~25 ms and 19 MiB, so the peak stays near 19 MiB x
# auth.hash_concurrency (default 2) above the process's own. Hashes made with other parameters
# still verify (they carry their own) and are made again with these at the next login.
MEMORY_KIB, PASSES, LANES = 19 * 1024, 2, 1
_hasher = PasswordHasher(time_cost=PASSES, memory_cost=MEMORY_KIB, parallelism=LANES)
_DUMMY_HASH = _hasher.hash("not a password of anyone")
_hashing = None


class Throttled(Exception):
    def __init__(self, retry_after):
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


class Busy(Exception):
    """No password hash could start soon enough: the caller should try again shortly."""


def configure(concurrency):
    global _hashing
    _hashing = threading.BoundedSemaphore(max(1, concurrency))
    _return_large_blocks()


def _return_large_blocks():
    """glibc's malloc raises its mmap threshold to the size of the largest block freed, so after
    the first login each request thread kept a hash's 19 MiB in its own arena for good (8 threads:
    +150 MiB). A fixed threshold keeps large blocks mmapped: given back when the hash is done."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):   # not glibc: nothing to tune
        pass


M_MMAP_THRESHOLD = -3


def hash_password(password):
    return _hashed(_hasher.hash, password)


def verify(password_hash, password):
    """Does `password` match? `password_hash` None (unknown user) costs the same and is False."""
    from argon2.exceptions import InvalidHashError, VerificationError
    try:
        return _hashed(_hasher.verify, password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def rehashed(password_hash, password):
    """A new hash of `password` when `password_hash` (just verified) was made with other
    parameters than today's; else None."""
    try:
        stale = _hasher.check_needs_rehash(password_hash)
    except Exception:   # not a hash argon2 can read the parameters of: verify said it is fine
        stale = False
    return hash_password(password) if stale else None


def _hashed(fn, *args):
    if _hashing is None:     # the CLI, and tests of the helpers: no contention to bound
        return fn(*args)
    if not _hashing.acquire(timeout=2):
        raise Busy("too many logins at once")
    try:
        return fn(*args)
    finally:
        _hashing.release()


def keys(username, address):
    return [f"user:{username}"[:300], f"address:{address}"[:300]]


def check(keys_and_limits):
    """Raise Throttled when any key is locked now."""
    current = now()
    locked = (LoginFailure.select(LoginFailure.locked_until)
              .where(LoginFailure.key.in_([k for k, _ in keys_and_limits]),
                     LoginFailure.locked_until > current))
    wait = max((row.locked_until - current for row in locked), default=None)
    if wait is not None:
        raise Throttled(max(1, int(wait.total_seconds() + 0.999)))


def failed(keys_and_limits, window, lockout):
    """Count one failure for each key; lock those that reach their limit within the window.
    Each step is one statement, so concurrent processes never lose a count."""
    current = now()
    for key, limit in keys_and_limits:
        with database.atomic():
            LoginFailure.insert(key=key, failures=0, first=current).on_conflict_ignore().execute()
            LoginFailure.update(failures=0, first=current).where(
                LoginFailure.key == key, LoginFailure.first < current - datetime.timedelta(seconds=window)).execute()
            LoginFailure.update(failures=LoginFailure.failures + 1).where(LoginFailure.key == key).execute()
            LoginFailure.update(locked_until=current + datetime.timedelta(seconds=lockout), failures=0,
                                first=current).where(LoginFailure.key == key,
                                                     LoginFailure.failures >= limit).execute()


def succeeded(username):
    LoginFailure.delete().where(LoginFailure.key == f"user:{username}"[:300]).execute()
