"""A run's set-up: every check before anything is written, the ledger (new or resumed), the plan's organisations,
functions and datasets, and the key setup -- handing an `ActiveRun` to the rounds.

Local mode checks every partner's prepared data and signed agreement on this machine; remote mode finds what each
partner's own node registered and checks what those registrations published (the operator holds no partner data).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import ConfigError, DataError, os_errors
from fedchem.opener.fileio import PRIVATE_FILE_MODE, write_json
from fedchem.opener.secret_check import check_manifest, secret_fingerprints
from fedchem.orchestrator.agreement import Agreement, agreement_of, check_agreement, node_dir_of
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig, require_federation
from fedchem.orchestrator.ledger import Ledger, settings_hash
from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run import workdir
from fedchem.orchestrator.run.context import ActiveRun, trunk_path
from fedchem.orchestrator.run.privacy import check_tasks
from fedchem.orchestrator.run.pull import latest_checkpoint
from fedchem.orchestrator.run.submit import Submitter
from fedchem.orchestrator.run.waiting import WaitPolicy


def run_settings(consortium: ConsortiumConfig, rounds: int, secure: bool) -> dict:
    """Consortium-wide settings every task reads from the trunk's metadata (no secret, no partner data)."""
    return {
        "consortium": consortium.name,
        "fingerprint": consortium.fingerprint.model_dump(),
        "model": consortium.model.model_dump(),
        "training": consortium.training.model_dump(),
        "secure_aggregation": consortium.federation.secure_aggregation.model_dump(),
        "differential_privacy": (dp.model_dump() if (dp := consortium.federation.differential_privacy) else None),
        "secure": secure,
        "rounds": rounds,
        "evaluate_every": consortium.federation.evaluate_every,
        "seed": consortium.training.seed,
    }


def check_partners(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig]) -> dict:
    """Before anything is submitted: every partner has a prepared dataset made for it, with the consortium's
    settings and secret, and at least one trainable task. Returns the number of features (the same for all) and
    the consortium's secret fingerprints."""
    fp = consortium.fingerprint.model_dump()
    expected = secret_fingerprints(consortium.secret.read("consortium secret"), consortium.fingerprint)
    n_features = None
    folders: dict[str, str] = {}
    for ref in consortium.partners:
        p = partners.get(ref.name)
        if p is None:
            raise ConfigError(f"partner '{ref.name}' has no partner config", where=str(ref.config))
        if p.prepared_dir is None:
            raise ConfigError(f"partner '{p.name}' names no prepared_dir", where=str(ref.config),
                              fix="add `prepared_dir:` and run `fedchem prepare` for it")
        real = os.path.realpath(p.prepared_dir)
        if real in folders:
            raise ConfigError(f"partners '{folders[real]}' and '{p.name}' name the same prepared folder",
                              where=f"{ref.config}, key 'prepared_dir' ({p.prepared_dir})",
                              fix="give each partner its own prepared_dir and run `fedchem prepare` for each")
        folders[real] = p.name
        ds = load_prepared(p.prepared_dir, verify=True)
        man_fp = ds.manifest.get("fingerprint")
        if man_fp is not None and man_fp != fp:
            raise ConfigError(f"partner '{p.name}' was prepared with other fingerprint settings than the consortium's",
                              where=str(p.prepared_dir / "manifest.json"),
                              fix="re-run `fedchem prepare` for it with the consortium config")
        if ds.n_features != consortium.fingerprint.size:
            raise ConfigError(f"partner '{p.name}' has {ds.n_features} features, the consortium {consortium.fingerprint.size}",
                              where=str(p.prepared_dir), fix="re-run `fedchem prepare` with the consortium config")
        check_manifest(ds.manifest, p.name, expected, p.prepared_dir / "manifest.json")
        t = consortium.training
        train_rows = ~np.isin(ds.folds, [t.validation_fold, t.test_fold])
        labelled = ds.Y_class[train_rows].nnz + ds.Y_regr[train_rows].nnz
        if labelled == 0:
            raise DataError(f"partner '{p.name}' has no label in its training folds", where=str(p.prepared_dir),
                            fix="check its data and the validation/test folds of the consortium's training section")
        n_features = ds.n_features
    return {"n_features": n_features, "secret_fingerprints": expected}


def check_registered(names: list[str], metadata: dict[str, dict]) -> dict:
    """Remote mode (the operator holds no secret and sees no partner data): every partner's node registered a
    dataset prepared for that partner, and all of them with the same consortium secret (the fingerprints its
    registration published). Returns the agreed fingerprints."""
    seen: dict[str, tuple] = {}
    for name in names:
        meta = metadata.get(name) or {}
        where = f"dataset '{name}-prepared' on the node of '{name}' (its metadata)"
        if meta.get("fedchem_partner") != name:
            raise ConfigError(f"the dataset registered by '{name}' was prepared for partner "
                              f"'{meta.get('fedchem_partner')}'", where=where,
                              fix=f"re-run `fedchem prepare` with {name}'s own config and redeploy its node")
        fps = (meta.get("fedchem_secret_scramble") or None, meta.get("fedchem_secret_folds") or None)
        if fps[1] is None:
            raise ConfigError(f"the dataset registered by '{name}' carries no secret fingerprints", where=where,
                              fix="re-run `fedchem prepare` and redeploy the node with this fedchem version")
        seen[name] = fps
    if len(set(seen.values())) > 1:
        groups: dict[tuple, list[str]] = {}
        for name, fps in seen.items():
            groups.setdefault(fps, []).append(name)
        raise ConfigError("the partners were prepared with different consortium secrets: "
                          + " / ".join(", ".join(g) for g in groups.values()), where="the partners' registered datasets",
                          fix="every partner re-runs `fedchem prepare` with the secret the consortium agreed on")
    scr, folds = next(iter(seen.values()))
    return {"scramble": scr, "folds": folds}


def check_run_parameters(consortium: ConsortiumConfig, rounds: int | None, secure: bool,
                         where: str = "consortium config") -> int:
    """Every run parameter, before anything is written or submitted; returns the number of rounds to run."""
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1):
        raise ConfigError(f"the number of rounds must be at least 1, got {rounds}", where="--rounds",
                          fix="give --rounds N with N >= 1, or leave it out to use federation.rounds")
    n = len(consortium.partners)
    threshold = consortium.federation.secure_aggregation.threshold
    if secure and threshold is not None and threshold > n:
        raise ConfigError(f"the secure-aggregation threshold {threshold} is above the number of partners ({n}): "
                          "no round could ever be unmasked",
                          where=f"{where}, key 'federation.secure_aggregation.threshold'",
                          fix=f"set it between 2 and {n} (or leave it out: a majority, {n // 2 + 1})")
    return consortium.federation.rounds if rounds is None else rounds


def check_run_dir(run_dir: Path) -> None:
    """A new run goes into a new or an empty folder (a folder holding a run is resumed, never overwritten)."""
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise ConfigError("the run folder path names an existing file", where=str(run_dir),
                          fix="give --run-dir a new folder (the file is left as it is)")
    if (run_dir / "ledger.json").exists():
        raise ConfigError("this run folder already holds a run", where=str(run_dir),
                          fix="use `fedchem run --resume RUN_DIR` to continue it, or choose a new folder")
    if run_dir.is_dir() and any(p.name not in (workdir.LOCK, workdir.WORK) for p in run_dir.iterdir()):  # this run's own
        raise ConfigError("the run folder exists, is not empty and holds no fedchem run", where=str(run_dir),
                          fix="give --run-dir a new (or an empty) folder; nothing in this one was touched")


@dataclass
class Opened:
    """The run's ledger and settings once every check passed; `done` when a resumed run had already completed."""

    ledger: Ledger
    settings: dict
    rounds: int
    secure: bool
    features: dict
    agreement: Agreement
    done: bool = False


def open_run(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig], run_dir: Path, *, rounds: int | None,
             resume: bool, secure: bool | None, local: bool, say: Callable[[str], None],
             consortium_path: Path | None) -> Opened:
    """Check everything, then write (or reload) the ledger and settings, marked running."""
    names = [p.name for p in consortium.partners]
    require_federation(consortium, str(consortium_path or "consortium config"))
    secure = True if secure is None else secure
    agreement = agreement_of(consortium)  # its threshold: a majority of the agreed roster, checked up front
    where = str(consortium_path) if consortium_path else "consortium config"
    if resume:
        ledger = Ledger.load(run_dir)
        if rounds is not None and rounds != ledger.rounds_planned:
            raise ConfigError(f"a resumed run keeps its {ledger.rounds_planned} rounds (--rounds {rounds} given)",
                              where=str(run_dir / "ledger.json"),
                              fix="leave --rounds out with --resume, or start a new run in a new folder")
        check_run_parameters(consortium, None, ledger.secure, where)
    else:
        rounds = check_run_parameters(consortium, rounds, secure, where)
        check_run_dir(run_dir)
    if local:
        feats = check_partners(consortium, partners)
        for name in names:  # in local mode the partners' node folders are on this machine: check them up front
            check_agreement(consortium, partners[name])
    else:  # remote: the data and agreements sit on the partners' nodes; their tasks check them; what their
        # dataset registrations published is checked when the plan starts
        feats = {"n_features": consortium.fingerprint.size}

    if resume:
        rounds = ledger.rounds_planned
        settings = run_settings(consortium, rounds, ledger.secure)
        if ledger.settings_hash != settings_hash(settings):
            raise ConfigError("the consortium settings differ from those the run started with",
                              where=str(run_dir / "ledger.json"),
                              fix="resume with the same consortium config, or start a new run folder")
        secure = ledger.secure
        if ledger.status == "completed":
            say(f"run already completed ({ledger.completed_rounds} rounds); nothing to do")
            return Opened(ledger, settings, rounds, secure, feats, agreement, done=True)
    else:
        if rounds > agreement.rounds:
            raise ConfigError(f"{rounds} rounds asked, the consortium agreement allows {agreement.rounds}",
                              where="--rounds", fix="ask for fewer rounds, or have every partner agree to a "
                                                    "consortium config with more")
        settings = run_settings(consortium, rounds, secure)
        ledger = Ledger(run_name=run_dir.name, settings_hash=settings_hash(settings), partners=names,
                        aggregator=consortium.federation.aggregator, rounds_planned=rounds, secure=secure,
                        consortium_path=str(Path(consortium_path).resolve()) if consortium_path else "")
        with os_errors(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "settings.json", settings, PRIVATE_FILE_MODE)

    ledger.status = "running"
    ledger.message = ""
    if "secret_fingerprints" in feats:
        ledger.secret_fingerprints = feats["secret_fingerprints"]
    ledger.save(run_dir)
    return Opened(ledger, settings, rounds, secure, feats, agreement)


