"""The files the service keeps for shares: one per share, named after the exposer's id
(`pixmanaged.<id>.<suffix>`), in a folder of their own; for servers that read one file, merged
into it. Files not named so are never read, written nor removed: hand-made shares stay.

Each file starts with a line holding the share's definition as JSON, from which
`pixstor-mgmt populate` records the share again in an empty database.
"""
import json
import os
import re
import tempfile

PREFIX = "pixmanaged."
MARK = "# pixmanaged exposer "
_ID = re.compile(r"[0-9a-f-]{36}")


class ManagedFolder:
    def __init__(self, folder, suffix, merged=None):
        self.folder, self.suffix, self.merged = folder, suffix, merged

    def path(self, item_id):
        if not _ID.fullmatch(item_id):      # ids are ours (uuids); never a path of a client's
            raise ValueError(f"not an exposer id: {item_id!r}")
        return os.path.join(self.folder, f"{PREFIX}{item_id}.{self.suffix}")

    def read(self, item_id):
        try:
            with open(self.path(item_id), encoding="utf-8") as file:
                return file.read()
        except FileNotFoundError:
            return None

    def write(self, item_id, text):
        """Put `text` in the item's file atomically; None removes the file."""
        path = self.path(item_id)
        if text is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        else:
            os.makedirs(self.folder, mode=0o755, exist_ok=True)
            replace_file(path, text)

    def names(self):
        """The managed files of the folder, in a stable order."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.startswith(PREFIX) and n.endswith("." + self.suffix)
                      and _ID.fullmatch(n[len(PREFIX):-len(self.suffix) - 1]))

    def definitions(self):
        """{id: definition} of the managed files, read back from their first lines."""
        found = {}
        for name in self.names():
            with open(os.path.join(self.folder, name), encoding="utf-8") as file:
                first = file.readline()
            if first.startswith(MARK):
                found[name[len(PREFIX):-len(self.suffix) - 1]] = json.loads(first[len(MARK):])
        return found

    def merge(self, check=None):
        """Write the merged file from the managed files; `check(candidate path)` may refuse
        the candidate (raising) before it replaces the merged file."""
        parts = []
        for name in self.names():
            with open(os.path.join(self.folder, name), encoding="utf-8") as file:
                parts.append(file.read())
        replace_file(self.merged, "".join(parts), check)


def header(definition):
    return MARK + json.dumps(definition, sort_keys=True, separators=(",", ":")) + "\n"


def replace_file(path, text, check=None):
    """Write `path` whole or not at all: a temporary file beside it, checked, then renamed."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".pixmanaged-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
