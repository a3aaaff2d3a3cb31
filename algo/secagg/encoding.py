"""Fixed-point encoding of clipped, weighted updates in the ring Z/2^k, with a scale that makes the sum unable to wrap.

Overflow bound. A partner sends v_i = rint(w * clip(u_i) * S) for each coordinate, with w = weight / max_weight in
(0, 1] and clip(u) in [-c, c], and v_w = rint(w * S_w) for its weight. Since |w * clip(u_i)| <= c exactly in
floating point and S is a power of two (so multiplying by it is exact), |v_i| <= ceil(c * S). The sum of N partners
therefore satisfies |sum v_i| <= N * ceil(c * S), and decoding the ring sum as a signed k-bit integer is exact if

    N * ceil(c * S) <= 2^(k-1) - 1.

S is the largest power of two meeting this (S_w the same with c = 1), so every coordinate keeps
k - 1 - ceil(log2(N * c)) - 1 bits or more of precision; the decoded sum differs from the plain weighted sum by at
most N / (2 S) * max_weight per coordinate (half a quantisation step per partner).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from fedchem.opener.errors import ProtocolError


def ring_dtype(ring_bits: int) -> np.dtype:
    """Unsigned little-endian dtype whose natural wrap-around is the ring arithmetic."""
    if ring_bits not in (32, 64):
        raise ProtocolError(f"ring of {ring_bits} bits is not supported", "secagg.ring_bits", "use 32 or 64")
    return np.dtype("<u8") if ring_bits == 64 else np.dtype("<u4")


def signed_dtype(ring_bits: int) -> np.dtype:
    """Signed dtype of the same width, to read a ring element as a two's-complement integer."""
    return np.dtype("<i8") if ring_bits == 64 else np.dtype("<i4")


def fixed_point_scale(bound: float, n_parties: int, ring_bits: int) -> float:
    """Largest power of two S with n_parties * ceil(bound * S) <= 2^(ring_bits-1) - 1 (see the module docstring)."""
    if n_parties < 1 or not bound > 0 or not math.isfinite(bound):
        raise ProtocolError(
            f"no fixed-point scale for {n_parties} partners and bound {bound}",
            "secagg config",
            "use a positive clip and at least one partner",
        )
    limit = 2 ** (ring_bits - 1) - 1
    exponent = math.floor(math.log2(limit / (n_parties * bound)))
    while exponent > -1074 and n_parties * math.ceil(bound * 2.0**exponent) > limit:
        exponent -= 1  # log2 may round up at the edge; step down until the bound holds
    while n_parties * math.ceil(bound * 2.0 ** (exponent + 1)) <= limit:
        exponent += 1
    if n_parties * math.ceil(bound * 2.0**exponent) > limit or bound * 2.0**exponent < 1:
        raise ProtocolError(
            f"{ring_bits}-bit ring too small for {n_parties} partners with bound {bound}",
            "secagg config",
            "use ring_bits 64, a smaller clip, or fewer partners",
        )
    return 2.0**exponent


def scales(clip: float, n_parties: int, ring_bits: int) -> tuple[float, float]:
    """(value scale, weight scale) for a round with `n_parties` partners."""
    return fixed_point_scale(clip, n_parties, ring_bits), fixed_point_scale(1.0, n_parties, ring_bits)


def _check_finite(values: np.ndarray) -> tuple[float, float]:
    """(min, max) of `values`; a ProtocolError when any is NaN or infinite (a diverged update must not be sent)."""
    lo, hi = float(values.min()), float(values.max())  # NaN propagates through min/max
    if not (math.isfinite(lo) and math.isfinite(hi)):
        _refuse_non_finite()
    return lo, hi


def _refuse_non_finite() -> None:
    """The ProtocolError for an update holding NaN or infinite values (a diverged update must not be sent)."""
    raise ProtocolError(
        "the update contains NaN or infinite values",
        "mask_update",
        "check the local training (learning rate, loss) before sending an update",
    )


