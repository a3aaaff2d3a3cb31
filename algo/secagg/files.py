"""Save and load the secure-aggregation objects as files: JSON for bundles, npz for masked vectors.

Writes are atomic (temp file in the same folder, then rename), so a crashed task never leaves half a file.
A masked update's npz is stored uncompressed (masked words are incompressible) and can be opened memory-mapped,
so the aggregator can stream 30 partners' vectors without holding them all in memory.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fedchem.algo.secagg.bundles import MaskedUpdate, PublicBundle, ReleasedShares, SecretBundle, SharesBundle
from fedchem.algo.secagg.encoding import ring_dtype
from fedchem.opener.errors import ProtocolError
from fedchem.opener.fileio import atomic_write, write_json

MASKED_FORMAT = "fedchem-secagg-masked/1"


def _load_json(path: str | os.PathLike) -> Any:
    """JSON from a file; missing or malformed is a ProtocolError naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProtocolError("file not found", str(path), "check the task inputs") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("not a JSON file", str(path), "pass the file fedchem wrote") from exc


def save_public_bundle(path: str | os.PathLike, bundle: PublicBundle) -> None:
    """Write a public bundle (JSON)."""
    write_json(path, bundle.to_dict())


def load_public_bundle(path: str | os.PathLike) -> PublicBundle:
    """Read a public bundle written by save_public_bundle."""
    return PublicBundle.from_dict(_load_json(path), str(path))


def save_secret_bundle(path: str | os.PathLike, bundle: SecretBundle) -> None:
    """Write a secret bundle (JSON, file mode 0600: owner only)."""
    write_json(path, bundle.to_dict(), mode=0o600)


def load_secret_bundle(path: str | os.PathLike) -> SecretBundle:
    """Read a secret bundle written by save_secret_bundle."""
    return SecretBundle.from_dict(_load_json(path), str(path))


def save_shares_bundle(path: str | os.PathLike, bundle: SharesBundle) -> None:
    """Write a shares bundle (JSON of ciphertexts)."""
    write_json(path, bundle.to_dict())


def load_shares_bundle(path: str | os.PathLike) -> SharesBundle:
    """Read a shares bundle written by save_shares_bundle."""
    return SharesBundle.from_dict(_load_json(path), str(path))


def save_released_shares(path: str | os.PathLike, released: ReleasedShares) -> None:
    """Write one partner's released shares (JSON; for the aggregator only)."""
    write_json(path, released.to_dict())


def load_released_shares(path: str | os.PathLike) -> ReleasedShares:
    """Read released shares written by save_released_shares."""
    return ReleasedShares.from_dict(_load_json(path), str(path))


def save_masked_update(path: str | os.PathLike, masked: MaskedUpdate) -> None:
    """Write a masked update as uncompressed npz: `vector` (ring words) and `header` (JSON text). n_clipped stays out."""
    header = np.array(json.dumps(masked.header(), sort_keys=True))
    atomic_write(path, lambda fh: np.savez(fh, vector=masked.vector, header=header))


def _memmap_member(path: Path, member: str) -> np.ndarray:
    """Memory-map an uncompressed .npy member of an npz file (read-only)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ProtocolError(
                "compressed masked update cannot be memory-mapped", str(path), "load it with mmap=False"
            )
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ProtocolError("corrupt npz file", str(path), "re-create the masked update")
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        if dtype.hasobject or fortran:
            raise ProtocolError("unexpected array layout in masked update", str(path), "re-create the masked update")
        return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape)


def load_masked_update(path: str | os.PathLike, mmap: bool = False) -> MaskedUpdate:
    """Read a masked update; with mmap=True the vector is memory-mapped (streamed by unmask_sum, not loaded)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(str(npz["header"]))
            vector = None if mmap else npz["vector"]
    except FileNotFoundError as exc:
        raise ProtocolError("file not found", str(path), "check the task inputs") from exc
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ProtocolError(
            f"not a masked-update file ({type(exc).__name__})", str(path), "pass the file fedchem wrote"
        ) from exc
    if mmap:
        vector = _memmap_member(path, "vector.npy")
    if not isinstance(header, dict) or header.get("format") != MASKED_FORMAT:
        raise ProtocolError("not a masked-update file", str(path), "pass the file fedchem wrote")
    try:
        masked = MaskedUpdate(
            plan_id=str(header["plan_id"]),
            round=int(header["round"]),
            party_id=str(header["party_id"]),
            ring_bits=int(header["ring_bits"]),
            n_parties=int(header["n_parties"]),
            vector=vector,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError("masked-update header is incomplete", str(path), "pass the file fedchem wrote") from exc
    if vector.ndim != 1 or vector.dtype != ring_dtype(masked.ring_bits) or vector.shape[0] < 1:
        raise ProtocolError("masked vector has the wrong type or shape", str(path), "pass the file fedchem wrote")
    return masked
