"""The vectorised lanes of the readouts' dot product have the scalar chains' rounding, bit for bit."""
import numpy as np
import pytest
from numba import njit

from reservoir.rules.three_factor import block_dot, readout_value
from reservoir.simd import lane_sums


def plain_block_dot(w, x, start, stop):
    """Eight chains written out in Python: lane c adds entries start + c, start + c + 8, ...; the rest joins lane 0."""
    sums = [0.0] * 8
    head = stop - (stop - start) % 8
    for f in range(start, head, 8):
        for c in range(8):
            sums[c] += w[f + c] * x[f + c]
    for f in range(head, stop):
        sums[0] += w[f] * x[f]
    return ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 1003, 2048])
def test_compiled_block_dot_equals_the_scalar_chains(n):
    rng = np.random.default_rng(n)
    w, x = rng.standard_normal(n) * 1e3, rng.standard_normal(n) * 1e-3  # rounding matters at these scales
    for start in sorted(s for s in {0, 1, 5, n // 3, n - 1} if s < n):
        assert block_dot(w, x, start, n) == plain_block_dot(w, x, start, n)
        assert block_dot(w, x, start, max(start, n - 3)) == plain_block_dot(w, x, start, max(start, n - 3))


def test_strided_views_take_the_scalar_form_with_the_same_values():
    @njit
    def lanes_of(w, x):
        return lane_sums(w, x, 0, x.shape[0])

    rng = np.random.default_rng(3)
    w, x = rng.standard_normal(200), rng.standard_normal(200)
    assert lanes_of(w[::2], x[::2]) == lanes_of(np.ascontiguousarray(w[::2]), np.ascontiguousarray(x[::2]))
    assert lanes_of(w, x) == lane_sums(w, x, 0, 200)


def test_readout_value_sums_work_blocks_in_order():
    rng = np.random.default_rng(4)
    w, x = rng.standard_normal(2 * 2500), rng.standard_normal(2 * 2500)  # two banks of 2500: 3 blocks each
    expected = 0.0
    for bank in (0, 2500):
        for start in (0, 1024, 2048):
            expected += plain_block_dot(w, x, bank + start, bank + min(start + 1024, 2500))
    assert readout_value(w, x, 0.5, False, 2500) == expected + 0.5
    assert readout_value(w, x, -1e9, True, 2500) == 0.0
