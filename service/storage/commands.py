"""Running external storage commands: argument lists only, a timeout, logged for the job log."""
from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess

from .base import StorageError

log = logging.getLogger(__name__)


def run(argv: list[str], timeout: float | None = None, check: bool = True, pass_fds: tuple[int, ...] = ()
        ) -> subprocess.CompletedProcess:
    """Run `argv` (never through a shell). Non-zero exit -> StorageError naming the command,
    its exit status and the first line of stderr; `.details` carries stderr verbatim."""
    line = shlex.join(argv)
    log.info("running: %s", line)
    try:
        # Own session, so a timeout can stop the whole process group (mm* commands are
        # scripts that start children of their own).
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                pass_fds=pass_fds)
    except OSError as exc:
        raise StorageError(f"{line}: cannot run {argv[0]}: {exc.strerror}") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        log.error("%s timed out after %ss\n%s", line, timeout, err)
        raise StorageError(f"{line} timed out after {timeout}s", details=err) from None
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check:
        return raise_for_status(result)
    if err.strip():  # the caller looks at the outcome itself: not (yet) an error
        log.info("%s: exit status %d, stderr:\n%s", argv[0], proc.returncode, err.rstrip("\n"))
    return result


def raise_for_status(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The result when the command succeeded; else StorageError with its stderr verbatim
    (also logged at ERROR, for the job's log)."""
    if result.stderr.strip():
        log.log(logging.ERROR if result.returncode else logging.WARNING, "%s: stderr:\n%s",
                result.args[0], result.stderr.rstrip("\n"))
    if result.returncode:
        text = result.stderr or result.stdout
        first = next((s.strip() for s in text.splitlines() if s.strip()), "no error output")
        raise StorageError(f"{shlex.join(result.args)} failed with exit status "
                           f"{result.returncode}: {first}", details=text)
    return result
