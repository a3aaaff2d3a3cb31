"""The federated run: key setup, R rounds of train -> release shares -> aggregate, a final evaluation.

Rounds are submitted one step at a time so that a partner failing mid-round is seen (Substra's local backend runs
tasks synchronously and raises on the first failure): its train task's failure marks it dropped, the round
completes with the survivors through the secure-aggregation recovery, and later rounds go on without it. After
every completed round each partner's private checkpoint (its head) and the trunk are saved and the ledger
updated, so `--resume` continues from there with a fresh key setup and reaches the same trunk.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import ConfigError, DataError, RunStopped, os_errors  # RunStopped: exit 3
from fedchem.opener.fileio import atomic_folder, move_into_place, write_json
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.agreement import agreement_of, check_agreement, node_dir_of
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig
from fedchem.orchestrator.ledger import Ledger, RoundRecord, settings_hash
from fedchem.orchestrator.run.privacy import check_tasks


@dataclass
class RunResult:
    run_dir: Path
    ledger: Ledger
    network: sb.Network | None = None
    tasks: dict[str, planner.TaskPlan] = field(default_factory=dict)


def partner_dir(run_dir: Path, name: str) -> Path:
    """A partner's private folder (stands for its own node's storage in local mode)."""
    return Path(run_dir) / "partners" / name


def run_settings(consortium: ConsortiumConfig, rounds: int, secure: bool) -> dict:
    """Consortium-wide settings every task reads from the trunk's metadata (no secret, no partner data)."""
    return {
        "consortium": consortium.name,
        "fingerprint": consortium.fingerprint.model_dump(),
        "model": consortium.model.model_dump(),
        "training": consortium.training.model_dump(),
        "secure_aggregation": consortium.federation.secure_aggregation.model_dump(),
        "secure": secure,
        "rounds": rounds,
        "evaluate_every": consortium.federation.evaluate_every,
        "seed": consortium.training.seed,
    }


def check_partners(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig]) -> dict[str, int]:
    """Before anything is submitted: every partner has a prepared dataset made with the consortium's settings and
    at least one trainable task. Returns the number of features (the same for all)."""
    fp = consortium.fingerprint.model_dump()
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
        t = consortium.training
        train_rows = ~np.isin(ds.folds, [t.validation_fold, t.test_fold])
        labelled = ds.Y_class[train_rows].nnz + ds.Y_regr[train_rows].nnz
        if labelled == 0:
            raise DataError(f"partner '{p.name}' has no label in its training folds", where=str(p.prepared_dir),
                            fix="check its data and the validation/test folds of the consortium's training section")
        n_features = ds.n_features
    return {"n_features": n_features}


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
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError("the run folder exists, is not empty and holds no fedchem run", where=str(run_dir),
                          fix="give --run-dir a new (or an empty) folder; nothing in this one was touched")


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


