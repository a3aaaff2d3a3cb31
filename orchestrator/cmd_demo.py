"""`fedchem demo`: the main job end to end on real public data (what `make demo` runs).

Builds 3 partners from MoleculeACE (30 ChEMBL targets, PyPI), prepares each on "its node", trains each alone (the
baseline), trains them federated with secure aggregation on Substra's subprocess backend, writes each partner's
report, and prints where everything is. Steps already done in the output folder are reused, so an interrupted
demo picks up where it stopped (--fresh starts over).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import yaml

DEMO_SETTINGS = {
    "name": "demo-moleculeace",
    "fingerprint": {"kind": "folded", "radius": 2, "size": 16384, "scramble": True},
    "model": {"hidden_sizes": [512], "dropout": 0.2, "input_transform": "binarize"},
    "training": {"epochs": 12, "epochs_per_round": 1.0, "batch_size": 128, "learning_rate": 0.001,
                 "early_stopping_patience": 4, "validation_fold": 0, "test_fold": 1, "seed": 0},
    "federation": {"rounds": 12, "evaluate_every": 1, "aggregator": "aggregator",
                   "secure_aggregation": {"enabled": True, "ring_bits": 64, "clip": 1.0}},
}

HELP = """\
Run the main job end to end on real public data, on this machine:
  1. build 3 partners from MoleculeACE 3.0.0 (30 ChEMBL Ki/EC50 targets, dealt to partners by target)
  2. prepare each partner's data (standardise, ECFP, scaffold folds keyed by the consortium secret)
  3. train each partner alone (the baseline every federated result is compared with)
  4. train federated on Substra (subprocess backend): key setup, rounds, secure aggregation, private heads
  5. write each partner's report: did joining help, by how much, on which tasks
Everything lands under --out; finished steps are reused when the demo is run again.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job end to end on real public data (what `make demo` runs)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--max-per-target", type=int, default=300,
                   help="compounds kept per MoleculeACE target, to bound the demo's time (default: 300)")
    p.add_argument("--rounds", type=int, default=None, help="federated rounds (default: 12)")
    p.add_argument("--fresh", action="store_true", help="delete the output folder first")
    p.set_defaults(func=_demo)


def _step(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _demo(args) -> int:
    from fedchem.opener.dataset import load_prepared
    from fedchem.orchestrator.cmd_prepare import prepare_consortium
    from fedchem.orchestrator.config import load_all
    from fedchem.orchestrator.run.driver import run_federation
    from fedchem.orchestrator.ledger import Ledger
    from fedchem.orchestrator.public_data import build_moleculeace

    out: Path = args.out.resolve()
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = dict(DEMO_SETTINGS)
    if args.rounds:
        settings["federation"] = {**settings["federation"], "rounds": args.rounds}

    t = _step("1/5 partners from MoleculeACE (PyPI wheel, sha256-pinned)")
    raw = out / "raw"
    if not (raw / "consortium.yaml").is_file():
        build_moleculeace(raw, n_partners=3, max_per_target=args.max_per_target)
        cpath = raw / "consortium.yaml"
        data = yaml.safe_load(cpath.read_text())
        data.update(settings)
        cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        print("   reusing", raw)
    cpath = raw / "consortium.yaml"
    print(f"   done in {time.perf_counter() - t:.1f} s")

    t = _step("2/5 preparing each partner's data (on its own node)")
    prepare_consortium(cpath, reuse=True, echo=print)
    consortium, partners = load_all(cpath)
    print(f"   done in {time.perf_counter() - t:.1f} s")

    t = _step("3/5 each partner alone (the baseline)")
    from fedchem.algo.evaluation import headline
    from fedchem.algo.train_local import train_local

    for name, p in partners.items():
        dest = out / "alone" / name
        if (dest / "metrics.json").is_file():
            print(f"   {name}: reusing {dest}")
            continue
        res = train_local(load_prepared(p.prepared_dir), dest, consortium.model, consortium.training,
                          where=name, overwrite=True)
        metric, value, _ = headline(res.test)
        print(f"   {name}: best epoch {res.best_epoch} of {res.epochs_run}, test {metric} {value:.3f} "
              f"({res.seconds:.0f} s)")
    print(f"   done in {time.perf_counter() - t:.1f} s")

    t = _step("4/5 federated training with secure aggregation (Substra, subprocess backend)")
    run_dir = out / "run"
    if (run_dir / "ledger.json").is_file():
        ledger = Ledger.load(run_dir)
        if ledger.status != "completed":
            run_federation(consortium, partners, run_dir, resume=True, consortium_path=cpath)
        else:
            print("   reusing", run_dir)
    else:
        run_federation(consortium, partners, run_dir, consortium_path=cpath)
    print(f"   done in {time.perf_counter() - t:.1f} s")

    t = _step("5/5 each partner's report")
    reports = {}
    try:
        from fedchem.orchestrator.report.write import write_report
    except ModuleNotFoundError:
        write_report = None
    if write_report is not None:
        for name in partners:
            reports[name] = write_report(run_dir, name, alone_dir=out / "alone" / name,
                                         out_dir=out / "reports" / name)
    print(f"   done in {time.perf_counter() - t:.1f} s")

    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s. Each partner's private results:")
    for name in partners:
        print(f"  {name}:")
        if name in reports:
            print(f"    report       {reports[name]}")
        print(f"    federated    {run_dir / 'partners' / name}")
        print(f"    alone        {out / 'alone' / name}")
    print(f"  run status: fedchem status {run_dir}")
    return 0
