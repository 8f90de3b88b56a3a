"""Helpers for the storage driver tests (import as tests.storage.helpers)."""
from __future__ import annotations

import os
from types import SimpleNamespace

POOLS = ("sas1", "sata1")


def make_settings(driver: str, mountpoint: str, **gpfs) -> SimpleNamespace:
    return SimpleNamespace(
        driver=driver,
        template_store=os.path.join(mountpoint, ".templates"),
        filesystems=[SimpleNamespace(name="mmfs1", mountpoint=mountpoint, pools=list(POOLS))],
        gpfs=SimpleNamespace(command_prefix=gpfs.get("command_prefix", "/usr/lpp/mmfs/bin"),
                             timeout=gpfs.get("timeout", 300), sudo=gpfs.get("sudo", False)),
    )


def write(path: str, data: bytes | str = b"x") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
