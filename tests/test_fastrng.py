"""The in-kernel noise generator: xoshiro256++ and the ziggurat against plain-Python twins,
and the normal distribution's statistics."""
import math

import numpy as np
import pytest
from scipy import stats

from reservoir import fastrng
from reservoir.fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_R, fill_standard_normal, seed_state

MASK = (1 << 64) - 1


class PythonXoshiro:
    """xoshiro256++ from its definition (Blackman & Vigna 2021), on Python integers."""

    def __init__(self, state):
        self.s = [int(x) for x in state]

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK  # noqa: E731
        result = (rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def double(self):
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        """The ziggurat, written out plainly with the same tables."""
        while True:
            bits = self.next()
            layer = bits & 0xFF
            bits >>= 8
            negative = bits & 1
            magnitude = (bits >> 1) & 0x000FFFFFFFFFFFFF
            x = float(magnitude) * float(ZIGGURAT_W[layer])
            if negative:
                x = -x
            if magnitude < int(ZIGGURAT_K[layer]):
                return x
            while True:
                if layer == 0:
                    while True:
                        xx = -math.log1p(-self.double()) / ZIGGURAT_R
                        yy = -math.log1p(-self.double())
                        if yy + yy > xx * xx:
                            return -(ZIGGURAT_R + xx) if x < 0 else ZIGGURAT_R + xx
                if (ZIGGURAT_F[layer - 1] - ZIGGURAT_F[layer]) * self.double() + ZIGGURAT_F[layer] < math.exp(-0.5 * x * x):
                    return x
                bits = self.next()
                layer = bits & 0xFF
                bits >>= 8
                magnitude = (bits >> 1) & 0x000FFFFFFFFFFFFF
                x = float(magnitude) * float(ZIGGURAT_W[layer])
                if bits & 1:
                    x = -x
                if magnitude < int(ZIGGURAT_K[layer]):
                    return x


def test_xoshiro_matches_its_definition():
    state = seed_state(np.random.SeedSequence(42))
    twin = PythonXoshiro(state)
    values = [int(fastrng.next_uint64(state)) for _ in range(2000)]
    assert values == [twin.next() for _ in range(2000)]


def test_ziggurat_matches_plain_python_twin_bitwise():
    state = seed_state(np.random.SeedSequence(7))
    twin = PythonXoshiro(state)
    out = np.empty(20000)  # long enough to visit the wedges (~1.5 %) and the tail (~0.03 %) often
    fill_standard_normal(state, out, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
    expected = np.array([twin.normal() for _ in range(out.size)])
    np.testing.assert_array_equal(out, expected)


def test_normal_statistics():
    out = np.empty(2_000_000)
    fill_standard_normal(seed_state(np.random.SeedSequence(3)), out, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
    n = out.size
    assert abs(out.mean()) < 5 / math.sqrt(n)
    assert abs(out.var() - 1) < 5 * math.sqrt(2 / n)
    assert stats.kstest(out, "norm").pvalue > 1e-4
    for threshold in (1.0, 2.0, 3.0, ZIGGURAT_R):  # the tail beyond R comes from its own sampler
        p = 2 * stats.norm.sf(threshold)
        observed = np.mean(np.abs(out) > threshold)
        assert abs(observed - p) < 5 * math.sqrt(p * (1 - p) / n), threshold


def test_stream_does_not_depend_on_draw_sizes():
    whole = np.empty((10, 7))
    fill_standard_normal(seed_state(np.random.SeedSequence(1)), whole, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
    state = seed_state(np.random.SeedSequence(1))
    first, second = np.empty((3, 7)), np.empty((7, 7))
    fill_standard_normal(state, first, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
    fill_standard_normal(state, second, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
    np.testing.assert_array_equal(whole, np.concatenate([first, second]))


def test_tables_are_monotone_and_cover_the_base():
    assert ZIGGURAT_K.dtype == np.uint64 and ZIGGURAT_K[1] == 0
    assert np.all(np.diff(ZIGGURAT_F[1:]) < 0) and ZIGGURAT_F[0] == 1.0
    assert ZIGGURAT_W[255] * 2**52 == pytest.approx(ZIGGURAT_R)
