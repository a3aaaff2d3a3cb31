"""The prep report: a markdown page for the partner saying what was kept, what was dropped and why.

It is private to the partner (it names the partner's own compound ids and tasks) and stays in the prepared folder.
It holds no timings, so that a re-run with the same inputs is byte-identical; `fedchem prepare` prints timings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReportData:
    """Everything the report shows; plain values filled in by the pipeline."""

    partner: str
    counts: dict[str, int]
    settings: dict[str, str]
    standardisation: list[str]
    not_done: str
    scaffold_rule: str
    aggregation: dict[str, int]
    fold_sizes: list[int]
    kept_tasks: list[dict[str, str]]
    dropped_tasks: list[tuple[str, str, str]]  # (task, kind, reason)
    assay_notes: list[tuple[str, str]]  # (assay, note)
    dropped_structures: list[tuple[int, str, str]]  # (T2 line, input_compound_id, reason)
    notes: list[str] = field(default_factory=list)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


_COUNT_LABELS = {
    "t2_rows": "T2 structure rows",
    "t2_repeated_rows": "T2 rows repeating an earlier row exactly (ignored)",
    "structures_dropped": "T2 compounds dropped (structure could not be parsed/standardised)",
    "structures": "distinct standardised structures",
    "structures_merged": "structures shared by several input compound ids (merged into one row)",
    "t1_rows": "T1 activity rows",
    "t1_rows_without_value": "T1 rows without a value (empty, NaN or infinite; dropped, as MELLODDY-TUNER does)",
    "t1_rows_outside_credibility_range": "T1 rows outside their assay type's credibility range (dropped)",
    "t1_rows_dropped_structure": "T1 rows dropped with their structure",
    "pairs": "(structure, assay) pairs after replicate aggregation",
    "structures_unlabelled": "structures left without any label in a kept task (not written)",
    "rows": "compounds written (rows of X and Y)",
    "features": "feature columns",
    "class_tasks": "classification tasks kept",
    "regr_tasks": "regression tasks kept",
    "tasks_dropped": "tasks dropped by the quorum filters",
}


def render(d: ReportData) -> str:
    """The report as markdown."""
    L = [f"# Preparation report: partner `{d.partner}`", "",
         "Private to this partner: it names the partner's own compound ids, assays and tasks. "
         "Timings are printed by `fedchem prepare`, not stored here, so re-runs stay byte-identical.", "",
         "## Summary", ""]
    L += _table(["what", "count"], [[_COUNT_LABELS.get(k, k), v] for k, v in d.counts.items()])
    L += ["", "## Settings", ""]
    L += _table(["setting", "value"], [[k, v] for k, v in d.settings.items()])
    L += ["", "## Standardisation (RDKit rdMolStandardize)", ""]
    L += [f"{i}. {s}" for i, s in enumerate(d.standardisation, 1)]
    L += ["", f"Not done: {d.not_done}.", "", f"Scaffold for folds: {d.scaffold_rule}.", ""]
    L += ["## Replicates and censoring", "",
          "Per (structure, assay): the mean of the exact values if there are any (censored replicates then ignored); "
          "else the tightest bound if all bounds point the same way; else the pair is dropped. Concentrations were "
          "converted to -log10(molar) with the qualifier flipped.", ""]
    L += _table(["what", "count"], [[k, v] for k, v in d.aggregation.items()])
    L += ["", "## Folds", ""]
    L += _table(["fold", "compounds"], [[i, n] for i, n in enumerate(d.fold_sizes)])
    L += ["", f"## Tasks kept ({len(d.kept_tasks)})", ""]
    cols = ["task", "kind", "threshold", "direction", "auxiliary", "weight", "n_labels", "n_actives", "n_inactives",
            "n_censored"]
    L += _table(cols, [[t[c] for c in cols] for t in d.kept_tasks]) if d.kept_tasks else ["(none)"]
    L += ["", f"## Tasks dropped ({len(d.dropped_tasks)})", ""]
    L += _table(["task", "kind", "reason"], [list(t) for t in d.dropped_tasks]) if d.dropped_tasks else ["(none)"]
    if d.assay_notes:
        L += ["", "## Assays that define no task", ""]
        L += _table(["assay", "note"], [list(a) for a in d.assay_notes])
    L += ["", f"## Structures dropped ({len(d.dropped_structures)})", ""]
    if d.dropped_structures:
        L += _table(["T2 line", "input_compound_id", "reason"], [list(s) for s in d.dropped_structures])
    else:
        L += ["(none)"]
    if d.notes:
        L += ["", "## Notes", ""] + [f"- {n}" for n in d.notes]
    return "\n".join(L) + "\n"
