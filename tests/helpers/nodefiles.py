"""Builders for node tests: a copy of the example network whose nodes read secrets from a temp folder, filled in."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fill_secrets(node, root: Path, length: int = 32) -> dict[str, str]:
    """Write a complete secrets folder for a node (layout: fedchem.orchestrator.node.cluster); returns path -> value."""
    d = node.deployment
    files = [f"users/{u.name}" for u in d.admin_users] + [f"incoming/{o}" for o in d.links.incoming] + \
        [f"outgoing/{o}" for o in d.links.outgoing] + ["database-password", "redis-password", "objectstore-password",
                                                        "orchestrator-database-password"]
    written = {}
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        written[rel] = secrets.token_urlsafe(length)[:length]
        path.write_text(written[rel] + "\n")
    return written


def network_copy(dest: Path, secrets_root: Path, ready_timeout_s: int | None = None) -> Path:
    """partner_configs/ copied to dest, every node's secrets_dir pointed at secrets_root/<node>; returns the
    consortium file."""
    shutil.copytree(ROOT / "partner_configs", dest)
    for node_file in dest.glob("*.yaml"):
        text = node_file.read_text()
        text = re.sub(r"secrets_dir: \S+", lambda m: f"secrets_dir: {secrets_root / node_file.stem}", text)
        if ready_timeout_s is not None and "deployment:" in text:
            text = text.replace("deployment:\n", f"deployment:\n  ready_timeout_s: {ready_timeout_s}\n", 1)
        node_file.write_text(text)
    return dest / "consortium.yaml"
