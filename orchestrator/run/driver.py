"""The federated run: key setup, R rounds of train -> release shares -> aggregate, a final evaluation.

Rounds are submitted one step at a time so that a partner failing mid-round is seen (Substra's local backend runs
tasks synchronously and raises on the first failure): its train task's failure marks it dropped, the round
completes with the survivors through the secure-aggregation recovery, and later rounds go on without it. After
every completed round the trunk is saved and the ledger updated with what each partner may pull (its head, its
log: task keys only); each partner pulls its own through its own client (fedchem.orchestrator.run.pull: here in local
mode, `fedchem pull` on its own machine in remote mode), so `--resume` continues from its private checkpoint with
a fresh key setup and reaches the same trunk.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import ConfigError, DataError, FedchemError, RunStopped, os_errors  # RunStopped: exit 3
from fedchem.opener.fileio import PRIVATE_FILE_MODE, move_into_place, write_json
from fedchem.opener.secret_check import check_manifest, secret_fingerprints
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run import pull as puller
from fedchem.orchestrator.run import workdir
from fedchem.orchestrator.agreement import agreement_of, check_agreement, node_dir_of
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig, require_federation
from fedchem.orchestrator.ledger import Ledger, RoundRecord, settings_hash
from fedchem.orchestrator.run.privacy import check_tasks
from fedchem.orchestrator.run.pull import checkpoint_dir, latest_checkpoint, partner_dir  # noqa: F401 (re-exported)


@dataclass
class RunResult:
    run_dir: Path
    ledger: Ledger
    network: sb.Network | None = None
    tasks: dict[str, planner.TaskPlan] = field(default_factory=dict)


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
    unless each opted in on its own node (fedchem.algo.guard.rules.PLAIN_OPT_IN).

    The run holds its folder (workdir.run_session): owner-only files, and Substra's work folder with the secret-key
    bundles removed on every exit path. A run that ends by an error leaves a ledger that says so."""
    say = console or logging.getLogger(__name__).info  # progress lines (no data, no values); the CLI prints them
    run_dir = Path(run_dir).resolve()
    with workdir.run_session(run_dir, keep=keep_network, say=say):
        try:
            return _run_federation(consortium, partners, run_dir, rounds=rounds, resume=resume, secure=secure,
                                   network=network, say=say, consortium_path=consortium_path)
        except BaseException as exc:
            _record_failure(run_dir, exc)
            raise


def _each_partner(submit, tasks, say, step: str) -> list[str]:
    """Submit one task per partner, one at a time; the partners whose task succeeded (a failed task is that
    partner missing from this step, said on the console)."""
    done = []
    for task in tasks:
        partner = task.name.split("/")[1]
        try:
            submit([task])
            done.append(partner)
        except sb.TaskFailed:
            say(f"  {partner}: failed to {step}")
    return done


def _record_failure(run_dir: Path, exc: BaseException) -> None:
    """A run that did not end cleanly leaves a ledger saying how (a clean stop was recorded already)."""
    try:
        ledger = Ledger.load(run_dir)
    except FedchemError:
        return  # nothing was started
    if ledger.status != "running":
        return
    if isinstance(exc, (KeyboardInterrupt, workdir.Terminated)):
        ledger.status, ledger.message = "stopped", f"interrupted ({type(exc).__name__} {exc})".replace(" )", ")")
    else:
        ledger.status = "failed"
        ledger.message = exc.message().splitlines()[0] if isinstance(exc, FedchemError) else type(exc).__name__
    ledger.save(run_dir)


