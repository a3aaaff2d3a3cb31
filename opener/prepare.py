"""The partner preparation pipeline: raw T0/T1/T2 files -> a prepared folder (X, Y, folds, tasks, manifest, report).

Order: read and check every file and every activity row (errors surface before the slow part), standardise,
fingerprint and scaffold each distinct input structure in one pass (all cores, `chemistry`), merge input compounds
with the same standardised structure into one row, aggregate replicates, assign scaffold folds, build and filter
tasks, scramble columns, write atomically with `save_prepared`. Compound rows are the distinct standardised
structures that carry at least one label in a kept task, in order of first appearance in T2; compounds.csv gives
each row's input ids (several ids of one structure are joined with ';'). Same inputs and settings ->
byte-identical output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fedchem.opener import (activities, chemistry, folds, prep_report, quorum, raw, scramble, standardize,
                            thresholds)
from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.dataset import PreparedDataset, check_prepared_out, save_prepared
from fedchem.opener.fileio import sha256_file
from fedchem.opener.errors import DataError
from fedchem.opener.parallel import default_workers
from fedchem.opener.secret_check import MANIFEST_KEY, secret_fingerprints
from fedchem.opener.tasks import build_tasks, task_table

Progress = Callable[[str, int, int], None]  # (stage, done, total)
STAGES = ["read", "chemistry", "tasks", "write"]


@dataclass
class PrepSummary:
    """What `prepare_partner` did: counts (no SMILES, ids or values) and per-stage wall-clock seconds."""

    partner: str
    out_dir: Path
    report_path: Path
    n_compounds: int
    n_features: int
    n_class_tasks: int
    n_regr_tasks: int
    n_dropped_tasks: int
    n_dropped_structures: int
    n_class_labels: int
    n_regr_values: int
    n_t2_rows: int
    n_t1_rows: int
    timings: dict[str, float] = field(default_factory=dict)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _digest(paths: list[Path]) -> str | list[str]:
    """sha256 of one input file, or the list of them when several were given."""
    return sha256_file(paths[0]) if len(paths) == 1 else [sha256_file(p) for p in paths]


def _matrix(tasks: list, kind: str, new_row: np.ndarray, n_rows: int, values: str) -> sp.csr_matrix:
    """CSR (rows x tasks of `kind`) from the tasks' cells; explicit zeros are kept (a 0.0 value is a value)."""
    sel = [t for t in tasks if t.kind == kind]
    if not sel:
        return sp.csr_matrix((n_rows, 0), dtype=np.float32)
    rows = np.concatenate([new_row[t.rows] for t in sel])
    cols = np.concatenate([np.full(len(t.rows), j, np.int64) for j, t in enumerate(sel)])
    data = np.concatenate([getattr(t, values) for t in sel]).astype(np.float32)
    m = sp.coo_matrix((data, (rows, cols)), shape=(n_rows, len(sel))).tocsr()
    m.sort_indices()
    return m


