"""Wall time of one federated round on Substra's subprocess backend, secure vs plain, for 3 and 10 partners.

For each N, one consortium is built from MoleculeACE (real data) with the demo's model and training settings, and
two runs of R rounds are made in this process: secure aggregation on, then off (the test-only switch). The last
round of each is reported (the first round also pays for Python's first imports), split into:
  train tasks    wall time of the partners' train tasks (submitted one after another in local mode)
    of which     in-task load / validation / local training / masking (from each partner's private round log)
    substra+proc the rest: Substra's bookkeeping and each task's Python start and imports
  release        the survivors' confirmation and share-release tasks (secure only)
  aggregate      the aggregator's task (process start included)
  download       checkpoints and trunk copied to the run folder
and the ratio (secure round time) / (plain round time). Goal on the demo configuration: <= 1.05.

    python bench/round.py [--partners 3 10] [--rounds 2] [--max-per-target 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import yaml  # noqa: E402

from fedchem.orchestrator.demo.pipeline import DEMO_SETTINGS  # noqa: E402
from fedchem.orchestrator.demo.consortium import prepare_consortium  # noqa: E402
from fedchem.algo.guard.rules import PLAIN_OPT_IN  # noqa: E402
from fedchem.orchestrator.agreement import node_dir_of  # noqa: E402
from fedchem.orchestrator.config import load_all  # noqa: E402
from fedchem.orchestrator.run.driver import run_federation  # noqa: E402
from fedchem.orchestrator.run.pull import partner_dir  # noqa: E402
from fedchem.orchestrator.ledger import Ledger  # noqa: E402
from fedchem.orchestrator.demo.public_data import build_moleculeace  # noqa: E402


def build(root: Path, n: int, max_per_target: int) -> Path:
    raw = root / f"raw-{n}"
    build_moleculeace(raw, n_partners=n, max_per_target=max_per_target)
    cpath = raw / "consortium.yaml"
    data = yaml.safe_load(cpath.read_text())
    data.update(DEMO_SETTINGS)
    cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    prepare_consortium(cpath)
    return cpath


def round_breakdown(run_dir: Path, r: int) -> dict:
    ledger = Ledger.load(run_dir)
    rec = next(x for x in ledger.rounds if x.round == r)
    inside = {"load": 0.0, "validate": 0.0, "train": 0.0, "mask": 0.0, "total": 0.0}
    for name in rec.survivors:
        log = json.loads((partner_dir(run_dir, name) / "logs" / f"round_{r:03d}.json").read_text())
        for k in inside:
            inside[k] += log["seconds"].get(k, 0.0)
    s = rec.seconds
    return {
        "round_total": sum(s.values()),
        "train_tasks": s["train"], "in_load": inside["load"], "in_validate": inside["validate"],
        "in_local_training": inside["train"], "in_masking": inside["mask"],
        "substra_and_process": s["train"] - inside["total"],
        "release": s.get("release", 0.0), "aggregate": s["aggregate"], "download": s.get("download", 0.0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partners", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-per-target", type=int, default=300)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fedchem-bench-round-") as tmp:
        tmp = Path(tmp)
        for n in args.partners:
            t = time.perf_counter()
            cpath = build(tmp, n, args.max_per_target)
            print(f"[{n} partners] data built and prepared in {time.perf_counter() - t:.0f} s", flush=True)
            consortium, partners = load_all(cpath)
            figures = {}
            for mode, secure in (("secure", True), ("plain", False)):
                if not secure:  # the test-only plain mode: each (throw-away) partner opts in on its own node
                    for p in partners.values():
                        (node_dir_of(p) / PLAIN_OPT_IN).write_text("bench only\n")
                run_dir = tmp / f"run-{n}-{mode}"
                t = time.perf_counter()
                run_federation(consortium, partners, run_dir, rounds=args.rounds, secure=secure,
                               console=lambda s: None)
                figures[mode] = round_breakdown(run_dir, args.rounds)
                print(f"[{n} partners] {mode} run of {args.rounds} rounds: {time.perf_counter() - t:.0f} s", flush=True)
            rows.append((n, figures))
    print()
    print(f"one round (round {args.rounds} of {args.rounds}), seconds; model {DEMO_SETTINGS['model']['hidden_sizes']} "
          f"hidden on {DEMO_SETTINGS['fingerprint']['size']} features, {DEMO_SETTINGS['training']['epochs_per_round']} "
          f"local epoch per round; subprocess backend, tasks run one after another")
    keys = ["round_total", "train_tasks", "in_load", "in_validate", "in_local_training", "in_masking",
            "substra_and_process", "release", "aggregate", "download"]
    print(f"{'partners':>8} {'mode':>6} " + " ".join(f"{k:>19}" for k in keys))
    for n, fig in rows:
        for mode in ("secure", "plain"):
            print(f"{n:>8} {mode:>6} " + " ".join(f"{fig[mode][k]:>19.2f}" for k in keys))
        ratio = fig["secure"]["round_total"] / fig["plain"]["round_total"]
        print(f"{n:>8} ratio secure/plain round time: {ratio:.3f} (goal <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
