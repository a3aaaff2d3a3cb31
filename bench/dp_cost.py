"""What differential privacy costs and what it buys: the same split with and without DP, federated vs alone.

One MoleculeACE consortium (real ChEMBL data, 3 partners split by target, the demo's model and training settings)
is trained in this process:
  alone        each partner on its own, the same schedule (R rounds of `epochs_per_round`, a fresh optimizer each
               round, as in a federated round), no aggregation;
  federated    R rounds of the partners' real train-task steps (fedchem.algo.training, then fedchem.algo.dp's
               privatize exactly as the train task calls it) and the mean of their updates; without DP (secure
               aggregation's per-coordinate clip and the training-set weights) and with DP at each noise multiplier.
Round 1 of every federated run goes through the real secure aggregation in-process (fedchem.algo.secagg: keygen,
Shamir shares, ChaCha20 masks, unmask) and is probed: the single-partner-row reconstruction of fedchem.algo.dp.probe,
told the truth of which rows are exclusive to whom. Later rounds use the plain mean of the same vectors (the masks
cancel exactly; the decoded sum differs by less than 1e-15 per coordinate in the 64-bit ring).
Printed: test-fold AUC-PR (classification tasks) and R^2 (regression) per partner, epsilon at delta after R rounds
(Google's dp-accounting), and the probe's figures. Substra's task plumbing is not run here (bench/round.py times it).

    python bench/dp_cost.py [--rounds 12] [--max-per-target 300] [--noise 0.0001 0.001 1.0] [--clip-norm 1.0]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from fedchem.algo import evaluation, secagg, training  # noqa: E402
from fedchem.algo import model as M  # noqa: E402
from fedchem.algo.config import DPConfig, SecAggConfig  # noqa: E402
from fedchem.algo.dp import accounting, privatize  # noqa: E402
from fedchem.algo.dp.mechanism import ring_clip_needed  # noqa: E402
from fedchem.algo.dp.probe import probe  # noqa: E402
from fedchem.algo.params import flatten, unflatten  # noqa: E402
from fedchem.algo.secagg.keysetup import threshold_for  # noqa: E402
from fedchem.algo.task_io import WEIGHT_UNIT, derived_seed  # noqa: E402
from fedchem.opener.dataset import load_prepared  # noqa: E402
from fedchem.orchestrator.config import load_all  # noqa: E402
from fedchem.orchestrator.demo.consortium import prepare_consortium  # noqa: E402
from fedchem.orchestrator.demo.pipeline import DEMO_SETTINGS  # noqa: E402
from fedchem.orchestrator.demo.public_data import build_moleculeace  # noqa: E402


def build(cache: Path, max_per_target: int) -> Path:
    raw = cache / f"dp-cost-{max_per_target}" / "raw"
    cpath = raw / "consortium.yaml"
    if not cpath.is_file():
        build_moleculeace(raw, n_partners=3, max_per_target=max_per_target)
        data = yaml.safe_load(cpath.read_text())
        data.update(DEMO_SETTINGS)
        cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    prepare_consortium(cpath, reuse=True)
    return cpath


class Partner:
    def __init__(self, name, prepared_dir, mcfg, tcfg):
        self.name, self.ds = name, load_prepared(prepared_dir, verify=False)
        folds = np.asarray(self.ds.folds)
        self.train = np.flatnonzero(~np.isin(folds, [tcfg.validation_fold, tcfg.test_fold]))
        self.test = np.flatnonzero(folds == tcfg.test_fold)
        self.mcfg, self.tcfg = mcfg, tcfg

    def new_head(self):
        return M.init_head(self.mcfg, self.ds.Y_class.shape[1], self.ds.Y_regr.shape[1],
                           derived_seed(self.tcfg.seed, "head", self.name),
                           regr_bias=training.regression_means(self.ds, self.train))

    def local_round(self, trunk_arrays, head, r):
        """The train task's training step: returns the trunk update (float64 vector) and trains `head` in place."""
        trunk = M.init_trunk(self.ds.n_features, self.mcfg, self.tcfg.seed)
        M.load_trunk_arrays(trunk, trunk_arrays)
        before = flatten(trunk_arrays)[0].astype(np.float64)
        training.train_epochs(trunk, head, self.ds, self.train, self.tcfg, epochs=self.tcfg.epochs_per_round,
                              seed=derived_seed(self.tcfg.seed, self.name, r))
        return flatten(M.trunk_to_arrays(trunk))[0].astype(np.float64) - before

    def score(self, trunk_arrays, head) -> tuple[float, float]:
        trunk = M.init_trunk(self.ds.n_features, self.mcfg, self.tcfg.seed)
        M.load_trunk_arrays(trunk, trunk_arrays)
        agg = evaluation.evaluate(trunk, head, self.ds, self.test).aggregate
        return (float((agg.get("classification") or {}).get("auc_pr", math.nan)),
                float((agg.get("regression") or {}).get("r2", math.nan)))


def secure_mean(vectors, weights, cfg, threshold, plan="bench-dp", rnd=1):
    """The round's mean through real secure aggregation (every partner masks, all survive)."""
    ids = sorted(vectors)
    keys = {p: secagg.keygen(plan, p, [rnd]) for p in ids}
    pub, sec = {p: k[0] for p, k in keys.items()}, {p: k[1] for p, k in keys.items()}
    shares = {p: secagg.deal_shares(plan, p, sec[p], pub, threshold) for p in ids}
    masked = {p: secagg.mask_update(plan, rnd, p, ids, sec[p], pub, vectors[p], weights[p], cfg) for p in ids}
    rel = {p: secagg.release_shares(plan, rnd, p, sec[p], pub, shares, ids, []) for p in ids}
    total, w = secagg.unmask_sum(plan, rnd, ids, pub, masked, rel, threshold, cfg)
    return total / w