def run_federation(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig], run_dir: Path, *,
                   rounds: int | None = None, resume: bool = False, secure: bool | None = None,
                   network: sb.Network | None = None, console: Callable[[str], None] | None = None,
                   keep_network: bool = False, consortium_path: Path | None = None) -> RunResult:
    """Run (or resume) a federated training; returns the ledger and, for tests, the Substra network and tasks.

    `secure=False` is a test-only switch (no CLI flag or config key reaches it): partners refuse its plain plan
    unless each opted in on its own node (fedchem.algo.guard.rules.PLAIN_OPT_IN)."""
    say = console or (lambda line: print(line, flush=True))  # progress lines: no data, no values
    run_dir = Path(run_dir).resolve()
    names = [p.name for p in consortium.partners]
    agg = consortium.federation.aggregator
    secure = True if secure is None else secure
    agreement = agreement_of(consortium)
    threshold = agreement.threshold  # checked (a majority of the agreed roster) before anything is written
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
    if network is None or network.local:
        feats = check_partners(consortium, partners)
        for name in names:  # in local mode the partners' node folders are on this machine: check them up front
            check_agreement(consortium, partners[name])
    else:  # remote: the data and agreements sit on the partners' nodes; their tasks check them
        feats = {"n_features": consortium.fingerprint.size}

    if resume:
        ledger = Ledger.load(run_dir)
        rounds = ledger.rounds_planned
        settings = run_settings(consortium, rounds, ledger.secure)
        if ledger.settings_hash != settings_hash(settings):
            raise ConfigError("the consortium settings differ from those the run started with",
                              where=str(run_dir / "ledger.json"),
                              fix="resume with the same consortium config, or start a new run folder")
        secure = ledger.secure
        if ledger.status == "completed":
            say(f"run already completed ({ledger.completed_rounds} rounds); nothing to do")
            return RunResult(run_dir, ledger)
    else:
        if rounds > agreement.rounds:
            raise ConfigError(f"{rounds} rounds asked, the consortium agreement allows {agreement.rounds}",
                              where="--rounds", fix="ask for fewer rounds, or have every partner agree to a "
                                                    "consortium config with more")
        settings = run_settings(consortium, rounds, secure)
        ledger = Ledger(run_name=run_dir.name, settings_hash=settings_hash(settings), partners=names,
                        aggregator=agg, rounds_planned=rounds, secure=secure,
                        consortium_path=str(Path(consortium_path).resolve()) if consortium_path else "")
        with os_errors(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "settings.json", settings)

    ledger.status = "running"
    ledger.message = ""
    ledger.save(run_dir)
    first_round = ledger.completed_rounds + 1
    plan_id = str(uuid.uuid4())

    work = run_dir / "substra-work" / plan_id[:8]
    result = RunResult(run_dir, ledger)
    with sb.working_directory(work):
        net = network or sb.local_network(names, agg)
        missing = sorted(set(names + [agg]) - set(net.clients))
        if missing:
            raise ConfigError(f"no Substra client for {', '.join(missing)}", fix="check the partner configs")
        result.network = net
        if not net.function_keys:
            sb.register_functions(net, work / "functions")
        if net.wheel is not None:  # which fedchem every node builds its function images from
            ledger.wheel_sha256 = net.wheel.sha256

        # the plan's starting trunk: initial, or the one saved after the last completed round
        start = work / "aggregator-start"
        start.mkdir(parents=True, exist_ok=True)
        plan_meta = {"round": ledger.completed_rounds, "plan_id": plan_id, "first_round": first_round,
                     "last_round": rounds, "roster": names, "threshold": threshold, "settings": settings,
                     "agreement": agreement.fingerprint_hex}
        saved = trunk_path(run_dir, ledger.completed_rounds)
        if ledger.completed_rounds == 0:
            _initial_trunk(consortium, feats["n_features"], start / "trunk.npz", plan_meta)
        else:
            _restamp_trunk(saved, start / "trunk.npz", plan_meta)

        datasets = {"aggregator": sb.register_dataset(net, agg, f"{agg}-trunk", [start], work / "datasets" / agg)}
        for name in names:
            ck = latest_checkpoint(run_dir, name, ledger.completed_rounds)
            if net.local:
                folders = [partners[name].prepared_dir] + ([ck] if ck is not None else [])
                datasets[name] = sb.register_dataset(net, name, f"{name}-prepared", folders, work / "datasets" / name,
                                                     node_dir=node_dir_of(partners[name]))
            else:  # the partner's data never leaves its node: find what its node registered
                datasets[name] = sb.find_dataset(net, name, f"{name}-prepared")
                if ck is not None:
                    datasets[name] = sb.add_sample(net, name, datasets[name], ck)

        ctx = planner.PlanContext(plan_id=plan_id, partner_orgs={n: net.orgs[n] for n in names},
                                  aggregator_org=net.orgs[agg], datasets=datasets, secure=secure,
                                  publish_summary=consortium.federation.publish_summary)
        # the whole plan (no dropouts) is checked before anything is submitted; every batch again below
        check_tasks(ctx, planner.full_plan(ctx, names, first_round, rounds))
        known: dict[str, planner.TaskPlan] = result.tasks

        def submit(tasks: list[planner.TaskPlan], create: bool = False) -> None:
            check_tasks(ctx, tasks, known)
            if create:
                sb.create_plan(net, plan_id, f"fedchem {consortium.name} rounds {first_round}-{rounds}", tasks)
            else:
                sb.add_tasks(net, plan_id, tasks)
            known.update({t.task_id: t for t in tasks})

        ledger.plans.append({"plan_id": plan_id, "first_round": first_round, "started": time.time()})
        ledger.save(run_dir)

        t0 = time.perf_counter()
        say(f"plan {plan_id[:8]}: key setup for {len(names)} partners" if secure else
            f"plan {plan_id[:8]}: secure aggregation OFF (test-only switch)")
        submit(planner.setup_tasks(ctx, names), create=True)
        say(f"  setup done in {time.perf_counter() - t0:.1f} s")

        active = list(names)
        last_head: dict[str, int | None] = {n: None for n in names}
        for r in range(first_round, rounds + 1):
            times: dict[str, float] = {}
            say(f"round {r}/{rounds}")
            survivors, dropped = [], []
            t = time.perf_counter()
            for name in active:
                task = planner.train_task(ctx, name, r, first_round, active, last_head[name])
                ts = time.perf_counter()
                try:
                    submit([task])
                except sb.TaskFailed:
                    dropped.append(name)
                    say(f"  {name}: FAILED during training: dropped from this round on")
                    continue
                survivors.append(name)
                say(f"  {name}: trained ({time.perf_counter() - ts:.1f} s)")
            times["train"] = time.perf_counter() - t
            if secure and len(survivors) < threshold:
                raise _stopped(ledger, run_dir, say,
                               f"round {r}: only {len(survivors)} of {len(active)} partners submitted, below the "
                               f"threshold of {threshold}: nothing was unmasked")
            if not survivors:
                raise _stopped(ledger, run_dir, say, f"round {r}: no partner submitted")
            releasers = list(survivors)
            t = time.perf_counter()
            if secure:  # consistency step: each survivor signs the survivor set; then releases for that set
                confirmers = []
                for task in planner.confirm_tasks(ctx, r, active, survivors):
                    try:
                        submit([task])
                        confirmers.append(task.name.split("/")[1])
                    except sb.TaskFailed:
                        say(f"  {task.name.split('/')[1]}: failed to confirm the survivor set")
                if len(confirmers) < threshold:
                    raise _stopped(ledger, run_dir, say,
                                   f"round {r}: only {len(confirmers)} partners confirmed the survivor set, below "
                                   f"the threshold of {threshold}: nothing was unmasked")
                releasers = []
                for task in planner.release_tasks(ctx, r, active, survivors, confirmers):
                    try:
                        submit([task])
                        releasers.append(task.name.split("/")[1])
                    except sb.TaskFailed:
                        say(f"  {task.name.split('/')[1]}: failed to release its shares")
                if len(releasers) < threshold:
                    raise _stopped(ledger, run_dir, say,
                                   f"round {r}: only {len(releasers)} partners released shares, below the threshold "
                                   f"of {threshold}: nothing was unmasked")
            times["release"] = time.perf_counter() - t
            t = time.perf_counter()
            try:
                submit([planner.aggregate_task(ctx, r, first_round, active, survivors, releasers)])
            except sb.TaskFailed:
                raise _stopped(ledger, run_dir, say, f"round {r}: the aggregation failed")
            times["aggregate"] = time.perf_counter() - t
            say(f"  aggregated {len(survivors)} masked updates" + (f" ({len(dropped)} dropped out, recovered)"
                                                                     if dropped else ""))
            # checkpoints: each partner's own head through its own client; the trunk; then the ledger
            t = time.perf_counter()
            for name in survivors:
                last_head[name] = r
                _save_checkpoint(net, known, ctx, run_dir, name, r)
            agg_task = known[ctx.task_id(f"aggregate/{r}")]
            _download_as(net, agg, agg_task, "trunk", trunk_path(run_dir, r))
            times["download"] = time.perf_counter() - t
            for name in dropped:
                ledger.dropped[name] = r
            active = survivors
            ledger.rounds.append(RoundRecord(round=r, plan_id=plan_id, survivors=survivors, dropped=dropped,
                                             seconds={k: round(v, 3) for k, v in times.items()}))
            ledger.completed_rounds = r
            ledger.save(run_dir)
            for name in survivors:
                _prune_checkpoints(run_dir, name, keep_from=r - 1)
            old = trunk_path(run_dir, r - 2)
            if r - 2 >= 1 and old.exists():
                old.unlink()

        say("final evaluation")
        last_trunk = (known[ctx.task_id(f"aggregate/{rounds}")] if rounds >= first_round
                      else known[ctx.task_id("init_trunk")])
        for name in active:
            task = planner.evaluate_task(ctx, name, rounds, first_round, last_head[name])
            submit([task])
            out = partner_dir(run_dir, name)
            _download_as(net, name, task, "metrics", out / "metrics.json")
            _download_as(net, name, task, "predictions", out / "test_predictions.npz")
            _download_as(net, name, last_trunk, "trunk", out / "trunk.npz")
            ck = latest_checkpoint(run_dir, name, rounds)
            if ck is not None:  # the partner's final model: trunk.npz + head.npz
                shutil.copyfile(ck / "head.npz", out / "head.npz")
            if ctx.publish_summary:  # opt-in: one public figure for the web UI
                submit([planner.summary_task(ctx, name, rounds)])
            say(f"  {name}: evaluated; private results in {out}")
        shutil.copyfile(trunk_path(run_dir, rounds), run_dir / "aggregator" / "trunk.npz")
        ledger.evaluated = True
        ledger.status = "completed"
        ledger.save(run_dir)
        say(f"run completed: {rounds} rounds; each partner's results are in {run_dir / 'partners'}/<name>/")
    if not keep_network:
        shutil.rmtree(run_dir / "substra-work", ignore_errors=True)
    return result


