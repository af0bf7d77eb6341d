"""Process trees of a test server: its Spark JVM, the Python daemon and workers are all
descendants."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """``pid`` first, then all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop(0)
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it at once, as a power cut or the OOM killer
    would."""
    for member in process_tree(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass
