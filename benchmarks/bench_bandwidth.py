"""Memory-bandwidth bound of the N=10k, p=0.1 network's step, against the engine's measured time.

Run::

    .venv/bin/python benchmarks/bench_bandwidth.py                 # 1 and 2 threads (about a minute)
    .venv/bin/python benchmarks/bench_bandwidth.py --quick         # smaller arrays, 200 ms of network
    .venv/bin/python benchmarks/bench_bandwidth.py --threads 1     # one thread only

(i) What this machine sustains
------------------------------
STREAM-like kernels compiled by Numba (``parallel=True``; each of the ``T`` threads owns one
contiguous slice, set by ``numba.set_num_threads(T)``), median of ``--repeats`` timed calls after
one warm-up call, for every ``T`` of ``--threads`` (default 1 2):

* main memory: ``copy`` (c = a, 16 B per element), ``scale`` (b = s c, 16 B), ``add``
  (c = a + b, 24 B), ``triad`` (a = b + s c, 24 B) and ``read`` (sum of a, 8 B; compiled with
  fast math so that the sum vectorises) on float64 arrays of 2^25 elements (256 MiB each, 8x the
  32 MiB L3; ``--quick``: 2^23, 64 MiB), first touched by the threads that use them. Bytes are
  counted as STREAM does (no write-allocate traffic). GB/s = 10^9 B/s.
* cache: ``triad`` on three arrays that together are as large as the network's per-neuron state
  (about 1.3 MB at N=10k, inside the 2 MiB L2 of a core; each thread its slice), repeated
  inside one call so that the parallel-region start is amortised.
* scatter: ``acc[idx[s]] += w[s]``, the propagation's inner loop, on the network's own first
  synapse rows (ascending targets) copied into an L2-resident buffer (192 KiB), into one private
  N-long float64 accumulator per thread: the rate of read-modify-writes into ``syn_in`` when the
  row itself costs no memory traffic (events per second).
* normal draws: the kernel's ziggurat (``reservoir.fastrng._ziggurat_draw``), one generator per
  thread.

(ii) What one simulated second of the network must move
--------------------------------------------------------
The network is case (b) of ``bench_vs_brian2.py``: preset ``izhikevich2003`` at N = 10,000 with
Bernoulli p = 0.1 (self-connections allowed, CSR storage: ``indices`` int32, ``weights``
float64, ``indptr`` int64; about K = 1000 synapses per row, 10^7 in all, 120 MB), delta
synapses, noise on, the two-half-step scheme at dt = 1 ms (1000 steps per simulated second).
The engine runs it for the duration (1 s; ``--quick`` 200 ms) on ``T`` threads
(``Simulation(..., threads=T)``; the keyword only when ``T != 1``), median of the repeats; the
spike counts ``S_i`` of each neuron (from the last run at the smallest thread count: runs are
bit-identical across thread counts) give the traffic, scaled to one simulated second. Per
simulated second (``n`` steps, ``S = sum S_i`` spikes):

* synapse stream (main memory): each spike of neuron ``i`` reads its row, ``L_i`` cache lines
  of ``indices`` and of ``weights`` (counted from the arrays' actual addresses, so the partly
  used lines at the ends of a row count whole)::

      B_syn = 64 B * sum_i S_i * L_i        (about 12 B per synapse per presynaptic spike)

  The 120 MB matrix is 3.7x the L3; a row is found in L3 only when less than one L3 of other
  rows has been streamed since its last use. That fraction ``h`` is estimated by replaying the
  run's spike train through an LRU cache of the L3's size (stack distances over whole rows);
  ``B_dram = (1 - h) B_syn``. ``indptr`` (80 KB) stays in cache.
* ``syn_in`` read-modify-writes: ``E = sum_i S_i K_i`` scattered updates into ``syn_in``, N
  float64 = 80 KB: larger than the 48 KiB L1d, far smaller than the 2 MiB L2, so it stays in
  L2 (and partly L1) and never goes to main memory. At line granularity each update moves at
  most 64 B up and 64 B back between L2 and L1 (``128 E`` bytes); its cost is taken as
  ``E / R_scatter`` with the scatter rate measured above, which overlaps the row stream.
* neuron state, per neuron per step (float64, 8 B each; the kernel's passes for delta synapses,
  noise on, 2003 model, two-half-step scheme): the filter pass reads ``syn_in`` and writes
  ``current`` and ``syn_in`` (= 0); the current pass reads ``noise_std``, ``current``, ``bias``
  and writes ``current``; the integration reads ``v, u, current, q2, q1, q0, a, b, u_reference,
  u_leak`` and writes ``v, u``; the guard and detection pass reads ``v, u, v_peak``: 17 reads and
  5 writes, ``B_neuron = 176 B``. Per spike: ``fired`` (int32) written and read, ``c, d, u`` read,
  ``v, u`` written, the spike's step (int64) and id (int32) appended: ``B_spike = 60 B``. ::

      B_state = N n B_neuron + S B_spike          (1.76 GB per simulated second at N = 10k)

  The arrays together are 16 x 8N + 4N bytes = 1.3 MB at N = 10k: they fit in L2 (2 MiB per
  core; each thread holds its share) and surely in L3, so this traffic is served by the caches
  at the measured cache bandwidth ``BW_cache``, not by main memory. (This counts the kernel's
  separate passes as they are; one fused pass would read ``v, u, syn_in`` and the ten parameter
  arrays once and write ``v, u, syn_in``: 16 accesses, 128 B per neuron per step.)

Estimated minimum time per simulated second on ``T`` threads (the work split evenly)::

    t_dram  = B_dram / BW_read(T)                                        (the bandwidth bound)
    t_model = max(B_dram / BW_read(T), E / R_scatter(T)) + B_state / BW_cache(T)   (memory model)
    t_rng   = N n / R_normal(T)      (compute, not memory: one normal draw per neuron per step)

and the table gives measured / t_model (target: within 1.5x), measured / t_dram and
measured / (t_model + t_rng). A replay of the run's spike train through the CSR (the
propagation alone: rows streamed, ``syn_in`` scattered and cleared each step; ``T`` threads take
contiguous ranges of steps, each with its own ``syn_in``) shows how much of the engine's time
the propagation takes. Results go to stdout and to ``benchmarks/results/bandwidth.md``
(git-ignored).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_threads import (add_threads_argument, check_threads, configure_threads, core_check_note,  # noqa: E402
                            large_network_overrides, make_simulation)

DEFAULT_THREADS = (1, 2)
configure_threads(default=DEFAULT_THREADS)  # before NumPy and Numba

import numba  # noqa: E402
import numpy as np  # noqa: E402
from machine import describe, publish  # noqa: E402
from numba import njit, prange  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reservoir import build_network, resolve_config  # noqa: E402
from reservoir.fastrng import _ziggurat_draw, _ziggurat_slow  # noqa: E402  (the kernel's own draw)

LINE = 64
L3_BYTES = 32 * 2**20
L2_BYTES = 2 * 2**20
L1D_BYTES = 48 * 2**10
B_NEURON = (17 + 5) * 8   # per neuron per step (see the module docstring)
B_SPIKE = (3 * 8 + 4) + (2 * 8 + 8 + 4 + 4)  # per spike: c, d, u, fired read; v, u, step, id, fired written
TARGET_RATIO = 1.5


# ----------------------------------------------------------------------------- STREAM kernels
@njit(inline="always")
def _slice(n, t, n_threads):
    chunk = n // n_threads
    return t * chunk, (n if t == n_threads - 1 else (t + 1) * chunk)


# The serial loops take slices and run over range(size) so that Numba sees non-negative indices
# (no wrap-around branch) and LLVM vectorises them; the parallel wrappers hand each thread its
# slice (a loop over range(lo, hi) inside prange measured 4-5x slower: not vectorised).
@njit(cache=True)
def _fill(a, value):
    for i in range(a.size):
        a[i] = value


@njit(cache=True)
def _copy(a, c, s, reps):
    for _ in range(reps):
        for i in range(a.size):
            c[i] = a[i]


@njit(cache=True)
def _scale(b, c, s, reps):
    for r in range(reps):
        sr = s + r * 1e-12
        for i in range(b.size):
            b[i] = sr * c[i]


@njit(cache=True)
def _add(a, b, c, reps):
    for _ in range(reps):
        for i in range(a.size):
            c[i] = a[i] + b[i]


@njit(cache=True)
def _triad(a, b, c, s, reps):
    for r in range(reps):
        sr = s + r * 1e-12
        for i in range(a.size):
            a[i] = b[i] + sr * c[i]


@njit(cache=True, fastmath=True)
def _read(a, reps):
    total = 0.0
    for _ in range(reps):
        for i in range(a.size):
            total += a[i]
    return total


@njit(parallel=True, cache=True)
def first_touch(a, b, c, n_threads):
    for t in prange(n_threads):
        lo, hi = _slice(a.size, t, n_threads)
        _fill(a[lo:hi], 1.0)
        _fill(b[lo:hi], 2.0)
        _fill(c[lo:hi], 0.0)


@njit(parallel=True, cache=True)
def stream_copy(a, b, c, s, n_threads, reps):
    for t in prange(n_threads):
        lo, hi = _slice(a.size, t, n_threads)
        _copy(a[lo:hi], c[lo:hi], s, reps)


@njit(parallel=True, cache=True)
def stream_scale(a, b, c, s, n_threads, reps):
    for t in prange(n_threads):
        lo, hi = _slice(a.size, t, n_threads)
        _scale(b[lo:hi], c[lo:hi], s, reps)


@njit(parallel=True, cache=True)
def stream_add(a, b, c, s, n_threads, reps):
    for t in prange(n_threads):
        lo, hi = _slice(a.size, t, n_threads)
        _add(a[lo:hi], b[lo:hi], c[lo:hi], reps)


@njit(parallel=True, cache=True)
def stream_triad(a, b, c, s, n_threads, reps):
    for t in prange(n_threads):
        lo, hi = _slice(a.size, t, n_threads)
        _triad(a[lo:hi], b[lo:hi], c[lo:hi], s, reps)


@njit(parallel=True, cache=True)
def stream_read(a, b, c, s, n_threads, reps):
    partial = np.zeros(n_threads)
    for t in prange(n_threads):
        lo, hi = _slice(a.size, t, n_threads)
        partial[t] = _read(a[lo:hi], reps)
    return partial.sum()


STREAM_KERNELS = {"copy": (stream_copy, 16), "scale": (stream_scale, 16), "add": (stream_add, 24),
                  "triad": (stream_triad, 24), "read": (stream_read, 8)}


def time_stream(kernel, arrays, threads: int, reps: int, repeats: int) -> list[float]:
    numba.set_num_threads(threads)
    kernel(*arrays, 3.0, threads, reps)  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        kernel(*arrays, 3.0, threads, reps)
        times.append(time.perf_counter() - start)
    return times


def measure_memory(n_elements: int, threads_list, repeats: int) -> dict:
    """GB/s of every STREAM kernel on arrays of ``n_elements`` float64, per thread count."""
    result = {}
    for threads in threads_list:
        numba.set_num_threads(threads)
        arrays = tuple(np.empty(n_elements) for _ in range(3))
        first_touch(*arrays, threads)
        for name, (kernel, bytes_per_element) in STREAM_KERNELS.items():
            times = time_stream(kernel, arrays, threads, 1, repeats)
            result[(name, threads)] = bytes_per_element * n_elements / statistics.median(times) / 1e9
        del arrays
    return result


def measure_cache(total_bytes: int, threads_list, repeats: int) -> dict:
    """GB/s of ``triad`` on three arrays of ``total_bytes`` together (cache-resident), per thread count."""
    n_elements = max(1024, total_bytes // 24)
    reps = max(1, int(2e9 // (24 * n_elements)))  # about 2 GB moved per call
    result = {}
    for threads in threads_list:
        numba.set_num_threads(threads)
        arrays = tuple(np.empty(n_elements) for _ in range(3))
        first_touch(*arrays, threads)
        times = time_stream(stream_triad, arrays, threads, reps, repeats)
        result[threads] = 24 * n_elements * reps / statistics.median(times) / 1e9
    return result


# ----------------------------------------------------------------------------- scatter, normals
@njit(parallel=True, cache=True)
def draw_normals(states, out, k_table, w_table, f_table, n_threads):
    """Each thread fills its row of ``out`` with N(0, 1) draws, as the kernel's noise loop does."""
    for t in prange(n_threads):
        state = states[t]
        row = out[t]
        for i in range(row.size):
            x, layer, accepted = _ziggurat_draw(state, k_table, w_table)
            if not accepted:
                x = _ziggurat_slow(state, x, layer, k_table, w_table, f_table)
            row[i] = x


