"""Substra plumbing for a run: one client per organisation, function archives, datasets, submission, downloads.

Local mode (`subprocess`): every client lives in this process and shares one in-memory Substra; each becomes an
organisation numbered in creation order, and its tasks' outputs are stored as hard links (local_store). Substra
writes `local-worker/` into the current directory, so the run chdirs into its work folder first. Remote mode builds
the same clients against real backends (fedchem.orchestrator.remote). Downloads go through the reader's own client
and are refused when the plan did not authorize that reader.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from fedchem.algo.functions.specs import FUNCTIONS, FunctionDef
from fedchem.opener.errors import ConfigError, FedchemError, PrivacyError, RunStopped
from fedchem.opener.fileio import PRIVATE_FILE_MODE
from fedchem.opener.substra_opener import partner_opener_source
from fedchem.orchestrator.run.archive import Wheel, fedchem_wheel, function_archive, pinned_constraints
from fedchem.orchestrator.run.plan import DatasetKeys, TaskPlan

OPENER_SHIM = (
    '"""fedchem dataset opener (the code lives in fedchem.opener.substra_opener)."""\n'
    "from fedchem.opener.substra_opener import FedchemOpener  # noqa: F401\n"
)


@contextlib.contextmanager
def working_directory(path: Path):
    """Substra's local backend writes into the current directory; keep it inside the run folder."""
    old = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)


@dataclass
class Network:
    """The organisations of a run: name -> client and name -> organisation id (aggregator included)."""

    clients: dict
    orgs: dict[str, str]
    aggregator: str
    function_keys: dict[str, str] = field(default_factory=dict)
    wheel: Wheel | None = None  # fedchem's wheel in the registered function archives (its sha256 -> the ledger)
    local: bool = True  # remote: real backends, where each partner's data is registered on its own node
    # Substra's local backend runs each task inside the submitting call (and raises there when it fails); a real
    # node returns at once and runs it later: the driver then submits a whole step and waits on its statuses
    synchronous: bool = True

    @property
    def operator(self):
        """The client that submits plans (the aggregator's organisation hosts the run)."""
        return self.clients[self.aggregator]


def quiet_substra() -> None:
    """Substra's INFO logs would drown the run's own progress lines (its tqdm bars: see cli.main)."""
    import logging

    logging.getLogger("substra").setLevel(logging.WARNING)


def local_network(partners: list[str], aggregator: str) -> Network:
    """One subprocess-backend client per organisation; the aggregator's first, partners in consortium order."""
    import substra

    from fedchem.orchestrator.run.local_store import link_outputs

    quiet_substra()
    link_outputs()  # outputs stored as hard links to what each task wrote, not copies (local_store's docstring)
    clients, orgs = {}, {}
    for name in [aggregator] + list(partners):
        c = substra.Client(client_name=name, backend_type="subprocess")
        clients[name] = c
        orgs[name] = c.organization_info().organization_id
    return Network(clients, orgs, aggregator)


def network_from_clients(clients: dict, aggregator: str, orgs: dict[str, str] | None = None) -> Network:
    """A network against real backends. Remote mode: the operator's own client only (the aggregator's), and every
    organisation's id from its config (`orgs`); the operator holds no partner token."""
    ids = {n: c.organization_info().organization_id for n, c in clients.items()}
    return Network(dict(clients), {**(orgs or {}), **ids}, aggregator, local=False, synchronous=False)


@dataclass(frozen=True)
class Registered:
    """What register_functions did: function name -> Substra key, and the wheel every archive carries."""

    keys: dict[str, str]
    wheel: Wheel


def register_functions(net: Network, folder: Path, wheel: Wheel | None = None) -> Registered:
    """Register every fedchem function once, usable by the consortium's organisations only. Each archive carries
    fedchem's wheel (default: built from the checkout now, cached per source hash) and pinned dependencies."""
    from substra.sdk.schemas import AssetKind, FunctionInputSpec, FunctionOutputSpec, FunctionSpec, Permissions

    wheel = wheel or fedchem_wheel()
    constraints = pinned_constraints()
    members = sorted(net.orgs.values())
    for fdef in FUNCTIONS.values():
        desc = folder / f"{fdef.name}.md"
        folder.mkdir(parents=True, exist_ok=True)
        desc.write_text(f"# {fdef.name}\n\n{fdef.description}\n")
        spec = FunctionSpec(
            name=f"fedchem-{fdef.name}",
            description=desc,
            file=function_archive(fdef, folder, wheel, constraints),
            permissions=Permissions(public=False, authorized_ids=members),
            inputs=[FunctionInputSpec(identifier=i.identifier, kind=AssetKind[i.kind], multiple=i.multiple,
                                      optional=i.optional) for i in fdef.inputs],
            outputs=[FunctionOutputSpec(identifier=o.identifier, kind=AssetKind[o.kind], multiple=False)
                     for o in fdef.outputs],
        )
        net.function_keys[fdef.name] = net.operator.add_function(spec)
    net.wheel = wheel
    return Registered(dict(net.function_keys), wheel)


