"""The demo's whole consortium on one machine: public partners, preparation, baselines, a secure run, reports.

What `fedchem demo` (and `make demo`) runs. Finished steps found in the output folder are reused, so an interrupted
demo picks up where it stopped.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedchem.opener.output_guard import check_output_folder

DEMO_SETTINGS = {
    "name": "demo-moleculeace",
    "fingerprint": {"kind": "folded", "radius": 2, "size": 16384, "scramble": True},
    "model": {"hidden_sizes": [512], "dropout": 0.2, "input_transform": "binarize"},
    "training": {"epochs": 12, "epochs_per_round": 1.0, "batch_size": 128, "learning_rate": 0.001,
                 "early_stopping_patience": 4, "validation_fold": 0, "test_fold": 1, "seed": 0},
    "federation": {"rounds": 12, "evaluate_every": 1, "aggregator": "aggregator",
                   "secure_aggregation": {"enabled": True, "ring_bits": 64, "clip": 1.0}},
}


def is_demo_output(folder: Path) -> bool:
    """True if `folder` holds a previous demo (its raw/consortium.yaml is the demo's consortium)."""
    try:
        doc = yaml.safe_load((Path(folder) / "raw" / "consortium.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and doc.get("name") == DEMO_SETTINGS["name"]


@dataclass
class DemoResult:
    """Where the demo put each partner's private results."""

    out: Path
    run_dir: Path
    partners: list[str]
    reports: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    failed: dict = field(default_factory=dict)  # partner -> FedchemError, for the reports that could not be written


def _quiet_step(title: str) -> float:
    return time.perf_counter()


def run_demo(out: Path, max_per_target: int = 300, rounds: int | None = None, fresh: bool = False,
             step=_quiet_step, say=lambda s: None) -> DemoResult:
    """Run the five demo steps into `out`; `step(title)` announces a step and returns its start time."""
    from fedchem.opener.dataset import load_prepared
    from fedchem.orchestrator.config import load_all
    from fedchem.orchestrator.demo.consortium import prepare_consortium
    from fedchem.orchestrator.demo.public_data import build_moleculeace
    from fedchem.orchestrator.ledger import Ledger
    from fedchem.orchestrator.run.driver import run_federation

    out = Path(out).resolve()
    # --out: new, empty or a previous demo; never the current folder or a parent, so --fresh removes only a demo
    check_output_folder(out, command="fedchem demo", is_previous=is_demo_output, force_flag=None, flag="--out")
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = dict(DEMO_SETTINGS)
    if rounds:
        settings["federation"] = {**settings["federation"], "rounds": rounds}

    t = step("1/5 partners from MoleculeACE (PyPI wheel, sha256-pinned)")
    raw = out / "raw"
    if not (raw / "consortium.yaml").is_file():
        build_moleculeace(raw, n_partners=3, max_per_target=max_per_target)
        cpath = raw / "consortium.yaml"
        data = yaml.safe_load(cpath.read_text())
        data.update(settings)
        cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        say(f"   reusing {raw}")
    cpath = raw / "consortium.yaml"
    say(f"   done in {time.perf_counter() - t:.1f} s")

    t = step("2/5 preparing each partner's data (on its own node)")
    prepare_consortium(cpath, reuse=True, echo=say)
    consortium, partners = load_all(cpath)
    say(f"   done in {time.perf_counter() - t:.1f} s")

    t = step("3/5 each partner alone (the baseline)")
    from fedchem.algo.evaluation import headline
    from fedchem.algo.train_local import train_local

    for name, p in partners.items():
        dest = out / "alone" / name
        if (dest / "metrics.json").is_file():
            say(f"   {name}: reusing {dest}")
            continue
        res = train_local(load_prepared(p.prepared_dir), dest, consortium.model, consortium.training,
                          where=name, overwrite=True)
        metric, value, _ = headline(res.test)
        say(f"   {name}: best epoch {res.best_epoch} of {res.epochs_run}, test {metric} {value:.3f} "
              f"({res.seconds:.0f} s)")
    say(f"   done in {time.perf_counter() - t:.1f} s")

    t = step("4/5 federated training with secure aggregation (Substra, subprocess backend)")
    run_dir = out / "run"
    if (run_dir / "ledger.json").is_file():
        ledger = Ledger.load(run_dir)
        if ledger.status != "completed":
            run_federation(consortium, partners, run_dir, resume=True, consortium_path=cpath)
        else:
            say(f"   reusing {run_dir}")
    else:
        run_federation(consortium, partners, run_dir, consortium_path=cpath)
    say(f"   done in {time.perf_counter() - t:.1f} s")

    t = step("5/5 each partner's report")
    from fedchem.orchestrator.report.write import ReportJob, write_reports

    jobs = [ReportJob(name, alone_dir=out / "alone" / name, out_dir=out / "reports" / name,
                      prepared_dir=p.prepared_dir) for name, p in partners.items()]
    reports, failed = write_reports(run_dir, jobs)  # one partner's failure never stops the others
    for name in failed:
        say(f"   {name}: report FAILED (the error is below)")
    say(f"   done in {time.perf_counter() - t:.1f} s")

    return DemoResult(out, run_dir, list(partners), reports, time.perf_counter() - started, failed)
