import pytest

import reservoir.kernels as kernels
import reservoir.simulation as simulation


@pytest.fixture(params=["compiled", "interpreted"])
def kernel_mode(request, monkeypatch):
    """Run a kernel test body compiled and as plain Python (``py_func``, like NUMBA_DISABLE_JIT)."""
    if request.param == "interpreted":
        monkeypatch.setattr(kernels, "_dv_dt", kernels._dv_dt.py_func)
        monkeypatch.setattr(kernels, "_du_dt", kernels._du_dt.py_func)
        monkeypatch.setattr(simulation, "simulate_chunk", kernels.simulate_chunk.py_func)
    return request.param
