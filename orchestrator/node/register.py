"""Register a partner's prepared dataset with its own Substra backend (the chart's post-install Job runs this).

The dataset is private to the partner's organisation; its data sample is the prepared folder. Its metadata (which
the channel sees) carries the manifest hash, the partner name and the consortium secret's keyed fingerprints from
the manifest (opener.secret_check: they tell secrets apart and reveal nothing), so the operator can check that all
partners prepared with one secret without holding it. Registration is idempotent: a dataset with the same name
whose metadata carries the same manifest hash is kept, not duplicated.
Run in the cluster as `python -m fedchem.orchestrator.node.register --url ... --name ... --organization ...
--prepared DIR` with SUBSTRA_USERNAME/SUBSTRA_PASSWORD (or SUBSTRA_TOKEN) in the environment.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedchem.opener.fileio import sha256_file
from fedchem.opener.errors import ConfigError, DataError, FedchemError
from fedchem.opener.secret_check import MANIFEST_KEY


@dataclass(frozen=True)
class Registration:
    dataset_key: str
    data_sample_keys: tuple[str, ...]
    created: bool


def default_opener() -> Path:
    """Path of fedchem's Substra opener script (registered as every dataset's opener)."""
    spec = importlib.util.find_spec("fedchem.opener.substra_opener")
    if spec is None or spec.origin is None:
        raise ConfigError("fedchem's Substra opener is not installed", where="fedchem.opener.substra_opener",
                          fix="install fedchem (pip install -e .) in this environment")
    return Path(spec.origin)


def register_prepared(client: Any, name: str, organization: str, prepared_dir: Path,
                      opener: Path | None = None, node_dir: Path | None = None) -> Registration:
    """Register (or find) the dataset `name` holding prepared_dir, visible to `organization` only. With `node_dir`
    the opener is bound to the partner's node folder (its signed agreement and protocol state); without one the
    partner's tasks find no agreement and refuse every plan (fail closed)."""
    from substra.sdk.schemas import DataSampleSpec, DatasetSpec, Permissions

    prepared_dir = Path(prepared_dir)
    manifest = prepared_dir / "manifest.json"
    if not manifest.is_file():
        raise DataError("this is not a prepared folder (no manifest.json)", where=str(prepared_dir),
                        fix="run `fedchem prepare` and point --prepared at its output folder")
    digest = sha256_file(manifest)
    content = json.loads(manifest.read_text())
    fps = content.get(MANIFEST_KEY) or {}
    metadata = {"fedchem_manifest_sha256": digest, "fedchem_partner": str(content.get("partner") or ""),
                "fedchem_secret_scramble": fps.get("scramble") or "", "fedchem_secret_folds": fps.get("folds") or ""}
    metadata = {k: v for k, v in metadata.items() if v}  # Substra refuses empty metadata values
    for ds in client.list_dataset():
        if ds.name == name and (ds.metadata or {}).get("fedchem_manifest_sha256") == digest:
            return Registration(ds.key, tuple(ds.data_sample_keys or ()), created=False)
    only_me = Permissions(public=False, authorized_ids=[organization])
    with tempfile.TemporaryDirectory() as tmp:
        description = Path(tmp) / "description.md"
        description.write_text(f"# {name}\n\nfedchem prepared dataset (manifest sha256 {digest}).\n")
        if opener is None and node_dir is not None:
            from fedchem.opener.substra_opener import partner_opener_source

            opener = Path(tmp) / "opener.py"
            opener.write_text(partner_opener_source(node_dir))
        key = client.add_dataset(DatasetSpec(name=name, data_opener=opener or default_opener(),
                                             description=description, permissions=only_me, logs_permission=only_me,
                                             metadata=metadata))
    sample = client.add_data_sample(DataSampleSpec(path=prepared_dir, data_manager_keys=[key]))
    return Registration(key, (sample,), created=True)


def _connect(url: str, wait_s: float) -> Any:
    """A remote client, retrying until the backend answers (it may still be starting after an install)."""
    import substra

    token, user, password = (os.environ.get(k) for k in ("SUBSTRA_TOKEN", "SUBSTRA_USERNAME", "SUBSTRA_PASSWORD"))
    if not token and not (user and password):
        raise ConfigError("no credentials for the backend", where="environment",
                          fix="set SUBSTRA_TOKEN, or SUBSTRA_USERNAME and SUBSTRA_PASSWORD")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if token:
                client = substra.Client(backend_type="remote", url=url, token=token)
            else:
                client = substra.Client(backend_type="remote", url=url, username=user, password=password)
            client.organization_info()
            return client
        except Exception as exc:  # connection refused / 5xx while the backend starts
            if time.monotonic() >= deadline:
                raise FedchemError(f"the backend did not answer ({type(exc).__name__})", where=url,
                                   fix="check the backend pods (`fedchem node status`)") from None
            time.sleep(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Register a prepared dataset with this partner's Substra backend.")
    parser.add_argument("--url", required=True, help="backend URL (in-cluster service URL inside the Job)")
    parser.add_argument("--name", required=True, help="dataset name, e.g. pharma-a-prepared")
    parser.add_argument("--organization", required=True, help="this partner's organisation id (MSP id)")
    parser.add_argument("--prepared", type=Path, required=True, help="the prepared folder (has manifest.json)")
    parser.add_argument("--opener", type=Path, default=None, help="opener script (default: fedchem's)")
    parser.add_argument("--node-dir", type=Path, default=None,
                        help="the partner's node folder (signed agreement + protocol state) on storage mounted "
                             "into its compute pods; the opener is bound to it")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for the backend to answer")
    args = parser.parse_args(argv)
    try:
        reg = register_prepared(_connect(args.url, args.wait), args.name, args.organization, args.prepared,
                                args.opener, args.node_dir)
    except FedchemError as exc:
        print(exc.message(), file=sys.stderr)
        return exc.exit_code
    print(f"dataset {args.name}: key {reg.dataset_key} ({'registered' if reg.created else 'already registered'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
