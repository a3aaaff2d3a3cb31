"""`fedchem data <set>`: build MELLODDY-TUNER partner folders (T0/T1/T2 + configs) from real public data sets."""

from __future__ import annotations

import argparse
from pathlib import Path


_COMMON = """
output (--out DIR): DIR/partner-<i>/{T0,T1,T2}.csv + partner.yaml + build.json (that partner's own counts and
task groups), DIR/consortium.yaml (2+ partners), DIR/consortium.secret (random, mode 0600; kept when --force
replaces a build) and DIR/build.json (provenance and partner names only). Written to a temporary folder and
renamed into place; an existing non-empty DIR is refused without --force. Re-running gives identical files (a new DIR gets a new secret). Next step:
  fedchem prepare --consortium DIR/consortium.yaml --partner DIR/partner-1/partner.yaml
"""

SETS = {
    "moleculeace": ("MoleculeACE 3.0.0: 30 ChEMBL targets (Ki/EC50), the default data of `make demo`", """\
source:   the PyPI wheel MoleculeACE==3.0.0 (MIT; data from ChEMBL), fetched with `pip download --no-deps` into
          $FEDCHEM_CACHE or <repo>/.cache (or --cache DIR), sha256-pinned, read with zipfile (never installed):
          MoleculeACE/Data/benchmark_data/CHEMBL*_{Ki,EC50}.csv, 48,714 measurements, 35,633 compounds.
values:   the files hold y = -log10(nM); written as pKi / pEC50 = 9 - log10(exp_mean nM), empty units.
          One assay per file (e.g. CHEMBL204_Ki), thresholds 6 / 7 / 8 (1 uM, 100 nM, 10 nM), direction high.
split:    targets (default): the 30 targets, sorted, dealt round-robin to the partners - different tasks over
          partially overlapping chemistry (9,507 compounds are measured on more than one target);
          compounds: every target's compounds split by sha256(SMILES) mod N - the same tasks at every partner.
speed:    --max-per-target K keeps K compounds per target (a stable hash-ordered subset) for a quick demo.
"""),
    "tox21": ("Tox21: 12 binary nuclear-receptor / stress-response assays, 7,831 compounds", """\
source:   fedchem/opener/public/data/tox21.csv.gz (MoleculeNet via chemprop, MIT), shipped with
          fedchem, sha256-pinned.
values:   binary 0/1 (is_binary true, not used in regression); compound ids C<row>.
split:    compounds by sha256(SMILES) mod N; every partner has the 12 tasks.
"""),
    "toxcast": ("ToxCast: 617 binary assays, partners by assay provider", """\
source:   fedchem/opener/public/data/toxcast.csv.gz (MoleculeNet via chemprop, MIT), sha256-pinned.
values:   binary 0/1; compound ids C<row>.
split:    by assay provider (task-name prefix: ATG, NVS, BSK, TOX21, APR, ...; 12 providers): largest provider
          first, each to the partner with the fewest labels so far. No provider is at two partners; compounds
          overlap between partners.
"""),
    "herg": ("ChEMBL hERG IC50 with real qualifiers, partners by assay technology", """\
source:   fedchem/opener/public/data/chembl_herg.csv.gz (PatWalters/practical_cheminformatics_tutorials, MIT; data from
          ChEMBL), sha256-pinned. 8,989 IC50s, 7,438 compounds (ids: ChEMBL molecule ids).
values:   IC50 in nM (standard_units nM) with ChEMBL's real standard_relation (=, >, <, >=, <=, ~); preparation
          converts to pIC50 and flips the qualifier ("< 10 nM" -> "> 8"). Thresholds pIC50 5 and 6, direction
          high, also used in regression.
split:    assay technology read from the assay description (first matching rule): patch_clamp (patch clamp,
          Q-patch, IonWorks, electrophysiology, current, ...), flux (Rb/thallium flux, FLIPR, ...), binding
          (displacement, [3H]/[35S] ligands, dofetilide, fluorescence polarisation, ...), other. Technologies are
          dealt to partners, largest first, to the least-loaded one; one assay per technology (at most 4 partners).
"""),
    "biogen": ("Biogen ADME: 6 log-scale endpoints, assay limits as censored values", """\
source:   fedchem/opener/public/data/biogen_adme.csv.gz (molecularinformatics/Computational-ADME, MIT), sha256-pinned.
values:   log10 as in the source, empty units. An endpoint's min (max) is an assay limit when at least
          max(5, 1% of its values) sit exactly on it; those values become "<" (lower) / ">" (upper): HLM and RLM
          clearance at their lower limit, human/rat PPB at 100% unbound. Thresholds (direction): HLM CLint 1.0,
          1.5 (high); RLM CLint 2.0, 2.5 (high); MDR1-MDCK ER log2, log5 (high); solubility 1.0, 1.5 (low);
          PPB human/rat % unbound 0.0, 1.0 (low).
split:    compounds by sha256(SMILES) mod N; every partner has the 6 endpoints.
"""),
    "muv": ("MUV: 93,087 compounds, 17 sparse binary tasks (for scale benchmarks)", """\
source:   fedchem/opener/public/data/muv.csv.gz (chemprop, MIT), sha256-pinned.
values:   binary 0/1; compound ids C<row>.
split:    compounds by sha256(SMILES) mod N (default --partners 1: one partner folder, no consortium.yaml).
"""),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="build partner folders (T0/T1/T2) from real public data",
        description="Build MELLODDY-TUNER partner folders (T0 assays, T1 activities, T2 structures) plus the "
                    "consortium and partner configs from a real public data set, ready for `fedchem prepare`.",
        epilog=_COMMON, formatter_class=argparse.RawDescriptionHelpFormatter)
    sets = parser.add_subparsers(title="data sets", metavar="SET")
    for name, (short, details) in SETS.items():
        p = sets.add_parser(name, help=short, description=short, epilog=details + _COMMON,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--partners", type=int, default=1 if name == "muv" else 3, metavar="N",
                       help="number of partner folders (default: %(default)s)")
        p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (the build)")
        p.add_argument("--force", action="store_true", help="replace an existing non-empty output folder")
        if name == "moleculeace":
            p.add_argument("--split", choices=["targets", "compounds"], default="targets",
                           help="split by target (default) or by compound")
            p.add_argument("--max-per-target", type=int, default=None, metavar="K",
                           help="keep at most K compounds per target (default: all)")
            p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                           help="download cache (default: $FEDCHEM_CACHE or <repo>/.cache)")
        p.set_defaults(func=handler, data_set=name)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def handler(args) -> int:
    from fedchem.orchestrator.demo import public_data as pd

    name = args.data_set
    if name == "moleculeace":
        summary = pd.build_moleculeace(args.out, args.partners, args.split, args.max_per_target, args.cache,
                                       args.force)
    else:  # the sets shipped as package data (fedchem/opener/public/data, sha256-checked when read)
        build = getattr(pd, f"build_{name}")
        summary = build(args.out, args.partners, force=args.force)
    print_summary(summary)
    return 0


def print_summary(summary) -> None:
    """Counts per partner (no structures, ids or values) and the next command to run."""
    print(f"built {summary.set_name} into {summary.out_dir} ({len(summary.partners)} partner"
          f"{'s' if len(summary.partners) != 1 else ''})")
    for p in summary.partners:
        quals = " ".join(f"{q}:{n}" for q, n in p.qualifiers.items())
        groups = ", ".join(p.groups) if len(p.groups) <= 6 else f"{len(p.groups)} groups"
        print(f"  {p.name:<12} compounds {p.compounds:>6}  assays {p.assays:>4}  measurements {p.measurements:>7}"
              f"  qualifiers {quals}  [{groups}]")
    for note in summary.notes:
        print(f"  note: {note}")
    if summary.consortium is not None:
        first = summary.partners[0].folder / "partner.yaml"
        print(f"next: fedchem prepare --consortium {summary.consortium} --partner {first}")