def start_plan(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig], run_dir: Path, opened: Opened,
               network: sb.Network | None, plan_id: str, work: Path, say: Callable[[str], None]) -> ActiveRun:
    """The plan's organisations, functions, starting trunk and datasets; the whole plan privacy-checked."""
    names = [p.name for p in consortium.partners]
    agg = consortium.federation.aggregator
    ledger, rounds, secure = opened.ledger, opened.rounds, opened.secure
    first_round = ledger.completed_rounds + 1
    net = network or sb.local_network(names, agg)
    missing = sorted(set(names + [agg]) - set(net.orgs)) + ([] if agg in net.clients else [agg])
    if net.local:
        missing += sorted(set(names) - set(net.clients))
    if missing:
        raise ConfigError(f"no Substra organisation or client for {', '.join(missing)}",
                          fix="check the partner configs")
    if not net.function_keys:
        sb.register_functions(net, work / "functions")
    if net.wheel is not None:  # which fedchem every node builds its function images from
        ledger.wheel_sha256 = net.wheel.sha256

    # the plan's starting trunk: initial, or the one saved after the last completed round
    start = work / "aggregator-start"
    start.mkdir(parents=True, exist_ok=True)
    plan_meta = {"round": ledger.completed_rounds, "plan_id": plan_id, "first_round": first_round,
                 "last_round": rounds, "roster": names, "threshold": opened.agreement.threshold,
                 "settings": opened.settings, "agreement": opened.agreement.fingerprint_hex}
    if ledger.completed_rounds == 0:
        _initial_trunk(consortium, opened.features["n_features"], start / "trunk.npz", plan_meta)
    else:
        _restamp_trunk(trunk_path(run_dir, ledger.completed_rounds), start / "trunk.npz", plan_meta)

    datasets = {"aggregator": sb.register_dataset(net, agg, f"{agg}-trunk", [start], work / "datasets" / agg)}
    metadata: dict[str, dict] = {}
    for name in names:
        ck = latest_checkpoint(run_dir, name, ledger.completed_rounds)
        if net.local:
            folders = [partners[name].prepared_dir] + ([ck] if ck is not None else [])
            datasets[name] = sb.register_dataset(net, name, f"{name}-prepared", folders, work / "datasets" / name,
                                                 node_dir=node_dir_of(partners[name]))
        else:  # the partner's data never leaves its node: find what its node registered
            datasets[name], metadata[name] = sb.find_dataset(net, name, f"{name}-prepared")
            if ledger.completed_rounds > 0 and name not in ledger.dropped:
                raise ConfigError("a remote run cannot be resumed after a completed round yet: each partner's "
                                  "head stays on its own side and the operator holds no partner token",
                                  where=str(run_dir / "ledger.json"),
                                  fix="start a new run folder (the heads of this one are with the partners: "
                                      "fedchem pull)")
    if not net.local:
        ledger.secret_fingerprints = check_registered(names, metadata)
        ledger.save(run_dir)

    ctx = planner.PlanContext(plan_id=plan_id, partner_orgs={n: net.orgs[n] for n in names},
                              aggregator_org=net.orgs[agg], datasets=datasets, secure=secure,
                              publish_summary=consortium.federation.publish_summary)
    # the whole plan (no dropouts) is checked before anything is submitted; every step again when submitted
    check_tasks(ctx, planner.full_plan(ctx, names, first_round, rounds))
    fed = consortium.federation
    submitter = Submitter(net, ctx, f"fedchem {consortium.name} rounds {first_round}-{rounds}",
                          WaitPolicy(fed.task_timeout, fed.poll_interval), say)
    ledger.plans.append({"plan_id": plan_id, "first_round": first_round, "started": time.time()})
    ledger.save(run_dir)
    return ActiveRun(consortium, partners, run_dir, ledger, net, ctx, submitter, say, rounds, first_round,
                     opened.agreement.threshold, secure, active=list(names), last_head={n: None for n in names})


def key_setup(run: ActiveRun) -> None:
    """The plan's starting trunk, every partner's keys and sealed shares (the first step creates the plan); a
    failure here fails the run (nothing was trained yet: a new run starts over)."""
    t0 = time.perf_counter()
    names = [p.name for p in run.consortium.partners]
    run.say(f"plan {run.ctx.plan_id[:8]}: key setup for {len(names)} partners" if run.secure else
            f"plan {run.ctx.plan_id[:8]}: secure aggregation OFF (test-only switch)")
    result = run.submitter.step(planner.setup_tasks(run.ctx, names))
    if not result.ok:
        failed = ", ".join(t.name for t in result.failed)
        run.ledger.status, run.ledger.message = "failed", f"key setup failed: a task failed while running [{failed}]"
        run.ledger.save(run.run_dir)
        run.say(f"failed: {run.ledger.message}")
        raise sb.TaskFailed(f"a task failed while running [{failed}]", where="key setup",
                            fix="see the task's output above and its private log")
    run.say(f"  setup done in {time.perf_counter() - t0:.1f} s")


def _initial_trunk(consortium: ConsortiumConfig, n_features: int, path: Path, meta: dict) -> None:
    from fedchem.algo.model import init_trunk, trunk_to_arrays
    from fedchem.algo.params import save_params

    trunk = init_trunk(n_features, consortium.model, consortium.training.seed)
    save_params(path, trunk_to_arrays(trunk), meta)


def _restamp_trunk(src: Path, dest: Path, meta_update: dict) -> None:
    from fedchem.algo.params import load_params, save_params

    arrays, meta = load_params(src)
    meta.update(meta_update)
    save_params(dest, arrays, meta)
