"""Threads inside one compiled chunk: the work split, a spin barrier, and the thread count.

The multi-threaded kernel (:func:`reservoir.kernels.simulate_chunk_worker`) runs as ``T``
copies, one per thread, each owning a contiguous range of whole *work blocks* of
:data:`WORK_BLOCK_NEURONS` neurons. Every step the copies meet at a few barriers (about 0.1 us
each on two cores, against 100 us for a Numba ``prange`` region with its default ``workqueue``
layer and 2 us with ``omp``, measured on the development machine). Threads are ordinary Python
threads calling the ``nogil`` kernel; they are started once per :class:`Simulation` and reused.

Why whole blocks: everything that depends on how the work is split is fixed per block, never
per thread - each block draws its noise from its own xoshiro256++ stream
(:func:`reservoir.fastrng.block_states`), and a readout's ``w . x`` is summed block by block in
a fixed order (:func:`reservoir.rules.three_factor.readout_value`). So a run is bit-identical
for every thread count, the single-threaded run included (tested). A network of at most one
block (1024 neurons) is simulated exactly as before blocks existed.

The barrier is a counter and a generation word, updated by atomic read-modify-write and read by
acquire loads (LLVM atomics emitted through :func:`numba.extending.intrinsic`), which also order
the plain reads and writes of shared arrays before and after the barrier; waiters spin
with the CPU's ``pause`` hint and yield their time slice (``sched_yield``) after a while, so a
machine with fewer free cores than threads is slow but never stuck.
"""
from __future__ import annotations

import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

WORK_BLOCK_NEURONS = 1024
"""Neurons per work block: the unit of the thread split, of the noise streams and of the readouts'
partial sums."""

MIN_NEURONS_PER_THREAD = 1000
"""``threads = "auto"`` gives each thread at least this many neurons: the default experiment's
2000 neurons simulate 1.3x faster on two threads than on one (`benchmarks/bench_default_run.py`
with and without ``--set threads=1``: 29.6 -> 22.1 s; README, "Performance"); smaller shares
were not measured."""

# layout of the int64 ``sync`` array shared by the threads (separate cache lines)
SYNC_ARRIVED = 0
SYNC_GENERATION = 8
SYNC_ABORT = 16
SYNC_STATUS = 24
SYNC_BAD_INDEX = 25
SYNC_LENGTH = 32

SPINS_BEFORE_YIELD = 4096

PADDED_WORDS = 16
"""Words (8 bytes) per row of the arrays that different threads write at every step (noise
generators, per-thread counters): 128 bytes, so that no two rows share a 64-byte cache line. With
the four words of two generators in one line, every draw moved the line between the cores and
two threads ran slower than one (measured)."""


@intrinsic
def _atomic_add(typingctx, array, index, value):
    """``array[index] += value`` atomically (acquire-release); returns the old value."""
    if array.dtype != types.int64:
        return None
    sig = types.int64(array, index, types.int64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, value, "acq_rel")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, array, index):
    """``array[index]`` by an acquire load (never hoisted out of a waiting loop)."""
    if array.dtype != types.int64:
        return None
    sig = types.int64(array, index)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _yield_cpu(typingctx):
    """``sched_yield()`` from the C library (already loaded in every CPython process)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def barrier(sync, n_threads, generation):
    """Wait until all ``n_threads`` threads have called the barrier for the ``generation``-th time.

    Returns the next generation, or -1 when another thread set ``sync[SYNC_ABORT]`` (the caller
    must then return at once). ``sync`` starts zeroed for every kernel call.
    """
    if n_threads == 1:
        return generation + 1
    arrived = _atomic_add(sync, SYNC_ARRIVED, 1) + 1
    if arrived == n_threads * (generation + 1):
        _atomic_add(sync, SYNC_GENERATION, 1)
        return generation + 1
    spins = 0
    while _atomic_load(sync, SYNC_GENERATION) <= generation:
        if _atomic_load(sync, SYNC_ABORT) != 0:
            return -1
        spins += 1
        if spins >= SPINS_BEFORE_YIELD:
            _yield_cpu()
            spins = 0
    return generation + 1


def n_blocks(n_neurons: int) -> int:
    """Work blocks of a network of ``n_neurons`` neurons."""
    return max(1, -(-int(n_neurons) // WORK_BLOCK_NEURONS))


def thread_bounds(n_neurons: int, n_threads: int) -> np.ndarray:
    """``(T + 1,)`` neuron boundaries: thread ``t`` owns neurons ``[b[t], b[t + 1])``, whole blocks,
    the blocks shared out as evenly as they divide."""
    blocks = n_blocks(n_neurons)
    if not 1 <= n_threads <= blocks:
        raise ValueError(f"threads must lie in [1, {blocks}] for {n_neurons} neurons "
                         f"({WORK_BLOCK_NEURONS} neurons per work block), got {n_threads}")
    first_block = np.array([blocks * t // n_threads for t in range(n_threads + 1)], dtype=np.int64)
    return np.minimum(first_block * WORK_BLOCK_NEURONS, n_neurons).astype(np.int64)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1, and at most
    ``NUMBA_NUM_THREADS`` where that is set (as ``reservoir sweep`` sets it to 1 for each worker
    process, so that workers do not compete for the cores with threads)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if limit.isdigit() and int(limit) > 0:
        cores = min(cores, int(limit))
    return max(1, cores)


def resolve_threads(threads, n_neurons: int) -> int:
    """The thread count for ``threads`` (a positive int or ``"auto"``) and a network size.

    ``"auto"``: one thread per :data:`MIN_NEURONS_PER_THREAD` neurons, at most the available cores
    and the work blocks. An explicit count larger than the network's work blocks is an error
    (the extra threads would have nothing to do); larger than the cores is allowed (slow).
    """
    if threads == "auto" or threads is None:
        return max(1, min(available_cores(), n_blocks(n_neurons), int(n_neurons) // MIN_NEURONS_PER_THREAD))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or 'auto', got {threads!r}")
    thread_bounds(n_neurons, int(threads))  # range check with its message
    return int(threads)


__all__ = ["WORK_BLOCK_NEURONS", "MIN_NEURONS_PER_THREAD", "barrier", "n_blocks",
           "thread_bounds", "available_cores", "resolve_threads"]
