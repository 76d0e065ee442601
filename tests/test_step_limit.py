"""The step-limit cycle of forward Euler at 1 ms, and the check that finds it in a run.

A regular-spiking Izhikevich neuron (a 0.02, b 0.2, c -65, d 8, bias 5) driven by a strong
50 ms pulse and integrated by forward Euler with dt = 1 ms does not return to its real
dynamics: it fires every other step for as long as it runs (``v`` swings between about -200
and +800 mV, and ``u``, fed by ``b v`` at those values, stays high). ``net.m``'s scheme (two half
steps for ``v``) at the same step, and Euler at 0.5 ms, return to tonic firing. This is what
made the permuted-digits reservoir drift (``docs/results-continual.md``)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analysis.spikes import tally_spikes
from reservoir import ExternalInput, Simulation

from .helpers import small_network

N_STEPS = 1500


def _pulse_response(scheme: str, dt_ms: float, amplitude: float) -> np.ndarray:
    """Spike steps of one neuron (tonic under bias 5) given a 50 ms pulse at 100 ms."""
    network = small_network(n_neurons=1, probability=1e-9, dt_ms=dt_ms, bias=5.0, scheme=scheme)
    neurons = network.neurons
    neurons.a[:], neurons.b[:], neurons.c[:], neurons.d[:] = 0.02, 0.2, -65.0, 8.0
    n_steps = round(N_STEPS / dt_ms)
    signal = np.zeros((n_steps, 1))
    signal[int(100 / dt_ms):int(150 / dt_ms), 0] = amplitude
    sim = Simulation(network, ExternalInput(signal, np.array([0, 1]), np.array([0]), np.array([1.0])), seed=0)
    sim.run(n_steps=n_steps)
    return sim.recorder.spike_steps * dt_ms


@pytest.mark.parametrize("amplitude", [80.0, 160.0])
def test_euler_at_one_ms_locks_a_neuron_at_the_step_limit(amplitude):
    late = _pulse_response("euler", 1.0, amplitude)
    late = late[late >= 500]
    assert late.size == 500  # every other step of the last 1000 ms
    assert np.all(np.diff(late) == 2.0)


@pytest.mark.parametrize("scheme, dt_ms", [("izhikevich2003", 1.0), ("euler", 0.5)])
def test_net_m_scheme_and_a_smaller_step_return_to_tonic_firing(scheme, dt_ms):
    late = _pulse_response(scheme, dt_ms, 160.0)
    late = late[late >= 500]
    assert 3 <= late.size <= 30  # tonic firing under the bias, as before the pulse
    weak = _pulse_response("euler", 1.0, 20.0)
    assert np.sum(weak >= 500) <= 30  # a weak pulse does not lock Euler either


def _run_of(times_ms, ids, n_neurons, duration_ms):
    order = np.argsort(times_ms, kind="stable")
    times_ms, ids = np.asarray(times_ms, float)[order], np.asarray(ids)[order]
    return SimpleNamespace(n_neurons=n_neurons, duration_ms=duration_ms, spike_blocks=lambda rows=3: (
        (times_ms[i:i + rows], ids[i:i + rows]) for i in range(0, times_ms.size, rows)))


def test_window_maxima_and_the_step_limit_check():
    # neuron 0: every other 1 ms step from 1000 to 2500 ms (one whole window); neuron 1: 300 Hz throughout; neuron 2: 480 Hz
    # for 0.5 s only
    locked = np.arange(1000.0, 2500.0, 2.0)
    fast = np.arange(0.0, 3000.0, 1000.0 / 300)
    burst = np.arange(500.0, 1000.0, 1000.0 / 480)
    times = np.concatenate([locked, fast, burst])
    ids = np.concatenate([np.zeros(locked.size), np.ones(fast.size), np.full(burst.size, 2)]).astype(np.int64)
    tally = tally_spikes(_run_of(times, ids, 4, 3000.0), window_ms=1000.0, block_rows=7)
    counts = [np.sum((times[ids == n] >= w) & (times[ids == n] < w + 1000)) for n in range(4) for w in (0, 1000, 2000)]
    np.testing.assert_array_equal(tally.max_per_window, np.array(counts).reshape(4, 3).max(axis=1))
    np.testing.assert_array_equal(tally.neurons_at_step_limit(dt_ms=1.0), [0])
    assert tally.neurons_at_step_limit(dt_ms=0.5).size == 0  # at 0.5 ms the limit is 1000 Hz
    with pytest.raises(ValueError, match="window_ms"):
        tally_spikes(_run_of(times, ids, 4, 3000.0)).neurons_at_step_limit(1.0)


def test_drift_probe_reports_both_ends(tmp_path):
    """The probe on a small permuted-digits network: the keys it reports, and under net.m's scheme
    no neuron at the step limit and each image's two responses alike."""
    from reservoir.experiment import load_experiment
    from reservoir.experiment.drift_probe import probe

    from .test_experiments import EXPERIMENTS

    config = load_experiment(EXPERIMENTS / "permuted_digits_unprotected.toml", {
        "network": {"n_neurons": 200}, "task": {"n_tasks": 2, "max_train_images": 30, "max_test_images": 10}})
    result = probe(config, "mixed", repeat=10)
    assert result["presentations"] == 10 + 30 + 10
    assert result["at_step_limit_at_the_end"] == []
    assert result["rate_before_hz"] > 0 and result["image_correlation"] > 0.5
    with pytest.raises(ValueError, match="--repeat"):
        probe(config, "blocked", repeat=31)
