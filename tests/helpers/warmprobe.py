"""A Substra function for the warm-server tests: it reports what process it ran in, then does what PROBE_ACTION says.

Registered with substratools like fedchem's own functions, and run through archive.SCRIPT, the very task script
Substra's subprocess backend runs."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import substratools as tools


@tools.register
def probe(inputs, outputs, task_properties):
    umask = os.umask(0)
    os.umask(umask)
    report = {"pid": os.getpid(), "cwd": os.getcwd(), "umask": umask, "argv": sys.argv,
              "value": os.environ.get("PROBE_VALUE"), "draw": float(np.random.random())}
    with open(os.environ["PROBE_OUT"], "w") as fh:
        json.dump(report, fh)
    print("probe says hello on stdout", flush=True)
    print("probe says hello on stderr", file=sys.stderr, flush=True)
    action = os.environ.get("PROBE_ACTION", "ok")
    if action == "fail":
        raise ValueError("probe failed on purpose")
    if action == "exit3":
        sys.exit(3)
    if action == "sleep":
        time.sleep(120)