def _download_as(net: sb.Network, reader: str, task: planner.TaskPlan, identifier: str, dest: Path) -> Path:
    """Download one output through `reader`'s client into `dest`, atomically."""
    tmpdir = dest.parent / f".dl-{uuid.uuid4().hex[:8]}"
    try:
        got = sb.download(net, reader, task, identifier, tmpdir)
        move_into_place(got, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return dest


def trunk_path(run_dir: Path, round_: int) -> Path:
    """The global trunk after a round, as the aggregator keeps it (the final one is also aggregator/trunk.npz)."""
    return Path(run_dir) / "aggregator" / "trunks" / f"round_{round_:03d}.npz"


def checkpoint_dir(run_dir: Path, name: str, round_: int) -> Path:
    """A partner's private checkpoint after a round (its head), one folder per round."""
    return partner_dir(run_dir, name) / "checkpoints" / f"round_{round_:03d}"


def latest_checkpoint(run_dir: Path, name: str, at_most: int) -> Path | None:
    """The partner's newest checkpoint of a round the ledger counts as completed (a later one may be half-made
    by a killed run: it is ignored and overwritten)."""
    folder = partner_dir(run_dir, name) / "checkpoints"
    rounds = sorted(int(p.name.split("_")[1]) for p in folder.glob("round_*") if (p / "checkpoint.json").is_file())
    rounds = [r for r in rounds if r <= at_most]
    return checkpoint_dir(run_dir, name, rounds[-1]) if rounds else None


def _save_checkpoint(net, known, ctx, run_dir: Path, name: str, r: int) -> None:
    """Download a partner's head of round r through its own client into its own folder (atomically)."""
    task = known[ctx.task_id(f"train/{name}/{r}")]
    with atomic_folder(checkpoint_dir(run_dir, name, r)) as tmp:
        _download_as(net, name, task, "head", tmp / "head.npz")
        write_json(tmp / "checkpoint.json", {"round": r, "partner": name})
    _download_as(net, name, task, "log", partner_dir(run_dir, name) / "logs" / f"round_{r:03d}.json")


def _prune_checkpoints(run_dir: Path, name: str, keep_from: int) -> None:
    """Once the ledger has moved on, checkpoints older than the previous round are not needed any more."""
    for p in (partner_dir(run_dir, name) / "checkpoints").glob("round_*"):
        if int(p.name.split("_")[1]) < keep_from:
            shutil.rmtree(p, ignore_errors=True)


def _stopped(ledger: Ledger, run_dir: Path, say, message: str) -> RunStopped:
    """Record a clean stop in the ledger and return the error to raise (the run is resumable: exit 3)."""
    ledger.status = "stopped"
    ledger.message = message
    ledger.save(run_dir)
    say(f"stopped: {message}")
    say(f"the run is resumable from round {ledger.completed_rounds + 1}: fedchem run --resume {run_dir}")
    return RunStopped(message, where=str(run_dir / "ledger.json"),
                         fix=f"bring the partners back and run `fedchem run --resume {run_dir}`")
