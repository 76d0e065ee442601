"""Cost of one RLS event (``reservoir/rules/rls.py``) against NumPy and BLAS formulations.

Run::

    .venv/bin/python benchmarks/bench_rls.py                    # F = 500, 1000, 2000 (about 30 s)
    .venv/bin/python benchmarks/bench_rls.py --quick            # fewer events, smoke run
    .venv/bin/python benchmarks/bench_rls.py --sizes 2000 4000 --events 100

What is measured
----------------
One RLS event with ``K = 1`` output, ``forgetting = 1``, textbook decoder step: ``P r``, the
weight update and the rank-one update of ``P`` (``F x F`` float64). Each variant runs the same
sequence of random feature vectors (``r ~ U(0, 1) / sqrt(F)``) from ``P = I``; after ``warm-up``
untimed events (compilation, caches), each of ``events`` further events is timed on its own with
``time.perf_counter`` and the table reports the median in ms per event. Variants:

* ``fused`` - :func:`~reservoir.rules.rls.rls_update_fused` (the one the readout uses): one pass
  over the upper triangle per event; the rank-one correction of an event is applied during the
  next event's ``P r`` pass.
* ``eager`` - :func:`~reservoir.rules.rls.rls_update`: upper triangle, pass 1 ``P r`` (each entry
  used twice), pass 2 rank-one update.
* ``BLAS`` - SciPy's BLAS on the upper triangle of a Fortran-ordered matrix: ``dsymv`` for ``P r``
  and ``dsyr`` (in place) for the rank-one update (OpenBLAS, bundled with SciPy; it vectorises its
  reductions, which the Numba kernels may not do without fast math).
* ``NumPy full`` - the naive formulas on the full matrix: ``P @ r``, ``P -= np.outer(Pr, Pr) / c``.

Everything runs on one thread (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
``NUMBA_NUM_THREADS`` are set to 1 before NumPy is imported, unless already set): the kernels are
serial. At the end the four final ``P`` are compared (they must agree to rounding). Results go to
stdout and to ``benchmarks/results/rls.md`` (git-ignored).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from machine import describe, publish  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reservoir.rules.rls import (rls_initial_P, rls_pending_state, rls_update, rls_update_fused,  # noqa: E402
                                 symmetric_P)

VARIANTS = ["fused", "eager", "BLAS", "NumPy full"]


def make_variant(name, n_features):
    """Return ``(step, final_P)``: ``step(r, target)`` performs one event, ``final_P()`` the full P."""
    weights = np.zeros((1, n_features))
    if name in ("fused", "eager"):
        P = rls_initial_P(n_features, 1.0)
        pending_pr, pending_coefficients = rls_pending_state(n_features)
        scratch = np.empty(n_features)
        errors = np.empty(1)
        if name == "fused":
            def step(r, target):
                errors[0] = weights[0] @ r - target
                rls_update_fused(P, pending_pr, pending_coefficients, r, weights, errors, 1.0, 0, scratch)
        else:
            def step(r, target):
                errors[0] = weights[0] @ r - target
                rls_update(P, r, weights, errors, 1.0, 0, scratch)
        return step, lambda: symmetric_P(P, pending_pr, pending_coefficients)
    if name == "BLAS":
        from scipy.linalg import blas

        P = np.asfortranarray(np.eye(n_features))

        def step(r, target):
            error = weights[0] @ r - target
            Pr = blas.dsymv(1.0, P, r, lower=0)
            c = 1.0 + r @ Pr
            blas.dsyr(-1.0 / c, Pr, a=P, lower=0, overwrite_a=True)  # in place: P is Fortran-ordered
            weights[0] -= (error / c) * Pr
        return step, lambda: symmetric_P(np.ascontiguousarray(P))
    if name == "NumPy full":
        P = np.eye(n_features)

        def step(r, target):
            error = weights[0] @ r - target
            Pr = P @ r
            c = 1.0 + r @ Pr
            P[...] -= np.outer(Pr, Pr) / c
            weights[0] -= (error / c) * Pr
        return step, lambda: P.copy()
    raise ValueError(name)


def time_variant(name, n_features, features, targets, warm_up):
    step, final_P = make_variant(name, n_features)
    times = []
    for t in range(features.shape[0]):
        start = time.perf_counter()
        step(features[t], targets[t])
        elapsed = time.perf_counter() - start
        if t >= warm_up:
            times.append(elapsed)
    return 1e3 * float(np.median(times)), final_P()


def machine_header(events, warm_up):
    return (describe(("SciPy",), cores_note=" (one thread used)")
            + f". Median of {events} timed events after {warm_up} warm-up events; "
            f"K = 1 output, forgetting 1, textbook decoder step.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000], help="feature counts F")
    parser.add_argument("--events", type=int, default=200, help="timed events per variant and size")
    parser.add_argument("--warm-up", type=int, default=20, help="untimed events before timing")
    parser.add_argument("--quick", action="store_true", help="20 timed events, 5 warm-up")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "rls.md")
    args = parser.parse_args(argv)
    events, warm_up = (20, 5) if args.quick else (args.events, args.warm_up)
    if min(args.sizes) < 1 or events < 1 or warm_up < 0:
        parser.error("--sizes and --events must be positive, --warm-up non-negative")

    rows = []
    for n_features in args.sizes:
        rng = np.random.default_rng(n_features)
        features = rng.random((warm_up + events, n_features)) / np.sqrt(n_features)
        targets = np.sin(0.05 * np.arange(warm_up + events))
        results = {}
        for name in VARIANTS:
            results[name] = time_variant(name, n_features, features, targets, warm_up)
            print(f"F={n_features:5d}  {name:10s}  {results[name][0]:8.3f} ms/event", flush=True)
        reference = results["NumPy full"][1]
        scale = np.max(np.abs(reference))
        disagreement = max(np.max(np.abs(results[name][1] - reference)) / scale for name in VARIANTS)
        if disagreement > 1e-9:
            print(f"WARNING: final P of the variants differ by {disagreement:.1e} (relative)", file=sys.stderr)
        rows.append((n_features, {name: results[name][0] for name in VARIANTS}, disagreement))

    lines = ["## RLS update cost", "", machine_header(events, warm_up), "",
             "| F | " + " | ".join(f"{name} (ms)" for name in VARIANTS)
             + " | NumPy full / fused | BLAS / fused | final P agree to |",
             "|---:|" + "---:|" * len(VARIANTS) + "---:|---:|---:|"]
    for n_features, times, disagreement in rows:
        lines.append(f"| {n_features} | " + " | ".join(f"{times[name]:.3f}" for name in VARIANTS)
                     + f" | {times['NumPy full'] / times['fused']:.1f}x | {times['BLAS'] / times['fused']:.2f}x"
                     + f" | {disagreement:.0e} |")
    table = "\n".join(lines)
    publish(table, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
