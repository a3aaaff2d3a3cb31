"""Inputs for the report and predict tests: a small real consortium, each partner trained alone, and a run folder.

The run folder has exactly the layout `fedchem run` writes (ledger.json, settings.json, aggregator/trunk.npz and per
partner metrics.json, test_predictions.npz, validation_predictions.npz, last_test_predictions.npz, trunk.npz +
head.npz (the final model), checkpoints/round_NNN/ and logs/round_NNN.json), made with the real model, training,
selection and evaluation code (fedchem.algo) and the real Ledger,
but with the rounds averaged in this process (plain weighted FedAvg of the trunks, no Substra, no masks): a
Substra run costs minutes on these machines, the report only reads the files, and the slow test in
test_report_e2e.py runs the real `run_federation`.
Everything here is real data (MoleculeACE, through tests/fedsetup.py) and real training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from fedsetup import build_small_consortium


def _json(path: Path, doc: dict) -> None:
    from fedchem.algo.evaluation import json_ready

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(doc), indent=2) + "\n")


def build_report_inputs(root: Path, rounds: int = 4, max_per_target: int = 60, dropped: dict | None = None,
                        consortium_overrides: dict | None = None) -> dict:
    """Consortium + prepared partners, `root/alone/<name>` from train_local, `root/run` in the run layout.
    `dropped` = {partner: round} leaves that partner out from that round on (as a dropout would);
    `consortium_overrides` replaces top-level sections of the small consortium (fedsetup.build_small_consortium).
    Returns {"consortium": path, "run_dir": path, "alone": {name: path}, "prepared": {name: path}}."""
    from fedchem.algo import evaluation, model as M, selection, training
    from fedchem.algo.task_io import derived_seed
    from fedchem.algo.train_local import split_folds, train_local
    from fedchem.algo.params import save_params
    from fedchem.opener.dataset import load_prepared
    from fedchem.opener.secret_check import secret_fingerprints
    from fedchem.orchestrator.config import load_all
    from fedchem.orchestrator.run.setup import run_settings
    from fedchem.orchestrator.ledger import Ledger, RoundRecord, settings_hash

    dropped = dict(dropped or {})
    cpath = build_small_consortium(root, max_per_target=max_per_target, overrides=consortium_overrides)
    consortium, partners = load_all(cpath)
    mcfg, tcfg = consortium.model, consortium.training
    names = [p.name for p in consortium.partners]
    data = {n: load_prepared(partners[n].prepared_dir) for n in names}
    folds = {n: split_folds(data[n], tcfg) for n in names}
    alone = {}
    for n in names:
        alone[n] = root / "alone" / n
        train_local(data[n], alone[n], mcfg, tcfg)

    run_dir = root / "run"
    settings = run_settings(consortium, rounds, secure=False)
    (run_dir / "aggregator").mkdir(parents=True)
    (run_dir / "settings.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    n_features = data[names[0]].n_features
    global_arrays = M.trunk_to_arrays(M.init_trunk(n_features, mcfg, tcfg.seed))
    heads = {n: M.init_head(mcfg, data[n].Y_class.shape[1], data[n].Y_regr.shape[1], derived_seed(tcfg.seed, "head", n),
                            regr_bias=training.regression_means(data[n], folds[n].train)) for n in names}
    ledger = Ledger(run_name="run", settings_hash=settings_hash(settings), partners=names, aggregator="aggregator",
                    rounds_planned=rounds, secure=False, consortium_path=str(cpath), status="completed",
                    secret_fingerprints=secret_fingerprints(consortium.secret.read("secret"), consortium.fingerprint))
    active = list(names)
    sels = {n: selection.Selection() for n in names}
    opts = {}
    for r in range(1, rounds + 1):
        now_dropped = [n for n in active if dropped.get(n) == r]
        active = [n for n in active if n not in now_dropped]
        updates, weights = [], []
        for n in active:
            trunk = M.init_trunk(n_features, mcfg, tcfg.seed)
            M.load_trunk_arrays(trunk, global_arrays)
            log = {"partner": n, "round": r, "head_from": "new" if r == 1 else "previous round"}
            if r > 1:
                res, _ = selection.consider(sels[n], r - 1, trunk, heads[n], data[n], folds[n].validation,
                                            folds[n].test)
                log["validation_of_incoming"] = {"after_round": r - 1, "aggregate": res.aggregate}
            opt = training.Optimizer(trunk, heads[n], tcfg)
            if n in opts:  # the partner's Adam state goes on from its previous round
                opt.load_state_arrays(opts[n])
            stats = training.train_epochs(trunk, heads[n], data[n], folds[n].train, tcfg, epochs=tcfg.epochs_per_round,
                                          seed=derived_seed(tcfg.seed, n, r), optimizer=opt)
            opts[n] = opt.state_arrays()
            log["train"] = stats.as_dict()
            _json(run_dir / "partners" / n / "logs" / f"round_{r:03d}.json", log)
            updates.append(M.trunk_to_arrays(trunk))
            weights.append(float(folds[n].train.size))
        w = np.asarray(weights) / np.sum(weights)
        global_arrays = {k: sum(wi * u[k] for wi, u in zip(w, updates)).astype(np.float32) for k in global_arrays}
        ledger.rounds.append(RoundRecord(round=r, plan_id="in-process", survivors=list(active), dropped=now_dropped,
                                         seconds={}))
        ledger.dropped.update({n: r for n in now_dropped})
        ledger.completed_rounds = r
    meta = {"round": rounds, "plan_id": "in-process", "settings": settings}
    save_params(run_dir / "aggregator" / "trunk.npz", global_arrays, meta)
    for n in active:
        pdir = run_dir / "partners" / n
        trunk = M.init_trunk(n_features, mcfg, tcfg.seed)
        M.load_trunk_arrays(trunk, global_arrays)
        results = selection.finish(sels[n], rounds, trunk, heads[n], data[n], folds[n].validation, folds[n].test)
        _json(pdir / "metrics.json", {"after_round": rounds, "head_from": "previous round",
                                      **selection.metrics_document(sels[n], results)})
        for fname, key in (("test_predictions.npz", "test"), ("validation_predictions.npz", "validation"),
                           ("last_test_predictions.npz", "last_test")):
            evaluation.save_result_predictions(pdir / fname, results[key])
        save_params(pdir / "trunk.npz", global_arrays, meta)
        ck = pdir / "checkpoints" / f"round_{rounds:03d}"
        ck.mkdir(parents=True, exist_ok=True)
        save_params(ck / "head.npz", M.head_to_arrays(heads[n]))
        (ck / "checkpoint.json").write_text(json.dumps({"round": rounds, "partner": n}) + "\n")
        shutil.copyfile(ck / "head.npz", pdir / "head.npz")  # the final model: trunk.npz + head.npz
    ledger.evaluated = True
    ledger.save(run_dir)
    return {"consortium": cpath, "run_dir": run_dir, "alone": alone,
            "prepared": {n: partners[n].prepared_dir for n in names}}


_SHARED: dict = {}


def shared_report_inputs() -> dict:
    """One build per test process, shared by test_report.py and test_predict.py (read-only for them)."""
    if not _SHARED:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="fedchem-report-tests-"))
        atexit.register(shutil.rmtree, root, True)
        _SHARED.update(build_report_inputs(root, rounds=3, max_per_target=40, dropped={"partner-3": 3}))
        _SHARED["root"] = root
    return _SHARED
