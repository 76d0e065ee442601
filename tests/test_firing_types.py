"""Single-neuron behaviour of the twenty Izhikevich (2004) presets, checked against the paper's
descriptions of each pattern (Fig. 1) rather than against recorded numbers."""
import numpy as np
import pytest

from reservoir import Simulation, build_network, resolve_config
from reservoir.firing_types import FIRING_TYPES
from reservoir.network import build_stimulus


def run_type(name):
    cfg = resolve_config(name)
    net = build_network(cfg.network, cfg.integration, 0)
    stim = build_stimulus(cfg.stimulus, net, cfg.n_steps, name)
    sim = Simulation(net, stim, trace_ids=[0])
    sim.run(n_steps=cfg.n_steps)
    rec = sim.recorder
    return rec.spike_times_ms, rec.trace_steps * net.dt_ms, rec.trace_v[:, 0], FIRING_TYPES[name]


def test_all_twenty_types_are_presets():
    assert len(FIRING_TYPES) == 20
    assert [ft.panel for ft in FIRING_TYPES.values()] == list("ABCDEFGHIJKLMNOPQRST")


def test_tonic_spiking_fires_regularly_after_onset():
    t, _, _, ft = run_type("tonic_spiking")
    assert t.size >= 4 and t.min() > ft.duration_ms / 10
    isi = np.diff(t)
    assert abs(isi[-1] - isi[-2]) / isi[-1] < 0.05  # settles to a regular rhythm


def test_phasic_spiking_fires_once_at_onset():
    t, *_ = run_type("phasic_spiking")
    assert t.size == 1 and 20 < t[0] < 60


def test_tonic_bursting_repeats_bursts():
    t, *_ = run_type("tonic_bursting")
    isi = np.diff(t)
    long_gaps = isi > 20
    assert long_gaps.sum() >= 2  # at least three bursts
    assert isi[~long_gaps].max() * 3 < isi[long_gaps].min()  # bimodal: tight spikes inside bursts


def test_phasic_bursting_fires_one_burst():
    t, *_ = run_type("phasic_bursting")
    assert t.size >= 3 and np.all(np.diff(t) < 15) and t.max() < 100


def test_mixed_mode_bursts_then_spikes_tonically():
    t, *_ = run_type("mixed_mode")
    isi = np.diff(t)
    assert isi[0] < 5 and isi[1] < 10  # initial burst
    assert np.all(isi[-2:] > 20) and abs(isi[-1] - isi[-2]) / isi[-1] < 0.05  # then tonic


def test_spike_frequency_adaptation_lengthens_intervals():
    t, *_ = run_type("spike_frequency_adaptation")
    isi = np.diff(t)
    assert t.size >= 4 and np.all(np.diff(isi) > 0)


def test_class_1_starts_slow_and_class_2_starts_fast():
    t1, *_ = run_type("class_1_excitable")
    t2, *_ = run_type("class_2_excitable")
    isi1, isi2 = np.diff(t1), np.diff(t2)
    assert np.all(np.diff(isi1) < 0) and isi1[0] > 2 * isi1[-1]  # rate grows with the ramp from low values
    assert isi1[0] > 35 and isi2[0] < 25  # class 1: arbitrarily low onset rate; class 2: abrupt onset


def test_spike_latency_fires_once_long_after_the_pulse():
    t, _, _, ft = run_type("spike_latency")
    onset = ft.duration_ms / 10
    assert t.size == 1 and t[0] - onset > 10  # pulse lasts 3 ms, the spike comes much later


def test_subthreshold_oscillations_ring_after_the_spike():
    t, time, v, _ = run_type("subthreshold_oscillations")
    assert t.size == 1
    after = v[time > t[0] + 10]
    crossings = np.sum(np.diff(np.sign(after - after[-len(after) // 4:].mean())) != 0)
    assert crossings >= 3  # damped oscillation around rest


def test_resonator_fires_only_to_the_resonant_doublet():
    t, _, _, ft = run_type("resonator")
    assert t.size >= 1 and np.all(t > 0.7 * ft.duration_ms)


def test_integrator_fires_only_to_the_close_pair():
    t, _, _, ft = run_type("integrator")
    assert t.size >= 1 and np.all(t < 0.7 * ft.duration_ms)


@pytest.mark.parametrize("name,min_spikes", [("rebound_spike", 1), ("rebound_burst", 3)])
def test_rebound_after_inhibitory_pulse(name, min_spikes):
    t, *_ = run_type(name)
    assert t.size >= min_spikes and np.all(t > 25)  # the inhibitory pulse ends at 25 ms
    if name == "rebound_spike":
        assert t.size == 1


def test_threshold_variability_needs_preceding_inhibition():
    t, *_ = run_type("threshold_variability")
    assert t.size == 1 and t[0] > 80  # same pulse at 10 ms failed, after inhibition it fires


def test_bistability_switches_on_and_off():
    t, _, _, ft = run_type("bistability")
    assert t.size >= 3 and t.min() > ft.duration_ms / 8 and t.max() < 216 + 5


def test_depolarizing_after_potential_single_spike():
    t, *_ = run_type("depolarizing_after_potential")
    assert t.size == 1 and 9 < t[0] < 15


def test_accommodation_ignores_slow_ramp_but_fires_to_fast_ramp():
    t, *_ = run_type("accommodation")
    assert t.size >= 1 and np.all((t > 300) & (t < 330))


@pytest.mark.parametrize("name", ["inhibition_induced_spiking", "inhibition_induced_bursting"])
def test_inhibition_induced_activity_only_while_hyperpolarised(name):
    t, *_ = run_type(name)
    assert t.size >= 2 and np.all((t > 50) & (t < 260))
