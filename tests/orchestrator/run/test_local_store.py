"""Substra's local backend stores a task's outputs as hard links to the files the task wrote (local_store).

The real Substra SDK in subprocess mode runs a one-line task that writes, into its output, the inode number of the
very file it is writing. The stored output holds its own inode only if Substra kept the task's file: with Substra's
own copy (the control, the shim taken out) it holds another file's, so the test can fail.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from fedchem.orchestrator.run import local_store

SCRIPT = '''\
import os
import substratools as tools


@tools.register
def write_inode(inputs, outputs, task_properties):
    with open(outputs["out"], "w") as fh:  # the file Substra finds at the output path when the task ends
        fh.write(str(os.fstat(fh.fileno()).st_ino))


if __name__ == "__main__":
    tools.execute()
'''
DOCKERFILE = 'FROM python:3.11-slim\nENTRYPOINT ["python3", "function.py", "--function-name", "write_inode"]\n'


def _stored_output(tmp_path: Path, tag: str) -> Path:
    """Run the inode-writing task once on a fresh subprocess-backend client; the stored output's path."""
    import substra
    from substra.sdk.schemas import (AssetKind, ComputeTaskOutputSpec, FunctionOutputSpec, FunctionSpec,
                                     Permissions, TaskSpec)

    archive = tmp_path / f"{tag}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("function.py", SCRIPT)
        z.writestr("Dockerfile", DOCKERFILE)
    (tmp_path / "description.md").write_text("writes its output's inode\n")
    client = substra.Client(client_name=f"org-{tag}", backend_type="subprocess")
    org = client.organization_info().organization_id
    private = Permissions(public=False, authorized_ids=[org])
    function = client.add_function(FunctionSpec(
        name=f"inode-{tag}", description=tmp_path / "description.md", file=archive, permissions=private,
        inputs=[], outputs=[FunctionOutputSpec(identifier="out", kind=AssetKind.model, multiple=False)]))
    task = client.add_task(TaskSpec(function_key=function, worker=org, inputs=[],
                                    outputs={"out": ComputeTaskOutputSpec(permissions=private)}))
    asset = client.get_task_output_asset(task, "out").asset
    path = Path(asset.address.storage_address)
    assert asset.address.checksum == hashlib.sha256(path.read_bytes()).hexdigest()  # Substra hashed what it stores
    return path


def test_substra_stores_the_file_the_task_wrote(tmp_path, monkeypatch):
    from substra.sdk.backends.local.compute import worker

    monkeypatch.chdir(tmp_path)  # Substra's local-worker/ lands here
    monkeypatch.setattr(worker, "shutil", worker.shutil)  # restored after the test, whatever link_outputs does
    monkeypatch.setattr(worker, "fs", worker.fs)
    assert local_store.link_outputs() and local_store.outputs_linked()
    assert local_store.link_outputs()  # idempotent
    linked = _stored_output(tmp_path, "linked")
    assert int(linked.read_text()) == os.stat(linked).st_ino  # the task's own file
    assert os.stat(linked).st_nlink == 1  # the scratch name is gone: nothing else holds it

    import shutil

    monkeypatch.setattr(worker, "shutil", shutil)  # the control: Substra's own copy
    assert not local_store.outputs_linked()
    copied = _stored_output(tmp_path, "copied")
    assert int(copied.read_text()) != os.stat(copied).st_ino


THREE_OUTPUTS = '''\
import os
import substratools as tools


@tools.register
def write_three(inputs, outputs, task_properties):
    for name, size in (("big_a", 3 << 20), ("big_b", 2 << 20), ("small", 100)):
        with open(outputs[name], "wb") as fh:
            fh.write(os.urandom(size))


if __name__ == "__main__":
    tools.execute()
'''


def _three_outputs(tmp_path: Path, tag: str) -> dict:
    """Run a task writing two large outputs and a small one on a fresh subprocess-backend client: each output's
    recorded checksum and stored path."""
    import substra
    from substra.sdk.schemas import (AssetKind, ComputeTaskOutputSpec, FunctionOutputSpec, FunctionSpec,
                                     Permissions, TaskSpec)

    archive = tmp_path / f"{tag}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("function.py", THREE_OUTPUTS)
        z.writestr("Dockerfile", DOCKERFILE.replace("write_inode", "write_three"))
    (tmp_path / "description.md").write_text("writes three outputs\n")
    client = substra.Client(client_name=f"org-{tag}", backend_type="subprocess")
    org = client.organization_info().organization_id
    private = Permissions(public=False, authorized_ids=[org])
    names = ("big_a", "big_b", "small")
    function = client.add_function(FunctionSpec(
        name=f"three-{tag}", description=tmp_path / "description.md", file=archive, permissions=private,
        inputs=[], outputs=[FunctionOutputSpec(identifier=n, kind=AssetKind.model, multiple=False) for n in names]))
    task = client.add_task(TaskSpec(function_key=function, worker=org, inputs=[],
                                    outputs={n: ComputeTaskOutputSpec(permissions=private) for n in names}))
    assets = {n: client.get_task_output_asset(task, n).asset for n in names}
    return {n: (a.address.checksum, Path(a.address.storage_address)) for n, a in assets.items()}


