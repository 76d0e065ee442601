"""Reproductions of published network behaviour (slow: run with ``pytest -m slow``).

Reference figures (docs/model-and-numerics.md, "Measured behaviour"): a NumPy transcription of
Izhikevich's ``net.m`` gives a mean rate of about 7.5 Hz and a population rhythm peaking in the
alpha band (7-9 Hz) over 20 seeds x 1 s; the Nicola & Clopath (2017) reservoir fires at about
5 Hz before FORCE training.
"""
import numpy as np
import pytest

from analysis.spikes import population_spectrum, spectral_peak_hz
from reservoir import Simulation, build_network, resolve_config

pytestmark = pytest.mark.slow


def _run(preset, seed, duration_ms=1000.0):
    cfg = resolve_config(preset, {"seed": seed, "duration_ms": duration_ms})
    network = build_network(cfg.network, cfg.integration, seed)
    sim = Simulation(network, seed=seed)
    sim.run(n_steps=cfg.n_steps)
    return network, sim.recorder.spike_times_ms


def test_netm_rate_and_alpha_rhythm_over_20_seeds():
    rates, total_power = [], None
    for seed in range(20):
        network, times = _run("izhikevich2003", seed)
        rates.append(times.size / network.n_neurons)
        freqs, power = population_spectrum(times, network.n_neurons, 1000.0)
        total_power = power if total_power is None else total_power + power
    mean_rate = float(np.mean(rates))
    peak = spectral_peak_hz(freqs, total_power, (1.0, 100.0))
    print(f"net.m, 20 seeds x 1 s: mean rate {mean_rate:.2f} +- {np.std(rates):.2f} Hz, "
          f"seed-averaged population spectrum peak {peak:g} Hz")
    assert 7.0 <= mean_rate <= 8.0  # "about 7.5 Hz"
    assert 7.0 <= peak <= 9.0  # alpha band


def test_nicola_clopath_reservoir_rate_before_training():
    rates = [(_r := _run("nicola_clopath2017", seed))[1].size / _r[0].n_neurons for seed in range(3)]
    print(f"Nicola & Clopath reservoir, 3 seeds x 1 s: mean rate {np.mean(rates):.2f} Hz")
    assert 4.0 <= float(np.mean(rates)) <= 6.0  # "about 5 Hz before training"
