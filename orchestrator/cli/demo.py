"""`fedchem demo`: the main job end to end on real public data (what `make demo` runs).

Builds 3 partners from MoleculeACE (30 ChEMBL targets, PyPI), prepares each on "its node", trains each alone (the
baseline), trains them federated with secure aggregation on Substra's subprocess backend, writes each partner's
report, and prints where everything is. Steps already done in the output folder are reused, so an interrupted
demo picks up where it stopped (--fresh starts over).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


HELP = """\
Run the main job end to end on real public data, on this machine:
  1. build 3 partners from MoleculeACE 3.0.0 (30 ChEMBL Ki/EC50 targets, dealt to partners by target)
  2. prepare each partner's data (standardise, ECFP, scaffold folds keyed by the consortium secret)
  3. train each partner alone (the baseline every federated result is compared with)
  4. train federated on Substra (subprocess backend): key setup, rounds, secure aggregation, private heads
  5. write each partner's report: did joining help, by how much, on which tasks
Everything lands under --out; finished steps are reused when the demo is run again. --out must be a new or empty
folder or a previous demo's (its raw/consortium.yaml names the demo consortium); never the current folder or one
of its parents, so --fresh never deletes anything but a demo.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job end to end on real public data (what `make demo` runs)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--max-per-target", type=int, default=300,
                   help="compounds kept per MoleculeACE target, to bound the demo's time (default: 300)")
    p.add_argument("--rounds", type=int, default=None, help="federated rounds (default: 12)")
    p.add_argument("--fresh", action="store_true",
                   help="delete the output folder first (only a previous demo's folder: see below)")
    p.set_defaults(func=_demo)


def _step(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _demo(args) -> int:
    from fedchem.orchestrator.demo.pipeline import run_demo

    result = run_demo(args.out, max_per_target=args.max_per_target, rounds=args.rounds, fresh=args.fresh,
                      step=_step, say=print)
    from fedchem.orchestrator.report.write import reports_failed

    print(f"\ndemo finished in {result.seconds:.0f} s. Each partner's private results:")
    for name in result.partners:
        print(f"  {name}:")
        print(f"    report       {result.reports.get(name, 'not written (the error is below)')}")
        print(f"    federated    {result.run_dir / 'partners' / name}")
        print(f"    alone        {result.out / 'alone' / name}")
    print(f"  run status: fedchem status {result.run_dir}", flush=True)
    if result.failed:
        raise reports_failed(result.failed, len(result.partners),
                             again="the same demo command (finished steps are reused: only the reports are written "
                                   "again)")
    return 0