@njit(parallel=True, cache=True)
def scatter_kernel(acc, indices, weights, n_threads, reps):
    for t in prange(n_threads):
        row = acc[t]
        for _ in range(reps):
            for s in range(indices.size):
                row[indices[s]] += weights[s]


def measure_scatter(network, threads_list, repeats: int, buffer_bytes: int = 192 * 1024) -> dict:
    """Scattered updates per second into private N-long accumulators (the network's own rows, L2-resident)."""
    conn = network.connectivity
    n_synapses = min(conn.n_synapses, buffer_bytes // 12)
    indices = np.ascontiguousarray(conn.indices[:n_synapses])
    weights = np.ascontiguousarray(conn.weights[:n_synapses])
    reps = max(1, int(5e7 // n_synapses))
    result = {}
    for threads in threads_list:
        numba.set_num_threads(threads)
        acc = np.zeros((threads, network.n_neurons))
        times = time_stream(lambda *args: scatter_kernel(acc, indices, weights, threads, reps), (), threads, 1, repeats)
        result[threads] = threads * reps * n_synapses / statistics.median(times)
    return result


def measure_normals(threads_list, repeats: int, n_draws: int = 2_000_000) -> dict:
    """Normal draws per second with the kernel's ziggurat, each thread its own xoshiro256++ state."""
    from reservoir.fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, seed_state

    result = {}
    for threads in threads_list:
        numba.set_num_threads(threads)
        states = np.zeros((threads, 16), dtype=np.uint64)  # one 128-byte row per thread: no false sharing
        for t in range(threads):
            states[t, :4] = seed_state(np.random.SeedSequence([7, t]))
        out = np.empty((threads, n_draws))
        times = time_stream(lambda *args: draw_normals(states, out, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F, threads),
                            (), threads, 1, repeats)
        result[threads] = threads * n_draws / statistics.median(times)
    return result


# ----------------------------------------------------------------------------- the network's traffic
def row_lines(array: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Cache lines touched by each row ``array[indptr[i]:indptr[i+1]]`` (from the array's address)."""
    base = array.ctypes.data
    size = array.itemsize
    start = base + indptr[:-1] * size
    stop = base + indptr[1:] * size  # exclusive
    lines = (stop - 1) // LINE - start // LINE + 1
    return np.where(indptr[1:] > indptr[:-1], lines, 0)


@njit(cache=True)
def lru_row_hits(rows, row_bytes, capacity):
    """Bytes of row reads that an LRU cache of ``capacity`` bytes serves, over the access sequence ``rows``.

    A reuse hits when the distinct bytes touched since the row's previous access (its stack
    distance over whole rows, by a Fenwick tree over access positions) plus the row fit.
    """
    m = rows.size
    tree = np.zeros(m + 1)
    last = np.full(row_bytes.size, -1, dtype=np.int64)
    hit_bytes = 0.0
    total = 0.0
    for p in range(m):
        r = rows[p]
        size = row_bytes[r]
        total += size
        previous = last[r]
        if previous >= 0:
            # distinct bytes in (previous, p): prefix(p) - prefix(previous + 1)
            distance = 0.0
            j = p
            while j > 0:
                distance += tree[j]
                j -= j & (-j)
            j = previous + 1
            while j > 0:
                distance -= tree[j]
                j -= j & (-j)
            if distance + size <= capacity:
                hit_bytes += size
            j = previous + 1  # the row's old position no longer counts
            while j <= m:
                tree[j] -= size
                j += j & (-j)
        j = p + 1
        while j <= m:
            tree[j] += size
            j += j & (-j)
        last[r] = p
    return hit_bytes, total


@njit(parallel=True, cache=True)
def replay_propagation(step_ptr, spike_ids, indptr, indices, weights, acc, n_threads):
    """Propagate a recorded spike train: for each step, every spiker's row into ``syn_in``, then clear it."""
    n_steps = step_ptr.size - 1
    n = acc.shape[1]
    for t in prange(n_threads):
        lo, hi = _slice(n_steps, t, n_threads)
        syn_in = acc[t]
        for step in range(lo, hi):
            for f in range(step_ptr[step], step_ptr[step + 1]):
                pre = spike_ids[f]
                for s in range(indptr[pre], indptr[pre + 1]):
                    syn_in[indices[s]] += weights[s]
            for i in range(n):
                syn_in[i] = 0.0


@njit(cache=True, fastmath=True)
def _read_row(indices, weights):
    total = 0.0
    for s in range(weights.size):
        total += weights[s] + indices[s]
    return total


@njit(parallel=True, cache=True)
def replay_rows(step_ptr, spike_ids, indptr, indices, weights, n_threads):
    """Read (sum) every spiker's row in the recorded order, without the scatter: the row stream alone."""
    n_steps = step_ptr.size - 1
    partial = np.zeros(n_threads)
    for t in prange(n_threads):
        lo, hi = _slice(n_steps, t, n_threads)
        total = 0.0
        for step in range(lo, hi):
            for f in range(step_ptr[step], step_ptr[step + 1]):
                pre = spike_ids[f]
                first, stop = indptr[pre], indptr[pre + 1]
                total += _read_row(indices[first:stop], weights[first:stop])
        partial[t] = total
    return partial.sum()


def measure_replay(network, spike_steps, spike_ids, n_steps, threads_list, repeats: int) -> dict:
    conn = network.connectivity
    step_ptr = np.searchsorted(spike_steps, np.arange(n_steps + 1)).astype(np.int64)
    ids = np.ascontiguousarray(spike_ids, dtype=np.int64)
    result = {}
    for threads in threads_list:
        numba.set_num_threads(threads)
        acc = np.zeros((threads, network.n_neurons))
        times = time_stream(lambda *args: replay_propagation(step_ptr, ids, conn.indptr, conn.indices, conn.weights,
                                                             acc, threads), (), threads, 1, repeats)
        rows = time_stream(lambda *args: replay_rows(step_ptr, ids, conn.indptr, conn.indices, conn.weights, threads),
                           (), threads, 1, repeats)
        result[threads] = {"propagation": statistics.median(times), "rows": statistics.median(rows)}
    return result


def time_engine(network, n_steps: int, threads: int, repeats: int):
    make_simulation(network, threads, seed=10_000).run(n_steps=min(n_steps, 20))  # loads (or compiles) the kernel
    times, spikes = [], None
    for seed in range(repeats):
        sim = make_simulation(network, threads, seed=seed)
        start = time.perf_counter()
        sim.run(n_steps=n_steps)
        times.append(time.perf_counter() - start)
        spikes = (np.asarray(sim.recorder.spike_steps), np.asarray(sim.recorder.spike_ids))
    return times, spikes


def traffic_model(network, spike_steps, spike_ids, n_steps: int, l3_bytes: int) -> dict:
    """Bytes and events per run (see the module docstring)."""
    conn = network.connectivity
    n = network.n_neurons
    counts = np.bincount(spike_ids, minlength=n).astype(np.float64)
    row_synapses = np.diff(conn.indptr).astype(np.float64)
    lines = row_lines(conn.indices, conn.indptr) + row_lines(conn.weights, conn.indptr)
    row_bytes = (lines * LINE).astype(np.float64)
    order = np.lexsort((spike_ids, spike_steps))  # time order, ascending ids within a step (the kernel's)
    state_bytes = 16 * 8 * n + 4 * n
    hit_bytes, syn_bytes = lru_row_hits(np.ascontiguousarray(spike_ids[order], dtype=np.int64), row_bytes,
                                        float(l3_bytes - state_bytes))
    n_spikes = float(counts.sum())
    return {
        "n_spikes": n_spikes, "rate_hz": n_spikes / n / (n_steps * network.dt_ms / 1000.0),
        "B_syn": syn_bytes, "h": hit_bytes / syn_bytes if syn_bytes else 0.0,
        "B_dram": syn_bytes - hit_bytes, "E": float(counts @ row_synapses),
        "B_state": float(n) * n_steps * B_NEURON + n_spikes * B_SPIKE, "state_bytes": state_bytes,
        "matrix_bytes": conn.indices.nbytes + conn.weights.nbytes + conn.indptr.nbytes,
        "bytes_per_synapse": syn_bytes / float(counts @ row_synapses) if n_spikes else 0.0,
    }


# ----------------------------------------------------------------------------- report
def render(args, threads_list, memory, cache, scatter, normals, model, engine, replay, n_steps, dt_ms,
           n_neurons, n_synapses, engine_rates, quick, core_note) -> str:
    per_s = 1000.0 / (n_steps * dt_ms)  # scale a run to one simulated second
    lines = [f"## Memory bandwidth and the N={n_neurons:,} step{' (quick smoke run)' if quick else ''}", "",
             describe() + f"; L1d {L1D_BYTES // 1024} KiB and L2 {L2_BYTES // 2**20} MiB per core, "
             f"L3 {L3_BYTES // 2**20} MiB.", "",
             f"### (i) Sustained bandwidth (GB/s; main memory: {args.stream_elements:,} float64 per array, "
             f"{args.stream_elements * 8 / 2**20:.0f} MiB; median of {args.repeats})", "",
             "| threads | copy | scale | add | triad | read | cache triad (state-sized, "
             f"{model['state_bytes'] / 1e6:.2f} MB) | scatter into syn_in (10^9 updates/s) | normal draws (10^9/s) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in threads_list:
        lines.append(f"| {t} | " + " | ".join(f"{memory[(name, t)]:.1f}" for name in STREAM_KERNELS)
                     + f" | {cache[t]:.0f} | {scatter[t] / 1e9:.2f} | {normals[t] / 1e9:.3f} |")
    syn = model["B_syn"] * per_s
    lines += ["", f"### (ii) Traffic of one simulated second (N = {n_neurons:,}, {n_synapses:,} synapses, "
                  f"{model['rate_hz']:.2f} Hz measured, {model['n_spikes'] * per_s:,.0f} spikes)", "",
              "| term | amount per simulated second | served by |", "|---|---:|---|",
              f"| synapse rows, B_syn (indices int32 + weights float64, whole lines) | {syn / 1e9:.3f} GB "
              f"({model['bytes_per_synapse']:.2f} B per synapse event) | main memory (matrix "
              f"{model['matrix_bytes'] / 1e6:.0f} MB = {model['matrix_bytes'] / L3_BYTES:.1f}x L3) |",
              f"| of which found in L3 by the LRU replay, h | {model['h']:.1%} | L3 |",
              f"| B_dram = (1 - h) B_syn | {model['B_dram'] * per_s / 1e9:.3f} GB | main memory |",
              f"| syn_in updates, E (80 KB array: L2/L1; at line granularity <= 128 B each = "
              f"{128 * model['E'] * per_s / 1e9:.1f} GB) | {model['E'] * per_s / 1e6:.1f} M | L2 / L1 |",
              f"| neuron state, B_state = N n {B_NEURON} B + S {B_SPIKE} B (arrays "
              f"{model['state_bytes'] / 1e6:.2f} MB) | {model['B_state'] * per_s / 1e9:.3f} GB | L2 |",
              f"| normal draws, N n | {n_neurons * n_steps * per_s / 1e6:.0f} M | compute |",
              "", "### Estimated minimum (ms per simulated second)", "",
              "| threads | t_dram = B_dram / BW_read | E / R_scatter | B_state / BW_cache "
              "| t_model = max(t_dram, E / R_scatter) + B_state / BW_cache | t_rng = N n / R_normal "
              "| t_model + t_rng |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    estimates = {}
    for t in threads_list:
        t_dram = model["B_dram"] * per_s / (memory[("read", t)] * 1e9)
        t_scatter = model["E"] * per_s / scatter[t]
        t_state = model["B_state"] * per_s / (cache[t] * 1e9)
        t_model = max(t_dram, t_scatter) + t_state
        t_rng = n_neurons * n_steps * per_s / normals[t]
        estimates[t] = (t_dram, t_model, t_rng)
        lines.append(f"| {t} | " + " | ".join(f"{x * 1e3:.1f}" for x in (t_dram, t_scatter, t_state, t_model, t_rng,
                                                                          t_model + t_rng)) + " |")
    lines += ["", "### Measured (ms per simulated second) against the estimate", "",
              "| threads | rows alone: the run's rows read in spike order (effective GB/s) "
              "| propagation alone: rows + syn_in scatter (replay) | engine | engine / t_model "
              "| engine / t_dram | engine / (t_model + t_rng) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for t in threads_list:
        t_dram, t_model, t_rng = estimates[t]
        rows = replay[t]["rows"] * per_s
        row = [str(t), f"{rows * 1e3:.1f} ({model['B_syn'] * per_s / rows / 1e9:.1f} GB/s, "
                       f"{model['B_syn'] * per_s / rows / 1e9 / memory[('read', t)]:.0%} of `read`)",
               f"{replay[t]['propagation'] * per_s * 1e3:.1f}"]
        if t in engine:
            measured = statistics.median(engine[t]) * per_s
            ratio = measured / t_model
            row += [f"{measured * 1e3:.1f}",
                    f"{ratio:.2f}x (target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'})",
                    f"{measured / t_dram:.2f}x", f"{measured / (t_model + t_rng):.2f}x"]
        else:
            row += ["n/a", "-", "-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"BW_read is the `read` column (the rows are only read), BW_cache the cache triad, R_scatter and "
                  f"R_normal the scatter and normal-draw rates of (i). Engine: median of {args.engine_repeats} runs of "
                  f"{n_steps} steps (mean rate "
              + ", ".join(f"{t} thread(s) {r:.2f} Hz" for t, r in engine_rates.items())
              + f"); the traffic is from the {min(engine_rates)}-thread run's spikes. Replays: median of "
                f"{args.repeats}, each thread a contiguous range of steps."]
    if core_note:
        lines.append(core_note)
    for t in threads_list:
        if t in engine:
            lines.append(f"- engine {t} thread(s): " + ", ".join(f"{x * per_s * 1e3:.1f}" for x in engine[t])
                         + " ms per simulated s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_threads_argument(parser, DEFAULT_THREADS)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 64 MiB arrays, 3 repeats, 200 ms of network, 2 engine runs")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per bandwidth kernel (default 7)")
    parser.add_argument("--engine-repeats", type=int, default=None,
                        help="timed engine runs per thread count (default 5)")
    parser.add_argument("--stream-elements", type=int, default=None,
                        help="float64 elements per main-memory array (default 2^25; --quick 2^23)")
    parser.add_argument("--n-neurons", type=int, default=10_000, help="network size (default 10000)")
    parser.add_argument("--duration-ms", type=float, default=None, help="network run (default 1000; --quick 200)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "bandwidth.md")
    args = parser.parse_args(argv)
    threads_list = check_threads(parser, args.threads, numba_pool=True)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.engine_repeats = args.engine_repeats or (2 if args.quick else 5)
    args.stream_elements = args.stream_elements or (2**23 if args.quick else 2**25)
    duration = args.duration_ms or (200.0 if args.quick else 1000.0)
    if min(args.repeats, args.engine_repeats) < 1:
        parser.error("--repeats and --engine-repeats must be positive")
    if args.stream_elements * 8 < 2 * L3_BYTES:
        print(f"warning: {args.stream_elements * 8 / 2**20:.0f} MiB arrays are not much larger than the L3",
              file=sys.stderr)

    core_note = core_check_note(threads_list)
    if core_note:
        print(core_note, flush=True)
    cfg = resolve_config("izhikevich2003", large_network_overrides(args.n_neurons, duration))
    print(f"building the network (N = {args.n_neurons:,}, p = 0.1)", flush=True)
    network = build_network(cfg.network, cfg.integration, seed=1)
    n_steps = cfg.n_steps

    engine, engine_rates, spikes = {}, {}, None
    for t in threads_list:
        times, run_spikes = time_engine(network, n_steps, t, args.engine_repeats)
        engine[t] = times
        engine_rates[t] = run_spikes[1].size / network.n_neurons / (n_steps * network.dt_ms / 1000.0)
        if spikes is None or t == 1:
            spikes = run_spikes
        print(f"  engine, {t} thread(s): median {statistics.median(times) * 1e3:.1f} ms for {n_steps} steps, "
              f"{engine_rates[t]:.2f} Hz", flush=True)
    if spikes is None:
        parser.error("the engine ran at no thread count (add --threads 1)")
    model = traffic_model(network, spikes[0], spikes[1], n_steps, L3_BYTES)
    print("  replaying the propagation", flush=True)
    replay = measure_replay(network, spikes[0], spikes[1], n_steps, threads_list, args.repeats)
    print("(i) bandwidth: main memory", flush=True)
    memory = measure_memory(args.stream_elements, threads_list, args.repeats)
    print("    cache, scatter, normal draws", flush=True)
    cache = measure_cache(model["state_bytes"], threads_list, args.repeats)
    scatter = measure_scatter(network, threads_list, args.repeats)
    normals = measure_normals(threads_list, args.repeats)
    table = render(args, threads_list, memory, cache, scatter, normals, model, engine, replay, n_steps,
                   network.dt_ms, network.n_neurons, network.connectivity.n_synapses, engine_rates, args.quick,
                   core_note)
    publish(table, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
