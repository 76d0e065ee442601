import json

import h5py
import numpy as np
import pytest

from reservoir import NumericalInstabilityError, Simulation, build_network, resolve_config
from reservoir.network import Network
from reservoir.neurons import NeuronParameters
from reservoir.connectivity import Connectivity
from reservoir.recording import RunFileRecorder
from reservoir.experiment import simulate
from reservoir.synapses import SynapticFilter

from .helpers import drive, small_network


def netm(n_neurons=300, seed=2):
    cfg = resolve_config("izhikevich2003", {"network": {"n_neurons": n_neurons}})
    return build_network(cfg.network, cfg.integration, seed)


def spikes_and_state(sim):
    return sim.recorder.spike_steps, sim.recorder.spike_ids, sim.v.copy(), sim.u.copy()


def test_chunking_does_not_change_the_result():
    network = netm()
    results = []
    for chunk_steps in (1, 7, 100, 1000):
        sim = Simulation(network, seed=4, chunk_steps=chunk_steps)
        sim.run(n_steps=500)
        results.append(spikes_and_state(sim))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_full_spike_buffer_is_flushed_and_resumed():
    network = netm()
    reference = Simulation(network, seed=4)
    reference.run(n_steps=400)
    n = network.n_neurons
    tight = Simulation(network, seed=4, chunk_steps=400, spike_buffer_events=n + 5)  # barely more than one step
    tight.run(n_steps=400)
    for a, b in zip(spikes_and_state(reference), spikes_and_state(tight)):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_result_and_other_seed_differs():
    a, b, c = (Simulation(netm(), seed=s) for s in (9, 9, 10))
    for sim in (a, b, c):
        sim.run(n_steps=300)
    np.testing.assert_array_equal(a.recorder.spike_ids, b.recorder.spike_ids)
    assert not np.array_equal(a.recorder.spike_ids, c.recorder.spike_ids)


def test_run_files_are_bit_identical_for_the_same_config_and_seed(tmp_path):
    cfg = resolve_config("izhikevich2003", {"duration_ms": 200, "seed": 3, "network": {"n_neurons": 200},
                                            "recording": {"trace_neurons": [0, 1]}})
    simulate(cfg, tmp_path / "a", progress=False)
    simulate(cfg, tmp_path / "b", progress=False)
    assert (tmp_path / "a/run.h5").read_bytes() == (tmp_path / "b/run.h5").read_bytes()
    assert (tmp_path / "a/config.resolved.toml").read_text() == (tmp_path / "b/config.resolved.toml").read_text()


@pytest.mark.parametrize("slow_synapses", [None, {"fraction": 0.5, "tau_ms": 60.0}])
def test_checkpoint_restore_continues_bit_identically(tmp_path, slow_synapses):
    network = small_network(noise=3.0, synapse="double_exponential", slow_synapses=slow_synapses)
    ext = drive(network, 600, 10.0)
    straight = Simulation(network, ext, seed=5, chunk_steps=50)
    straight.run(n_steps=600)

    first = Simulation(network, ext, seed=5, chunk_steps=50)
    first.run(n_steps=250, checkpoint_path=tmp_path / "cp.h5", checkpoint_every_steps=250)
    restored = Simulation(network, ext, seed=5, chunk_steps=80)  # other chunking on purpose
    restored.load_checkpoint(tmp_path / "cp.h5")
    assert restored.step == 250
    restored.run(n_steps=350)

    combined_steps = np.concatenate([first.recorder.spike_steps, restored.recorder.spike_steps])
    combined_ids = np.concatenate([first.recorder.spike_ids, restored.recorder.spike_ids])
    np.testing.assert_array_equal(combined_steps, straight.recorder.spike_steps)
    np.testing.assert_array_equal(combined_ids, straight.recorder.spike_ids)
    for name in ("v", "u", "filter_state", "filter_aux", "slow_filter_state"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(straight, name))
    with h5py.File(tmp_path / "cp.h5") as f:  # the slow filter's state travels only where there is one
        assert ("state/slow_filter_state" in f) == (slow_synapses is not None)
    if slow_synapses is not None:
        assert np.abs(straight.slow_filter_state).max() > 0
        plain = Simulation(small_network(noise=3.0, synapse="double_exponential"), ext, seed=5)
        with pytest.raises(ValueError, match="different network"):
            plain.load_checkpoint(tmp_path / "cp.h5")


