import numpy as np
import pytest
from threadpoolctl import threadpool_info

from mlpcli.engines import blas
from mlpcli.engines.blas import subtract_transposed_product


@pytest.fixture(autouse=True)
def gemm_at_every_size(monkeypatch):
    """These tests check the answer of the BLAS path on shapes small enough to read."""
    monkeypatch.setattr(blas, "GEMM_FROM_ELEMENTS", 0)


def _operands(k, m, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(m, n)).astype(dtype),
        rng.normal(size=(k, m)).astype(dtype),
        rng.normal(size=(k, n)).astype(dtype),
    )


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-4), (np.float64, 1e-12)])
@pytest.mark.parametrize("k, m, n", [(64, 784, 64), (1, 784, 64), (128, 50, 3), (7, 1, 1)])
def test_subtracts_the_transposed_product(dtype, tolerance, k, m, n):
    C, A, B = _operands(k, m, n, dtype)
    expected = C - A.T @ B
    subtract_transposed_product(C, A, B)
    assert C.dtype == dtype
    np.testing.assert_allclose(C, expected, rtol=tolerance, atol=tolerance)


def test_row_slices_and_column_windows_of_larger_arrays():
    C_big, A_big, B_big = _operands(40, 30, 20, np.float32)
    C, A, B = C_big[5:25, 2:12], A_big[10:30, 5:25], B_big[10:30, 3:13]  # rows longer than used
    expected = C_big.copy()
    expected[5:25, 2:12] -= A.T @ B
    subtract_transposed_product(C, A, B)
    np.testing.assert_allclose(C_big, expected, rtol=1e-5, atol=1e-5)  # nothing outside touched


@pytest.mark.parametrize(
    "case",
    ["transposed A", "reversed rows", "int matrices", "mixed dtypes", "empty batch", "aliased"],
)
def test_awkward_operands_still_give_the_numpy_answer(case):
    C, A, B = _operands(64, 64, 64, np.float64)
    if case == "transposed A":
        A = np.asfortranarray(A)
    elif case == "reversed rows":
        A, B = A[::-1], B[::-1]
    elif case == "int matrices":
        C, A, B = (M.astype(np.int64) for M in (C, A, B))
    elif case == "mixed dtypes":
        B = B.astype(np.float32)
    elif case == "empty batch":
        A, B = A[:0], B[:0]
    elif case == "aliased":  # B is C itself: gemm would read what it is overwriting
        B = C
    expected = C - A.T @ B
    subtract_transposed_product(C, A, B)
    np.testing.assert_allclose(C, expected, rtol=1e-6)


def test_only_large_updates_call_gemm(monkeypatch):
    monkeypatch.undo()  # the real threshold
    calls = []
    real = blas._gemm(np.dtype(np.float32))
    if real is None:
        pytest.skip("no OpenBLAS gemm here")
    monkeypatch.setattr(blas, "_gemm", lambda dtype: lambda *args: (calls.append(1), real(*args)))
    for m, n in [(784, 64), (784, 800)]:
        C, A, B = _operands(128, m, n, np.float32)
        expected = C - A.T @ B
        subtract_transposed_product(C, A, B)
        np.testing.assert_allclose(C, expected, rtol=1e-4, atol=1e-4)
    assert len(calls) == 1  # only the 784x800 one: below the threshold ctypes costs more


def test_without_a_usable_blas_the_numpy_expression_runs(monkeypatch):
    monkeypatch.setattr(blas, "_gemm", lambda dtype: None)
    C, A, B = _operands(64, 100, 10, np.float32)
    expected = C - A.T @ B
    subtract_transposed_product(C, A, B)
    np.testing.assert_allclose(C, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(
    not any(lib.get("internal_api") == "openblas" for lib in threadpool_info()),
    reason="numpy here does not use OpenBLAS",
)
def test_numpys_openblas_gemm_is_found():
    """numpy's own wheels bundle OpenBLAS with the 64_ interface: the fast path must not be
    silently dead there."""
    assert blas._gemm(np.dtype(np.float32)) is not None
    assert blas._gemm(np.dtype(np.float64)) is not None
