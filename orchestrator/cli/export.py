"""`fedchem export`: a prepared folder as SparseChem inputs, a finished run's model as a PyTorch state_dict."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SPARSECHEM_HELP = """\
Write a prepared folder in SparseChem's layout (github.com/melloddy/SparseChem), so that its train.py runs on
the files as they are: X.npz, Y_class.npz, Y_regr.npz, Y_censor.npz (scipy CSR), folds.npy, weights_class.csv
(task_id, training_weight, aggregation_weight, task_type) and weights_regr.csv (the same plus censored_weight).
Auxiliary tasks keep their training weight and get aggregation_weight 0. tasks.csv names each column's task;
README.txt gives the train.py command. The folder is private to the partner, like the prepared folder.

example:
  fedchem export sparsechem raw/prepared/partner-1 --out sparsechem-input
"""

MODEL_HELP = """\
Write the final global trunk of a finished run and this partner's own head as one PyTorch file: torch.save of
{"state_dict": trunk.* and head.* tensors, "config": model and fingerprint settings, task names}, readable with
torch.load(FILE, weights_only=True). It holds the private head: written owner-only (0600), for this partner alone.

example:
  fedchem export model runs/first --partner partner-1 --out model.pt
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export prepared data for SparseChem, or a model as a state_dict",
                            description="Hand fedchem's files to other tools, unchanged.")
    kinds = parser.add_subparsers(title="what", metavar="WHAT")
    p = kinds.add_parser("sparsechem", help="a prepared folder as SparseChem inputs", description=SPARSECHEM_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prepared", type=Path, metavar="PREPARED_DIR", help="a folder written by `fedchem prepare`")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty output folder")
    p.set_defaults(func=_sparsechem)
    m = kinds.add_parser("model", help="a finished run's trunk and this partner's head as one state_dict file",
                         description=MODEL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("run", type=Path, metavar="RUN_DIR", help="the run folder `fedchem run` wrote")
    m.add_argument("--partner", required=True, metavar="NAME", help="the partner whose head is exported")
    m.add_argument("--prepared", type=Path, default=None, metavar="DIR",
                   help="the partner's prepared folder, for the task names (default: names stored with the run)")
    m.add_argument("--out", type=Path, required=True, metavar="FILE", help="output file, e.g. model.pt")
    m.set_defaults(func=_model)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def _sparsechem(args) -> int:
    from fedchem.orchestrator.export import export_sparsechem

    e = export_sparsechem(args.prepared, args.out, force=args.force)
    print(f"exported {e.n_rows} compounds, {e.n_class_tasks} classification + {e.n_regr_tasks} regression tasks "
          f"for SparseChem: {e.out_dir}")
    print(f"train with (from that folder): {e.command}")
    return 0


def _model(args) -> int:
    from fedchem.orchestrator.export import export_model

    out = export_model(args.run, args.partner, args.out, args.prepared)
    print(f"exported the final trunk and partner '{args.partner}''s head: {out} (owner-only; load with "
          f"torch.load(path, weights_only=True))")
    return 0
