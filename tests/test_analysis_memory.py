"""A run's analysis holds windows of its spikes, not the whole run.

``load_run(path, lazy_spikes=True)`` leaves the spikes in the file (a ``LazyRun``): analyses
read the windows they need and whole-run counts walk the file block by block. Everything the
command line computes from a run that way (rates, population rhythm, the what/when metrics, the
raster) must equal what the old way computes with every spike in memory, bit for bit.
"""
import json
import tracemalloc

import matplotlib

matplotlib.use("Agg")  # the tests save nothing, but must not open windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from analysis import LazyRun, load_metrics, load_run  # noqa: E402
from analysis.figures import whatwhen_figures  # noqa: E402
from analysis.features import trial_features  # noqa: E402
from analysis.geometry import feature_pca  # noqa: E402
from analysis.plots import raster_figure  # noqa: E402
from analysis.spikes import (counts_in_bins, firing_rates_hz, population_rate_hz, population_spectrum,  # noqa: E402
                             rate_bin_edges_ms, rate_spectrum, spectral_peak_hz, tally_spikes)
from analysis.trials import response_reliability, trial_onsets_ms  # noqa: E402
from analysis.whatwhen import whatwhen_metrics, with_claims  # noqa: E402

from .helpers import metrics_differences  # noqa: E402


@pytest.fixture(scope="module")
def small_run(small_whatwhen_run):
    return small_whatwhen_run


