"""Wall time of one federated round on Substra's subprocess backend, secure vs plain, for 3 and 10 partners.

For each N, one consortium is built from MoleculeACE (real data) with the demo's model and training settings, and
three runs of R rounds are made in this process: secure aggregation on, then off (the test-only switch), both with
the warm task server a local run starts (fedchem.algo.functions.warmstart), then secure again with every task
started cold (FEDCHEM_WARM=0), the same-run baseline of what the server saves; with --copy-baseline, secure once
more with Substra copying each task output into its store (its own way) instead of storing the task's file as a
hard link (fedchem.orchestrator.run.local_store), that change's same-run baseline. Each figure is the median over
rounds 2..R of its run, column by column (the first round also pays for Python's first imports, and one round's
figures swing by several percent from the next one's); with --repeat K, the secure and the plain runs alternate K
times each and the medians are over the measured rounds of all K (one run's figures also swing from the next
run's, and a drift of the machine then reaches both modes), split into:
  train tasks    wall time of the partners' train tasks (submitted one after another in local mode)
    of which     in-task load / validation / local training / masking / saving its private state for the next
                 round (head, optimizer, selection; from each partner's private round log)
    substra+proc the rest: Substra's bookkeeping and each task's Python start and imports
  release        the share-release tasks, and before them the confirmation tasks after a dropout (secure only)
  aggregate      the aggregator's task (process start included)
  download       checkpoints and trunk copied to the run folder
and the ratio (secure round time) / (plain round time). Goal on the demo configuration: <= 1.05 at 10 partners.

The fixed-cost share of a round is the part that is not training, masking or aggregation math:
1 - (local training + masking, as the partners' logs time them, + the aggregator's unmasking of N updates of the
trunk's size, timed here in this process on real key material) / round time. Validation of the incoming model is
not among them, so it counts as fixed cost (its share is printed too). Goal for 3 partners: <= 25 %.

Before the runs, what each Substra task pays before its first useful line: starting the interpreter (`python -c
pass`) and importing its entry module with everything that module imports, function-level imports included
(`python -X importtime`, self times summed per top-level package; best of 3).

The machine is shared: compare the secure/plain ratio and the shares, which are measured in one process, not the
absolute seconds.

    python bench/round.py [--partners 3 10] [--rounds 4] [--max-per-target 300] [--repeat 3 --no-cold]
    python bench/round.py --startup-only
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from unittest import mock
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
from fedchem.algo.functions import warm_client, warmstart  # noqa: E402
from fedchem.algo.functions.specs import FUNCTIONS  # noqa: E402

GROUPS = ("torch", "numpy", "scipy", "sklearn", "rdkit", "matplotlib", "pydantic", "cryptography", "substratools",
          "fedchem")


def entry_imports(module: str) -> list[str]:
    """The modules an entry module imports, at module and function level (its task's imports), itself first."""
    import importlib.util
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    names = [module]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return list(dict.fromkeys(names))


def _import_times(modules: list[str], code: str | None = None) -> tuple[float, dict[str, float]]:
    """(wall seconds, self import seconds per top-level package) of a fresh interpreter importing `modules` (or
    running `code`)."""
    code = code or ("import importlib\nfor m in %r:\n    try:\n        importlib.import_module(m)\n"
                    "    except ImportError:\n        pass\n" % (modules,))  # `from a import b` where b is a name
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - t
    groups: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _, name = line[len("import time:"):].split("|")
            root = name.strip().split(".")[0]
            root = "cryptography" if root == "Crypto" else root
            groups[root if root in GROUPS else "other"] += int(self_us) / 1e6
    return wall, dict(groups)


def startup_breakdown(repeat: int = 3) -> list[dict]:
    """Per task entry module: interpreter start and import seconds by package (best of `repeat` by wall time)."""
    interp = min(_timed_run([sys.executable, "-c", "pass"]) for _ in range(repeat))
    rows = []
    for module in sorted({f.module for f in FUNCTIONS.values()}):
        names = ", ".join(f.name for f in FUNCTIONS.values() if f.module == module)
        wall, groups = min((_import_times(["substratools"] + entry_imports(module)) for _ in range(repeat)),
                           key=lambda x: x[0])
        rows.append({"module": module, "functions": names, "interpreter": interp, "wall": wall, **groups})
        if module == "fedchem.algo.functions.train":  # same-run baseline: what the metrics imported until now
            wall, groups = min((_import_times(["substratools"] + entry_imports(module) + ["sklearn.metrics",
                                                                                           "scipy.stats"])
                                for _ in range(repeat)), key=lambda x: x[0])
            rows.append({"module": "train + sklearn.metrics + scipy.stats", "functions": "before: the metrics' "
                         "imports", "interpreter": interp, "wall": wall, **groups})
    # what a task script runs before it hands the task to a warm server: the client it carries (builtins only),
    # and, the same-run baseline, what it imported until 2026-12-08 (fedchem's package and warmstart)
    client = Path(warm_client.__file__).read_text()
    handoff = f"exec(compile({client!r}, 'warm_client.py', 'exec'), {{}})"
    for label, modules, code in (("warm hand-off", [], handoff),
                                 ("warm hand-off, before: importing warmstart", ["fedchem.algo.functions.warmstart"],
                                  None)):
        wall, groups = min((_import_times(modules, code) for _ in range(3 * repeat)), key=lambda x: x[0])
        rows.append({"module": label, "functions": "any task, with a warm server", "interpreter": interp,
                     "wall": wall, **groups})
    return rows


def _timed_run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def print_startup(rows: list[dict]) -> None:
    print("what a task pays before its first useful line: interpreter start, then its imports (seconds; "
          "python -X importtime self times per package, best of 3)")
    cols = ["interpreter", *GROUPS, "other"]
    print(f"{'entry module (functions)':<60} {'total':>6} " + " ".join(f"{c[:8]:>8}" for c in cols))
    for r in rows:
        label = f"{r['module'].removeprefix('fedchem.algo.functions.')} ({r['functions']})"
        print(f"{label:<60} {r['wall']:>6.3f} " + " ".join(f"{r.get(c, 0.0):>8.3f}" for c in cols))
    print()


def aggregation_math_seconds(n: int, d: int, secure: bool, repeat: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds of the aggregator's arithmetic for n updates of d parameters, timed here: unmasking with
    real keys (secure), or the plain weighted sum of float64 updates (the test-only plain mode); best of `repeat`."""
    import numpy as np
    import fedchem.algo.secagg as sa
    from fedchem.algo.config import SecAggConfig
    config = SecAggConfig(ring_bits=DEMO_SETTINGS["federation"]["secure_aggregation"]["ring_bits"],
                          clip=DEMO_SETTINGS["federation"]["secure_aggregation"]["clip"])
    update = np.linspace(-0.01, 0.01, d)
    if not secure:
        vectors = [update * (i + 1) for i in range(n)]
        best = (float("inf"), float("inf"))
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            total = vectors[0].copy()
            for v in vectors[1:]:
                total += v
            best = min(best, (time.perf_counter() - t, time.process_time() - c))
        return best
    ids = [f"Org{i:02d}" for i in range(n)]
    pairs = {p: sa.keygen("bench", p, [1]) for p in ids}
    public = {p: k[0] for p, k in pairs.items()}
    secret = {p: k[1] for p, k in pairs.items()}
    t_ = sa.default_threshold(n)
    shares = {p: sa.deal_shares("bench", p, secret[p], public, t_) for p in ids}
    masked = {p: sa.mask_update("bench", 1, p, ids, secret[p], public, update, 1e-4, config) for p in ids}
    released = {p: sa.release_shares("bench", 1, p, secret[p], public, shares, ids, []) for p in ids}
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        sa.unmask_sum("bench", 1, ids, public, masked, released, t_, config)
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def trunk_size(run_dir: Path) -> int:
    from fedchem.algo.params import flatten, load_params
    return int(flatten(load_params(run_dir / "aggregator" / "trunk.npz")[0])[0].size)


def build(root: Path, n: int, max_per_target: int) -> Path:
    raw = root / f"raw-{n}"
    build_moleculeace(raw, n_partners=n, max_per_target=max_per_target)
    cpath = raw / "consortium.yaml"
    data = yaml.safe_load(cpath.read_text())
    data.update(DEMO_SETTINGS)
    cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    prepare_consortium(cpath)
    return cpath


def cpu_now() -> float:
    """CPU seconds of this process (the driver, Substra's bookkeeping), of its finished children (every cold task,
    every task script) and of the tasks a warm server ran (its children: they reach RUSAGE_CHILDREN only when the
    server ends, so they are read from its log)."""
    import resource
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    socket_path = os.environ.get(warmstart.ENV)
    warm = warmstart.WarmServer(os.path.dirname(socket_path)).cpu_seconds() if socket_path else 0.0
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + warm


class RoundCpu:
    """A console for run_federation that notes the CPU clock at each round's start line (and at the final
    evaluation), so that round r's CPU seconds are the difference between its start and the next one."""

    def __init__(self):
        self.marks: list[tuple[str, float]] = []

    def __call__(self, line: str) -> None:
        if line.startswith("round ") or line == "final evaluation":
            self.marks.append((line, cpu_now()))

    def of_round(self, r: int, rounds: int) -> float:
        names = [m[0] for m in self.marks]
        start = names.index(f"round {r}/{rounds}")
        return self.marks[start + 1][1] - self.marks[start][1]


def round_breakdown(run_dir: Path, r: int) -> dict:
    ledger = Ledger.load(run_dir)
    rec = next(x for x in ledger.rounds if x.round == r)
    inside = {"load": 0.0, "validate": 0.0, "train": 0.0, "mask": 0.0, "save": 0.0, "total": 0.0}
    cpu = dict.fromkeys(inside, 0.0)
    for name in rec.survivors:
        log = json.loads((partner_dir(run_dir, name) / "logs" / f"round_{r:03d}.json").read_text())
        for k in inside:
            inside[k] += log["seconds"].get(k, 0.0)
            cpu[k] += log.get("cpu_seconds", {}).get(k, 0.0)
    s = rec.seconds
    return {
        "n_survivors": len(rec.survivors),
        "round_total": sum(s.values()),
        "train_tasks": s["train"], "in_load": inside["load"], "in_validate": inside["validate"],
        "in_local_training": inside["train"], "in_masking": inside["mask"], "in_saving_state": inside["save"],
        "substra_and_process": s["train"] - inside["total"],
        "release": s.get("release", 0.0), "aggregate": s["aggregate"], "download": s.get("download", 0.0),
        "cpu_in_load": cpu["load"], "cpu_in_validate": cpu["validate"], "cpu_in_local_training": cpu["train"],
        "cpu_in_masking": cpu["mask"], "cpu_in_train_tasks": cpu["total"],
    }


def measured_rounds(rounds: int) -> list[int]:
    """The rounds a figure is taken from: every round but the first (which also pays for Python's first imports),
    or the only one."""
    return list(range(2, rounds + 1)) or [1]


def median_breakdown(runs: list[tuple[Path, RoundCpu]], rounds: int) -> dict:
    """Each column of `round_breakdown` (and the round's CPU seconds) as its median over `measured_rounds` of every
    run of a mode: one round's figures swing by several percent from one round to the next on these machines, and
    one run's by as much from the next run's."""
    per_round = []
    for run_dir, clock in runs:
        for r in measured_rounds(rounds):
            row = round_breakdown(run_dir, r)
            row["cpu_round_total"] = clock.of_round(r, rounds)
            per_round.append(row)
    out = {k: statistics.median(row[k] for row in per_round) for k in per_round[0]}
    out["n_survivors"] = min(row["n_survivors"] for row in per_round)
    out["each_round"] = [row["round_total"] for row in per_round]
    return out


# secure and plain with the warm task server (the default of a local run), then secure with every task started
# cold (FEDCHEM_WARM=0: what a round cost before the server), the same-run baseline of the server's gain
MODES = (("secure", True), ("plain", False), ("secure-cold", True))
COPY_MODE = ("secure-copy", True)  # --copy-baseline: Substra's own copy of each output (local_store's baseline)


def substra_copies(on: bool):
    """When `on`, Substra's local worker copies each output into its store, as it does by itself, instead of the
    hard link a local run makes it store (fedchem.orchestrator.run.local_store): that change's same-run baseline."""
    import shutil

    from substra.sdk.backends.local.compute import worker

    from fedchem.orchestrator.run import local_store

    if not on:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(local_store, "link_outputs", lambda: False))
    stack.enter_context(mock.patch.object(worker, "shutil", shutil))
    return stack


