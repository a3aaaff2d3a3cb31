"""`fedchem prepare`: turn one partner's raw T0/T1/T2 files into its prepared dataset, on the partner's own machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from fedchem.opener.errors import ConfigError

HELP = """\
Prepare one partner's data for training, on that partner's own machine: read its MELLODDY-TUNER files (named in
the partner config's `data` section: T0 assays, T1 activities, T2 structures), standardise the structures with
RDKit, compute ECFP fingerprints as the consortium config says (scrambling the columns with the consortium
secret if `fingerprint.scramble`), aggregate replicate measurements, build one classification task per threshold
(qualifier-aware) and one regression task per assay with a censor matrix, assign scaffold folds keyed by the
consortium secret (one scaffold, one fold, at every partner), and drop tasks below the quorum of the consortium's
`preparation` section.

input files:
  T2  input_compound_id, smiles
  T1  input_compound_id, input_assay_id, standard_qualifier (<, <=, =, >=, >, ~; empty means =), standard_value,
      [standard_units: empty/log/p = already a log value; pM, nM, uM, µM, mM, M = concentration, converted to
      -log10(molar) with the qualifier flipped]
  T0  input_assay_id, assay_type, use_in_regression, is_binary, expert_threshold_1[.._5], direction (high|low),
      [auxiliary: true/false]

output (--out DIR, default: the partner config's prepared_dir): X.npz, Y_class.npz, Y_regr.npz, Y_censor.npz,
folds.npy, tasks.csv, compounds.csv, manifest.json (content hashes, settings) and prep_report.md (private: what was
kept and dropped, and why). Written to a temporary folder and renamed into place: a failure leaves no half-written
folder, and a re-run with the same inputs gives byte-identical files. An existing DIR is replaced only when it is a
previous `fedchem prepare` output (its manifest.json says so), or with --force; never when it holds the T0/T1/T2
files, the configs, the secret or the current folder. A file at DIR is refused, never moved aside. Unparsable SMILES are dropped and listed in
the report; any other bad input (unknown qualifier or unit, non-numeric value, missing column or file, duplicate
id, unknown assay or compound) stops the run with a message naming the file and line.

The consortium secret is read from where the consortium config's `secret` says (an environment variable or a
file). Nothing printed here contains a SMILES, a compound id or a value.

example:
  fedchem prepare --consortium raw/consortium.yaml --partner raw/partner-1/partner.yaml
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="featurise one partner's raw files (T0/T1/T2) into its prepared dataset",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--consortium", type=Path, required=True, metavar="CONSORTIUM.yaml",
                   help="the consortium config (fingerprint and preparation settings, where the secret is)")
    p.add_argument("--partner", type=Path, required=True, metavar="PARTNER.yaml",
                   help="this partner's config (its `data` files and `prepared_dir`)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: the partner's prepared_dir)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output folder that is not a previous `fedchem prepare` output (never "
                        "one holding the inputs or the configs)")
    p.add_argument("--workers", type=int, metavar="N", help="processes to use (default: every core available)")
    p.set_defaults(func=_prepare)

    a = sub.add_parser("agree", help="sign off the consortium config: keep this partner's own copy of the agreement",
                       description="Write this partner's signed copy of the consortium agreement (the consortium-wide "
                                   "settings, its fingerprint) into its private node folder (`node_dir`, default "
                                   "<prepared_dir>-node). The partner's own tasks refuse any plan of another "
                                   "agreement. `fedchem prepare` does this too.")
    a.add_argument("--consortium", type=Path, required=True, metavar="CONSORTIUM.yaml")
    a.add_argument("--partner", type=Path, required=True, metavar="PARTNER.yaml")
    a.set_defaults(func=_agree)


def _agree(args) -> int:
    from fedchem.orchestrator.agreement import agreement_of, sign_agreement
    from fedchem.orchestrator.config import check_partner, load_consortium, load_partner

    consortium = load_consortium(args.consortium)
    partner = load_partner(args.partner)
    check_partner(consortium, partner, args.partner)
    path = sign_agreement(consortium, partner)
    print(f"partner '{partner.name}' agreed to consortium '{consortium.name}' "
          f"(fingerprint {agreement_of(consortium).fingerprint_hex}); its copy: {path}")
    return 0



def _other_partners_files(consortium, me: str) -> tuple:
    """Where this machine holds other partners' files too (a demo, a test): their raw files and prepared folders,
    which this partner's output must never replace. In production the other partner configs are not here."""
    from fedchem.opener.errors import FedchemError
    from fedchem.orchestrator.config import load_partner

    out: tuple = ()
    for ref in consortium.partners:
        if ref.name == me or not ref.config.is_file():
            continue
        try:
            other = load_partner(ref.config)
        except FedchemError:
            continue
        out += (other.prepared_dir, *((other.data.t0, other.data.t1, other.data.t2) if other.data else ()))
    return out


def _prepare(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fedchem.opener.dataset import check_prepared_out
    from fedchem.opener.prepare import prepare_partner
    from fedchem.orchestrator.config import check_partner, load_consortium, load_partner

    consortium = load_consortium(args.consortium)
    partner = load_partner(args.partner)
    check_partner(consortium, partner, args.partner)
    if partner.data is None:
        raise ConfigError("the partner config has no `data` section (T0/T1/T2 files)", where=str(args.partner),
                          fix="add data: {t0: T0.csv, t1: T1.csv, t2: T2.csv}")
    out = args.out or partner.prepared_dir
    if out is None:
        raise ConfigError("no output folder: the partner config has no prepared_dir", where=str(args.partner),
                          fix="add `prepared_dir: DIR` to the partner config, or pass --out DIR")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1", where="--workers", fix="give a positive number")
    # every config of the consortium (other partners' files too) and the secret: never inside a replaced folder
    protected = (args.consortium, args.partner, consortium.secret.file, consortium.federation.aggregator_node,
                 *(ref.config for ref in consortium.partners))
    protected += _other_partners_files(consortium, partner.name)
    check_prepared_out(out, args.force, (partner.data.t0, partner.data.t1, partner.data.t2, *protected),
                       flag="--out" if args.out else f"prepared_dir ({args.partner})")
    secret = consortium.secret.read("consortium secret")

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description:<13}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        ids: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=total or None)
            bar.update(ids[stage], completed=done, total=total or None)

        s = prepare_partner(partner.data.t0, partner.data.t1, partner.data.t2, out, consortium.fingerprint,
                            consortium.preparation, secret, partner.name, progress=progress, workers=args.workers,
                            force=args.force, protected=protected)
    from fedchem.orchestrator.agreement import sign_agreement

    agreed = sign_agreement(consortium, partner)
    total = sum(s.timings.values())
    print(f"prepared partner '{s.partner}' in {total:.1f} s "
              f"({s.n_t2_rows / total if total else 0:,.0f} input compounds/s)")
    print(f"  compounds      {s.n_compounds:,} (from {s.n_t2_rows:,} T2 rows; {s.n_dropped_structures:,} "
              f"structures dropped)")
    print(f"  features       {s.n_features:,}")
    print(f"  tasks          {s.n_class_tasks} classification ({s.n_class_labels:,} labels), "
              f"{s.n_regr_tasks} regression ({s.n_regr_values:,} values); {s.n_dropped_tasks} dropped by quorum")
    print("  timings        " + ", ".join(f"{k} {v:.1f} s" for k, v in s.timings.items()))
    print(f"  output         {s.out_dir}")
    print(f"  report         {s.report_path} (private: what was dropped and why)")
    print(f"  agreement      {agreed} (this partner's signed copy of the consortium config)")
    return 0
