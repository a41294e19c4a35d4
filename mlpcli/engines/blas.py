"""C -= A.T @ B in one BLAS call: the SGD weight update without a temporary gradient.

numpy can only compute A.T @ B into a new array and subtract it in a second pass over C.
BLAS's gemm does C <- alpha A^T B + beta C in one call, in every BLAS thread. For 784-800-10
at batch 128 that second pass over the 2.5 MB weight matrix was a good part of the step.

numpy does not expose gemm, so this calls the OpenBLAS that numpy itself loaded (found by
threadpoolctl, already a dependency), through ctypes. Only the 64-bit-integer interface with
its "64_" suffix is used, the one whose argument types are certain: numpy's own wheels ship
it. Anywhere else (MKL, Accelerate, odd strides or dtypes) the plain numpy expression runs.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_SYMBOL_PREFIXES = ("scipy_cblas_", "cblas_")  # numpy's wheels use the first
_GEMM_LETTERS = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
# A ctypes call costs more than numpy's own; it pays back by skipping the second pass over C
# only when C is large (784x64 at batch 64 was a wash; docs/performance.md).
GEMM_FROM_ELEMENTS = 1 << 17


@functools.cache
def _gemm(dtype: np.dtype):
    """The ILP64 cblas_?gemm of numpy's OpenBLAS for `dtype`, or None."""
    from threadpoolctl import threadpool_info

    letter, scalar = _GEMM_LETTERS[dtype], np.ctypeslib.as_ctypes_type(dtype)
    for library in threadpool_info():
        if library.get("internal_api") != "openblas":
            continue
        try:
            handle = ctypes.CDLL(library["filepath"])  # already loaded: the same library
        except OSError:
            continue
        for prefix in _SYMBOL_PREFIXES:
            gemm = getattr(handle, f"{prefix}{letter}gemm64_", None)
            if gemm is not None:
                size, pointer = ctypes.c_int64, ctypes.c_void_p
                gemm.argtypes = [ctypes.c_int] * 3 + [size] * 3 + [scalar, pointer, size]
                gemm.argtypes += [pointer, size, scalar, pointer, size]
                gemm.restype = None
                return gemm
    return None


def _blas_ready(M: np.ndarray) -> bool:
    """True when M is a non-empty matrix whose rows BLAS can walk: unit steps along a row,
    and a row step of whole elements no shorter than the row."""
    rows, cols = M.shape
    return (
        rows > 0
        and cols > 0
        and M.strides[1] == M.itemsize
        and M.strides[0] >= cols * M.itemsize
        and M.strides[0] % M.itemsize == 0
    )


def subtract_transposed_product(C: np.ndarray, A: np.ndarray, B: np.ndarray) -> None:
    """C (m, n) -= A.T @ B, in place, for A (k, m) and B (k, n) of C's dtype."""
    gemm = C.size >= GEMM_FROM_ELEMENTS and C.dtype in _GEMM_LETTERS and _gemm(C.dtype)
    k, m = A.shape
    if (
        not gemm
        or A.dtype != C.dtype
        or B.dtype != C.dtype
        or C.shape != (m, B.shape[1])
        or B.shape[0] != k
        or not (_blas_ready(A) and _blas_ready(B) and _blas_ready(C))
        or not C.flags.writeable
        or np.may_share_memory(C, A)
        or np.may_share_memory(C, B)
    ):
        C -= A.T @ B
        return
    n, size = B.shape[1], C.itemsize
    gemm(
        _ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k,
        -1.0, A.ctypes.data, A.strides[0] // size, B.ctypes.data, B.strides[0] // size,
        1.0, C.ctypes.data, C.strides[0] // size,
    )  # fmt: skip
