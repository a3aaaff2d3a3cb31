"""The demo's whole consortium on one machine: public partners, preparation, baselines, a secure run, reports.

What `fedchem demo` (and `make demo`) runs. Finished steps found in the output folder are reused, so an interrupted
demo picks up where it stopped. The partners come from one of `SPLITS`: by default Tox21 dealt by compound (every
partner runs the same twelve assays on other compounds, as pharma companies do with their safety panels: the case
where joining should pay); `--split moleculeace-targets` keeps the earlier demo (each partner has other targets, so
little transfers).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedchem.opener.errors import ConfigError
from fedchem.opener.output_guard import check_output_folder


@dataclass(frozen=True)
class DemoSplit:
    """One way to deal a public set to the demo's partners."""

    name: str
    source: str                                # the step's title: what is built, from where
    why: str                                   # one line: why joining should (or need not) pay on this split
    build: Callable[[Path, int], object]       # (raw folder, max compounds per MoleculeACE target) -> BuildSummary


def _tox21(raw: Path, max_per_target: int):
    from fedchem.orchestrator.demo.public_data import build_tox21
    return build_tox21(raw, n_partners=3)


def _moleculeace(split: str):
    def build(raw: Path, max_per_target: int):
            return build_moleculeace(raw, n_partners=3, split=split, max_per_target=max_per_target)
    return build


SPLITS = {s.name: s for s in (
    DemoSplit("tox21-compounds", "partners from Tox21 (12 toxicity assays), compounds dealt by hash (bundled, "
              "sha256-pinned)", "every partner runs the same assays on other compounds: the others' data are more "
              "of the same, so joining should pay", _tox21),
    DemoSplit("moleculeace-targets", "partners from MoleculeACE (30 ChEMBL targets, dealt by target; PyPI wheel, "
              "sha256-pinned)", "each partner has other targets: little transfers, so joining need not pay",
              _moleculeace("targets")),
    DemoSplit("moleculeace-compounds", "partners from MoleculeACE (30 ChEMBL targets, compounds dealt by hash; PyPI "
              "wheel, sha256-pinned)", "every partner has every target, on other compounds", _moleculeace("compounds")),
)}
DEFAULT_SPLIT = "tox21-compounds"
LEGACY_NAMES = {"demo-moleculeace": "moleculeace-targets"}  # what demos before the split choice called themselves

DEMO_SETTINGS = {
    "name": f"demo-{DEFAULT_SPLIT}",
    "fingerprint": {"kind": "folded", "radius": 2, "size": 16384, "scramble": True},
    "model": {"hidden_sizes": [512], "dropout": 0.2, "input_transform": "binarize"},
    "training": {"epochs": 12, "epochs_per_round": 1.0, "batch_size": 128, "learning_rate": 0.001,
                 "early_stopping_patience": 4, "validation_fold": 0, "test_fold": 1, "seed": 0},
    "federation": {"rounds": 12, "evaluate_every": 1, "aggregator": "aggregator",
                   "secure_aggregation": {"enabled": True, "ring_bits": 64, "clip": 1.0}},
}


