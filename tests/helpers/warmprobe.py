"""A Substra function for the warm-server tests: it reports what process it ran in, then does what PROBE_ACTION says.

Registered with substratools like fedchem's own functions, and run through archive.task_script, the very task script
Substra's subprocess backend runs."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import substratools as tools

from fedchem.algo.guard.signing import new_signing_key
from fedchem.algo.secagg.keys import new_private_key, new_seed

if os.environ.get("PROBE_DRAW_AT_IMPORT"):  # a server that already drew from OpenSSL's generator before forking
    new_private_key()
    new_signing_key()


@tools.register
def probe(inputs, outputs, task_properties):
    umask = os.umask(0)
    os.umask(umask)
    report = {"pid": os.getpid(), "cwd": os.getcwd(), "umask": umask, "argv": sys.argv,
              "value": os.environ.get("PROBE_VALUE"), "draw": float(np.random.random()),
              "x25519": new_private_key().hex(), "ed25519": new_signing_key()[1].hex(), "seed": new_seed().hex()}
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