def cold_tasks(cold: bool):
    """FEDCHEM_WARM=0 for the block when `cold` (every task starts its own interpreter), the environment restored."""
    return mock.patch.dict(os.environ, {warmstart.DISABLE_ENV: "0"} if cold else {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partners", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--rounds", type=int, default=4,
                    help="rounds of each run; figures are medians over rounds 2..R (default 4)")
    ap.add_argument("--max-per-target", type=int, default=300)
    ap.add_argument("--startup-only", action="store_true", help="only the per-task start-up breakdown")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the secure and the plain mode each, alternately (secure, plain, secure, ...); "
                         "figures are medians over the measured rounds of all of them (default 1)")
    ap.add_argument("--no-cold", action="store_true",
                    help="leave out the run with every task started cold (the warm server's baseline)")
    ap.add_argument("--copy-baseline", action="store_true",
                    help="one more secure run in which Substra copies each task output into its store, as it does "
                         "by itself, instead of the hard link a local run makes it store (that change's baseline)")
    args = ap.parse_args()
    modes = tuple(m for m in MODES if not (args.no_cold and m[0] == "secure-cold")) + \
        ((COPY_MODE,) if args.copy_baseline else ())
    # secure and plain alternate, --repeat times each, so that a drift of the machine reaches both; the others once
    schedule = [m for _ in range(max(1, args.repeat)) for m in modes[:2]] + list(modes[2:])
    print_startup(startup_breakdown())
    if args.startup_only:
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="fedchem-bench-round-") as tmp:
        tmp = Path(tmp)
        for n in args.partners:
            t = time.perf_counter()
            cpath = build(tmp, n, args.max_per_target)
            print(f"[{n} partners] data built and prepared in {time.perf_counter() - t:.0f} s", flush=True)
            consortium, partners = load_all(cpath)
            done: dict[str, list[tuple[Path, RoundCpu]]] = defaultdict(list)
            for i, (mode, secure) in enumerate(schedule):
                if not secure:  # the test-only plain mode: each (throw-away) partner opts in on its own node
                    for p in partners.values():
                        (node_dir_of(p) / PLAIN_OPT_IN).write_text("bench only\n")
                run_dir = tmp / f"run-{n}-{mode}-{i}"
                t = time.perf_counter()
                clock = RoundCpu()
                with cold_tasks(mode.endswith("cold")), substra_copies(mode == COPY_MODE[0]):
                    run_federation(consortium, partners, run_dir, rounds=args.rounds, secure=secure, console=clock)
                done[mode].append((run_dir, clock))
                print(f"[{n} partners] {mode} run of {args.rounds} rounds: {time.perf_counter() - t:.0f} s", flush=True)
            figures = {}
            for mode, secure in modes:
                figures[mode] = median_breakdown(done[mode], args.rounds)
                figures[mode]["aggregation_math"], figures[mode]["cpu_aggregation_math"] = aggregation_math_seconds(
                    figures[mode]["n_survivors"], trunk_size(done[mode][0][0]), secure)
            rows.append((n, figures))
    print()
    measured = measured_rounds(args.rounds)
    which = f"round {measured[0]} of {args.rounds}" if len(measured) == 1 else \
        f"median of rounds {measured[0]}-{measured[-1]} of {args.rounds}, column by column"
    print(f"one round ({which}), seconds; model {DEMO_SETTINGS['model']['hidden_sizes']} "
          f"hidden on {DEMO_SETTINGS['fingerprint']['size']} features, {DEMO_SETTINGS['training']['epochs_per_round']} "
          f"local epoch per round; subprocess backend, tasks run one after another")
    keys = ["round_total", "train_tasks", "in_load", "in_validate", "in_local_training", "in_masking",
            "in_saving_state", "substra_and_process", "release", "aggregate", "aggregation_math", "download"]
    print(f"{'partners':>8} {'mode':>11} " + " ".join(f"{k:>19}" for k in keys))
    for n, fig in rows:
        for mode, _ in modes:
            print(f"{n:>8} {mode:>11} " + " ".join(f"{fig[mode][k]:>19.2f}" for k in keys))
        for mode, _ in modes:
            f = fig[mode]
            math = f["in_local_training"] + f["in_masking"] + f["aggregation_math"]
            print(f"{n:>8} {mode:>11} fixed-cost share (not training, masking or aggregation math): "
                  f"{1 - math / f['round_total']:.1%} (goal <= 25% for 3 partners; validation alone "
                  f"{f['in_validate'] / f['round_total']:.1%}, Substra + task start-up of the train tasks "
                  f"{f['substra_and_process'] / f['round_total']:.1%})")
        for mode, _ in modes:
            print(f"{n:>8} {mode:>11} each measured round: "
                  + ", ".join(f"{x:.2f}" for x in fig[mode]["each_round"]) + " s")
        ratio = fig["secure"]["round_total"] / fig["plain"]["round_total"]
        print(f"{n:>8} ratio secure/plain round time: {ratio:.3f} (goal <= 1.05 at 10 partners)")
        if "secure-cold" in fig:
            gain = fig["secure-cold"]["round_total"] / fig["secure"]["round_total"]
            print(f"{n:>8} secure round, every task cold / warm task server: {gain:.2f}x")
        if COPY_MODE[0] in fig:
            gain = fig[COPY_MODE[0]]["round_total"] / fig["secure"]["round_total"]
            print(f"{n:>8} secure round, Substra copying each output / storing it as a hard link: {gain:.2f}x")
    print("\nthe same round in CPU seconds (this process and every task process; on a loaded machine wall time "
          "mostly measures the others' jobs, CPU time what the round itself costs)")
    ckeys = ["cpu_round_total", "cpu_in_train_tasks", "cpu_in_load", "cpu_in_validate", "cpu_in_local_training",
             "cpu_in_masking", "cpu_aggregation_math"]
    print(f"{'partners':>8} {'mode':>11} " + " ".join(f"{k.removeprefix('cpu_'):>19}" for k in ckeys))
    for n, fig in rows:
        for mode, _ in modes:
            print(f"{n:>8} {mode:>11} " + " ".join(f"{fig[mode][k]:>19.2f}" for k in ckeys))
        for mode, _ in modes:
            f = fig[mode]
            math = f["cpu_in_local_training"] + f["cpu_in_masking"] + f["cpu_aggregation_math"]
            print(f"{n:>8} {mode:>11} fixed-cost share in CPU time: {1 - math / f['cpu_round_total']:.1%} "
                  f"(task start-up and Substra outside the train tasks' own work: "
                  f"{1 - f['cpu_in_train_tasks'] / f['cpu_round_total']:.1%})")
        ratio = fig["secure"]["cpu_round_total"] / fig["plain"]["cpu_round_total"]
        print(f"{n:>8} ratio secure/plain round CPU time: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
