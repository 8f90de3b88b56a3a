"""Real file servers on loopback, for tests of what the service writes for them.

- `Samba(folder)`: smbd on a free port of 127.0.0.1 with a private smb.conf whose [global]
  `include =`s the file the service writes (`.samba_include`); `.client()` runs smbclient.
- `Ganesha(folder)`: nfs-ganesha (NFSv4 only, no grace period) on a free port of 127.0.0.1 with
  a private ganesha.conf that `%include`s `.exports_file`; SIGHUP to `.pidfile` reloads it;
  `.ls()` / `.cat()` run the libnfs clients.
- `exportfs_namespace(folder)`: a wrapper that runs the kernel's `exportfs` in a mount namespace
  of its own, where /etc/exports, /etc/exports.d and /var/lib/nfs are private files: exportfs
  validates and lists exports there (no nfsd runs on these machines). `exported()` reads
  `exportfs -s` back.

Each one skips the calling test when its programs are missing or the test is not root, and fails
it instead when CI=true (`tests.harness.require`). `make system-packages` installs them.
Measured behaviour these rely on: /work/shared/NOTES.md, "File-sharing servers on loopback".
"""
import contextlib
import glob
import grp
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

from tests.harness import free_port, require, wait_for

_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
START_TIMEOUT = 15
CLIENT_TIMEOUT = 30
USER_PREFIX = "pixt"         # the only Unix accounts these fixtures create


def tool(name):
    """The program's path, looking in the sbin folders too, or None."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))


def require_tools(package, *names):
    """Skip (fail in CI) unless running as root with all the `names` installed; returns their paths."""
    require(os.geteuid() == 0, f"the {package} tests need root (real servers, Unix accounts, mount namespaces)")
    paths = {name: tool(name) for name in names}
    missing = [name for name, path in paths.items() if path is None]
    require(not missing, f"{', '.join(missing)} not found: install {package} (make system-packages does, as root)")
    return paths


def accepts(port):
    """Whether 127.0.0.1:port takes a TCP connection."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def run(argv, input=None, timeout=CLIENT_TIMEOUT):
    """(exit code, stdout and stderr together) of a command."""
    result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stdout + result.stderr


def open_to_all(path):
    """Let every user through `path` and the folders above it (o+x only: no listing): pytest makes
    its temporary folders 0700, and smbd reads a share as the user who connects."""
    for folder in [Path(path), *Path(path).parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def unix_user(name):
    """Make a system account `name` (a `pixt…` name) unless it exists; accounts are kept afterwards,
    since another test run may be using them."""
    assert name.startswith(USER_PREFIX), f"test accounts are named {USER_PREFIX}…, not {name!r}"
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    code, output = run([tool("useradd") or "useradd", "-M", "-N", "-r", "-s", "/usr/sbin/nologin", name])
    try:        # another run may have made it meanwhile: then useradd fails, and that is fine
        return pwd.getpwnam(name)
    except KeyError:
        raise AssertionError(f"useradd {name} exited {code}: {output}") from None


def unix_group(name, members=()):
    """Make a system group `name` unless it exists, and add `members` (accounts of these fixtures,
    `pixt…`) to it; groups and memberships are kept afterwards, as accounts are."""
    try:
        group = grp.getgrnam(name)
    except KeyError:
        code, output = run([tool("groupadd") or "groupadd", "-r", name])
        try:    # another run may have made it meanwhile
            group = grp.getgrnam(name)
        except KeyError:
            raise AssertionError(f"groupadd {name} exited {code}: {output}") from None
    for member in members:
        assert member.startswith(USER_PREFIX), f"test accounts are named {USER_PREFIX}…, not {member!r}"
        if member not in group.gr_mem:
            code, output = run([tool("usermod") or "usermod", "-a", "-G", name, member])
            assert code == 0, f"usermod -a -G {name} {member} exited {code}: {output}"
    return grp.getgrnam(name)


class _Daemon:
    """A server process started in the foreground, up when its port takes connections."""

    name = "server"

    def _start(self, argv, log_path):
        started = time.monotonic()
        # a session of its own: smbd, stopping, signals its whole process group
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}: {self.log()}")
            return accepts(self.port)
        try:
            wait_for(up, timeout=START_TIMEOUT, what=f"{self.name} on 127.0.0.1:{self.port} (log: {log_path})")
        except BaseException:
            self._stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc):
        self._stop()