def register_dataset(net: Network, owner: str, name: str, sample_folders: list[Path], folder: Path,
                     node_dir: Path | None = None) -> DatasetKeys:
    """Register `owner`'s dataset (usable by the owner only) with one data sample per folder; a partner's opener
    names its node folder."""
    from substra.sdk.schemas import DataSampleSpec, DatasetSpec, Permissions

    client = net.clients[owner]
    own = Permissions(public=False, authorized_ids=[net.orgs[owner]])
    folder.mkdir(parents=True, exist_ok=True)
    opener = folder / "opener.py"
    opener.write_text(OPENER_SHIM if node_dir is None else partner_opener_source(node_dir))
    desc = folder / "description.md"
    desc.write_text(f"# {name}\n\nA fedchem dataset of organisation '{owner}'. Its content never leaves it.\n")
    key = client.add_dataset(DatasetSpec(name=name, data_opener=opener, description=desc, permissions=own,
                                         logs_permission=own))
    samples = tuple(client.add_data_sample(DataSampleSpec(path=Path(f).resolve(), data_manager_keys=[key]))
                    for f in sample_folders)
    return DatasetKeys(opener=key, samples=samples)


def find_dataset(net: Network, owner: str, name: str) -> tuple[DatasetKeys, dict]:
    """A dataset already registered on `owner`'s own node (remote mode: the node's registration Job made it; the
    operator never uploads a partner's data), found through the operator's client (dataset names, owners and
    metadata are visible to the channel; their content is not). Its first data sample is the prepared folder.
    Returns its keys and its metadata (what the registration published: partner name, secret fingerprints)."""
    for ds in net.operator.list_dataset():
        if ds.name == name and ds.owner == net.orgs[owner]:
            samples = tuple(ds.data_sample_keys or ())
            if not samples:
                break
            return DatasetKeys(opener=ds.key, samples=samples[:1]), dict(ds.metadata or {})
    raise ConfigError(f"no dataset '{name}' with data on the node of '{owner}'", where=f"organisation {net.orgs[owner]}",
                      fix=f"deploy its node (make deploy-partner PARTNER={owner}): its Job registers the prepared data")


def to_substra(task: TaskPlan, function_keys: dict[str, str]):
    from substra.sdk.schemas import ComputePlanTaskSpec, ComputeTaskOutputSpec, InputRef, Permissions

    inputs = []
    for ref in task.inputs:
        if ref.asset_key is not None:
            inputs.append(InputRef(identifier=ref.identifier, asset_key=ref.asset_key))
        else:
            inputs.append(InputRef(identifier=ref.identifier, parent_task_key=ref.parent_task,
                                   parent_task_output_identifier=ref.parent_output))
    outputs = {ident: ComputeTaskOutputSpec(permissions=Permissions(public=True, authorized_ids=[])
                                            if tuple(readers) == ("public",) else
                                            Permissions(public=False, authorized_ids=list(readers)))
               for ident, readers in task.outputs}
    return ComputePlanTaskSpec(task_id=task.task_id, function_key=function_keys[task.function], worker=task.worker,
                               tag=task.name, metadata={"fedchem_task": task.name.replace("/", ":")},
                               inputs=inputs, outputs=outputs)


class TaskFailed(FedchemError):
    """A task's own code failed (the partner's node went down, or its input broke it)."""


def create_plan(net: Network, plan_id: str, name: str, tasks: list[TaskPlan]) -> None:
    from substra.sdk.schemas import ComputePlanSpec

    spec = ComputePlanSpec(key=plan_id, name=name, tasks=[to_substra(t, net.function_keys) for t in tasks])
    _run(lambda: net.operator.add_compute_plan(spec), tasks)