def test_large_outputs_are_hashed_side_by_side_with_substras_checksum(tmp_path, monkeypatch):
    """A real task's two large outputs get their sha256 from the side-by-side hashing, not from Substra's own
    hash_file (which then sees only the small output); every recorded checksum is the stored file's sha256."""
    from substra.sdk import fs
    from substra.sdk.backends.local.compute import worker

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(worker, "shutil", worker.shutil)
    monkeypatch.setattr(worker, "fs", worker.fs)
    hashed_by_substra = []
    own = fs.hash_file

    def spy(path):  # the outputs Substra's own function hashes (it hashes the function's archive too)
        if "outputs" in Path(path).parts:
            hashed_by_substra.append(Path(path).name)
        return own(path)
    monkeypatch.setattr(fs, "hash_file", spy)
    assert local_store.link_outputs()
    outputs = _three_outputs(tmp_path, "side")
    for checksum, path in outputs.values():
        assert checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert hashed_by_substra == [outputs["small"][1].name]

    import shutil

    monkeypatch.setattr(worker, "shutil", shutil)  # the control: Substra's copy, nothing hashed beforehand
    hashed_by_substra.clear()
    outputs = _three_outputs(tmp_path, "control")
    assert sorted(hashed_by_substra) == sorted(p.name for _c, p in outputs.values())
    for checksum, path in outputs.values():
        assert checksum == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_side_by_side_digest_is_taken_once_and_only_for_the_unchanged_file(tmp_path):
    digests = local_store.OutputDigests()
    a, b, small = tmp_path / "a", tmp_path / "b", tmp_path / "small"
    a.write_bytes(b"a" * local_store.SIDE_BY_SIDE_BYTES)
    b.write_bytes(b"b" * local_store.SIDE_BY_SIDE_BYTES)
    small.write_bytes(b"c")
    digests.prefetch(str(tmp_path))
    st = os.stat(b)
    b.write_bytes(b"B" * local_store.SIDE_BY_SIDE_BYTES)  # same size, new content
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write, whatever the clock's grain
    os.link(a, tmp_path / "a-link")  # a second name moves the change time only: still the same file
    assert digests.take(tmp_path / "a-link") == hashlib.sha256(a.read_bytes()).hexdigest()
    assert digests.take(a) is None  # taken once
    assert digests.take(b) is None and digests.take(small) is None  # changed since; never hashed beforehand
    assert local_store.hash_file(b) == hashlib.sha256(b.read_bytes()).hexdigest()  # Substra's own hashing then


def test_link_or_copy_keeps_shutil_copys_contract(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 1000)
    os.chmod(src, 0o600)
    out = local_store.link_or_copy(src, tmp_path / "b.bin")
    assert out == tmp_path / "b.bin" and os.stat(out).st_ino == os.stat(src).st_ino
    assert os.stat(out).st_mode & 0o777 == 0o600
    (tmp_path / "folder").mkdir()
    into = local_store.link_or_copy(src, tmp_path / "folder")  # a folder as dst: the file's name inside it
    assert Path(into) == tmp_path / "folder" / "a.bin" and os.stat(into).st_ino == os.stat(src).st_ino
    existing = tmp_path / "c.bin"
    existing.write_bytes(b"old")
    local_store.link_or_copy(src, existing)  # an existing target: overwritten with the bytes, as copy does
    assert existing.read_bytes() == b"x" * 1000 and os.stat(existing).st_ino != os.stat(src).st_ino


def test_link_or_copy_copies_across_file_systems(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (/dev/shm) to copy across")
    src = shm / f"fedchem-test-{os.getpid()}.bin"
    src.write_bytes(b"y" * 100)
    try:
        out = local_store.link_or_copy(src, tmp_path / "b.bin")
        assert Path(out).read_bytes() == b"y" * 100 and os.stat(out).st_ino != os.stat(src).st_ino
    finally:
        src.unlink()


def test_another_substra_version_is_left_alone(monkeypatch):
    import shutil

    import substra
    from substra.sdk.backends.local.compute import worker

    monkeypatch.setattr(worker, "shutil", shutil)
    monkeypatch.setattr(substra, "__version__", "1.1.0")
    assert not local_store.link_outputs() and worker.shutil is shutil


def test_queued_outputs_go_just_before_their_organisations_next_task(tmp_path):
    """run.transient: what a round left unread waits in `to_free` until a task of the organisation that wrote it is
    submitted (its writes then reuse the memory just freed); the run's end removes the rest."""
    from types import SimpleNamespace

    from fedchem.orchestrator.run import transient

    files = {org: [tmp_path / f"{org}-{i}" for i in range(2)] for org in ("org-a", "org-b", "org-agg")}
    for paths in files.values():
        for p in paths:
            p.write_bytes(b"z")
    run = SimpleNamespace(to_free={org: [str(p) for p in paths] for org, paths in files.items()})
    assert transient.free_before(run, [SimpleNamespace(worker="org-a"), SimpleNamespace(worker="org-a")]) == 2
    assert not any(p.exists() for p in files["org-a"]) and all(p.exists() for p in files["org-b"] + files["org-agg"])
    files["org-b"][0].unlink()  # gone already: skipped, not an error
    assert transient.free_before(run, [SimpleNamespace(worker="org-b")]) == 1
    assert transient.free_before(run, [SimpleNamespace(worker="org-b")]) == 0  # nothing queued any more
    assert transient.free_queued(run) == 2 and run.to_free == {}
    assert not any(p.exists() for paths in files.values() for p in paths)