class Samba(_Daemon):
    """smbd on 127.0.0.1 with a private configuration and user database.

    `.samba_dir` (for the per-share fragments) and `.samba_include` (empty at first) are where a
    service writes; `.reload_command` reloads this smbd; `.port`, `.pid`."""

    name = "smbd"

    def __init__(self, folder):
        self.tools = require_tools("samba and smbclient", "smbd", "smbpasswd", "smbcontrol", "smbclient", "testparm",
                                   "useradd")
        self.dir = Path(folder) / "samba"
        self.port = free_port()
        self.conf = self.dir / "smb.conf"
        self.samba_dir = self.dir / "apmgmt"
        self.samba_include = self.dir / "apmgmt.conf"
        self.log_path = self.dir / "smbd.log"
        self.reload_command = [self.tools["smbcontrol"], "-s", str(self.conf), "smbd", "reload-config"]

    def __enter__(self):
        private = {key: self.dir / key for key in ("lock", "state", "cache", "pid", "private", "ncalrpc")}
        for folder in (self.samba_dir, *private.values()):
            folder.mkdir(parents=True, exist_ok=True)
        self.samba_include.write_text("")
        self.conf.write_text(f"""[global]
server role = standalone server
smb ports = {self.port}
interfaces = 127.0.0.1
bind interfaces only = yes
disable netbios = yes
lock directory = {private['lock']}
state directory = {private['state']}
cache directory = {private['cache']}
pid directory = {private['pid']}
private dir = {private['private']}
ncalrpc dir = {private['ncalrpc']}
log file = {self.dir / 'log.smbd'}
passdb backend = tdbsam:{private['private'] / 'passdb.tdb'}
usershare path =
load printers = no
printcap name = /dev/null
disable spoolss = yes
include = {self.samba_include}
""")
        self.pid_dir = private["pid"]
        self._start([self.tools["smbd"], "-F", "--no-process-group", "--debug-stdout", "-s", str(self.conf)],
                    self.log_path)
        self.pid = self.process.pid
        return self

    def add_user(self, name, password):
        """A Samba account (and the Unix account it needs, when missing) in this smbd's own database."""
        unix_user(name)
        code, output = run([self.tools["smbpasswd"], "-c", str(self.conf), "-s", "-a", name],
                           input=f"{password}\n{password}\n")
        assert code == 0, f"smbpasswd -a {name} exited {code}: {output}"

    def client(self, share, user, password, command):
        """(exit code, output) of `smbclient //127.0.0.1/SHARE -c COMMAND` as user%password."""
        return run([self.tools["smbclient"], "-s", "/dev/null", "-p", str(self.port), f"//127.0.0.1/{share}",
                    "-U", f"{user}%{password}", "-c", command])

    def testparm(self, path):
        """(exit code, output) of testparm on a configuration file."""
        return run([self.tools["testparm"], "-s", "--suppress-prompt", str(path)])

    def _stop(self):
        super()._stop()
        # `smbclient -L` makes smbd start samba-dcerpcd, which outlives it
        pidfile = self.pid_dir / "samba-dcerpcd.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(pidfile.read_text().split()[0])
            if "samba-dcerpcd" in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGTERM)


class Ganesha(_Daemon):
    """nfs-ganesha on 127.0.0.1, NFSv4 only, with a private configuration.

    `.exports_file` (empty at first) is `%include`d; `.dir` is a folder for per-export fragments;
    `.pidfile` holds the pid a reload (SIGHUP) goes to; `.port`."""

    name = "ganesha.nfsd"

    def __init__(self, folder):
        self.tools = require_tools("nfs-ganesha, nfs-ganesha-vfs and libnfs-utils", "ganesha.nfsd", "nfs-ls",
                                   "nfs-cat")
        require(glob.glob("/usr/lib/*/ganesha/libfsalvfs.so") or glob.glob("/usr/lib*/ganesha/libfsalvfs.so"),
                "ganesha's VFS FSAL (libfsalvfs.so) not found: install nfs-ganesha-vfs")
        self.root = Path(folder) / "ganesha"
        self.port = free_port()
        self.conf = self.root / "ganesha.conf"
        self.dir = self.root / "pixmanaged.d"
        self.exports_file = self.root / "pixmanaged.conf"
        self.pidfile = self.root / "ganesha.pid"
        self.log_path = self.root / "ganesha.log"

    def __enter__(self):
        for folder in (self.dir, self.root / "recovery"):
            folder.mkdir(parents=True, exist_ok=True)
        self.exports_file.write_text("")
        self.conf.write_text(f"""NFS_CORE_PARAM {{
  Bind_addr = 127.0.0.1; NFS_Port = {self.port}; Protocols = 4;
  Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false;
}}
NFSv4 {{
  Graceless = true; RecoveryBackend = fs; RecoveryRoot = "{self.root / 'recovery'}"; Only_Numeric_Owners = true;
}}
NFS_KRB5 {{ Active_krb5 = false; }}
%include "{self.exports_file}"
""")
        self._start([self.tools["ganesha.nfsd"], "-F", "-L", str(self.log_path), "-f", str(self.conf),
                     "-p", str(self.pidfile)], self.root / "ganesha.stdout")
        self.pid = self.process.pid
        return self

    def reload(self):
        """SIGHUP to the pid in the pid file, as a service does."""
        os.kill(int(self.pidfile.read_text().split()[0]), signal.SIGHUP)

    def config_errors(self):
        """The log's complaints about the configuration (a bad export is logged, not fatal)."""
        return [line for line in self.log().splitlines() if ":CONFIG :CRIT" in line or ":CONFIG :MAJ" in line]

    def url(self, path):
        return f"nfs://127.0.0.1/{str(path).lstrip('/')}?version=4&nfsport={self.port}"

    def ls(self, pseudo_path):
        """(exit code, output) of nfs-ls on a folder under the pseudo root."""
        return run([self.tools["nfs-ls"], self.url(pseudo_path)])

    def cat(self, pseudo_path):
        """(exit code, output) of nfs-cat on a file under the pseudo root."""
        return run([self.tools["nfs-cat"], self.url(pseudo_path)])


def exportfs_namespace(folder):
    """(wrapper script, private exports.d): the script runs `exportfs ARGS` in a mount namespace of
    its own where /etc/exports.d is that folder, /etc/exports an empty file and /var/lib/nfs a
    folder of its own (its etab keeps what `-ra` exported for a later `-s`)."""
    tools = require_tools("nfs-kernel-server and util-linux", "exportfs", "unshare", "mount")
    root = Path(folder) / "exportfs"
    exports_dir, exports, state = root / "exports.d", root / "exports", root / "var-lib-nfs"
    for made in (exports_dir, state):
        made.mkdir(parents=True, exist_ok=True)
    exports.write_text("")
    script = root / "exportfs"
    # /etc/exports.d must exist to be mounted over (it is made on the real root, empty); a missing
    # /etc/exports is read as empty anyway.
    script.write_text(f"""#!/bin/sh
# exportfs on private /etc/exports, /etc/exports.d and /var/lib/nfs (tests/fileservers.py)
mkdir -p /etc/exports.d /var/lib/nfs || exit 1
exec {tools['unshare']} -m sh -ec '
  {tools['mount']} --bind "$1" /etc/exports.d
  if [ -e /etc/exports ]; then {tools['mount']} --bind "$2" /etc/exports; fi
  {tools['mount']} --bind "$3" /var/lib/nfs
  shift 3
  exec {tools['exportfs']} "$@"' exportfs "{exports_dir}" "{exports}" "{state}" "$@"
""")
    script.chmod(0o755)
    return script, exports_dir


def exported(script):
    """What `exportfs -s` lists in the script's namespace: {path: {host: [options]}}."""
    result = subprocess.run([str(script), "-s"], capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    assert result.returncode == 0, f"{script} -s exited {result.returncode}: {result.stderr}"
    exports = {}
    for line in result.stdout.splitlines():     # warnings go to stderr
        if not line.strip():
            continue
        path, client = line.rsplit(None, 1)
        host, options = client.rstrip(")").split("(", 1)
        exports.setdefault(path.strip(), {})[host] = options.split(",")
    return exports