@pytest.mark.parametrize("store_connectivity", [True, False])
def test_run_file_records_the_slow_synapses(tmp_path, store_connectivity):
    base = {"duration_ms": 100, "seed": 3, "network": {"n_neurons": 200},
            "recording": {"store_connectivity": store_connectivity}}
    plain = resolve_config("izhikevich2003", base)
    slow = resolve_config("izhikevich2003", {**base, "network": {
        "n_neurons": 200, "slow_synapses": {"fraction": 0.25, "tau_ms": 90.0, "weight_scale": 2.0}}})
    simulate(plain, tmp_path / "plain", progress=False)
    simulate(slow, tmp_path / "slow", progress=False)
    network = build_network(slow.network, slow.integration, slow.seed)
    with h5py.File(tmp_path / "plain/run.h5") as f:
        assert "slow_synapses" not in f["network"].attrs and "slow_connectivity" not in f["network"]
        assert "slow_synapses" not in f.attrs["config_toml"]
    with h5py.File(tmp_path / "slow/run.h5") as f:
        g = f["network"]
        assert json.loads(g.attrs["slow_synapses"]) == {"kind": "exponential", "tau_ms": 90.0,
                                                        "n_synapses": network.slow_connectivity.n_synapses}
        assert ("slow_connectivity" in g) == store_connectivity == ("connectivity" in g)
        if store_connectivity:
            for name in ("indptr", "indices", "weights"):
                np.testing.assert_array_equal(g[f"slow_connectivity/{name}"][()],
                                              getattr(network.slow_connectivity, name))
                np.testing.assert_array_equal(g[f"connectivity/{name}"][()], getattr(network.connectivity, name))
        assert "[network.slow_synapses]" in f.attrs["config_toml"]


def test_checkpoint_refuses_another_network(tmp_path):
    sim = Simulation(netm(seed=1), seed=1)
    sim.run(n_steps=10)
    sim.save_checkpoint(tmp_path / "cp.h5")
    with pytest.raises(ValueError, match="different network"):
        Simulation(netm(seed=2), seed=1).load_checkpoint(tmp_path / "cp.h5")
    with pytest.raises(ValueError, match="different network"):
        Simulation(netm(seed=1), seed=2).load_checkpoint(tmp_path / "cp.h5")


def test_resumed_run_file_equals_uninterrupted_run_file(tmp_path, monkeypatch):
    import reservoir.experiment.runner as runner
    from reservoir.experiment import resume

    class Crash(Exception):
        pass

    def crash(sim, out):
        raise Crash

    base = {"duration_ms": 300, "seed": 8, "network": {"n_neurons": 150}, "recording": {"trace_neurons": [3]}}
    cfg = resolve_config("izhikevich2003", base)
    simulate(cfg, tmp_path / "straight", progress=False)
    cfg_cp = resolve_config("izhikevich2003", {**base, "checkpoint_every_ms": 120.0})
    monkeypatch.setattr(runner, "checkpoint_end", crash)  # the process dies after the last step
    with pytest.raises(Crash):
        simulate(cfg_cp, tmp_path / "resumed", progress=False)
    monkeypatch.undo()
    # as after a crash at 300 ms: the last checkpoint (240 ms) covers less than the file holds
    with h5py.File(tmp_path / "resumed/checkpoint.h5") as cp, h5py.File(tmp_path / "resumed/run.h5") as f:
        assert cp.attrs["step"] == 240
        assert cp.attrs["traces_written"] == 240 < f["traces/v"].shape[0] == 300
    resume(tmp_path / "resumed", progress=False)
    with h5py.File(tmp_path / "straight/run.h5") as a, h5py.File(tmp_path / "resumed/run.h5") as b:
        for name in ("spikes/reservoir/timestamps", "spikes/reservoir/node_ids", "traces/v", "traces/u", "traces/step"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
        assert b.attrs["status"] == "complete" and b.attrs["steps_completed"] == 300


def _runaway_network(dt_ms=1.0):
    """Neuron 1 never resets (v_peak = inf), so its quadratic v runs away to inf."""
    n = 3
    neurons = NeuronParameters(
        model="izhikevich2003", a=np.full(n, 0.02), b=np.full(n, 0.2), c=np.full(n, -65.0), d=np.full(n, 8.0),
        v_peak_mV=np.array([30.0, np.inf, 30.0]), is_excitatory=np.ones(n, dtype=bool),
        v_initial_mV=np.full(n, -65.0), u_initial=np.full(n, -13.0))
    empty = Connectivity(n, np.zeros(n + 1), np.zeros(0), np.zeros(0))
    return Network(neurons, empty, SynapticFilter("delta"), noise_std=0.0, bias=10.0, dt_ms=dt_ms, scheme="euler")


def test_finiteness_guard_names_neuron_step_and_dt(tmp_path):
    network = _runaway_network()
    recorder = RunFileRecorder(tmp_path / "run.h5", network.dt_ms)
    sim = Simulation(network, recorder=recorder)
    with pytest.raises(NumericalInstabilityError) as info:
        sim.run(n_steps=1000)
    error = info.value
    assert error.neuron == 1 and 0 < error.step < 1000 and error.dt_ms == 1.0
    assert "neuron 1" in str(error) and f"after step {error.step}" in str(error) and "dt = 1 ms" in str(error)
    assert not np.isfinite(error.v) or not np.isfinite(error.u)
    recorder.close()
    with h5py.File(tmp_path / "run.h5") as f:
        assert f.attrs["status"] == "failed" and "neuron 1" in f.attrs["message"]
        assert f.attrs["steps_completed"] == error.step


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_finiteness_guard_in_interpreted_kernel(kernel_mode):
    sim = Simulation(_runaway_network())
    with pytest.raises(NumericalInstabilityError):
        sim.run(n_steps=1000)


def test_run_argument_errors():
    sim = Simulation(netm(50))
    with pytest.raises(ValueError, match="exactly one"):
        sim.run()
    with pytest.raises(ValueError, match="trace_ids"):
        Simulation(netm(50), trace_ids=[50])
