import pytest

from .helpers import interpret_kernels


@pytest.fixture(params=["compiled", "interpreted"])
def kernel_mode(request, monkeypatch):
    """Run a test body with the compiled kernels, and again with every kernel of the package as
    plain Python (``py_func``, like ``NUMBA_DISABLE_JIT=1`` but for this test only)."""
    if request.param == "interpreted":
        interpret_kernels(monkeypatch)
    return request.param