def _run_federation(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig], run_dir: Path, *,
                    rounds: int | None, resume: bool, secure: bool | None, network: sb.Network | None,
                    say: Callable[[str], None], consortium_path: Path | None) -> RunResult:
    names = [p.name for p in consortium.partners]
    require_federation(consortium, str(consortium_path or "consortium config"))
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
    else:  # remote: the data and agreements sit on the partners' nodes; their tasks check them; what their
        # dataset registrations published is checked below
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
            write_json(run_dir / "settings.json", settings, PRIVATE_FILE_MODE)

    ledger.status = "running"
    ledger.message = ""
    if "secret_fingerprints" in feats:
        ledger.secret_fingerprints = feats["secret_fingerprints"]
    ledger.save(run_dir)
    first_round = ledger.completed_rounds + 1
    plan_id = str(uuid.uuid4())

    work = run_dir / "substra-work" / plan_id[:8]
    result = RunResult(run_dir, ledger)
    with sb.working_directory(work):
        net = network or sb.local_network(names, agg)
        missing = sorted(set(names + [agg]) - set(net.orgs)) + ([] if agg in net.clients else [agg])
        if net.local:
            missing += sorted(set(names) - set(net.clients))
        if missing:
            raise ConfigError(f"no Substra organisation or client for {', '.join(missing)}",
                              fix="check the partner configs")
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
        try:
            submit(planner.setup_tasks(ctx, names), create=True)
        except sb.TaskFailed as exc:
            ledger.status, ledger.message = "failed", f"key setup failed: {exc.message().splitlines()[0]}"
            ledger.save(run_dir)
            say(f"failed: {ledger.message}")
            raise
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
                confirmers = _each_partner(submit, planner.confirm_tasks(ctx, r, active, survivors), say,
                                           "confirm the survivor set")
                if len(confirmers) < threshold:
                    raise _stopped(ledger, run_dir, say,
                                   f"round {r}: only {len(confirmers)} partners confirmed the survivor set, below "
                                   f"the threshold of {threshold}: nothing was unmasked")
                releasers = _each_partner(submit, planner.release_tasks(ctx, r, active, survivors, confirmers), say,
                                          "release its shares")
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
            # each partner's head (its checkpoint) and log: listed in the ledger, pulled by the partner itself
            # (locally: here, through its own client); the trunk; then the ledger
            t = time.perf_counter()
            for name in survivors:
                last_head[name] = r
                puller.add_items(ledger, name, puller.round_items(ctx.task_id(f"train/{name}/{r}"), r))
                if net.local:
                    puller.pull_partner(run_dir, name, net.clients[name], net.orgs[name], ledger)
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
            old = trunk_path(run_dir, r - 2)
            if r - 2 >= 1 and old.exists():
                old.unlink()

        say("final evaluation")
        last_trunk = (known[ctx.task_id(f"aggregate/{rounds}")] if rounds >= first_round
                      else known[ctx.task_id("init_trunk")])
        for name in active:
            task = planner.evaluate_task(ctx, name, rounds, first_round, last_head[name])
            submit([task])
            head_key = ctx.task_id(f"train/{name}/{last_head[name]}") if last_head[name] is not None else None
            ck = latest_checkpoint(run_dir, name, rounds) if head_key is None and net.local else None
            head_round = last_head[name] if head_key else (int(ck.name.split("_")[1]) if ck else None)
            puller.add_items(ledger, name, puller.final_items(task.task_id, last_trunk.task_id, rounds, head_key,
                                                              head_round))
            if net.local:  # the partner's final model (trunk.npz + head.npz), metrics and test predictions
                puller.pull_partner(run_dir, name, net.clients[name], net.orgs[name], ledger)
            out = partner_dir(run_dir, name)
            if ctx.publish_summary:  # opt-in: one public figure for the web UI
                submit([planner.summary_task(ctx, name, rounds)])
            say(f"  {name}: evaluated; private results in {out}" if net.local else
                f"  {name}: evaluated; it pulls its private results itself: fedchem pull {run_dir} --partner-config "
                f"<{name}'s partner.yaml>")
        shutil.copyfile(trunk_path(run_dir, rounds), run_dir / "aggregator" / "trunk.npz")
        ledger.evaluated = True
        ledger.status = "completed"
        ledger.save(run_dir)
        say(f"run completed: {rounds} rounds; each partner's results are in {run_dir / 'partners'}/<name>/")
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


def _stopped(ledger: Ledger, run_dir: Path, say, message: str) -> RunStopped:
    """Record a clean stop in the ledger and return the error to raise (the run is resumable: exit 3)."""
    ledger.status = "stopped"
    ledger.message = message
    ledger.save(run_dir)
    say(f"stopped: {message}")
    say(f"the run is resumable from round {ledger.completed_rounds + 1}: fedchem run --resume {run_dir}")
    return RunStopped(message, where=str(run_dir / "ledger.json"),
                         fix=f"bring the partners back and run `fedchem run --resume {run_dir}`")