def prepare_partner(t0: Path | Sequence[Path], t1: Path | Sequence[Path], t2: Path, out_dir: Path,
                    fingerprint: FingerprintConfig, preparation: PreparationConfig, secret: bytes, partner_name: str,
                    progress: Progress | None = None, workers: int | None = None, force: bool = False,
                    protected: tuple = ()) -> PrepSummary:
    """Prepare one partner's raw files into `out_dir` (replaced atomically, and only if it is a previous prepared
    folder or `force` is given; never a folder holding the inputs or the `protected` configs). T0 and T1 may each be
    several files (concatenated, as MELLODDY-TUNER allows). Raises DataError on bad input; on any failure nothing is
    written."""
    t0, t1 = raw.paths_of(t0), raw.paths_of(t1)
    t2, out_dir = Path(t2), Path(out_dir)
    protected = (*t0, *t1, t2, *protected)
    check_prepared_out(out_dir, force, protected)  # before the slow part
    workers = workers or default_workers()
    timings: dict[str, float] = {}
    report = progress or (lambda stage, done, total: None)

    @contextmanager
    def stage(name: str):
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start

    # 1. read and check everything that can be checked without chemistry
    with stage("read"):
        report("read", 0, 3)
        assays = raw.read_t0(t0)
        structs = raw.read_t2(t2)
        t2_index = {cid: i for i, cid in enumerate(structs.ids)}
        t1_rows = raw.read_t1(t1, assays, set(t2_index))
        meas = activities.read_measurements(t1_rows, str(t1[0]), assays, t2_index,
                                            dict(preparation.credibility_range))
        report("read", 3, 3)

    # 2. standardise, fingerprint and scaffold each distinct input text in one pass (opener/chemistry.py); input
    #    compounds with the same structure share one row (first appearance in T2 first)
    n_t2 = len(structs.ids)
    with stage("chemistry"):
        done = [0]

        def advance_chem(n: int) -> None:
            done[0] += n
            report("standardise + fingerprints", done[0], len(distinct_input))

        distinct_input = list(dict.fromkeys(structs.smiles))  # the same text is standardised once
        chem = chemistry.chemistry_all(distinct_input, preparation.standardize, fingerprint, workers, advance_chem)
        text_index = {text: k for k, text in enumerate(distinct_input)}
        unique: dict[str, int] = {}
        first_text: list[int] = []  # per structure, the distinct input text whose features it takes
        struct_of_t2 = np.full(n_t2, -1, dtype=np.int64)
        errors = []
        for i, text in enumerate(structs.smiles):
            k = text_index[text]
            can, err = chem.smiles[k], chem.errors[k]
            errors.append(err)
            if can:
                j = unique.setdefault(can, len(unique))
                if j == len(first_text):
                    first_text.append(k)
                struct_of_t2[i] = j
        smiles = list(unique)
        feats = chemistry.rows_of(chem, np.asarray(first_text, dtype=np.int64), fingerprint)
    bad_struct = {j for j, e in enumerate(feats.errors) if e}
    for i in range(n_t2):
        if struct_of_t2[i] in bad_struct:
            errors[i] = feats.errors[struct_of_t2[i]]
            struct_of_t2[i] = -1
    dropped_structures = [(structs.lines[i], structs.ids[i], e) for i, e in enumerate(errors) if e]

    # 4. activities -> labels -> tasks -> quorum
    with stage("tasks"):
        report("tasks", 0, 1)
        meas, n_t1_dropped = activities.remap(meas, struct_of_t2)
        agg = activities.aggregate(meas)
        fold = folds.assign_folds(feats.scaffolds, secret, preparation.n_folds)
        resolved, threshold_notes = thresholds.resolve(list(assays.values()), agg, preparation.min_actives_total,
                                                       preparation.min_inactives_total)
        candidates, assay_notes = build_tasks(resolved, agg)
        kept, dropped = quorum.apply_quorum(candidates, fold, preparation)
        if not kept:
            first = dropped[0][2] if dropped else "no assay defines a task"
            raise DataError(f"no task passes the quorum filters ({len(dropped)} candidate task(s) dropped; "
                            f"the first: {first})", where=f"partner '{partner_name}', {', '.join(map(str, t0))}",
                            fix="add data, or lower the min_* values in the consortium config's `preparation` "
                                "section (every partner must agree on them)")
        labelled = np.zeros(len(smiles), dtype=bool)
        for task in kept:
            labelled[task.rows] = True
        keep_rows = np.flatnonzero(labelled)
        new_row = np.full(len(smiles), -1, dtype=np.int64)
        new_row[keep_rows] = np.arange(len(keep_rows))
        n_rows = len(keep_rows)
        Y_class = _matrix(kept, "classification", new_row, n_rows, "labels")
        Y_regr = _matrix(kept, "regression", new_row, n_rows, "labels")
        Y_censor = _matrix(kept, "regression", new_row, n_rows, "censor")
        X = feats.X[keep_rows]
        perm_digest = ""
        if fingerprint.scramble:
            perm = scramble.permutation(secret, fingerprint.size)
            perm_digest = scramble.permutation_digest(perm)
            X = scramble.scramble_columns(X, perm)
        ids_of_struct: list[list[str]] = [[] for _ in smiles]
        for i in range(n_t2):
            if struct_of_t2[i] >= 0:
                ids_of_struct[struct_of_t2[i]].append(structs.ids[i])
        compound_ids = [";".join(ids_of_struct[j]) for j in keep_rows]
        task_rows = task_table(kept, preparation.auxiliary_weight)
        folds_out = fold[keep_rows]
        report("tasks", 1, 1)

    # 5. manifest, report, atomic write
    with stage("write"):
        report("write", 0, 1)
        counts = {
            "t2_rows": n_t2 + structs.n_repeated_rows, "t2_repeated_rows": structs.n_repeated_rows,
            "structures_dropped": len(dropped_structures), "structures": len(smiles) - len(bad_struct),
            "structures_merged": sum(len(x) > 1 for x in ids_of_struct),
            "t1_rows": len(t1_rows), "t1_rows_without_value": meas.n_no_value,
            "t1_rows_outside_credibility_range": meas.n_outside_range, "t1_rows_dropped_structure": n_t1_dropped,
            "pairs": len(agg.rows),
            "structures_unlabelled": len(smiles) - len(bad_struct) - n_rows, "rows": n_rows,
            "features": fingerprint.size, "class_tasks": Y_class.shape[1], "regr_tasks": Y_regr.shape[1],
            "tasks_dropped": len(dropped),
        }
        steps = standardize.STEPS if preparation.standardize else standardize.STEPS_OFF
        settings = {
            "fingerprint": (f"ECFP radius {fingerprint.radius} ({fingerprint.kind}, {fingerprint.size} columns, "
                            f"chirality {'on' if fingerprint.use_chirality else 'off'})"),
            "scrambled columns": f"yes (permutation sha256 {perm_digest})" if fingerprint.scramble else "no",
            "folds": f"{preparation.n_folds}, by keyed hash of the scaffold",
            "quorum (classification)": (f"actives >= {preparation.min_actives_total} and inactives >= "
                                        f"{preparation.min_inactives_total} in total; >= "
                                        f"{preparation.min_actives_per_fold} / {preparation.min_inactives_per_fold}"
                                        " in every fold"),
            "quorum (regression)": (f">= {preparation.min_regression_values} uncensored values in total, >= "
                                    f"{preparation.min_regression_values_per_fold} in every fold"),
            "auxiliary task weight": format(preparation.auxiliary_weight, "g"),
            "RDKit": _version("rdkit"),
        }
        aggregation = {"activity rows used": len(meas.rows), "pairs with replicates": agg.n_replicated_pairs,
                       "pairs where censored replicates were ignored beside exact ones": agg.n_censored_ignored,
                       "pairs dropped: only conflicting bounds (< and >)": agg.n_conflicting_dropped}
        md = prep_report.render(prep_report.ReportData(
            partner=partner_name, counts=counts, settings=settings, standardisation=steps,
            not_done=standardize.NOT_DONE, scaffold_rule=folds.SCAFFOLD_RULE, aggregation=aggregation,
            fold_sizes=np.bincount(folds_out, minlength=preparation.n_folds).tolist(),
            kept_tasks=task_rows, dropped_tasks=dropped, assay_notes=assay_notes,
            dropped_structures=dropped_structures, notes=threshold_notes))
        manifest = {
            "partner": partner_name,
            "fedchem_version": _version("fedchem"),
            "rdkit_version": _version("rdkit"),
            "fingerprint": fingerprint.model_dump(mode="json"),
            "preparation": preparation.model_dump(mode="json"),
            "scramble_permutation_sha256": perm_digest or None,
            MANIFEST_KEY: secret_fingerprints(secret, fingerprint),  # keyed: tells the secret apart, reveals nothing
            "standardisation": steps,
            "scaffold_rule": folds.SCAFFOLD_RULE,
            "fold_rule": "HMAC-SHA256(consortium secret, 'fedchem-fold/v1' NUL scaffold), first 8 bytes mod n_folds",
            "counts": counts,
            "inputs_sha256": {"t0": _digest(t0), "t1": _digest(t1), "t2": sha256_file(t2)},
        }
        ds = PreparedDataset(X=X, Y_class=Y_class, Y_regr=Y_regr, Y_censor=Y_censor, folds=folds_out,
                             tasks=task_rows, compound_ids=compound_ids)
        save_prepared(ds, out_dir, report_md=md, extra_manifest=manifest, force=force, protected=protected)
        report("write", 1, 1)
    return PrepSummary(
        partner=partner_name, out_dir=out_dir, report_path=out_dir / "prep_report.md", n_compounds=n_rows,
        n_features=fingerprint.size, n_class_tasks=Y_class.shape[1], n_regr_tasks=Y_regr.shape[1],
        n_dropped_tasks=len(dropped), n_dropped_structures=len(dropped_structures),
        n_class_labels=int(Y_class.nnz), n_regr_values=int(Y_regr.nnz), n_t2_rows=n_t2, n_t1_rows=len(t1_rows),
        timings=timings)
