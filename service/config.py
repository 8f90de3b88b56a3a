"""Settings: one TOML file, every key overridable by PIXSTOR_<SECTION>_<KEY>.

A missing file means the embedded default: everything under ./var.  Relative
paths are resolved against the config file's folder (or the working directory
when there is no file), so a config can be moved together with its data.
"""
import json
import logging
import os
import tomllib
from pathlib import Path
from types import SimpleNamespace


class ConfigError(Exception):
    """One line naming the key and the problem; start-up stops with it."""


# (type, default) per key; "path" values are resolved, "list" come from TOML arrays
# (or JSON in an env var).  The schema doubles as the list of known keys.
SCHEMA = {
    "server": {
        "host": (str, "127.0.0.1"),
        "port": (int, 5101),
        "threads": (int, 8),
        "access_log": (bool, True),
        "state_dir": ("path", "var"),
        "grace": (int, 30),
        "trusted_proxies": (list, []),
        "max_body": (int, 1 << 20),
        "query_budget": (int, 10),      # seconds of database time one request may use
    },
    "database": {"url": (str, "sqlite:///var/pixstor.db")},
    "queue": {
        "url": (str, "sqlite:///var/queue.db"),
        "workers": (int, 8),          # job threads per worker process: storage jobs mostly wait on I/O
        "heartbeat": (int, 10),       # seconds between a running job's heartbeats
        "stale_after": (int, 60),     # silence (by the database's clock) after which a job is run again
        "requeue_after": (int, 300),  # seconds a PENDING job may wait without a queue message
        "keep_jobs_days": (int, 30),  # finished jobs older than this are pruned (0: kept for ever)
        "max_log": (int, 1 << 20),    # bytes kept of each of a job's logs (stdout, stderr)
    },
    "auth": {
        "token_ttl": (int, 86400),
        "login_failures": (int, 5),                 # failed logins of one user name before a lockout
        "login_failures_per_address": (int, 50),    # ... and from one client address
        "login_window": (int, 900),                 # seconds over which failures are counted
        "lockout": (int, 60),                       # seconds a locked user name or address waits
        "hash_concurrency": (int, 2),               # password hashes computed at once per process
    },
    "storage": {
        "driver": (str, "posix"),
        "template_store": ("path", "var/templates"),
        "template_sources": ("pathlist", []),
        "filesystems": (list, [{"name": "mmfs1", "mountpoint": "var/mmfs1", "pools": ["sas1", "sata1"]}]),
        "gpfs": (dict, {}),
        "keep_setid": (bool, False),
        "min_size": (int, 1 << 20),     # bytes: a smaller space size is refused (422) as a likely missing unit
    },
    "shares": {                       # NFS and SMB exposers (service/shares)
        "nfs": (str, "kernel"),                             # kernel | ganesha | ces | none
        "exports_dir": ("path", "/etc/exports.d"),          # kernel: pixmanaged.<id>.exports each
        "exportfs_command": (list, ["exportfs"]),           # run with -ra after each change
        "ganesha_dir": ("path", "/etc/ganesha/pixmanaged.d"),   # ganesha: an EXPORT block per file ...
        "ganesha_exports_file": ("path", "/etc/ganesha/pixmanaged.conf"),  # ... merged here (%include it)
        "ganesha_pidfile": ("path", "/run/ganesha/ganesha.pid"),          # reloaded with SIGHUP
        "smb": (str, "samba"),                              # samba | ces | none
        "samba_dir": ("path", "/etc/samba/apmgmt"),         # samba: pixmanaged.<id>.conf each ...
        "samba_include": ("path", "/etc/samba/apmgmt.conf"),    # ... merged here (include = it)
        "samba_reload_command": (list, ["smbcontrol", "smbd", "reload-config"]),
        "testparm_command": (list, ["testparm", "-s", "--suppress-prompt"]),   # checks the merged file
    },
    "log": {"level": (str, "INFO"),
            "job_level": (str, "DEBUG")},     # the least level a job's own log (stderr) keeps
}
GPFS_SCHEMA = {"command_prefix": (str, "/usr/lpp/mmfs/bin"), "timeout": (int, 300), "sudo": (bool, False)}
DRIVERS = ("posix", "btrfs", "gpfs")
MIN_LOG = 4096      # a job log's cap leaves room for its first and last lines and the cut marker
URL_SCHEMES = {"database.url": ("sqlite", "postgresql", "postgres"), "queue.url": ("sqlite", "redis")}


