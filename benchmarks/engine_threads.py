"""Thread-count plumbing shared by the benchmarks that run the engine on several threads.

Import this module *before* NumPy and Numba: :func:`configure_threads` reads ``--threads``
from the command line and sizes the thread pools from it (Numba fixes the size of its pool,
``NUMBA_NUM_THREADS``, when it is first imported). :func:`make_simulation` builds a
:class:`reservoir.simulation.Simulation` on ``T`` threads.
"""
from __future__ import annotations

import argparse
import os
import sys

# N = 10,000 neurons, Bernoulli p = 0.1 (about 10^7 synapses), the net.m neurons, noise and
# 1 ms step: case (b) of bench_vs_brian2.py and the network of bench_bandwidth.py.
def large_network_overrides(n_neurons: int = 10_000, duration_ms: float = 1000.0) -> dict:
    return {"duration_ms": duration_ms,
            "network": {"n_neurons": n_neurons,
                        "connectivity": {"rule": "bernoulli", "probability": 0.1,
                                         "allow_self_connections": True, "storage": "sparse"}}}


def add_threads_argument(parser: argparse.ArgumentParser, default=(1,)) -> None:
    parser.add_argument("--threads", type=int, nargs="+", default=list(default), metavar="T",
                        help=f"thread counts to run (default: {' '.join(map(str, default))})")


def configure_threads(argv=None, default=(1,)) -> list[int]:
    """Pre-read ``--threads`` and set the thread-pool variables before NumPy/Numba are imported.

    ``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` default to the largest requested count (the
    engine and the Numba kernels choose their own count per run within it; Brian2's
    cpp_standalone sets its OpenMP count itself); BLAS stays on one thread. Variables already
    set are kept (:func:`check_threads` then says if they are too small).
    """
    pre = argparse.ArgumentParser(add_help=False)
    add_threads_argument(pre, default)
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    threads = known.threads
    largest = str(max(threads)) if threads and min(threads) >= 1 else "1"
    os.environ.setdefault("NUMBA_NUM_THREADS", largest)
    os.environ.setdefault("OMP_NUM_THREADS", largest)
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    return threads


def check_threads(parser: argparse.ArgumentParser, threads, numba_pool: bool = False) -> list[int]:
    """Validate ``--threads``; returns the sorted distinct counts.

    ``numba_pool``: the caller runs Numba ``parallel=True`` code on that many threads, so Numba's
    pool (``NUMBA_NUM_THREADS``) must be large enough. (The engine starts its own threads.)
    """
    import numba

    if not threads or min(threads) < 1:
        parser.error("--threads takes positive thread counts")
    pool = numba.config.NUMBA_NUM_THREADS
    if numba_pool and max(threads) > pool:
        parser.error(f"--threads {max(threads)} exceeds NUMBA_NUM_THREADS={pool} (unset it or raise it)")
    if max(threads) > (os.cpu_count() or 1):
        print(f"warning: {max(threads)} threads on {os.cpu_count()} cores (oversubscribed)", file=sys.stderr)
    return sorted(set(threads))


def make_simulation(network, threads: int = 1, **kwargs):
    """``Simulation(network, threads=threads, **kwargs)``: an explicit count (the engine's default,
    ``"auto"``, would put a 10,000-neuron network on every core)."""
    from reservoir import Simulation

    return Simulation(network, threads=threads, **kwargs)


def core_check(threads: int, seconds: float = 0.3) -> float:
    """Speed-up of ``threads`` copies of a compute-only loop on as many Python threads over one copy.

    Near ``threads`` when the cores are free; well below it when another load (or a hypervisor
    sharing the cores) takes them, in which case thread-scaling numbers say little about the code.
    """
    import threading
    import time

    from numba import njit

    @njit(nogil=True, cache=False)
    def spin(n):
        x = 0.0
        for _ in range(n):
            x = x * 0.999999 + 1.0
        return x

    spin(10)
    n = 10_000_000
    start = time.perf_counter()
    spin(n)
    one = time.perf_counter() - start
    n = max(1, int(n * seconds / max(one, 1e-6)))
    start = time.perf_counter()
    spin(n)
    one = time.perf_counter() - start
    workers = [threading.Thread(target=spin, args=(n,)) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * one / (time.perf_counter() - start)


def core_check_note(threads_list) -> str:
    """One line on whether the cores are free for the largest thread count ('' for one thread)."""
    threads = max(threads_list)
    if threads == 1:
        return ""
    speedup = core_check(threads)
    verdict = ("the cores look free" if speedup >= 0.9 * threads else
               "the cores are NOT free (another load or the hypervisor shares them): multi-thread numbers are "
               "not meaningful")
    return (f"Core check: {threads} copies of a compute-only loop on {threads} threads ran {speedup:.2f}x the work "
            f"of one: {verdict}.")
