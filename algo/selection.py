"""Model selection on the partner's own validation fold: one rule for the alone baseline and the federated run.

The rule, per kind of task (the two heads are selected apart, on a shared trunk):
  classification: the highest mean validation AUC-PR over the non-auxiliary classification tasks (the report's
                  primary classification metric, and MELLODDY's; robust to the class imbalance of bioactivity data);
  regression:     the lowest mean censor-aware validation RMSE over the non-auxiliary regression tasks (it counts
                  "<"/">" values as bounds, which R² on uncensored values would drop; every task is on a log scale).
A candidate replaces the best only when strictly better, so ties keep the earlier one; a kind whose figure is never
finite keeps the last candidate. Validation loss is not used: it mixes BCE with squared pIC50 errors at an arbitrary
ratio, so one kind would decide for both (as the old rule did: AUC-ROC alone whenever classification existed).

Only validation figures enter a choice; the test fold is predicted after a candidate has been chosen and never read
here (tests/algo/test_selection.py permutes the test labels and sees no choice change). `Selection` is the state
both sides carry: train-local epoch by epoch, a federated partner round by round in its private `selection` output.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedchem.algo.evaluation import EvalResult, json_ready
from fedchem.opener.fileio import atomic_write

KINDS = ("classification", "regression")
RULE = {"classification": ("auc_pr", True), "regression": ("rmse", False)}  # kind -> (metric, higher is better)
FORMAT = "fedchem-selection/1"


def figures(result: EvalResult) -> dict[str, float]:
    """The selection figure of each kind present in `result` (NaN when no task of that kind could be scored)."""
    out = {}
    for kind, (metric, _) in RULE.items():
        if kind in result.aggregate:
            value = result.aggregate[kind].get(metric, float("nan"))
            out[kind] = float(value) if value is not None and math.isfinite(value) else float("nan")
    return out


def better(kind: str, value: float, best: float | None) -> bool:
    """Is `value` strictly better than `best` for this kind (NaN never is; anything finite beats None)?"""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if RULE[kind][1] else value < best


@dataclass
class Best:
    """The chosen candidate of one kind: its round (or epoch), its figure, and the predictions of that kind's tasks on
    the validation and test rows (columns of that kind only), made by that candidate."""

    index: int
    value: float | None
    validation: np.ndarray
    test: np.ndarray


@dataclass
class Selection:
    """Best candidate per kind so far, and every candidate's validation figures (the selection curve)."""

    best: dict[str, Best] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def offer(self, index: int, figs: dict[str, float]) -> list[str]:
        """Record candidate `index`'s validation figures; the kinds for which it is now the best. The caller then
        hands over that candidate's predictions with `keep` (only then is the test fold predicted)."""
        self.history.append({"index": int(index), **{k: v for k, v in figs.items()}})
        won = []
        for kind, value in figs.items():
            cur = self.best.get(kind)
            if cur is None or cur.value is None or better(kind, value, cur.value):
                won.append(kind)
        return won

    def keep(self, kind: str, index: int, value: float, validation: np.ndarray, test: np.ndarray) -> None:
        self.best[kind] = Best(int(index), float(value) if math.isfinite(value) else None,
                               np.asarray(validation, dtype=np.float32), np.asarray(test, dtype=np.float32))

    def chosen(self) -> dict[str, int]:
        """Kind -> chosen round (or epoch)."""
        return {k: b.index for k, b in self.best.items()}

    def summary(self) -> dict:
        """JSON-ready: the rule, the choice per kind with its figure, and the curve."""
        return json_ready({"rule": {k: {"metric": m, "higher_is_better": h} for k, (m, h) in RULE.items()},
                           "chosen": {k: {"index": b.index, "value": b.value} for k, b in self.best.items()},
                           "history": self.history})


def save_selection(path, sel: Selection) -> Path:
    """One .npz (no pickles): the JSON state plus each kind's kept predictions."""
    payload = {"format": np.asarray(FORMAT), "state": np.asarray(json.dumps(sel.summary()))}
    for kind, b in sel.best.items():
        payload[f"{kind}/validation"] = b.validation
        payload[f"{kind}/test"] = b.test
    return atomic_write(path, lambda fh: np.savez(fh, **payload))


