"""Does joining pay, and how much of what pooling would give does federation recover? (issue 16)

For each consortium built from the public sets (3 partners each, the demo's model and training settings):
  alone       each partner's `train-local` (the report's baseline);
  federated   the consortium on Substra's subprocess backend, secure aggregation on (the demo's run);
  pooled      one model trained on every partner's data at once, same folds (orchestrator.demo.pooled: only a
              benchmark may do this), each partner's own tasks and test compounds cut back out of it.
Both comparisons go through the report's own code (orchestrator.report.compare: per task on the partner's test
fold, median over its headline tasks of the primary metric, 95% bootstrap interval over its test compounds).
Printed per partner and kind: median Δ federated − alone [CI], median Δ pooled − alone [CI], and the share of the
pooled gain federation recovers (ratio of the two medians; "n/a" unless pooling itself helped beyond noise, since a
ratio over noise means nothing). Written too: payoff.json and payoff.md in --out. Finished steps in --out are
reused, so an interrupted bench resumes.

    python bench/payoff.py [--only NAME ...] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import yaml  # noqa: E402

from fedchem.algo.predictions import load_predictions  # noqa: E402
from fedchem.algo.train_local import train_local  # noqa: E402
from fedchem.opener.dataset import load_prepared  # noqa: E402
from fedchem.opener.errors import FedchemError  # noqa: E402
from fedchem.opener.fileio import atomic_write_text  # noqa: E402
from fedchem.orchestrator.config import load_all  # noqa: E402
from fedchem.orchestrator.demo import public_data as pd  # noqa: E402
from fedchem.orchestrator.demo.consortium import prepare_consortium  # noqa: E402
from fedchem.orchestrator.demo.pipeline import DEMO_SETTINGS, run_federated, train_alone  # noqa: E402
from fedchem.orchestrator.demo.pooled import cut, pool  # noqa: E402
from fedchem.orchestrator.report import stats  # noqa: E402
from fedchem.orchestrator.report.compare import compare  # noqa: E402
from fedchem.orchestrator.report.inputs import _aligned_to, load_inputs  # noqa: E402

CONSORTIA = {
    "tox21-compounds": ("Tox21, compounds dealt by hash", lambda raw, m: pd.build_tox21(raw, 3)),
    "toxcast-providers": ("ToxCast, assays dealt by provider", lambda raw, m: pd.build_toxcast(raw, 3)),
    "herg-assays": ("ChEMBL hERG, dealt by assay technology", lambda raw, m: pd.build_herg(raw, 3)),
    "moleculeace-targets": ("MoleculeACE, dealt by target",
                            lambda raw, m: pd.build_moleculeace(raw, 3, split="targets", max_per_target=m)),
    "moleculeace-compounds": ("MoleculeACE, compounds dealt by hash",
                              lambda raw, m: pd.build_moleculeace(raw, 3, split="compounds", max_per_target=m)),
}


def build(name: str, root: Path, quick: bool) -> Path:
    """The consortium's folder with the demo's settings (fewer rounds with --quick), prepared."""
    raw = root / name / "raw"
    cpath = raw / "consortium.yaml"
    if not cpath.is_file():
        CONSORTIA[name][1](raw, 100 if quick else 300)
        data = yaml.safe_load(cpath.read_text())
        data.update({**DEMO_SETTINGS, "name": f"payoff-{name}"})
        if quick:
            data["training"] = {**data["training"], "epochs": 4}
            data["federation"] = {**data["federation"], "rounds": 4}
        cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    prepare_consortium(cpath, reuse=True)
    return cpath


def pooled_predictions(consortium, pooled_data, dest: Path) -> Path:
    """Train the pooled-central model into dest (reused when there); its test predictions file."""
    if not (dest / "test_predictions.npz").is_file():
        train_local(pooled_data, dest, consortium.model, consortium.training, where="pooled", overwrite=True)
    return dest / "test_predictions.npz"


def summary(figures: dict) -> dict:
    """Kind -> the primary metric's median Δ and interval over headline tasks."""
    out = {}
    for kind, block in figures["summary"]["headline"].items():
        m = block["primary_metric"]
        s = block["metrics"][m]
        out[kind] = {"metric": m, "median": s["median_delta"], "ci": [s["ci_low"], s["ci_high"]],
                     "n_tasks": s["n_tasks"]}
    return out


