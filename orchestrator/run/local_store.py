"""Local mode: Substra's subprocess backend stores a task's outputs as hard links to the files the task wrote,
instead of copies.

Why. After each task, Substra's local worker copies every output from the task's scratch folder into its store
(`local-worker/outputs/<task>/`) and then deletes the scratch folder. A train task's masked update and optimizer state
are each twice the trunk's size: on these machines, whose freed memory goes back to the host, writing a fresh copy of
them was about a quarter of a second of every train task (README, *Figures*). A hard link gives the store the very
file the task wrote, and the scratch folder's deletion then only drops the second name. Substra reads the stored
file afterwards as before (its sha256 checksum, every later task's inputs, downloads).

How. Substra 1.0's worker calls `shutil.copy(scratch, store)` for each output and nothing else of `shutil` but
`rmtree`; `link_outputs` gives that module a `shutil` whose `copy` links (or copies where no link can be made,
another file system) and whose other names are shutil's own. Substra is pinned to 1.0.0 (pyproject.toml); on any
other version, or a worker that no longer works this way, nothing is changed and Substra copies as before.
"""

from __future__ import annotations

import os
import shutil
import types

SUBSTRA_VERSION = "1.0.0"  # the version whose worker this adapts (its _save_output copies with shutil.copy)


def link_or_copy(src, dst, *, follow_symlinks: bool = True):
    """`shutil.copy`'s contract (returns dst; a folder as dst gets the file's name) with a hard link where one can
    be made. The linked file keeps the task's own mode (owner-only, as the task wrote it), as copy keeps it."""
    target = os.path.join(dst, os.path.basename(src)) if os.path.isdir(dst) else dst
    try:
        os.link(src, target, follow_symlinks=follow_symlinks)
    except OSError:  # another file system, an existing target, a file system without links: Substra's copy
        return shutil.copy(src, dst, follow_symlinks=follow_symlinks)
    return target


class _LinkingShutil(types.ModuleType):
    """shutil for Substra's worker module: `copy` links, every other name is shutil's."""

    def __init__(self) -> None:
        super().__init__("shutil")
        self.copy = link_or_copy

    def __getattr__(self, name: str):
        return getattr(shutil, name)


def _worker_module():
    """Substra's local worker module when it is the one this adapts, else None."""
    import substra
    from substra.sdk.backends.local.compute import worker

    if substra.__version__ != SUBSTRA_VERSION or not hasattr(worker.Worker, "_save_output"):
        return None
    if getattr(worker, "shutil", None) is not shutil and not isinstance(worker.shutil, _LinkingShutil):
        return None  # something else replaced it: leave it alone
    return worker


def link_outputs() -> bool:
    """Make this process's Substra local workers store outputs as hard links (idempotent). True if they do."""
    worker = _worker_module()
    if worker is None:
        return False
    if not isinstance(worker.shutil, _LinkingShutil):
        worker.shutil = _LinkingShutil()
    return True


def outputs_linked() -> bool:
    """True if this process's Substra local workers store outputs as hard links."""
    worker = _worker_module()
    return worker is not None and isinstance(worker.shutil, _LinkingShutil)