def test_a_lazy_run_reads_windows_and_blocks_equal_to_the_loaded_spikes(small_run):
    eager, lazy = load_run(small_run), load_run(small_run, lazy_spikes=True)
    assert isinstance(lazy, LazyRun) and not lazy.spikes_in_memory and eager.spikes_in_memory
    assert lazy.n_spikes == eager.n_spikes == eager.spike_ids.size > 50_000
    assert "in the file" in repr(lazy) and not lazy.spikes_in_memory  # repr reads no spike
    end = eager.duration_ms
    for t_start, t_stop in [(0.0, 1000.0), (1234.5, 5678.0), (-np.inf, 10.0), (end - 100.0, None), (500.0, 400.0)]:
        inside = eager.spike_times_ms >= t_start
        if t_stop is not None:
            inside &= eager.spike_times_ms < t_stop
        for run in (eager, lazy):
            times, ids = run.spikes_between(t_start, t_stop)
            assert times.dtype == np.float64 and ids.dtype == np.int64
            np.testing.assert_array_equal(times, eager.spike_times_ms[inside])
            np.testing.assert_array_equal(ids, eager.spike_ids[inside])
    blocks = list(lazy.spike_blocks(block_rows=997))
    assert len(blocks) == -(-eager.n_spikes // 997) and all(len(t) == len(i) <= 997 for t, i in blocks)
    np.testing.assert_array_equal(np.concatenate([t for t, _ in blocks]), eager.spike_times_ms)
    np.testing.assert_array_equal(np.concatenate([i for _, i in blocks]), eager.spike_ids)
    with pytest.raises(ValueError, match="block_rows"):
        next(lazy.spike_blocks(block_rows=0))
    assert not lazy.spikes_in_memory
    for name in ("outputs", "output_time_ms", "snapshot_time_ms", "trace_v"):
        np.testing.assert_array_equal(getattr(lazy, name), getattr(eager, name))
    assert lazy.tables["trials"].keys() == eager.tables["trials"].keys()
    # the whole columns on first access, as load_run gives them
    np.testing.assert_array_equal(lazy.spike_times_ms, eager.spike_times_ms)
    assert lazy.spike_ids.dtype == np.int64 and lazy.spikes_in_memory
    np.testing.assert_array_equal(lazy.spike_ids, eager.spike_ids)


@pytest.mark.parametrize("bin_ms", [1.0, 0.3, 5.0, 7.7])
def test_counts_in_bins_are_those_of_numpy_histogram(bin_ms):
    rng = np.random.default_rng(11)
    duration = 1000.0
    edges = rate_bin_edges_ms(duration, bin_ms)
    n_bins = edges.size - 1
    np.testing.assert_array_equal(edges, np.histogram([], bins=n_bins, range=(0.0, n_bins * bin_ms))[1])
    times = np.concatenate([rng.uniform(-5.0, edges[-1] + 5.0, 5000),  # some outside the range on both sides
                            np.round(rng.uniform(0, duration, 3000) / 0.5) * 0.5,  # on the engine's 0.5 ms grid
                            edges[rng.integers(0, edges.size, 500)], [edges[-1], edges[-1], edges[0]]])
    expected = np.histogram(times, bins=n_bins, range=(0.0, n_bins * bin_ms))[0]
    np.testing.assert_array_equal(counts_in_bins(np.sort(times), edges), expected)  # bisection
    np.testing.assert_array_equal(counts_in_bins(times, edges), expected)  # unsorted: numpy's own
    inside = np.sort(times[(times > 200.0) & (times < 300.0)])  # a block that covers a few bins only
    np.testing.assert_array_equal(counts_in_bins(inside, edges),
                                  np.histogram(inside, bins=n_bins, range=(0.0, n_bins * bin_ms))[0])
    assert counts_in_bins(np.zeros(0), edges).tolist() == [0] * n_bins


def test_one_pass_tally_equals_the_rates_and_spectrum_of_all_spikes(small_run):
    eager, lazy = load_run(small_run), load_run(small_run, lazy_spikes=True)
    duration = eager.duration_ms
    for block_rows in (997, 1 << 20):
        tally = tally_spikes(lazy, bin_ms=1.0, block_rows=block_rows)
        assert tally.n_spikes == eager.spike_ids.size
        np.testing.assert_array_equal(tally.firing_rates_hz(), firing_rates_hz(eager.spike_ids, eager.n_neurons, duration))
        centres, rate = population_rate_hz(eager.spike_times_ms, eager.n_neurons, duration)
        np.testing.assert_array_equal(tally.population_rate_hz()[0], centres)
        np.testing.assert_array_equal(tally.population_rate_hz()[1], rate)
        frequencies, power = rate_spectrum(tally.population_rate_hz()[1], bin_ms=1.0)
        np.testing.assert_array_equal(power, population_spectrum(eager.spike_times_ms, eager.n_neurons, duration)[1])
    assert not lazy.spikes_in_memory
    no_bins = tally_spikes(lazy)
    assert no_bins.per_bin is None
    with pytest.raises(ValueError, match="no time bins"):
        no_bins.population_rate_hz()


def test_the_command_line_metrics_equal_those_computed_from_every_spike_in_memory(small_run):
    """The old way: load_run (all spikes), firing_rates_hz, population_spectrum and the what/when
    metrics on the loaded run; metrics.json was written by the runner from a lazy run."""
    written = load_metrics(small_run)
    run = load_run(small_run)
    rates = firing_rates_hz(run.spike_ids, run.n_neurons, run.duration_ms)
    exc = run.is_excitatory
    old = {"n_neurons": run.n_neurons, "duration_ms": run.duration_ms, "n_spikes": int(run.spike_ids.size),
           "mean_rate_hz": float(rates.mean()), "mean_rate_excitatory_hz": float(rates[exc].mean()),
           "mean_rate_inhibitory_hz": float(rates[~exc].mean()),
           "population_rhythm_peak_hz": spectral_peak_hz(*population_spectrum(run.spike_times_ms, run.n_neurons,
                                                                              run.duration_ms), (1.0, 100.0))}
    window = np.floor(run.spike_times_ms / min(1000.0, run.duration_ms)).astype(np.int64)
    per_window = np.zeros((run.n_neurons, window.max() + 1), dtype=np.int64)
    np.add.at(per_window, (run.spike_ids, window), 1)
    limit = 0.9 * min(1000.0, run.duration_ms) / (2 * run.dt_ms)
    old["neurons_at_step_limit"] = np.flatnonzero(per_window.max(axis=1) >= limit).tolist()
    old.update(with_claims(whatwhen_metrics(run, offline_errors=[written["phase_modulation"]["what_offline"]]), run))
    old = json.loads(json.dumps(old))
    assert metrics_differences({key: written[key] for key in old}, old) == []
    assert set(written) - set(old) == {"wall_time_s", "figures"}


def test_the_whatwhen_analysis_of_a_lazy_run_never_loads_every_spike(small_run, tmp_path):
    lazy, eager = load_run(small_run, lazy_spikes=True), load_run(small_run)
    metrics = whatwhen_metrics(lazy)
    assert metrics_differences(metrics, whatwhen_metrics(eager)) == []
    paths = whatwhen_figures(lazy, tmp_path, metrics)
    plt.close(raster_figure(lazy))
    tally_spikes(lazy, bin_ms=1.0)
    assert paths and all(path.exists() for path in paths)
    assert not lazy.spikes_in_memory


def test_feature_pcs_are_computed_once_per_run_and_read_only(small_run):
    lazy, eager = load_run(small_run, lazy_spikes=True), load_run(small_run)
    pcs = feature_pca(lazy, n_components=4)
    assert feature_pca(lazy, n_components=4) is pcs and feature_pca(lazy, n_components=3) is not pcs
    with pytest.raises(ValueError, match="read-only"):
        pcs.basis[0, 0] = 1.0
    fresh = feature_pca(eager, n_components=4)
    for name in ("basis", "mean", "explained_variance_ratio"):
        np.testing.assert_array_equal(getattr(pcs, name), getattr(fresh, name))
    onsets = trial_onsets_ms(eager)[-6:]
    for a, b in zip(response_reliability(lazy, onsets, 600.0), response_reliability(eager, onsets, 600.0)):
        np.testing.assert_array_equal(a, b)


def test_reliability_equals_the_formula_with_a_second_centred_array(small_run):
    """response_reliability centres its traces in place; the old way made a centred copy."""
    run = load_run(small_run, lazy_spikes=True)
    onsets = trial_onsets_ms(run)[-8:]
    traces = trial_features(run, onsets, 600.0, every_ms=5.0, lead_in_ms=100.0, taus_ms=[20.0], dtype=np.float64)
    centred = traces - traces.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(centred, axis=2)
    expected = np.empty(traces.shape[1])
    for k in range(traces.shape[1]):
        v = centred[:, k] / np.maximum(norms[:, k:k + 1], 1e-300)
        gram = v @ v.T
        expected[k] = (gram.sum() - np.trace(gram)) / (len(onsets) * (len(onsets) - 1))
    np.testing.assert_array_equal(response_reliability(run, onsets, 600.0)[1], expected)


def _plotted(fig) -> list[np.ndarray]:
    return [line.get_xydata() for ax in fig.axes for line in ax.get_lines()]


def test_the_raster_of_a_lazy_run_shows_the_same_spikes_and_rate(small_run):
    eager, lazy = load_run(small_run), load_run(small_run, lazy_spikes=True)
    on_edge = float(eager.spike_times_ms[eager.spike_times_ms > 700.0][0])  # a spike on the rate's last edge
    for max_ms, bin_ms in [(1000.0, 5.0), (on_edge, 0.5), (on_edge - 0.25, 0.5), (None, 5.0)]:
        figures = [raster_figure(run, max_ms=max_ms, bin_ms=bin_ms) for run in (eager, lazy)]
        try:
            for a, b in zip(*map(_plotted, figures), strict=True):
                np.testing.assert_array_equal(a, b)
            end = eager.duration_ms if max_ms is None else max_ms
            old_rate = population_rate_hz(eager.spike_times_ms, eager.n_neurons, end, bin_ms)[1]  # from all spikes
            np.testing.assert_array_equal(_plotted(figures[1])[-1][:, 1], old_rate)
        finally:
            for fig in figures:
                plt.close(fig)
    assert not lazy.spikes_in_memory


def test_a_block_pass_holds_a_block_not_the_run(small_run):
    """Traced NumPy allocations: loading every spike holds 16 bytes per spike; one pass over the
    file in 4096-row blocks, and a window, hold a block or a window."""
    lazy = load_run(small_run, lazy_spikes=True)
    tracemalloc.start()
    try:
        tally = tally_spikes(lazy, bin_ms=None, block_rows=4096)
        window_times, _ = lazy.spikes_between(1000.0, 1100.0)
        lazy_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        all_times, all_ids = lazy.spike_times_ms, lazy.spike_ids
        loaded_peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    n_spikes = all_ids.size
    assert tally.n_spikes == n_spikes > 50_000 and window_times.size > 0 and all_times.size == n_spikes
    assert loaded_peak >= 16 * n_spikes
    assert lazy_peak < 16 * n_spikes / 8, (lazy_peak, loaded_peak)