def add_tasks(net: Network, plan_id: str, tasks: list[TaskPlan]) -> None:
    from substra.sdk.schemas import UpdateComputePlanTasksSpec

    spec = UpdateComputePlanTasksSpec(key=plan_id, tasks=[to_substra(t, net.function_keys) for t in tasks])
    _run(lambda: net.operator.add_compute_plan_tasks(key=plan_id, tasks=spec), tasks)


def _run(call, tasks: list[TaskPlan]) -> None:
    """Submit; a task failing inside the call (local backend) is TaskFailed, the backend's refusals are errors by
    the SDK's public types: a refused plan or token is a clear error, an unreachable backend a resumable stop."""
    from substra.sdk.exceptions import (AlreadyExists, AuthenticationError, AuthorizationError, InvalidRequest,
                                    RequestException)
    # the local backend's own failure type (it has no public name: the subprocess spawner raises it)
    from substra.sdk.backends.local.compute.spawner.base import ExecutionError

    names = ", ".join(t.name for t in tasks)
    try:
        call()
    except ExecutionError as exc:
        raise TaskFailed(f"a task failed while running [{names}]", where=type(exc).__name__,
                         fix="see the task's output above and its private log") from None
    except (AuthenticationError, AuthorizationError) as exc:
        raise FedchemError(f"the Substra backend refused the operator's token ({type(exc).__name__})",
                           where=f"submitting [{names}]",
                           fix="renew the aggregator organisation's API token and run `fedchem run --resume RUN_DIR`"
                           ) from None
    except (InvalidRequest, AlreadyExists) as exc:
        raise FedchemError(f"the Substra backend refused the tasks [{names}] ({type(exc).__name__}: "
                           f"{str(exc)[:300]})", where="the operator's Substra backend",
                           fix="check that every node runs this fedchem version and that each task's worker owns "
                               "its dataset; then start a new run folder") from None
    except RequestException as exc:
        raise RunStopped(f"the Substra backend could not be reached while submitting [{names}] "
                         f"({type(exc).__name__})", where="the operator's Substra backend",
                         fix="check the backend (`fedchem node status`), then `fedchem run --resume RUN_DIR`"
                         ) from None


def cancel_plan(net: Network, plan_id: str) -> bool:
    """Ask the backend to cancel a plan whose tasks timed out (a real node's tasks would run on); best effort:
    the local backend cannot cancel (its tasks ran inside the submitting call)."""
    from substra.sdk.exceptions import SDKException

    try:
        net.operator.cancel_compute_plan(plan_id)
        return True
    except (NotImplementedError, SDKException):
        return False


def download(net: Network, reader: str, task: TaskPlan, identifier: str, dest: Path) -> Path:
    """Fetch one output through `reader`'s own client, only if the plan authorized that reader."""
    readers = task.authorized(identifier)
    if readers != ("public",) and net.orgs[reader] not in readers:
        raise PrivacyError(f"'{reader}' may not read output '{identifier}'", where=f"task '{task.name}'",
                           fix="only an authorized organisation downloads an output")
    return fetch_output(net.clients[reader], task.task_id, identifier, dest)


LOCAL_BACKENDS = ("subprocess", "docker")  # Substra's local backends: their outputs are files on this machine


def fetch_output(client, task_key: str, identifier: str, folder: Path) -> Path:
    """One task output through `client` into `folder`. On Substra's local backend, a hard link to the file it stores
    instead of its copy: every partner pulls its optimizer state (twice the trunk) every round, and on these
    machines a copy into fresh page cache is the slow part of a round (README, *Figures*). Substra never rewrites a
    stored output, so the link holds the same bytes; on a real backend, or where no link can be made (another file
    system), it is Substra's own download."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mode = getattr(client, "backend_mode", None)  # a str in substra 1.0 (its BackendType's value)
    if getattr(mode, "value", mode) in LOCAL_BACKENDS:
        asset = client.get_task_output_asset(task_key, identifier).asset
        dest = folder / f"model_{asset.key}"
        try:
            os.link(asset.address.storage_address, dest)
        except OSError:
            pass  # another file system: Substra's copy below
        else:  # a link has the stored file's mode (a task's umask): owner-only, as every file of a run folder
            os.chmod(dest, PRIVATE_FILE_MODE)
            return dest
    return Path(client.download_model_from_task(task_key, identifier=identifier, folder=folder))
