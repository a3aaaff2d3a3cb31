"""`fedchem report`: one partner's answer to "did joining the consortium make my models better?"."""

from __future__ import annotations

import argparse
from pathlib import Path

from fedchem.opener.errors import ConfigError

HELP = """\
Write one partner's report of a federated run: for every task, the federated model against the same partner
training alone, on the same held-out test compounds; how many tasks federation helped, hurt or left unchanged
beyond noise (95% bootstrap interval over test compounds); the median change in AUC-PR / AUC-ROC
(classification) and R² / RMSE (regression); the changes by task kind and assay type, auxiliary tasks apart; the
changes by how similar each test compound is to the partner's own training compounds (nearest-neighbour
Tanimoto); validation curves over the rounds; and the run's public facts.

It reads only this partner's own files (RUN_DIR/partners/NAME, its alone baseline, its prepared dataset) and the
run's public ledger and settings, and recomputes every figure from the saved test predictions. Nothing in it
names another partner's tasks or compounds.

output (--out DIR, default RUN_DIR/partners/NAME/report), the folder written atomically (an existing DIR is
replaced only if it holds a previous report, or with --force):
  report.html   self-contained page (inline plots, sortable tables; opens offline)
  report.json   every figure of the page
  tasks.csv     per task and metric: alone, federated, delta, 95% CI, relative delta, improvement to perfect
  summary.csv   per kind: median delta with its interval, helped / hurt / no-difference counts
  domain.csv    per similarity bin: median delta with its interval
  curves.csv    validation figures per round, with the alone reference

examples:
  fedchem report runs/first --partner partner-1 --alone alone/partner-1
  fedchem report demo-output/run --partner partner-2        # finds demo-output/alone/partner-2
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one partner's report: did joining help, by how much, on which tasks",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder `fedchem run` wrote")
    p.add_argument("--partner", required=True, metavar="NAME", help="whose report (a partner of the run)")
    p.add_argument("--alone", type=Path, metavar="DIR",
                   help="that partner's `fedchem train-local` output, the baseline (default: RUN_DIR/partners/NAME/"
                        "alone, else RUN_DIR/../alone/NAME, else PREPARED_DIR-alone)")
    p.add_argument("--prepared", type=Path, metavar="DIR",
                   help="that partner's prepared dataset (default: from the consortium config of the run)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: RUN_DIR/partners/NAME/report)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out folder that is not a previous report (never one holding the "
                        "run, the baseline, the prepared data or the configs)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples of the test compounds for the intervals (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default: 0)")
    p.set_defaults(func=_report)


def _report(args) -> int:
    from fedchem.orchestrator.report.write import ReportJob, write_reports
    from fedchem.orchestrator.report.compare import CompareSettings

    if args.bootstrap < 100:
        raise ConfigError("--bootstrap must be at least 100 for a usable 95% interval", where="--bootstrap",
                          fix="use 1000 (the default) or more")
    if not (args.run_dir / "ledger.json").is_file():
        raise ConfigError("this folder holds no fedchem run (no ledger.json)", where=str(args.run_dir),
                          fix="give the run folder that `fedchem run` created")
    job = ReportJob(args.partner, alone_dir=args.alone, out_dir=args.out, prepared_dir=args.prepared,
                    force=args.force)
    written, failed = write_reports(args.run_dir, [job], CompareSettings(replicates=args.bootstrap, seed=args.seed))
    if failed:
        raise failed[args.partner]  # its own what / where / what to do (an internal error: traceback kept in a file)
    path = written[args.partner]
    print(f"report for partner '{args.partner}': {path}")
    print(f"  figures as JSON and CSV beside it ({path.parent}); private to this partner")
    return 0