def load_selection(path) -> Selection:
    """Read a file written by `save_selection` (ValueError if it is not one)."""
    with np.load(Path(path), allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != FORMAT:
            raise ValueError(f"{path} is not a fedchem selection file ({FORMAT})")
        state = json.loads(str(z["state"]))
        sel = Selection(history=state.get("history", []))
        for kind, c in state.get("chosen", {}).items():
            sel.best[kind] = Best(int(c["index"]), c["value"], z[f"{kind}/validation"], z[f"{kind}/test"])
    return sel


def consider(sel: Selection, index: int, trunk, head, data, validation_rows: np.ndarray,
             test_rows: np.ndarray, validate=None) -> tuple[EvalResult, list[str]]:
    """Evaluate candidate `index` (trunk + head) on the validation rows and offer it; for each kind it wins, predict
    the test rows (no test label is read) and keep both predictions. Returns the validation result and the kinds won.
    `validate` (default `evaluation.evaluate`) must return the predictions with the figures."""
    from fedchem.algo import evaluation

    val = (validate or evaluation.evaluate)(trunk, head, data, validation_rows)
    figs = figures(val)
    won = sel.offer(index, figs)
    if won:
        test = evaluation.predict(trunk, head, data.X[np.asarray(test_rows, dtype=np.int64)])
        for kind in won:
            pick = (lambda p: p.class_scores) if kind == "classification" else (lambda p: p.regr_preds)
            sel.keep(kind, index, figs[kind], pick(val.predictions), pick(test))
    return val, won


def chosen_predictions(sel: Selection, n_validation: int, n_test: int, n_class: int,
                       n_regr: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((validation class scores, validation regression values), (test ..., test ...)) of the chosen candidates:
    classification columns from the classification choice, regression columns from the regression choice."""
    out = []
    for split, n in (("validation", n_validation), ("test", n_test)):
        parts = []
        for kind, width in (("classification", n_class), ("regression", n_regr)):
            b = sel.best.get(kind)
            parts.append(np.zeros((n, 0), np.float32) if width == 0 or b is None else getattr(b, split))
        out.append(tuple(parts))
    return out[0], out[1]


def finish(sel: Selection, index: int, trunk, head, data, validation_rows: np.ndarray,
           test_rows: np.ndarray) -> dict[str, EvalResult]:
    """Offer the last candidate, then the results to report: "validation" and "test" of the chosen candidates
    (per kind), "last_validation" and "last_test" of the last one. What the federated evaluate task writes."""
    from fedchem.algo import evaluation

    last_val, _ = consider(sel, index, trunk, head, data, validation_rows, test_rows)
    last_test = evaluation.evaluate(trunk, head, data, test_rows)
    (vc, vr), (tc, tr) = chosen_predictions(sel, len(validation_rows), len(test_rows), data.Y_class.shape[1],
                                            data.Y_regr.shape[1])
    return {"validation": evaluation.evaluate_predictions(data, validation_rows, vc, vr),
            "test": evaluation.evaluate_predictions(data, test_rows, tc, tr),
            "last_validation": last_val, "last_test": last_test}


def metrics_document(sel: Selection, results: dict[str, EvalResult]) -> dict:
    """The selection part of a partner's metrics.json: chosen rounds, rule and curve, chosen and last figures."""
    return {"selected": sel.chosen(), "selection": sel.summary(), "validation": results["validation"].as_dict(),
            "test": results["test"].as_dict(),
            "last": {"validation": results["last_validation"].as_dict(), "test": results["last_test"].as_dict()}}


def finetune(trunk, head, data, train_rows: np.ndarray, validation_rows: np.ndarray, test_rows: np.ndarray, cfg,
             optimizer, seed_of, epochs: int) -> tuple[Selection, dict[str, EvalResult]]:
    """Train the federated model further on the partner's own training rows for `epochs` epochs (its own Adam
    state goes on: `optimizer`; epoch k draws `seed_of(k)`) and choose among those epochs by the same rule.
    Returns the selection and the chosen epochs' "validation" and "test" results. Trains trunk and head in place."""
    from fedchem.algo import evaluation, training
    from fedchem.algo.batches import BatchSource

    sel = Selection()
    source = BatchSource(data, train_rows)
    for k in range(1, epochs + 1):
        training.train_epochs(trunk, head, data, train_rows, cfg, epochs=1.0, seed=seed_of(k), optimizer=optimizer,
                              source=source)
        consider(sel, k, trunk, head, data, validation_rows, test_rows)
    (vc, vr), (tc, tr) = chosen_predictions(sel, len(validation_rows), len(test_rows), data.Y_class.shape[1],
                                            data.Y_regr.shape[1])
    return sel, {"validation": evaluation.evaluate_predictions(data, validation_rows, vc, vr),
                 "test": evaluation.evaluate_predictions(data, test_rows, tc, tr)}
