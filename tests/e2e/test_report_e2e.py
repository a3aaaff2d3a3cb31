"""Slow: the whole path on a real Substra run (subprocess backend, secure aggregation): build and prepare three real
MoleculeACE partners, train each alone with train_local, run the federation with run_federation, then write every
partner's report and check its figures against a scikit-learn recomputation, its privacy, and its rendering in
headless Chromium. Several minutes on the project's machines (every Substra task starts a Python with torch).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from fedchem.opener.dataset import load_prepared
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.report.write import write_report

from fedsetup import build_small_consortium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> dict:
    from fedchem.algo.train_local import train_local
    from fedchem.orchestrator.run.driver import run_federation

    root = tmp_path_factory.mktemp("e2e")
    cpath = build_small_consortium(root, max_per_target=40)
    consortium, partners = load_all(cpath)
    alone = {}
    for name, p in partners.items():
        alone[name] = root / "alone" / name
        train_local(load_prepared(p.prepared_dir), alone[name], consortium.model, consortium.training)
    res = run_federation(consortium, partners, root / "run", console=lambda s: None, consortium_path=cpath)
    return {"run_dir": res.run_dir, "alone": alone, "prepared": {n: p.prepared_dir for n, p in partners.items()},
            "consortium": cpath}


def test_every_partner_gets_a_correct_private_report_of_a_real_run(real_run, tmp_path):
    import reportcheck as T

    ledger = json.loads((real_run["run_dir"] / "ledger.json").read_text())
    assert ledger["secure"] and ledger["status"] == "completed"
    for name in ledger["partners"]:
        html = write_report(real_run["run_dir"], name, alone_dir=real_run["alone"][name])
        out = html.parent
        assert out == real_run["run_dir"] / "partners" / name / "report"  # inside the partner's private folder
        expected = T._recompute(real_run, name)
        rows = T._read_csv(out / "tasks.csv")
        assert len(rows) == len(expected)
        for r in rows:
            fed, alone = expected[r["task"], r["metric"]]
            assert T._close(T._f(r["federated"]), fed) and T._close(T._f(r["alone"]), alone)
        doc = json.loads((out / "report.json").read_text())
        assert doc["run"]["partners in the consortium"] == "3"
        assert doc["run"]["secure aggregation"].startswith("on")
        assert doc["curves"]["rounds"] == list(range(1, ledger["completed_rounds"] + 1))
        foreign_tasks, foreign_cpds, my_tasks = T._foreign_ids(real_run, me=name)
        for path in out.iterdir():
            text = path.read_text()
            assert not T._mentions(text, foreign_tasks) and not T._mentions(text, foreign_cpds)
    from PIL import Image

    shot = tmp_path / "shot.png"

    subprocess.run(T._chromium_args(tmp_path / "p") + [f"--screenshot={shot}", "--window-size=1280,2000",
                                                        html.resolve().as_uri()], check=True, capture_output=True,
                   timeout=120)
    assert np.asarray(Image.open(shot).convert("L"), dtype=float).std() > 20
