"""One parameter-file format for trunk and head, and the one file-I/O helper: atomic, stable, owner modes."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from fedchem.algo.params import load_meta, load_params, save_params
from fedchem.algo.guard.state import NodeState
from fedchem.opener.fileio import (atomic_folder, atomic_write, durable_writes, json_text, read_json, sha256_file,
                                   write_json)


def test_trunk_and_head_share_one_format(tmp_path):
    arrays = {"z.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.bias": np.ones(2, np.float32)}
    save_params(tmp_path / "trunk.npz", arrays, {"round": 3, "plan_id": "p"})
    save_params(tmp_path / "head.npz", arrays)
    got, meta = load_params(tmp_path / "trunk.npz")
    assert list(got) == ["z.weight", "a.bias"] and meta == {"round": 3, "plan_id": "p"}
    assert load_meta(tmp_path / "trunk.npz") == meta
    head, head_meta = load_params(tmp_path / "head.npz")
    assert head_meta == {} and all(np.array_equal(head[k], arrays[k]) for k in arrays)


def test_a_foreign_npz_is_refused_not_misread(tmp_path):
    np.savez(tmp_path / "other.npz", weight=np.zeros(2))
    with pytest.raises(ValueError, match="not a fedchem parameter file"):
        load_params(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a fedchem parameter file"):
        load_meta(tmp_path / "other.npz")


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, b"old")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_a_task_process_skips_the_fsync_of_its_outputs_never_of_the_partner_state(tmp_path, monkeypatch):
    """durable_writes(False) (what a Substra task sets) drops the fsync of ordinary atomic writes; the node's
    protocol state is still synced (file and folder), since the replay and double-release records must survive."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    atomic_write(tmp_path / "default.bin", b"x")
    assert len(synced) == 1
    state = NodeState(tmp_path / "node")
    plan = "0123abcd-0000-4000-8000-000000000000"
    durable_writes(False)
    try:
        synced.clear()
        atomic_write(tmp_path / "output.bin", b"y")
        write_json(tmp_path / "output.json", {"a": 1})
        assert synced == []
        assert (tmp_path / "output.bin").read_bytes() == b"y" and read_json(tmp_path / "output.json") == {"a": 1}
        atomic_write(tmp_path / "forced.bin", b"z", durable=True)
        assert len(synced) == 1
        synced.clear()
        state.save_round(plan, 1, {"masked": ["p1"]})
        assert len(synced) == 2  # the record and its folder
        assert state.round(plan, 1) == {"masked": ["p1"]}
    finally:
        durable_writes(True)
    synced.clear()
    atomic_write(tmp_path / "default.bin", b"w")
    assert len(synced) == 1


def test_modes_and_stable_json(tmp_path):
    old = os.umask(0)
    try:
        write_json(tmp_path / "secret.json", {"b": 1, "a": np.float32(0.5)}, mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secret.json").stat().st_mode) == 0o600
    assert (tmp_path / "secret.json").read_text() == json_text({"a": 0.5, "b": 1}) == '{\n  "a": 0.5,\n  "b": 1\n}\n'
    assert read_json(tmp_path / "secret.json") == {"a": 0.5, "b": 1}
    assert len(sha256_file(tmp_path / "secret.json")) == 64


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert [p.name for p in out.iterdir()] == ["old.txt"] and len(list(tmp_path.iterdir())) == 1
    with atomic_folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"] and len(list(tmp_path.iterdir())) == 1
