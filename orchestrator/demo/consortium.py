"""Prepare every partner of a consortium on this one machine: the demo's, the tests' and the benchmarks' shortcut.

In production each partner runs `fedchem prepare` on its own node; nothing outside `cli/`, bench and tests calls
this.
"""

from __future__ import annotations

from pathlib import Path


def prepare_consortium(consortium_path: Path, workers: int | None = None, reuse: bool = False,
                       echo=None) -> list:
    """Prepare every partner of a consortium on this machine (demos, tests, benchmarks: in production each partner
    runs `fedchem prepare` on its own node). With `reuse`, a partner whose prepared folder checks out is kept."""
    from fedchem.opener.dataset import load_prepared
    from fedchem.opener.errors import FedchemError
    from fedchem.opener.prepare import prepare_partner
    from fedchem.orchestrator.agreement import sign_agreement
    from fedchem.orchestrator.config import load_consortium, load_partner

    say = echo or (lambda s: None)
    consortium = load_consortium(consortium_path)
    secret = consortium.secret.read("consortium secret")
    done = []
    for ref in consortium.partners:
        p = load_partner(ref.config)
        sign_agreement(consortium, p)  # each partner's own copy, as `fedchem prepare` writes it on its node
        if reuse and (p.prepared_dir / "manifest.json").is_file():
            try:
                load_prepared(p.prepared_dir)
                say(f"   {p.name}: reusing {p.prepared_dir}")
                continue
            except FedchemError:
                pass
        s = prepare_partner(p.data.t0, p.data.t1, p.data.t2, p.prepared_dir, consortium.fingerprint,
                            consortium.preparation, secret, p.name, workers=workers,
                            protected=(consortium_path, consortium.secret.file,
                                       *(r.config for r in consortium.partners)))
        say(f"   {p.name}: {s.n_compounds} compounds, {s.n_class_tasks} classification + {s.n_regr_tasks} "
            "regression tasks")
        done.append(s)
    return done
