"""`fedchem predict`: a partner scores new structures with the federated trunk and its own private head."""

from __future__ import annotations

import argparse
from pathlib import Path

from fedchem.opener.errors import ConfigError

HELP = """\
Score new structures with this partner's federated model: the run's final global trunk and the partner's own
head. The SMILES go through exactly the preparation of training (RDKit standardisation, ECFP with the consortium's
settings, column scrambling with the consortium secret), so the model sees them as it saw its training data.

Input (--smiles FILE): a CSV with a header (a `smiles` column, or name it with --smiles-column; ids are taken
from --id-column, or from `input_compound_id` when present), a .tsv, or a .smi/.txt file (SMILES then an optional
id per line).

Output (--out FILE, written atomically): for each input row, its status ("ok", or why it was not scored: e.g. a
SMILES syntax error) and, per task, the prediction and its uncertainty: for a classification task the probability
of "active" (the task's threshold and direction, see the partner's prep report), for a regression task the
predicted value on the task's log scale (e.g. pIC50). The uncertainty is the standard deviation over
--mc-samples passes with dropout on (MC dropout); empty with --mc-samples 0 or a model without dropout.
--layout long writes one line per row and task instead. When the run's own figures (metrics.json, the report)
are of an earlier round chosen on validation, it says so: only the final model is kept. --out must not be a folder
or one of the inputs; an existing file there is replaced. A bad SMILES never stops the others from being scored;
nothing printed here contains a SMILES.

example:
  fedchem predict --consortium raw/consortium.yaml --partner raw/partner-1/partner.yaml --run runs/first \\
      --smiles new_compounds.csv --out predictions.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score new SMILES with the federated trunk and this partner's own head",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--consortium", type=Path, required=True, metavar="CONSORTIUM.yaml",
                   help="the consortium config (fingerprint settings, where the secret is)")
    p.add_argument("--partner", type=Path, required=True, metavar="PARTNER.yaml", help="this partner's config")
    p.add_argument("--run", type=Path, required=True, metavar="RUN_DIR", help="the run folder `fedchem run` wrote")
    p.add_argument("--smiles", type=Path, required=True, metavar="FILE", help="the structures to score")
    p.add_argument("--smiles-column", default="smiles", metavar="NAME", help="SMILES column of a CSV (default: smiles)")
    p.add_argument("--id-column", metavar="NAME", help="id column copied to the output (default: input_compound_id "
                                                        "if present)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="output CSV")
    p.add_argument("--mc-samples", type=int, default=30, metavar="N",
                   help="MC-dropout passes for the uncertainty (default: 30; 0: one deterministic pass)")
    p.add_argument("--layout", choices=["wide", "long"], default="wide",
                   help="wide: one line per input row (default); long: one line per row and task")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="processes for RDKit (default: all cores)")
    p.set_defaults(func=_predict)


def _predict(args) -> int:
    from fedchem.opener.parallel import default_workers
    from fedchem.orchestrator import predict as ps
    from fedchem.orchestrator.config import check_partner
    from fedchem.orchestrator.config import load_consortium, load_partner

    if args.mc_samples < 0:
        raise ConfigError("--mc-samples must be 0 or more", where="--mc-samples", fix="e.g. --mc-samples 30")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1", where="--workers", fix="give a positive number")
    consortium = load_consortium(args.consortium)
    partner = load_partner(args.partner)
    check_partner(consortium, partner, args.partner)
    ps.check_out_file(args.out, (args.smiles, args.consortium, args.partner, consortium.secret.file))
    secret = consortium.secret.read("consortium secret")
    ps.check_secret(args.run, partner.name, partner.prepared_dir, consortium.fingerprint, secret)
    model = ps.load_partner_model(args.run, partner.name, partner.prepared_dir)
    if model.fingerprint != consortium.fingerprint:
        raise ConfigError("the run was trained with other fingerprint settings than this consortium config's",
                          where=str(args.consortium), fix="use the consortium config the run was started with")
    smiles, ids, id_column = ps.read_smiles_file(args.smiles, args.smiles_column, args.id_column)
    feats = ps.featurise_smiles(smiles, consortium.fingerprint, consortium.preparation.standardize, secret,
                                workers=args.workers or default_workers())
    scored = ps.score(model, feats, mc_samples=args.mc_samples)
    ps.write_predictions_csv(args.out, model, scored, ids, id_column, layout=args.layout)
    n_bad = sum(1 for s in scored.status if s != "ok")
    print(f"scored {len(smiles) - n_bad} of {len(smiles)} structures for partner '{partner.name}' "
          f"({len(model.class_tasks)} classification + {len(model.regr_tasks)} regression tasks): {args.out}")
    if n_bad:
        print(f"  {n_bad} row(s) could not be scored; the status column says why")
    note = ps.selection_note(args.run, partner.name)
    if note:
        print(f"  {note}")
    return 0
