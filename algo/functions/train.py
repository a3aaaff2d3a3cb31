"""Substra functions that run on a partner's node with torch: one round of local training, and evaluation.

train:    global trunk + own head (previous round's output, or the private checkpoint after a resume, or a fresh
          one) are trained on the partner's own training folds, by an Adam whose state (head and the partner's view
          of the trunk) carries over from the partner's previous round; the trunk update leaves masked (secure
          aggregation) and only towards the aggregator; the head, the optimiser state, a per-round log and the
          selection state stay private; a data-free receipt tells the other partners this one submitted.
          Before training it scores the incoming model (last round's trunk + its own head) on its validation fold
          and offers it to its selection (fedchem.algo.selection, the rule train-local uses); for a kind it wins,
          the validation and test predictions of that model are kept in the selection state.
evaluate: the last round's model is offered likewise; per-task metrics and predictions of the chosen rounds
          (validation and test) and of the last round (test), private to the partner; with
          `training.finetune_epochs`, also a third model: the last round's, trained on alone for that many epochs
          (its Adam state going on), each kind's epoch chosen by the same rule.
Both first check the plan against the partner's own agreement (fedchem.algo.guard) and take every setting from it;
train masks at most once per (plan, round), as recorded in the partner's own node state; when its agreement opts in to
differential privacy, train clips the trunk update and adds its share of the noise before masking (fedchem.algo.dp).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import substratools as tools

from fedchem.algo import secagg
from fedchem.algo.dp import privatize
from fedchem.algo.functions.keys import guard_of
from fedchem.algo.params import load_meta, load_params, save_params
from fedchem.algo.task_io import WEIGHT_UNIT, maybe_fail
from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import ProtocolError
from fedchem.opener.fileio import atomic_write, write_json


def _fold_rows(ds, tcfg):
    folds = np.asarray(ds.folds)
    val = np.flatnonzero(folds == tcfg.validation_fold)
    test = np.flatnonzero(folds == tcfg.test_fold)
    train = np.flatnonzero(~np.isin(folds, [tcfg.validation_fold, tcfg.test_fold]))
    return train, val, test


def _load_model(inputs, ds, agreement):
    """Trunk from the trunk input; head from the head input, else the private checkpoint, else a fresh one."""
    from fedchem.algo import model as M
    from fedchem.algo.training import head_seed, regression_means

    arrays, _ = load_params(inputs["trunk"])
    mcfg, tcfg = agreement.model, agreement.training
    trunk = M.init_trunk(ds.n_features, mcfg, tcfg.seed)
    M.load_trunk_arrays(trunk, arrays)
    head = M.init_head(mcfg, ds.Y_class.shape[1], ds.Y_regr.shape[1], head_seed(tcfg.seed, ds.manifest.get("partner")),
                       regr_bias=regression_means(ds, _fold_rows(ds, tcfg)[0]))
    source = "new"
    head_path = inputs.get("head")
    ck = inputs["datasamples"].checkpoint_dir
    if head_path:
        M.load_head_arrays(head, load_params(head_path)[0])
        source = "previous round"
    elif ck is not None and (Path(ck) / "head.npz").is_file():
        M.load_head_arrays(head, load_params(Path(ck) / "head.npz")[0])
        source = "checkpoint"
    return trunk, head, arrays, source


def _private_state(inputs, name: str) -> str | Path | None:
    """This partner's own state file `name` (optimizer / selection): the previous round's output, else the private
    checkpoint after a resume, else None (a first round)."""
    if inputs.get(name):
        return inputs[name]
    ck = inputs["datasamples"].checkpoint_dir
    if ck is not None and (Path(ck) / f"{name}.npz").is_file():
        return Path(ck) / f"{name}.npz"
    return None


def _selection_of(inputs):
    from fedchem.algo import selection

    path = _private_state(inputs, "selection")
    return selection.load_selection(path) if path else selection.Selection()


def _subtract_into(out: np.ndarray, after: dict, before: dict) -> None:
    """out = flatten(after) - flatten(before) in float64, one array at a time (both in the trunk's own order)."""
    if list(after) != list(before):
        raise ProtocolError("the trained trunk's arrays are not those of the trunk it started from", "train",
                            "re-run the round: the trunk input does not match this model")
    pos = 0
    for name, a in after.items():
        b = before[name]
        if np.shape(a) != np.shape(b):
            raise ProtocolError(f"trunk array '{name}' has shape {np.shape(b)}, the model {np.shape(a)}", "train",
                                "re-run the round: the trunk input does not match this model")
        n = int(np.size(a))
        np.subtract(np.asarray(a, dtype=np.float32).ravel(), np.asarray(b, dtype=np.float32).ravel(),
                    out=out[pos:pos + n], dtype=np.float64)
        pos += n


def _save_head(path, head) -> None:
    from fedchem.algo import model as M

    save_params(path, M.head_to_arrays(head))


@tools.register
def train(inputs, outputs, task_properties):
    from fedchem.algo import evaluation, model as M, selection, training

    t_start, c_start = time.perf_counter(), time.process_time()  # wall, and CPU of this task (all its threads)
    guard = guard_of(inputs, "train")
    me, agreement = guard.me, guard.agreement
    meta = load_meta(inputs["trunk"])  # the arrays are read once, by _load_model
    plain = guard.check_meta(meta)
    round_ = meta["round"] + 1
    maybe_fail(me, round_, "train")
    tcfg, scfg = agreement.training, agreement.secure_aggregation
    if not plain:  # recorded before anything is trained or written: a second masking of this round is refused
        secret = secagg.load_secret_bundle(inputs["secret_keys"])
        publics = {b.party_id: b for b in map(secagg.load_public_bundle, inputs["public_keys"])}
        with guard.state.locked():
            rec = guard.plan_record(meta["plan_id"])
            guard.pinned_publics(rec, publics)
            guard.record_masking(meta["plan_id"], round_, sorted(publics))
    ds = load_prepared(inputs["datasamples"].prepared_dir, verify=False)
    training.set_threads()
    trunk, head, before_arrays, head_source = _load_model(inputs, ds, agreement)
    train_rows, val_rows, test_rows = _fold_rows(ds, tcfg)
    log = {"partner": me, "round": round_, "plan_id": meta["plan_id"], "head_from": head_source,
           "n_train": int(train_rows.size), "seconds": {}, "cpu_seconds": {}}
    log["seconds"]["load"] = time.perf_counter() - t_start
    log["cpu_seconds"]["load"] = time.process_time() - c_start

    t, c = time.perf_counter(), time.process_time()
    sel = _selection_of(inputs)
    if head_source != "new" and (round_ - 1) % agreement.evaluate_every == 0 and val_rows.size:
        res, won = selection.consider(sel, round_ - 1, trunk, head, ds, val_rows, test_rows)
        log["validation_of_incoming"] = {"after_round": round_ - 1,
                                         "aggregate": evaluation.json_ready(res.aggregate),
                                         "selection": evaluation.json_ready(selection.figures(res)), "chosen_for": won}
    log["seconds"]["validate"] = time.perf_counter() - t
    log["cpu_seconds"]["validate"] = time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    opt = training.Optimizer(trunk, head, tcfg, expected_steps=training.steps_for(train_rows.size, tcfg,
                                                                                  tcfg.epochs_per_round))
    opt_path = _private_state(inputs, "optimizer")
    if opt_path:
        training.load_optimizer(opt_path, opt)
    log["optimizer_from"] = "previous round" if inputs.get("optimizer") else ("checkpoint" if opt_path else "new")
    stats = training.train_epochs(trunk, head, ds, train_rows, tcfg, epochs=tcfg.epochs_per_round,
                                  seed=training.pass_seed(tcfg.seed, me, round_), optimizer=opt)
    log["train"] = stats.as_dict()
    log["seconds"]["train"] = time.perf_counter() - t
    log["cpu_seconds"]["train"] = time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    # float64 difference of the float32 trunks (exact widening), array by array in flatten's order, with no
    # trunk-sized temporary, into a buffer the masking can overwrite word for word: fresh pages are slow to fault on
    # these machines (flattening both trunks first cost two more copies, 0.09 s of a demo train task)
    after = M.trunk_to_arrays(trunk, copy=False)
    buffer = secagg.in_place_buffer(sum(int(a.size) for a in after.values()))
    delta = buffer[:-1]
    _subtract_into(delta, after, before_arrays)
    weight = train_rows.size / WEIGHT_UNIT
    if agreement.differential_privacy is not None:  # the agreement's DP, never the plan's: clip, noise share
        try:
            delta, dp_log = privatize(delta, agreement.differential_privacy, agreement.threshold, scfg)
        except ProtocolError as exc:  # sends nothing: a ring too small for the noise, or a noised value past it
            raise guard.refuse("differential privacy", exc.what, exc.fix) from None
        weight = scfg.max_weight  # equal weights: the weight sum reveals only the survivor count
        log["dp"] = {**dp_log.as_dict(), "noise_multiplier": agreement.differential_privacy.noise_multiplier,
                     "delta": agreement.differential_privacy.delta}  # what this partner applied (its report's source)
    if not plain:
        # the words go into the delta's own buffer: in place, or after DP's noise (a new vector) over the delta
        masked = secagg.mask_update(meta["plan_id"], round_, me, sorted(publics), secret, publics, delta, weight,
                                    scfg, out=buffer.view(np.uint64) if scfg.ring_bits == 64 else None)
        secagg.save_masked_update(outputs["masked_update"], masked)
        log["clipped"] = int(masked.n_clipped)
    else:  # test-only, opted in by this partner itself: the same update in the clear (aggregator only)
        inside = np.count_nonzero((delta >= -scfg.clip) & (delta <= scfg.clip))  # NaN counts as clipped
        log["clipped"] = int(delta.size - inside)
        # in place, as the secure path masks in place: two fresh trunk-sized arrays here made the plain round (the
        # secure/plain ratio's baseline) slower than it need be (bench/round.py)
        np.clip(delta, -scfg.clip, scfg.clip, out=delta)
        np.multiply(delta, weight, out=delta)
        atomic_write(outputs["masked_update"],
                     lambda fh: np.savez(fh, weighted_update=delta, weight=np.float64(weight)))
    log["seconds"]["mask"] = time.perf_counter() - t
    log["cpu_seconds"]["mask"] = time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    _save_head(outputs["head"], head)
    training.save_optimizer(outputs["optimizer"], opt)
    selection.save_selection(outputs["selection"], sel)
    write_json(outputs["receipt"], guard.receipt(meta["plan_id"], round_, sorted(publics)) if not plain else
               {"partner": me, "round": round_, "plan_id": meta["plan_id"]})
    log["seconds"]["save"] = time.perf_counter() - t  # the private state for the next round (optimizer: 2x trunk)
    log["cpu_seconds"]["save"] = time.process_time() - c
    log["seconds"]["total"] = time.perf_counter() - t_start
    log["cpu_seconds"]["total"] = time.process_time() - c_start
    write_json(outputs["log"], log)


@tools.register
def evaluate(inputs, outputs, task_properties):
    from fedchem.algo import evaluation, selection

    guard = guard_of(inputs, "evaluate")
    meta = load_meta(inputs["trunk"])  # the arrays are read once, by _load_model
    guard.check_meta(meta)
    tcfg = guard.agreement.training
    ds = load_prepared(inputs["datasamples"].prepared_dir, verify=False)
    trunk, head, _, head_source = _load_model(inputs, ds, guard.agreement)
    _, val_rows, test_rows = _fold_rows(ds, tcfg)
    sel = _selection_of(inputs)
    results = selection.finish(sel, meta["round"], trunk, head, ds, val_rows, test_rows)
    doc = {"after_round": meta["round"], "head_from": head_source, "agreement": guard.fingerprint,
           "plan_id": meta["plan_id"], **selection.metrics_document(sel, results)}
    for key, res in (("predictions", "test"), ("chosen_validation", "validation"), ("last_test", "last_test")):
        evaluation.save_result_predictions(outputs[key], results[res])
    tuned = None
    if tcfg.finetune_epochs and head_source != "new":  # a third model: federated, then alone on its own folds
        from fedchem.algo import training

        train_rows = _fold_rows(ds, tcfg)[0]
        opt = training.Optimizer(trunk, head, tcfg, expected_steps=training.steps_for(train_rows.size, tcfg,
                                                                                      tcfg.finetune_epochs))
        opt_path = _private_state(inputs, "optimizer")
        if opt_path:
            training.load_optimizer(opt_path, opt)
        fsel, tuned = selection.finetune(trunk, head, ds, train_rows, val_rows, test_rows, tcfg, opt,
                                         lambda k: training.pass_seed(tcfg.seed, guard.me, meta["round"] + k),
                                         tcfg.finetune_epochs)
        doc["finetuned"] = {"epochs": tcfg.finetune_epochs, "selected": fsel.chosen(), "selection": fsel.summary(),
                            "validation": tuned["validation"].as_dict(), "test": tuned["test"].as_dict()}
    write_json(outputs["metrics"], doc)
    if tuned is not None:
        evaluation.save_result_predictions(outputs["finetuned"], tuned["test"])
    else:  # a declared output is always written: no rows when fine-tuning is off
        from fedchem.algo.predictions import save_predictions

        save_predictions(outputs["finetuned"], [], [], np.zeros((0, ds.Y_class.shape[1])),
                         np.zeros((0, ds.Y_regr.shape[1])))
