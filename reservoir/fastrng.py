"""A small, fast, checkpointable random generator for use inside compiled kernels.

Per-step Gaussian noise was the engine's largest cost when drawn with NumPy between chunks
(about 13 of 22 ms for one second of ``net.m``). Drawing it inside the kernel with
xoshiro256++ (Blackman & Vigna 2021) and a 256-layer ziggurat for the normal distribution
(Marsaglia & Tsang 2000, in the 52-bit form NumPy also uses) costs a few ns per value, needs no
noise buffer, and its whole state is four 64-bit words, saved in checkpoints. The stream is
drawn strictly in order (step by step, neuron by neuron), so chunk boundaries never change it.

The generator's state is seeded from the run's ``noise`` stream
(:func:`reservoir.rng.stream_seed`), so one seed still determines the run. A network draws its
noise in work blocks of 1024 neurons (:mod:`reservoir.parallel`), each from its own generator:
block ``j`` starts from the seeded state advanced by ``j`` jumps of 2^128 draws
(:func:`block_states`, the generator's published jump polynomial), so the blocks' streams never
overlap and block 0 is the single stream of a network of at most 1024 neurons.

References
----------
Blackman, D., & Vigna, S. (2021). Scrambled linear pseudorandom number generators. ACM Trans.
Math. Softw., 47(4), 36. doi:10.1145/3460772
Marsaglia, G., & Tsang, W. W. (2000). The ziggurat method for generating random variables.
J. Stat. Softw., 5(8). doi:10.18637/jss.v005.i08
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_MASK52 = (1 << 52) - 1


def ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k, w, f)`` tables of the 256-layer normal ziggurat for 52-bit mantissas."""
    r = 3.6541528853610088  # right edge of the base layer
    area = 0.00492867323399  # area of each layer
    m = 2.0**52
    k = np.zeros(256, dtype=np.uint64)
    w = np.zeros(256)
    f = np.zeros(256)
    q = area / math.exp(-0.5 * r * r)
    k[0] = np.uint64(int((r / q) * m))
    k[1] = np.uint64(0)
    w[0] = q / m
    w[255] = r / m
    f[0] = 1.0
    f[255] = math.exp(-0.5 * r * r)
    dn = tn = r
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(area / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = np.uint64(int((dn / tn) * m))
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m
    return k, w, f


ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F = ziggurat_tables()
ZIGGURAT_R = 3.6541528853610088


def seed_state(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """Four non-zero 64-bit words of xoshiro256++ state from a :class:`SeedSequence`."""
    state = seed_sequence.generate_state(4, dtype=np.uint64)
    if not state.any():  # pragma: no cover - probability 2^-256
        state[0] = np.uint64(1)
    return state


_JUMP = (0x180EC6D33CFD0ABA, 0xD5A61266F0C9392C, 0xA9582618E03FC9AA, 0x39ABDC4529B1661C)
"""xoshiro256++ ``jump()``: the state 2^128 draws ahead (Blackman & Vigna's reference code)."""


def _next_python(state: list[int]) -> None:
    mask = (1 << 64) - 1
    s0, s1, s2, s3 = state
    t = (s1 << 17) & mask
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = ((s3 << 45) | (s3 >> 19)) & mask
    state[:] = [s0, s1, s2, s3]


def jump(state: np.ndarray) -> np.ndarray:
    """The xoshiro256++ state ``2^128`` draws after ``state`` (uint64[4]; a new array)."""
    current = [int(x) for x in state]
    result = [0, 0, 0, 0]
    for word in _JUMP:
        for bit in range(64):
            if (word >> bit) & 1:
                result = [r ^ c for r, c in zip(result, current)]
            _next_python(current)
    return np.array(result, dtype=np.uint64)


def block_states(seed_sequence: np.random.SeedSequence, n_blocks: int) -> np.ndarray:
    """``(n_blocks, 4)`` generator states, one per work block: row 0 is :func:`seed_state`, row ``j``
    row ``j - 1`` jumped ahead by 2^128 draws."""
    states = np.zeros((n_blocks, 4), dtype=np.uint64)
    states[0] = seed_state(seed_sequence)
    for j in range(1, n_blocks):
        states[j] = jump(states[j - 1])
    return states


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_uint64(state):
    """One xoshiro256++ output; advances ``state`` (uint64[4]) in place."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s0 + s3, 23) + s0
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return result


@njit(cache=True, inline="always")
def next_double(state):
    """Uniform on [0, 1) with 53 random bits."""
    return np.float64(next_uint64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _ziggurat_draw(state, k_table, w_table):
    """One ziggurat proposal: ``(value, layer, accepted_by_the_layer_test)``."""
    bits = next_uint64(state)
    layer = np.int64(bits & np.uint64(0xFF))
    bits = bits >> np.uint64(8)
    magnitude = (bits >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
    x = np.float64(magnitude) * w_table[layer]
    if (bits & np.uint64(1)) != np.uint64(0):
        x = -x
    return x, layer, magnitude < k_table[layer]


@njit(cache=True)
def _ziggurat_slow(state, x, layer, k_table, w_table, f_table):
    """The rare paths of the ziggurat (about 1.5 % of draws): the wedges and the tail.

    Out of line on purpose: inlined into the sampler, LLVM computed the logarithms and the
    exponential of these paths speculatively on every draw, which made sampling 20x slower.
    """
    while True:
        if layer == 0:  # the tail beyond R, by Marsaglia's exponential method
            while True:
                xx = -math.log1p(-next_double(state)) / ZIGGURAT_R
                yy = -math.log1p(-next_double(state))
                if yy + yy > xx * xx:
                    return -(ZIGGURAT_R + xx) if x < 0 else ZIGGURAT_R + xx
        if (f_table[layer - 1] - f_table[layer]) * next_double(state) + f_table[layer] < math.exp(-0.5 * x * x):
            return x
        x, layer, accepted = _ziggurat_draw(state, k_table, w_table)
        if accepted:
            return x


@njit(cache=True)
def fill_standard_normal(state, out, k_table, w_table, f_table):
    """Fill ``out`` (any shape, C order) with N(0, 1) values, in order.

    Kernels draw a normal with the same two lines as this loop body. They are deliberately not
    wrapped in a helper function: a call to a compiled function that takes arrays costs
    reference-count updates, and with such a wrapper sampling took 60-70 ns per value instead
    of 3 ns (measured on the development machine; see ``tests/test_fastrng.py``).
    """
    flat = out.reshape(out.size)
    for i in range(flat.size):
        x, layer, accepted = _ziggurat_draw(state, k_table, w_table)
        if not accepted:
            x = _ziggurat_slow(state, x, layer, k_table, w_table, f_table)
        flat[i] = x