def demo_split_of(folder: Path) -> str | None:
    """The split of the previous demo in `folder` (its raw/consortium.yaml names it), None when it holds none."""
    try:
        doc = yaml.safe_load((Path(folder) / "raw" / "consortium.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    name = doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(name, str):
        return None
    if name in LEGACY_NAMES:
        return LEGACY_NAMES[name]
    split = name.removeprefix("demo-")
    return split if name.startswith("demo-") and split in SPLITS else None


def is_demo_output(folder: Path) -> bool:
    """True if `folder` holds a previous demo, of any split."""
    return demo_split_of(folder) is not None


@dataclass
class DemoResult:
    """Where the demo put each partner's private results."""

    out: Path
    run_dir: Path
    partners: list[str]
    reports: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    failed: dict = field(default_factory=dict)  # partner -> FedchemError, for the reports that could not be written
    split: str = DEFAULT_SPLIT
    folders: dict = field(default_factory=dict)  # partner -> (its federated folder, its alone folder) compared


def _quiet_step(title: str) -> float:
    return time.perf_counter()


def train_alone(consortium, partners: dict, root: Path, say) -> None:
    """Train each partner alone into root/<partner> (a finished one is reused)."""
    from fedchem.algo.evaluation import headline
    from fedchem.algo.train_local import train_local
    from fedchem.opener.dataset import load_prepared

    for name, p in partners.items():
        dest = root / name
        if (dest / "metrics.json").is_file():
            say(f"   {name}: reusing {dest}")
            continue
        res = train_local(load_prepared(p.prepared_dir), dest, consortium.model, consortium.training,
                          where=name, overwrite=True)
        metric, value, _ = headline(res.test)
        say(f"   {name}: best epoch {res.best_epoch} of {res.epochs_run}, test {metric} {value:.3f} "
            f"({res.seconds:.0f} s)")


def run_federated(consortium, partners: dict, run_dir: Path, cpath: Path, say) -> None:
    """Run the consortium federated into run_dir (resumed when unfinished, reused when completed)."""
    from fedchem.orchestrator.ledger import Ledger
    from fedchem.orchestrator.run.driver import run_federation

    if (run_dir / "ledger.json").is_file():
        if Ledger.load(run_dir).status == "completed":
            say(f"   reusing {run_dir}")
            return
        run_federation(consortium, partners, run_dir, resume=True, consortium_path=cpath)
    else:
        run_federation(consortium, partners, run_dir, consortium_path=cpath)


def _grid(cpath: Path, out: Path, step, say) -> tuple[Path, list]:
    """Steps 3 and 4 at every grid point (out/grid/<point>/{alone,run}), then each partner's report job for the
    points each side chose by the selection rule; returns (the first point's run folder, the jobs)."""
    from fedchem.orchestrator.agreement import sign_agreement
    from fedchem.orchestrator.config import load_all
    from fedchem.orchestrator.demo import grid
    from fedchem.orchestrator.report.write import ReportJob

    pts = grid.points()
    t = step(f"3-4/5 equal budgets: each partner alone and the consortium federated at each of {len(pts)} grid "
             f"points ({', '.join(p.label for p in pts)})")
    folders = {}
    for k, point in enumerate(pts, 1):
        folder = out / "grid" / point.label
        pcpath = grid.point_consortium(cpath, folder, point)
        consortium, partners = load_all(pcpath)
        for p in partners.values():  # each partner's own copy of this point's agreement, as `fedchem agree` writes
            sign_agreement(consortium, p)
        say(f"   point {k}/{len(pts)} {point.label}: alone")
        train_alone(consortium, partners, folder / "alone", say)
        say(f"   point {k}/{len(pts)} {point.label}: federated")
        run_federated(consortium, partners, folder / "run", pcpath, say)
        folders[point.label] = folder
    say(f"   done in {time.perf_counter() - t:.1f} s")
    _, partners = load_all(cpath)
    jobs = []
    for name, p in partners.items():
        tuning = grid.choose_for_partner(
            {label: grid.read_metrics(f / "alone" / name / "metrics.json") for label, f in folders.items()},
            {label: grid.read_metrics(f / "run" / "partners" / name / "metrics.json") for label, f in folders.items()})
        fed, alone = tuning["federated"]["point"] or pts[0].label, tuning["alone"]["point"] or pts[0].label
        say(f"   {name}: chose {alone} alone and {fed} federated (validation {tuning['metric']})")
        jobs.append(ReportJob(name, alone_dir=folders[alone] / "alone" / name, out_dir=out / "reports" / name,
                              prepared_dir=p.prepared_dir, run_dir=folders[fed] / "run", tuning=tuning))
    return folders[pts[0].label] / "run", jobs


def run_demo(out: Path, max_per_target: int = 300, rounds: int | None = None, fresh: bool = False,
             step=_quiet_step, say=lambda s: None, split: str = DEFAULT_SPLIT, grid: bool = False) -> DemoResult:
    """Run the five demo steps into `out` on the partners of `split` (a key of SPLITS); `step(title)` announces a
    step and returns its start time. With `grid`, steps 3 and 4 run at every point of `demo.grid.GRID` and each
    partner's report compares the point each side chose on its own validation fold (equal budgets)."""
    from fedchem.orchestrator.config import load_all
    from fedchem.orchestrator.demo.consortium import prepare_consortium

    out = Path(out).resolve()
    # --out: new, empty or a previous demo; never the current folder or a parent, so --fresh removes only a demo
    check_output_folder(out, command="fedchem demo", is_previous=is_demo_output, force_flag=None, flag="--out")
    if split not in SPLITS:
        raise ConfigError(f"unknown demo split {split!r}", where="--split",
                          fix="use one of: " + ", ".join(SPLITS))
    if fresh and out.exists():
        shutil.rmtree(out)
    previous = demo_split_of(out)
    if previous is not None and previous != split:
        raise ConfigError(f"{out} holds the {previous!r} demo, not the {split!r} one",
                          where="--out", fix=f"add --split {previous} to finish or reuse it, --fresh to replace it, "
                                             "or give another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = {**DEMO_SETTINGS, "name": f"demo-{split}"}
    chosen = SPLITS[split]
    if rounds:
        settings["federation"] = {**settings["federation"], "rounds": rounds}

    t = step(f"1/5 {chosen.source}")
    say(f"   split {split}: {chosen.why}")
    raw = out / "raw"
    if not (raw / "consortium.yaml").is_file():
        chosen.build(raw, max_per_target)
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

    from fedchem.orchestrator.report.write import ReportJob, write_reports

    if not grid:
        t = step("3/5 each partner alone (the baseline)")
        train_alone(consortium, partners, out / "alone", say)
        say(f"   done in {time.perf_counter() - t:.1f} s")
        t = step("4/5 federated training with secure aggregation (Substra, subprocess backend)")
        run_dir = out / "run"
        run_federated(consortium, partners, run_dir, cpath, say)
        say(f"   done in {time.perf_counter() - t:.1f} s")
        jobs = [ReportJob(name, alone_dir=out / "alone" / name, out_dir=out / "reports" / name,
                          prepared_dir=p.prepared_dir) for name, p in partners.items()]
    else:
        run_dir, jobs = _grid(cpath, out, step, say)

    t = step("5/5 each partner's report")
    reports, failed = write_reports(run_dir, jobs)  # one partner's failure never stops the others
    for name in failed:
        say(f"   {name}: report FAILED (the error is below)")
    say(f"   done in {time.perf_counter() - t:.1f} s")

    folders = {j.partner: (Path(j.run_dir or run_dir) / "partners" / j.partner, Path(j.alone_dir)) for j in jobs}
    return DemoResult(out, run_dir, list(partners), reports, time.perf_counter() - started, failed, split, folders)