def encode_chunk(values: np.ndarray, clip: float, factor: float, out: np.ndarray, work: np.ndarray) -> int:
    """Clip `values` to [-clip, clip], multiply by `factor` (= w * S), round, and write ring elements into `out`.

    `work` is a float64 scratch buffer of the same length. Returns how many coordinates were clipped.
    Non-finite values are a ProtocolError. Chunks needing no clipping skip it. The arithmetic is float64 whatever
    the update's dtype (a float32 update is widened exactly first), so the clip bound and the overflow proof of the
    module docstring hold as written.
    """
    lo, hi = _check_finite(values)
    n_clipped = 0
    if lo < -clip or hi > clip:
        np.clip(values, -clip, clip, out=work, dtype=np.float64)
        n_clipped = int(np.count_nonzero(work != values))
        np.multiply(work, factor, out=work)
    else:
        np.multiply(values, factor, out=work, dtype=np.float64)
    np.rint(work, out=out.view(signed_dtype(8 * out.itemsize)), casting="unsafe")  # |work| < 2^(k-1): exact
    return n_clipped


# Whether encode_add_chunk uses the compiled kernel (algo.secagg.ring_kernels): None decides by whether numba is
# already loaded (by the compiled training step), True/False force it (benchmarks and tests).
COMPILED: bool | None = None


def compiled_encoding():
    """The compiled encode-and-add kernels (the `ring_kernels` module), or None when they are not to be used (see
    COMPILED)."""
    use = ("numba" in sys.modules) if COMPILED is None else COMPILED
    if not use:
        return None
    from fedchem.algo.secagg import ring_kernels

    return ring_kernels


def encode_add_chunk(values: np.ndarray, clip: float, factor: float, acc: np.ndarray, work: np.ndarray,
                     ring_work: np.ndarray, kernel=None, base: np.ndarray | None = None) -> int:
    """acc = base + encode_chunk's words for `values` (mod 2^k; base defaults to acc itself), the same words bit for
    bit; returns the clipped count.

    `work` (float64) and `ring_work` (acc's dtype) are scratch buffers at least as long as `values`. With `kernel`
    (from compiled_encoding) the chunk is clipped, encoded, checked and added in one compiled pass. `acc` may be the
    very memory of float64 `values` (an update masked in place, `base` then a separate buffer): every value is read
    before its word is written. NaN or infinite values are a ProtocolError: numpy's path raises before `acc` is
    written, the compiled one after (ring_kernels says why); either way no masked word leaves mask_update."""
    base = acc if base is None else base
    if kernel is not None:
        signed = signed_dtype(8 * acc.itemsize)
        if same_memory(values, acc):  # in place: the kernel that reads and writes one buffer
            n_clipped, n_bad = kernel.encode_over(values, float(clip), float(factor), base.view(signed))
        else:
            if base is not acc:
                np.copyto(acc, base)
            n_clipped, n_bad = kernel.add_encoded(values, float(clip), float(factor), acc.view(signed))
        if n_bad:
            _refuse_non_finite()
        return int(n_clipped)
    n = values.shape[0]
    n_clipped = encode_chunk(values, clip, factor, ring_work[:n], work[:n])
    np.add(base, ring_work[:n], out=acc)
    return n_clipped


def same_memory(values: np.ndarray, acc: np.ndarray) -> bool:
    """Whether `acc` is exactly the memory of float64 `values`, word for word (masking in place); any other overlap
    is refused by mask_update (protocol._output_for, which asks this too) before a chunk is encoded."""
    return (values.dtype == np.float64 and acc.itemsize == 8
            and values.__array_interface__["data"][0] == acc.__array_interface__["data"][0])


def decode_chunk(ring_sum: np.ndarray, factor: float, out: np.ndarray) -> None:
    """Signed reading of a ring sum times `factor` (= max_weight / S) into float64 `out`."""
    np.multiply(ring_sum.view(signed_dtype(8 * ring_sum.itemsize)), factor, out=out)
