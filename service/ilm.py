"""ILM steps: what their conditions mean, once, for every driver.

A step matches a file when every condition it sets holds: not read for `access_days`, not
changed for `modification_days`, at least `min_size` and at most `max_size` bytes, a name
matching one of `name_patterns` (shell-style `*` and `?`). On gpfs the same conditions become
the WHERE clause of a MIGRATE or DELETE rule (service/storage/gpfs_policy.py); on posix and
btrfs `pixstor-mgmt ilm run --dry-run` evaluates them over the spaces' files (`matches`).
"""
import fnmatch
import re
import stat

PATTERN = re.compile(r"[A-Za-z0-9_.*?+@=,~-]{1,255}")
MAX_PATTERNS = 64
DAY = 86400


def name_patterns(value):
    """A list of shell-style file name patterns (or one comma-separated string)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a non-empty list of file name patterns such as *.tmp")
    if len(value) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} patterns")
    for pattern in value:
        if not PATTERN.fullmatch(pattern):
            raise ValueError(f"pattern {pattern[:60]!r}: letters, digits, . _ - + @ = , ~ and the wildcards * and ? "
                             "only (no /: patterns match file names)")
    return value


CONDITIONS = ("access_days", "modification_days", "min_size", "max_size", "name_patterns")


def conditions_of(step):
    """{condition: value} of the conditions a step sets."""
    return {name: getattr(step, name) for name in CONDITIONS if getattr(step, name) is not None}


def matches(step, name, st, now):
    """Does the file `name` with lstat `st` match the step's conditions at time `now`?"""
    if step.access_days is not None and now - st.st_atime < step.access_days * DAY:
        return False
    if step.modification_days is not None and now - st.st_mtime < step.modification_days * DAY:
        return False
    if step.min_size is not None and st.st_size < step.min_size:
        return False
    if step.max_size is not None and st.st_size > step.max_size:
        return False
    if step.name_patterns and not any(fnmatch.fnmatchcase(name, p) for p in step.name_patterns):
        return False
    return True


def like(pattern):
    """A shell-style pattern as an SQL LIKE pattern with '\\' as its escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def report(mountpoint, profiles, now):
    """What the ILM steps would do, found by walking the spaces' files: one line per step.

    `profiles` is [(profile name, its steps in order, the paths of its spaces)]. Each regular
    file counts for the first step it matches, as the first matching rule of a policy takes it
    (thresholds are not evaluated: a dry run has no pool occupancy to compare). Nothing is moved,
    read or changed; links are not followed, the spaces' snapshots are skipped."""
    from service.storage import tree
    from service.storage.confined import Root
    snapshots = tree.SNAPSHOTS      # a space's snapshots are not its files
    lines = []
    with Root(mountpoint) as root:
        for profile, steps, paths in profiles:
            counts = {step.name: [0, 0] for step in steps}
            for path in paths:
                with root.folder(path) as fd:
                    for _, rel, name, st in tree.walk(fd, skip=lambda rel: rel == snapshots):
                        if not stat.S_ISREG(st.st_mode):
                            continue
                        step = next((s for s in steps if matches(s, name, st, now)), None)
                        if step is not None:
                            counts[step.name][0] += 1
                            counts[step.name][1] += st.st_size
            for step in steps:
                files, size = counts[step.name]
                what = f"migrate to {step.target_pool}" if step.action == "migrate" else "delete"
                lines.append(f"profile {profile} step {step.name} ({what}): {files} files, {size} bytes "
                             f"in {len(paths)} spaces")
    return lines
