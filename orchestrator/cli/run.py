"""`fedchem run` (start or resume a federated run) and `fedchem status` (where a run stands)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fedchem.opener.errors import ConfigError

RUN_HELP = """\
Train the consortium's model federated: a key setup, then R rounds in which every partner trains the shared
trunk and its own private head on its own data and uploads only a masked trunk update; the aggregator sums the
masked updates (the masks cancel) into the next trunk. Each round is checked against the privacy rules before it
is submitted to Substra. A partner that fails mid-round is dropped and the round completes with the survivors;
below the secure-aggregation threshold the run stops cleanly and can be resumed.

The run folder gets a ledger (ledger.json, `fedchem status`), the public settings, and one private folder per
partner (partners/<name>/, 0700: its checkpoint head, per-round logs, final metrics and test predictions, 0600).
Local mode pulls each partner's results through that partner's own client; remote mode holds only the aggregator's
token, and each partner pulls its own results on its own machine (`fedchem pull`). Substra's work folder
(substra-work/, with every partner's secret-key bundle) is removed when the run ends, however it ends.

examples:
  fedchem run consortium.yaml --run-dir runs/first
  fedchem run consortium.yaml --rounds 3
  fedchem run --resume runs/first          # after an interruption (Ctrl-C, a kill, a stopped round)

Every setting is checked before anything is submitted (rounds >= 1, a secure-aggregation threshold between 2 and
the number of partners, one prepared folder per partner, names that are safe folder names). A new run needs a new
or empty --run-dir. A run that stops cleanly (too few partners left for the threshold, a failed aggregation) exits
with code 3 and can be resumed.

Local mode runs every task as Substra does, a Python process per task, but each one hands its work to a child
forked from a warm server that has already imported the task code (torch among it): the same results, ~1.5 s less
per train task. FEDCHEM_WARM=0 starts every task in an interpreter of its own.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or resume) federated training with secure aggregation",
                       description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("consortium", nargs="?", type=Path, help="the consortium YAML (not needed with --resume)")
    p.add_argument("--run-dir", type=Path, help="folder for this run (default: runs/<consortium>-<time>)")
    p.add_argument("--rounds", type=int, help="number of rounds (default: the consortium's federation.rounds)")
    p.add_argument("--backend", choices=["subprocess", "remote"], default=None,
                   help="subprocess: every organisation on this machine (default); remote: real Substra nodes, "
                        "URLs and tokens from the partner configs")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its last completed round")
    p.set_defaults(func=_run)

    s = sub.add_parser("status", help="show where a run stands (rounds, dropouts, timings)",
                       description="Read a run folder's ledger and show its progress. Reads no private file. A "
                                   "Substra work folder a killed run left behind (it holds secret-key bundles) is "
                                   "removed. With differential privacy (federation.differential_privacy), it shows "
                                   "each partner's epsilon at the consortium's delta so far.")
    s.add_argument("run_dir", type=Path)
    s.add_argument("--json", action="store_true", help="print the ledger as JSON")
    s.set_defaults(func=_status)


def _run(args) -> int:
    from fedchem.orchestrator.config import load_all, require_federation
    from fedchem.orchestrator.run.driver import run_federation
    from fedchem.orchestrator.run.setup import check_run_dir, check_run_parameters
    from fedchem.orchestrator.ledger import Ledger

    resume = args.resume is not None
    if resume:
        ledger = Ledger.load(args.resume)
        cpath = args.consortium or (Path(ledger.consortium_path) if ledger.consortium_path else None)
        if cpath is None:
            raise ConfigError("the run does not record its consortium config", where=str(args.resume),
                              fix="give it: fedchem run CONSORTIUM.yaml --resume RUN_DIR")
        run_dir = args.resume
    else:
        if args.consortium is None:
            raise ConfigError("no consortium config given", fix="fedchem run CONSORTIUM.yaml (see --help)")
        cpath = args.consortium
    consortium, partners = load_all(cpath)
    require_federation(consortium, str(cpath))  # before anything is created or contacted
    secure = True  # secure aggregation is always on: no flag or config key switches it off
    if resume:
        if args.run_dir is not None and Path(args.run_dir).resolve() != Path(args.resume).resolve():
            raise ConfigError("--run-dir and --resume name different folders", where="--run-dir",
                              fix="give only --resume RUN_DIR")
    else:
        check_run_parameters(consortium, args.rounds, secure, str(cpath))
        run_dir = args.run_dir or Path("runs") / f"{consortium.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        check_run_dir(Path(run_dir))
    backend = args.backend or consortium.backend
    network = None
    if backend == "remote":  # the operator holds the aggregator's token only; partners pull their own results
        from fedchem.orchestrator.run.backend import network_from_clients
        from fedchem.orchestrator.run.remote import operator_client, partner_orgs

        agg = consortium.federation.aggregator
        network = network_from_clients({agg: operator_client(consortium)}, agg, partner_orgs(consortium, partners))
    run_federation(consortium, partners, run_dir, rounds=args.rounds, resume=resume,
                   network=network, consortium_path=cpath)
    print(f"run folder: {Path(run_dir).resolve()}")
    return 0


def _dp_line(run_dir, ledger) -> str | None:
    """The DP budget line, from the run's public settings (none when the run has no DP or no settings file)."""
    from fedchem.orchestrator.budget import summary_line

    path = Path(run_dir) / "settings.json"
    return summary_line(json.loads(path.read_text()), ledger) if path.is_file() else None


def _status(args) -> int:
    from dataclasses import asdict

    from fedchem.orchestrator.ledger import Ledger
    from fedchem.orchestrator.run.workdir import clean_stale

    ledger = Ledger.load(args.run_dir)
    cleaned = clean_stale(args.run_dir)  # "busy": a live run holds the folder
    if args.json:
        print(json.dumps(asdict(ledger), indent=2))
        return 0
    live = ledger.status == "running" and cleaned != "busy"
    print(f"run {ledger.run_name}: {ledger.status}" + (" (no process is running it: it was killed)" if live else ""))
    if cleaned == "removed":
        print("  removed the Substra work folder the killed run left behind (it held secret-key bundles)")
    print(f"  rounds: {ledger.completed_rounds}/{ledger.rounds_planned} completed; secure aggregation "
          f"{'on' if ledger.secure else 'OFF'}; partners: {', '.join(ledger.partners)}; aggregator: {ledger.aggregator}")
    budget = _dp_line(args.run_dir, ledger)
    if budget:
        print("  " + budget)
    if ledger.dropped:
        print("  dropped out: " + ", ".join(f"{p} (round {r})" for p, r in sorted(ledger.dropped.items())))
    for rec in ledger.rounds[-10:]:
        secs = ", ".join(f"{k} {v:.1f}s" for k, v in rec.seconds.items())
        print(f"  round {rec.round}: {len(rec.survivors)} submitted" +
              (f", dropped {', '.join(rec.dropped)}" if rec.dropped else "") + f" ({secs})")
    if ledger.message:
        print(f"  note: {ledger.message}")
    if ledger.status in ("running", "stopped", "failed") and not ledger.evaluated:
        print(f"  resume with: fedchem run --resume {Path(args.run_dir)}")
    if ledger.status == "completed":
        print(f"  results: {Path(args.run_dir) / 'partners'}/<name>/ (each partner's own, private; remote mode: "
              f"each partner runs `fedchem pull {Path(args.run_dir)} --partner-config P.yaml`)")
    return 0