def federate(partners, init_arrays, rounds, base: SecAggConfig, dp: DPConfig | None, threshold: int):
    spec = flatten(init_arrays)[1]
    vec = flatten(init_arrays)[0].astype(np.float64)
    heads = {p.name: p.new_head() for p in partners}
    cfg = base if dp is None else SecAggConfig(ring_bits=base.ring_bits, clip=max(base.clip, ring_clip_needed(
        dp, threshold)))
    found, norms = None, []
    for r in range(1, rounds + 1):
        arrays = unflatten(vec.astype(np.float32), spec)
        sent, weights, truth = {}, {}, {}
        for p in partners:
            delta = p.local_round(arrays, heads[p.name], r)
            norms.append(float(np.linalg.norm(delta)))
            if r == 1:
                truth[p.name] = delta
            if dp is None:
                sent[p.name], weights[p.name] = np.clip(delta, -cfg.clip, cfg.clip), p.train.size / WEIGHT_UNIT
            else:
                sent[p.name], weights[p.name] = privatize(delta, dp, threshold, cfg)[0], cfg.max_weight
        if r == 1:
            mean = secure_mean(sent, weights, cfg, threshold)
            n_rows = arrays["input.weight"].shape[0]
            rows = lambda v: v[: arrays["input.weight"].size].reshape(n_rows, -1)  # noqa: E731
            found = probe(rows(mean), {k: rows(v) for k, v in truth.items()})
        else:
            mean = sum(weights[k] * sent[k] for k in sent) / sum(weights.values())
        vec = vec + mean
        vec = vec.astype(np.float32).astype(np.float64)  # the published trunk is float32
    final = unflatten(vec.astype(np.float32), spec)
    return {p.name: p.score(final, heads[p.name]) for p in partners}, found, norms


def alone(partners, init_arrays, rounds):
    out = {}
    for p in partners:
        head, arrays = p.new_head(), init_arrays
        spec = flatten(init_arrays)[1]
        for r in range(1, rounds + 1):
            delta = p.local_round(arrays, head, r)
            arrays = unflatten((flatten(arrays)[0].astype(np.float64) + delta).astype(np.float32), spec)
        out[p.name] = p.score(arrays, head)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--max-per-target", type=int, default=300)
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0001, 0.001, 1.0],
                    help="noise multipliers z (noise std in the sum = z * 2 * clip_norm)")
    ap.add_argument("--clip-norm", type=float, default=1.0, help="L2 bound of a partner's round update")
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fedchem-bench-cache")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 60 compounds per target, one noise level")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.max_per_target, args.noise = 2, 60, args.noise[:1]
    training.set_threads()
    t0 = time.perf_counter()
    consortium, cfgs = load_all(build(args.cache, args.max_per_target))
    mcfg, tcfg = consortium.model, consortium.training
    partners = [Partner(n, c.prepared_dir, mcfg, tcfg) for n, c in cfgs.items()]
    t = threshold_for(consortium.federation.secure_aggregation.threshold, len(partners))
    init = M.trunk_to_arrays(M.init_trunk(partners[0].ds.n_features, mcfg, tcfg.seed))
    print(f"# {len(partners)} partners (MoleculeACE, by target, max {args.max_per_target} per target), "
          f"{partners[0].ds.n_features} columns -> {mcfg.hidden_sizes}, {args.rounds} rounds of "
          f"{tcfg.epochs_per_round} epoch, threshold {t}; training rows: "
          + ", ".join(f"{p.name} {p.train.size}" for p in partners))
    rows = [("alone", None, alone(partners, init, args.rounds), None, None)]
    for z in [None, *args.noise]:
        dp = None if z is None else DPConfig(clip_norm=args.clip_norm, noise_multiplier=z, delta=args.delta)
        scores, found, norms = federate(partners, init, args.rounds, consortium.federation.secure_aggregation, dp, t)
        eps = None if dp is None else accounting.planned_epsilon(dp, t, args.rounds)
        rows.append(("federated" if dp is None else f"federated, DP z={z:g}", eps, scores, found, norms))
        print(f"[{rows[-1][0]}: done at {time.perf_counter() - t0:.0f} s; update L2 norms median "
              f"{np.median(norms):.3g}, max {np.max(norms):.3g}]", flush=True)
    names = [p.name for p in partners]
    print(f"\n| setting | epsilon at delta {args.delta:g} after {args.rounds} rounds | "
          + " | ".join(f"{n} AUC-PR / R²" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for label, eps, scores, _, _ in rows:
        e = "—" if eps is None else f"{eps:.3g}"
        print(f"| {label} | {e} | " + " | ".join(f"{scores[n][0]:.3f} / {scores[n][1]:.3f}" for n in names) + " |")
    print("\nProbe, round 1 (real secure aggregation in-process; the attacker is told which rows are exclusive):")
    print("| setting | input rows touched by exactly one partner | rows with an exactly zero change (truly untouched)"
          " | reconstruction error on a partner's exclusive rows (0 = exact, 1 = nothing) |")
    print("|---|---|---|---|")
    for label, _, _, found, _ in rows[1:]:
        errs = ", ".join(f"{k} {v:.3g}" for k, v in sorted(found.errors.items()))
        print(f"| {label} | {found.exclusive_rows:,} of {found.n_rows:,} ({100 * found.exclusive_fraction:.1f} %) | "
              f"{found.zero_rows:,} ({found.untouched_rows:,}) | {errs} |")
    print(f"\n(total {time.perf_counter() - t0:.0f} s; clip_norm {args.clip_norm:g}; load average "
          f"{os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