def share(fed: dict, pooled: dict) -> float | None:
    """Federated's median gain over pooled's, when pooled helped beyond noise; None otherwise."""
    lo, hi = pooled["ci"]
    if None in (lo, hi, fed["median"], pooled["median"]) or stats.verdict(pooled["metric"], (lo, hi)) != "helped":
        return None
    return fed["median"] / pooled["median"]


def run_one(name: str, root: Path, quick: bool, say) -> list[dict]:
    t0 = time.perf_counter()
    cpath = build(name, root, quick)
    consortium, partners = load_all(cpath)
    times = {"prepare": time.perf_counter() - t0}
    t = time.perf_counter()
    train_alone(consortium, partners, root / name / "alone", say)
    times["alone"] = time.perf_counter() - t
    t = time.perf_counter()
    run_federated(consortium, partners, root / name / "run", cpath, lambda s: None)
    times["federated"] = time.perf_counter() - t
    t = time.perf_counter()
    pooled_data, layout = pool({n: load_prepared(p.prepared_dir) for n, p in partners.items()})
    pooled_pred = load_predictions(pooled_predictions(consortium, pooled_data, root / name / "pooled"))
    times["pooled"] = time.perf_counter() - t
    rows = []
    for pname, p in partners.items():
        inp = load_inputs(root / name / "run", pname, root / name / "alone" / pname, p.prepared_dir)
        mine = _aligned_to(cut(pooled_pred, layout[pname], inp.data), inp.rows)
        pinp = dataclasses.replace(inp, federated=mine, federated_validation=None, federated_last=None,
                                   federated_finetuned=None)
        fed, pooled = summary(compare(inp)), summary(compare(pinp))
        for kind in fed:
            rows.append({"consortium": name, "partner": pname, "kind": kind, "metric": fed[kind]["metric"],
                         "n_tasks": fed[kind]["n_tasks"], "federated": fed[kind], "pooled": pooled[kind],
                         "share": share(fed[kind], pooled[kind]), "seconds": times})
    return rows


def _d(block: dict) -> str:
    lo, hi = block["ci"]
    f = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    return f"{f(block['median'])} [{f(lo)}, {f(hi)}]"


def _share(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f} %"


def table(rows: list[dict]) -> str:
    head = ("| consortium | partner | kind (metric, tasks) | Δ federated − alone [95% CI] | Δ pooled − alone [95% CI] "
            "| share recovered |\n|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['consortium']} | {r['partner']} | {r['kind']} ({stats.METRICS[r['metric']].label}, {r['n_tasks']}) | "
        f"{_d(r['federated'])} | {_d(r['pooled'])} | "
        f"{_share(r['share'])} |\n" for r in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=list(CONSORTIA), default=list(CONSORTIA))
    ap.add_argument("--quick", action="store_true", help="4 rounds / epochs and 100 compounds per MoleculeACE target")
    ap.add_argument("--out", type=Path, default=Path(".cache/payoff"), help="work folder (reused when rerun)")
    args = ap.parse_args(argv)
    root = (args.out / ("quick" if args.quick else "full")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.only:
        t = time.perf_counter()
        print(f"== {name}: {CONSORTIA[name][0]}", flush=True)
        try:
            got = run_one(name, root, args.quick, lambda s: print(s, flush=True))
        except FedchemError as exc:
            print(f"   skipped: {exc}", flush=True)
            continue
        rows += got
        s = got[0]["seconds"] if got else {}
        print("   " + ", ".join(f"{k} {v:.0f} s" for k, v in s.items())
              + f" (total {time.perf_counter() - t:.0f} s)", flush=True)
    md = table(rows)
    print("\n" + md)
    atomic_write_text(root / "payoff.json", json.dumps(rows, indent=2) + "\n")
    atomic_write_text(root / "payoff.md", md)
    print(f"written: {root / 'payoff.md'} and payoff.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