def load(path=None, environ=None):
    """Read the file (if any), apply env overrides, validate, resolve paths."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("PIXSTOR_CONFIG")
    raw, base = {}, Path.cwd()
    if path:
        path = Path(path).resolve()
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config: file {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {path}: {exc}") from None
        base = path.parent
    for section, keys in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"config: unknown section [{section}]")
        if not isinstance(keys, dict):
            raise ConfigError(f"config: [{section}] must be a table")
        for key in keys:
            if key not in SCHEMA[section]:
                raise ConfigError(f"config: unknown key {section}.{key}")
    sections = {}
    for section, keys in SCHEMA.items():
        values = {}
        for key, (kind, default) in keys.items():
            name = f"{section}.{key}"
            env = f"PIXSTOR_{section}_{key}".upper()
            if env in environ:
                value = _from_env(name, kind, environ[env])
            else:
                value = raw.get(section, {}).get(key, default)
            values[key] = _check(name, kind, value, base)
        sections[section] = values
    _check_storage(sections["storage"], base, environ)
    _check_queue(sections["queue"])
    _check_shares(sections["shares"], sections["storage"]["driver"])
    for name, schemes in URL_SCHEMES.items():
        section, key = name.split(".")
        sections[section][key] = _resolve_url(name, sections[section][key], schemes, base)
    try:
        from service.api.proxies import networks
        networks(sections["server"]["trusted_proxies"])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config: server.trusted_proxies: {exc}") from None
    for key in ("level", "job_level"):
        if not isinstance(logging.getLevelName(sections["log"][key].upper()), int):
            raise ConfigError(f"config: log.{key}: unknown level {sections['log'][key]!r}; use DEBUG, INFO, "
                              "WARNING or ERROR")
    if sections["storage"]["driver"] not in DRIVERS:
        raise ConfigError(f"config: storage.driver must be one of {', '.join(DRIVERS)}, got {sections['storage']['driver']!r}")
    settings = SimpleNamespace(**{s: SimpleNamespace(**v) for s, v in sections.items()})
    settings.source = str(path) if path else None
    settings.base = str(base)
    return settings


def _from_env(name, kind, text):
    if kind in (list, dict, "pathlist"):
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigError(f"config: {name} from environment must be JSON") from None
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"config: {name}: expected an integer, got {text!r}") from None
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"config: {name}: expected true or false, got {text!r}")
        return lowered in ("1", "true", "yes", "on")
    return text


def _check(name, kind, value, base):
    expected = {"path": str, "pathlist": list}.get(kind, kind)
    # bool is an int in Python; a port of `true` is still wrong.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"config: {name}: expected {_kind_name(kind)}, got {value!r}")
    if kind is int and value < 0:
        raise ConfigError(f"config: {name}: must not be negative, got {value}")
    if kind == "path":
        return str((base / value).resolve())
    if kind == "pathlist":
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config: {name}: expected a list of paths")
        return [str((base / v).resolve()) for v in value]
    return value


def _kind_name(kind):
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list",
            dict: "a table", "path": "a path", "pathlist": "a list of paths"}[kind]


def _check_storage(storage, base, environ):
    filesystems = []
    for i, fs in enumerate(storage["filesystems"]):
        where = f"storage.filesystems[{i}]"
        if not isinstance(fs, dict):
            raise ConfigError(f"config: {where}: expected a table with name, mountpoint, pools")
        unknown = set(fs) - {"name", "mountpoint", "pools"}
        if unknown:
            raise ConfigError(f"config: {where}: unknown key {sorted(unknown)[0]}")
        for key in ("name", "mountpoint"):
            if not isinstance(fs.get(key), str) or not fs[key]:
                raise ConfigError(f"config: {where}.{key}: expected a non-empty string")
        pools = fs.get("pools")
        if not isinstance(pools, list) or not pools or not all(isinstance(p, str) and p for p in pools):
            raise ConfigError(f"config: {where}.pools: expected a non-empty list of pool names")
        filesystems.append(SimpleNamespace(
            name=fs["name"], mountpoint=str((base / fs["mountpoint"]).resolve()), pools=list(pools)))
    names = [fs.name for fs in filesystems]
    if len(set(names)) != len(names):
        raise ConfigError("config: storage.filesystems: filesystem names must be unique")
    storage["filesystems"] = filesystems
    gpfs = {}
    for key, (kind, default) in GPFS_SCHEMA.items():
        env = f"PIXSTOR_STORAGE_GPFS_{key}".upper()
        value = _from_env(f"storage.gpfs.{key}", kind, environ[env]) if env in environ else storage["gpfs"].get(key, default)
        gpfs[key] = _check(f"storage.gpfs.{key}", kind, value, base)
    unknown = set(storage["gpfs"]) - set(GPFS_SCHEMA)
    if unknown:
        raise ConfigError(f"config: unknown key storage.gpfs.{sorted(unknown)[0]}")
    storage["gpfs"] = SimpleNamespace(**gpfs)


def _check_queue(queue):
    if queue["heartbeat"] < 1:
        raise ConfigError(f"config: queue.heartbeat: must be at least 1 second, got {queue['heartbeat']}")
    if queue["stale_after"] < 2 * queue["heartbeat"]:
        raise ConfigError(f"config: queue.stale_after: must be at least twice queue.heartbeat "
                          f"({2 * queue['heartbeat']}), got {queue['stale_after']}: a job would be taken "
                          "for dead between two heartbeats")
    if queue["requeue_after"] < 1:
        raise ConfigError(f"config: queue.requeue_after: must be at least 1 second, "
                          f"got {queue['requeue_after']}")
    if queue["max_log"] < MIN_LOG:
        raise ConfigError(f"config: queue.max_log: must be at least {MIN_LOG} bytes, got {queue['max_log']}")


def _check_shares(shares, driver):
    from service.shares import BACKENDS
    for key, choices in BACKENDS.items():
        if shares[key] not in choices:
            raise ConfigError(f"config: shares.{key} must be one of {', '.join(choices)}, got {shares[key]!r}")
        if shares[key] == "ces" and driver != "gpfs":
            raise ConfigError(f"config: shares.{key} = \"ces\" (mmnfs, mmsmb) needs storage.driver = \"gpfs\"")
    for key in ("exportfs_command", "samba_reload_command", "testparm_command"):
        if not shares[key] or not all(isinstance(a, str) and a for a in shares[key]):
            raise ConfigError(f"config: shares.{key}: expected a non-empty list of arguments")


def _resolve_url(name, url, schemes, base):
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes:
        raise ConfigError(f"config: {name}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {url!r}")
    if scheme == "sqlite":
        # sqlite:///relative/file resolves against the config folder; sqlite:////abs/file is absolute.
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"config: {name}: expected sqlite:///FILE, got {url!r}")
        path = rest[1:]
        if path != ":memory:":
            path = str((base / path).resolve())
        return f"sqlite:///{path}"
    return url
