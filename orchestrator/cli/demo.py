"""`fedchem demo`: the main job end to end on real public data (what `make demo` runs).

Builds 3 partners from a public set (by default Tox21 dealt by compound: the same assays at every partner, where
joining should pay; --split picks another), prepares each on "its node", trains each alone (the baseline), trains them federated with secure aggregation on Substra's subprocess backend, writes each partner's
report, and prints where everything is and each partner's answer: did joining pay, measurably? Steps already done in the output folder are reused, so an interrupted
demo picks up where it stopped (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fedchem.orchestrator.demo.pipeline import DEFAULT_SPLIT, SPLITS


HELP = """\
Run the main job end to end on real public data, on this machine:
  1. build 3 partners from a public set (--split; default tox21-compounds: Tox21's 12 toxicity assays at every
     partner, compounds dealt by hash, as companies share safety panels: where joining should pay;
     moleculeace-targets: 30 ChEMBL Ki/EC50 targets dealt by target, where little transfers)
  2. prepare each partner's data (standardise, ECFP, scaffold folds keyed by the consortium secret)
  3. train each partner alone (the baseline every federated result is compared with)
  4. train federated on Substra (subprocess backend): key setup, rounds, secure aggregation, private heads
  5. write each partner's report: did joining help, by how much, on which tasks; the demo prints each answer
Everything lands under --out; finished steps are reused when the demo is run again. --out must be a new or empty
folder or a previous demo's (its raw/consortium.yaml names the demo consortium); never the current folder or one
of its parents, so --fresh never deletes anything but a demo.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job end to end on real public data (what `make demo` runs)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--split", choices=sorted(SPLITS), default=DEFAULT_SPLIT, metavar="SPLIT",
                   help=f"which public set and how it is dealt to the partners: {', '.join(SPLITS)} "
                        f"(default: {DEFAULT_SPLIT})")
    p.add_argument("--max-per-target", type=int, default=300,
                   help="compounds kept per MoleculeACE target, to bound the demo's time (moleculeace splits; default: "
                        "300)")
    p.add_argument("--rounds", type=int, default=None, help="federated rounds (default: 12)")
    p.add_argument("--grid", action="store_true",
                   help="equal budgets: run steps 3 and 4 at each of 4 settings (learning rate 0.001/0.003 x dropout "
                        "0.2/0.5); each partner's report compares the setting each side chose on that partner's "
                        "validation fold (about 4x the time)")
    p.add_argument("--fresh", action="store_true",
                   help="delete the output folder first (only a previous demo's folder: see below)")
    p.set_defaults(func=_demo)


def _step(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def answer_lines(report_json: Path) -> list[str]:
    """The report's verdict and, per kind of task, its median change with the interval (read from report.json)."""
    try:
        sentences = json.loads(report_json.read_text(encoding="utf-8"))["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"(no answer: {report_json} cannot be read)"]
    return [sentences[0], *(s for s in sentences if s.startswith("Median change"))]


def _demo(args) -> int:
    from fedchem.orchestrator.demo.pipeline import run_demo

    result = run_demo(args.out, max_per_target=args.max_per_target, rounds=args.rounds, fresh=args.fresh,
                      step=_step, say=print, split=args.split, grid=args.grid)
    from fedchem.orchestrator.report.write import reports_failed

    print(f"\ndemo finished in {result.seconds:.0f} s. Each partner's private results:")
    for name in result.partners:
        print(f"  {name}:")
        print(f"    report       {result.reports.get(name, 'not written (the error is below)')}")
        fed, alone = result.folders.get(name, (result.run_dir / "partners" / name, result.out / "alone" / name))
        print(f"    federated    {fed}")
        print(f"    alone        {alone}")
    for run in sorted({f.parent.parent for f, _ in result.folders.values()} or {result.run_dir}):
        print(f"  run status: fedchem status {run}")
    print(f"\nDid joining pay? ({result.split}; each partner's own test fold, 95% bootstrap intervals)")
    for name, html in result.reports.items():
        for line in answer_lines(html.parent / "report.json"):
            print(f"  {name}: {line}")
    print(flush=True)
    if result.failed:
        raise reports_failed(result.failed, len(result.partners),
                             again="the same demo command (finished steps are reused: only the reports are written "
                                   "again)")
    return 0
