"""`fedchem pull`: a partner fetches its own results of a run with its own token, on its own machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from fedchem.opener.errors import ConfigError

HELP = """\
Fetch this partner's own results of a run into RUN_DIR/partners/NAME/ (owner-only: 0700 folders, 0600 files):
its head after each round (checkpoints/), its per-round logs (logs/), and after the final evaluation its metrics
(metrics.json), test predictions (test_predictions.npz), the final global trunk (trunk.npz) and head (head.npz).

The run's ledger (RUN_DIR/ledger.json, a copy from the operator is enough) lists what there is to pull: task keys
and output names, nothing private. Remote mode: give this partner's own config (--partner-config): its backend URL
and its own API token (substra.token_env / token_file); the operator never holds it. Before each download the
partner's own backend is asked that the task ran on this organisation and that the output is readable by it alone;
anything else is refused. Pulling again fetches only what is new (e.g. after each round, or after a resume).
Local mode (--backend subprocess, one machine plays every partner): `fedchem run` pulls for each partner through
this same code; `fedchem pull` then checks that everything the ledger lists is there.

examples:
  fedchem pull runs/first --partner-config raw/partner-1/partner.yaml
  fedchem pull runs/first --partner partner-1   # local mode: check that its results are complete
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="a partner fetches its own results of a run (own token, own machine)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder (its ledger.json)")
    p.add_argument("--partner", metavar="NAME", help="this partner's name (default: the name in --partner-config)")
    p.add_argument("--partner-config", type=Path, metavar="PARTNER.yaml",
                   help="this partner's config: its Substra URL and token (remote mode)")
    p.set_defaults(func=_pull)


def _pull(args) -> int:
    from fedchem.orchestrator.ledger import Ledger
    from fedchem.orchestrator.run.pull import missing, partner_dir, pull_partner

    ledger = Ledger.load(args.run_dir)
    partner = None
    if args.partner_config is not None:
        from fedchem.orchestrator.config import load_partner

        partner = load_partner(args.partner_config)
        if args.partner and args.partner != partner.name:
            raise ConfigError(f"--partner '{args.partner}' differs from the name in the partner config "
                              f"('{partner.name}')", where=str(args.partner_config), fix="give one name, or drop --partner")
    name = args.partner or (partner.name if partner else None)
    if name is None:
        raise ConfigError("no partner named", where="fedchem pull", fix="give --partner-config P.yaml (or --partner NAME)")
    if name not in ledger.partners:
        raise ConfigError(f"partner '{name}' did not take part in this run (it has: {', '.join(ledger.partners)})",
                          where=str(Path(args.run_dir) / "ledger.json"), fix="give one of its partners")
    if partner is None or not partner.substra.url:  # local mode: the run already pulled through the same code
        folder = partner_dir(args.run_dir, name)
        absent, n_items = missing(args.run_dir, name, ledger)
        if absent:
            raise ConfigError(f"{len(absent)} of {n_items} results of '{name}' are missing ({', '.join(absent[:3])})",
                              where=str(folder), fix="remote mode: give --partner-config with this partner's URL and "
                                                     "token; local mode: finish the run (fedchem run --resume)")
        print(f"{name}: all {n_items} result(s) the ledger lists are in {folder}")
        return 0
    from fedchem.orchestrator.run.remote import partner_client

    client = partner_client(partner, str(args.partner_config))
    result = pull_partner(args.run_dir, name, client, partner.organization)
    print(f"{name}: pulled {len(result.pulled)}, already there {len(result.present)}; private results in "
          f"{result.folder}")
    return 0
