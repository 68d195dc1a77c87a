"""A node keeps one `node_id` for life, stored in its home folder, so a restart is the same
node to the scheduler (and to sessions paired with it), and one secret credential that proves
to the scheduler that it is that node (docs/node.md, "Identity")."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path


def node_id(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "node_id"
    if path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    value = f"node-{uuid.uuid4().hex[:12]}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(path)
    return value


CREDENTIAL_FILE = "node_credential"


def credential(home: Path) -> str:
    """The node's secret credential, created on first run (32 random bytes) and kept in
    `home/node_credential`, readable by its owner only (mode 0600).

    The scheduler binds the node id to it on the first registration and asks for it on every
    later one: whoever has the file is this node. Copy it with the `node_id` file when moving
    a node to another machine; delete both to start as a new node.
    """
    path = home / CREDENTIAL_FILE
    if path.is_file():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a copy may have widened it: the secret is for the owner only
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(32)
    store_credential(home, value)
    return value


def store_credential(home: Path, value: str) -> None:
    """Write the credential atomically, created with mode 0600 (never world-readable, even
    for an instant)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / CREDENTIAL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    tmp.replace(path)
