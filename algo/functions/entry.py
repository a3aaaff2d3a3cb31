"""How a task script runs its function, the one definition both paths share: a cold script (the function archive's
function.py, orchestrator.run.archive.SCRIPT) and a warm child (algo.functions.warmstart)."""

from __future__ import annotations

import os
import sys

TASK_ARGS = ["--log-level", "warning"]  # the task's own log is a private output


def run_task(argv: list[str]) -> None:
    """substratools' CLI on the script's arguments (the function's module is imported: it registered itself), then
    exit. execute() returned, so every output is written, closed and checked: the interpreter's teardown, ~1.5 s
    after torch was imported (measured), is skipped on every task of every round."""
    import substratools as tools

    from fedchem.opener.fileio import durable_writes

    durable_writes(False)  # outputs are files Substra takes over when the task ends (fileio.durable_writes)
    tools.execute(list(argv[1:]) + TASK_ARGS)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
