"""Partner preparation speed on the whole of MUV (93,087 compounds, 17 sparse binary tasks): compounds prepared a
second, split into standardisation, fingerprints (+ scaffolds) and the rest (reading/checking files, tasks, folds,
scrambling, writing). Goal: MUV prepared in under a minute with both cores.

Run:  .venv/bin/python bench/prepare.py                 (all of MUV, every core; ~1 minute on 2 cores)
      .venv/bin/python bench/prepare.py --n 10000       (the first 10,000 compounds)
      .venv/bin/python bench/prepare.py --serial        (also a one-process run, for the parallel speed-up ratio)

T0/T1/T2 are built from the shipped muv.csv.gz (fedchem/opener/public/data) with
`fedchem.opener.public.moleculenet` (one partner) before the clock starts. Settings: the consortium defaults
(ECFP4 folded to 32,768 columns, scrambled; 5 scaffold folds),
with a quorum of one active and one inactive per task (so that --n subsets keep their tasks). Figures on a machine
shared with other jobs are distorted by them: the CPU seconds printed (this process + its workers) show how much
of the machine the run actually got, and the ratio --serial prints is measured in the same process, side by side.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_muv(folder: Path, n: int | None) -> tuple[Path, Path, Path]:
    """MUV as one partner's T0/T1/T2 (optionally only the first n compounds)."""
    from fedchem.opener.public import moleculenet as mn
    partner = mn.split_by_compound("muv.csv.gz", 1)[0]
    if n is not None:
        keep = set(list(partner.compounds)[:n])
        partner.compounds = {k: v for k, v in partner.compounds.items() if k in keep}
        partner.rows = [r for r in partner.rows if r[0] in keep]
    partner.write(folder)
    return folder / "T0.csv", folder / "T1.csv", folder / "T2.csv"


def cpu_seconds() -> float:
    """User+system CPU of this process and its reaped children (the pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(paths, out: Path, workers: int):
    from fedchem.opener.config import FingerprintConfig, PreparationConfig
    from fedchem.opener.prepare import prepare_partner
    cpu = cpu_seconds()
    start = time.perf_counter()
    # a quorum loose enough for subsets (a MUV task has ~30 actives in all 93k compounds)
    quorum = PreparationConfig(min_actives_total=1, min_inactives_total=1, min_actives_per_fold=0,
                               min_inactives_per_fold=0)
    s = prepare_partner(*paths, out, FingerprintConfig(), quorum, b"bench-consortium-secret-0123456789",
                        "muv", workers=workers)
    wall = time.perf_counter() - start
    return s, wall, cpu_seconds() - cpu


def show(label: str, s, wall: float, cpu: float, workers: int) -> None:
    t = s.timings
    rest = wall - t["standardise"] - t["fingerprints"]
    print(f"{label}: {s.n_t2_rows:,} compounds in {wall:.1f} s = {s.n_t2_rows / wall:,.0f} compounds/s "
          f"({s.n_compounds:,} rows written, {s.n_class_tasks} tasks kept, {s.n_dropped_tasks} dropped)")
    for name, sec in (("standardisation", t["standardise"]), ("fingerprints+scaffolds", t["fingerprints"]),
                      ("rest", rest)):
        print(f"  {name:<23} {sec:6.1f} s  {100 * sec / wall:4.0f}%  {s.n_t2_rows / sec:>9,.0f} compounds/s")
    print("  rest = " + ", ".join(f"{k} {t[k]:.2f} s" for k in ("read", "tasks", "write")))
    print(f"  CPU used: {cpu:.1f} s ({1e3 * cpu / s.n_t2_rows:.2f} ms a compound); {cpu / wall:.2f} of "
          f"{workers} core(s) kept busy on average (below {workers}: waiting on serial parts or on other jobs)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, help="only the first N compounds")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    ap.add_argument("--serial", action="store_true", help="also run in one process, for the speed-up ratio")
    args = ap.parse_args()
    from fedchem.opener.parallel import default_workers
    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="fedchem-bench-prepare-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        paths = build_muv(tmp / "raw", args.n)
        print(f"MUV partner T0/T1/T2 built in {time.perf_counter() - t:.1f} s (not counted); {workers} worker "
              f"process(es), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (a shared machine: other jobs distort these figures)", flush=True)
        s, wall, cpu = run(paths, tmp / "out", workers)
        show(f"parallel ({workers} processes)", s, wall, cpu, workers)
        print(f"goal: MUV in under 60 s -> {'met' if wall < 60 else 'NOT met'} ({wall:.1f} s)")
        if args.serial:
            s1, wall1, cpu1 = run(paths, tmp / "out1", 1)
            show("serial (1 process)", s1, wall1, cpu1, 1)
            print(f"speed-up of {workers} processes over 1: {wall1 / wall:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
