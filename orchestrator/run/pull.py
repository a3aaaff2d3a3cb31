"""A partner pulls its own results of a run (heads with their optimiser and selection state, per-round logs, final
metrics, validation and test predictions, final trunk) through its own Substra client into its own private folder,
RUN_DIR/partners/NAME (0700 folders, 0600 files).

The run ledger says what there is to pull (`Ledger.outputs`: per partner, task keys and output identifiers, nothing
private); it is written by the operator, so it is trusted only for where to look: before downloading a private
output the partner asks its own backend that the task ran on its own organisation and that the output is readable
by its organisation alone, and refuses anything else. In remote mode each partner runs `fedchem pull` on its own
machine with its own token; in local mode the run driver calls `pull_partner` for every partner (one machine plays
them all), so both modes take the same path. Pulling is incremental: what is already there is not fetched again.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fedchem.opener.errors import DataError, PrivacyError
from fedchem.opener.fileio import lock_down, move_private, private_dir, write_private, write_private_json
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run.backend import fetch_output

PULLED = "pulled.json"          # partner-side record: destination -> task key it was pulled from
PUBLIC_OUTPUTS = {"trunk"}      # the global trunk: readable by every consortium member


def partner_dir(run_dir: Path, name: str) -> Path:
    """A partner's private folder (stands for its own machine's storage in local mode)."""
    return Path(run_dir) / "partners" / name


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


CHECKPOINT_STATE = ["optimizer", "selection"]  # pulled with the head into one checkpoint folder, atomically


def round_items(train_task_key: str, round_: int) -> list[dict]:
    """What a partner pulls after a round: its head with its optimiser and selection state (one checkpoint) and its
    private log, from its train task."""
    return [{"kind": "head", "round": round_, "task_key": train_task_key, "identifier": "head",
             "with": list(CHECKPOINT_STATE), "dest": f"checkpoints/round_{round_:03d}"},
            {"kind": "log", "round": round_, "task_key": train_task_key, "identifier": "log",
             "dest": f"logs/round_{round_:03d}.json"}]


def final_items(evaluate_task_key: str, trunk_task_key: str, round_: int, head_task_key: str | None,
                head_round: int | None) -> list[dict]:
    """What a partner pulls after the final evaluation: metrics, test predictions, the final trunk and its head
    (from its last train task, or copied from its own checkpoint when the head came from one)."""
    items = [{"kind": "metrics", "round": round_, "task_key": evaluate_task_key, "identifier": "metrics",
              "dest": "metrics.json"},
             {"kind": "predictions", "round": round_, "task_key": evaluate_task_key, "identifier": "predictions",
              "dest": "test_predictions.npz"},
             {"kind": "predictions", "round": round_, "task_key": evaluate_task_key,
              "identifier": "chosen_validation", "dest": "validation_predictions.npz"},
             {"kind": "predictions", "round": round_, "task_key": evaluate_task_key, "identifier": "last_test",
              "dest": "last_test_predictions.npz"},
             {"kind": "predictions", "round": round_, "task_key": evaluate_task_key, "identifier": "finetuned",
              "dest": "finetuned_test_predictions.npz"},
             {"kind": "trunk", "round": round_, "task_key": trunk_task_key, "identifier": "trunk",
              "dest": "trunk.npz"}]
    if head_task_key is not None or head_round is not None:
        items.append({"kind": "final_head", "round": head_round, "task_key": head_task_key, "identifier": "head",
                      "dest": "head.npz"})
    return items


def add_items(ledger: Ledger, partner: str, items: list[dict]) -> None:
    """Record items in the ledger; a newer head supersedes the older ones (only the latest checkpoint is needed)."""
    current = ledger.outputs.setdefault(partner, [])
    kinds = {i["kind"] for i in items}
    if "head" in kinds:
        current[:] = [i for i in current if i["kind"] != "head"]
    dests = {i["dest"] for i in items}
    current[:] = [i for i in current if i["dest"] not in dests] + list(items)


def missing(run_dir: Path, partner: str, ledger: Ledger) -> tuple[list[str], int]:
    """What the ledger lists for `partner` that its folder does not hold yet (and how many items it lists)."""
    items = ledger.outputs.get(partner, [])
    folder = partner_dir(run_dir, partner)
    return [i["dest"] for i in items if not (folder / i["dest"]).exists()], len(items)


@dataclass
class PullResult:
    partner: str
    folder: Path
    pulled: list[str] = field(default_factory=list)    # destinations fetched now
    present: list[str] = field(default_factory=list)   # destinations already there


def _check_own_output(client: Any, org: str, item: dict) -> None:
    """Partner-side check (the ledger is the operator's): the task ran here and the output is ours alone."""
    task = client.get_task(item["task_key"])
    out = task.outputs.get(item["identifier"])
    if out is None:
        raise DataError(f"task {item['task_key']} has no output '{item['identifier']}'", where=f"ledger item "
                        f"{item['dest']}", fix="the ledger does not match the run's tasks; ask the operator")
    if item["identifier"] in PUBLIC_OUTPUTS:
        return
    perm = out.permissions.process
    if task.worker != org or perm.public or list(perm.authorized_ids) != [org]:
        readers = "everyone" if perm.public else ", ".join(perm.authorized_ids)
        raise PrivacyError(f"refused to pull '{item['dest']}': task {item['task_key']} ran on {task.worker} and its "
                           f"output '{item['identifier']}' is readable by {readers}, not by this organisation alone",
                           where=f"organisation {org}", fix="this output was not private to you; tell the consortium")


def _download(client: Any, item: dict, tmpdir: Path) -> Path:
    private_dir(tmpdir)
    return lock_down(fetch_output(client, item["task_key"], item["identifier"], tmpdir))


def pull_partner(run_dir: Path, partner: str, client: Any, org: str | None = None, ledger: Ledger | None = None,
                 say: Callable[[str], None] | None = None) -> PullResult:
    """Fetch what the ledger lists for `partner` through `client` (the partner's own) into its private folder."""
    say = say or (lambda line: None)
    run_dir = Path(run_dir)
    ledger = ledger or Ledger.load(run_dir)
    if partner not in ledger.partners:
        raise DataError(f"partner '{partner}' did not take part in this run", where=str(run_dir / "ledger.json"),
                        fix="give one of: " + ", ".join(ledger.partners))
    items = ledger.outputs.get(partner, [])
    org = org or client.organization_info().organization_id
    folder = private_dir(partner_dir(run_dir, partner), root=partner_dir(run_dir, partner))
    record_path = folder / PULLED
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    result = PullResult(partner, folder)
    for item in items:
        dest = folder / item["dest"]
        source = item["task_key"] or f"checkpoint round {item['round']}"
        if record.get(item["dest"]) == source and dest.exists():
            result.present.append(item["dest"])
            continue
        tmp = folder / f".pull-{uuid.uuid4().hex[:8]}"
        try:
            if item["kind"] == "final_head" and item["task_key"] is None:  # the head came from a checkpoint
                src = checkpoint_dir(run_dir, partner, item["round"]) / "head.npz"
                if not src.is_file():
                    raise DataError(f"partner '{partner}' has no checkpoint of round {item['round']}",
                                    where=str(src.parent), fix="pull the earlier rounds first (fedchem pull)")
                write_private(tmp / "head.npz", src.read_bytes())
                got = tmp / "head.npz"
            else:
                _check_own_output(client, org, item)
                got = _download(client, item, tmp / "dl")
            if item["kind"] == "head":  # a checkpoint folder: head.npz, its state files, checkpoint.json
                ck = private_dir(tmp / "ck")
                move_private(got, ck / "head.npz")
                for ident in item.get("with", []):
                    extra = {**item, "identifier": ident}
                    _check_own_output(client, org, extra)
                    move_private(_download(client, extra, tmp / f"dl-{ident}"), ck / f"{ident}.npz")
                write_private_json(ck / "checkpoint.json", {"round": item["round"], "partner": partner})
                if dest.exists():
                    shutil.rmtree(dest)
                move_private(ck, dest)
            else:
                move_private(got, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        record[item["dest"]] = source
        write_private_json(record_path, record)
        result.pulled.append(item["dest"])
    heads = [i["round"] for i in items if i["kind"] == "head"]
    if heads:
        _prune_checkpoints(run_dir, partner, keep_from=max(heads) - 1)
    if result.pulled:
        say(f"  {partner}: pulled {len(result.pulled)} private file(s) into {folder}")
    return result


def _prune_checkpoints(run_dir: Path, name: str, keep_from: int) -> None:
    """Checkpoints older than the previous round are not needed any more."""
    for p in (partner_dir(run_dir, name) / "checkpoints").glob("round_*"):
        if int(p.name.split("_")[1]) < keep_from:
            shutil.rmtree(p, ignore_errors=True)
