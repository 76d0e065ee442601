"""The compiled kernel agrees bit for bit with its NumPy twin (tests/naive.py)."""
import itertools

import numpy as np
import pytest

from reservoir import Simulation
from reservoir import fastrng
from reservoir.fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, block_states
from reservoir.parallel import WORK_BLOCK_NEURONS, n_blocks
from reservoir.rng import stream_seed

from .helpers import drive, small_network
from .naive import naive_simulate

CASES = [
    # (model, scheme, synapse, storage, noise)
    *[("izhikevich2003", scheme, syn, "sparse", 0.0)
      for scheme, syn in itertools.product(["euler", "izhikevich2003", "izhikevich2004"],
                                           ["delta", "exponential", "double_exponential"])],
    ("izhikevich2003", "izhikevich2003", "delta", "dense", 3.0),
    ("izhikevich2003", "euler", "exponential", "dense", 3.0),
    ("izhikevich2007", "euler", "double_exponential", "sparse", 0.0),
    ("izhikevich2007", "izhikevich2003", "exponential", "dense", 0.0),
]


def engine_noise(seed, n_steps, n_neurons):
    """The engine's noise, ``(n_steps, n_neurons)``: each work block of neurons drawn from its own
    xoshiro256++ ziggurat stream (tested on its own in test_fastrng.py), step-major within the block."""
    noise = np.empty((n_steps, n_neurons))
    states = block_states(stream_seed(seed, "noise"), n_blocks(n_neurons))
    for j, state in enumerate(states):
        block = np.empty((n_steps, min(WORK_BLOCK_NEURONS, n_neurons - j * WORK_BLOCK_NEURONS)))
        # looked up at call time: the interpreted test replaces the module's kernels
        fastrng.fill_standard_normal(state, block, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
        noise[:, j * WORK_BLOCK_NEURONS:j * WORK_BLOCK_NEURONS + block.shape[1]] = block
    return noise


def _compare(network, n_steps, ext, kernel_mode, chunk_steps=37, threads=1):
    noise = engine_noise(11, n_steps, network.n_neurons) if network.has_noise else None
    sim = Simulation(network, ext, seed=11, trace_ids=[0, 5], trace_every_steps=3, chunk_steps=chunk_steps,
                     threads=threads)
    sim.run(n_steps=n_steps)
    twin = naive_simulate(network, n_steps, ext, noise, trace_ids=[0, 5], trace_every=3)
    rec = sim.recorder
    assert rec.spike_ids.size > 10, "the test network must spike to test anything"
    np.testing.assert_array_equal(rec.spike_steps, twin["spike_steps"])
    np.testing.assert_array_equal(rec.spike_ids, twin["spike_ids"])
    for name in ("v", "u", "filter_state", "filter_aux", "slow_filter_state"):
        np.testing.assert_array_equal(getattr(sim, name), twin[name], err_msg=name)
    np.testing.assert_array_equal(rec.trace_steps, twin["trace_steps"])
    np.testing.assert_array_equal(rec.trace_v, twin["trace_v"])
    np.testing.assert_array_equal(rec.trace_u, twin["trace_u"])
    return sim


@pytest.mark.parametrize("model,scheme,synapse,storage,noise", CASES)
def test_kernel_matches_numpy_twin(model, scheme, synapse, storage, noise, kernel_mode):
    n_steps = 400 if kernel_mode == "compiled" else 60
    network = small_network(model, scheme, synapse, storage, noise)
    amplitude = 12.0 if model == "izhikevich2003" else 800.0
    if model == "izhikevich2007":  # the 2007 preset's 1000 pA bias already drives it
        amplitude = 200.0
    _compare(network, n_steps, drive(network, n_steps, amplitude), kernel_mode)


@pytest.mark.parametrize("storage", ["sparse", "dense"])
def test_threaded_kernel_of_several_work_blocks_matches_numpy_twin(storage):
    """2500 neurons: three work blocks, three noise streams, three threads."""
    network = small_network("izhikevich2003", "euler", "exponential", storage, noise=3.0, n_neurons=2500,
                            probability=0.02)
    _compare(network, 120, drive(network, 120, 12.0), "compiled", threads=3)


SLOW = {"fraction": 0.5, "tau_ms": 30.0, "weight_scale": 1.5}


@pytest.mark.parametrize("scheme,synapse,storage,noise", [
    ("euler", "delta", "sparse", 0.0),
    ("euler", "exponential", "sparse", 0.0),
    ("izhikevich2003", "delta", "dense", 3.0),
    ("euler", "exponential", "dense", 3.0),
    ("izhikevich2004", "double_exponential", "sparse", 3.0),
])
def test_kernel_with_slow_synapses_matches_numpy_twin(scheme, synapse, storage, noise, kernel_mode):
    """Slow synapses on (half the excitatory synapses, 30 ms, 1.5 times the charge), with each
    fast filter, dense and sparse fast storage, with and without noise."""
    n_steps = 400 if kernel_mode == "compiled" else 60
    network = small_network("izhikevich2003", scheme, synapse, storage, noise, slow_synapses=SLOW)
    slow = network.slow_connectivity
    assert slow is not None and slow.n_synapses > 50 and not slow.is_dense
    assert network.connectivity.is_dense == (storage == "dense")
    sim = _compare(network, n_steps, drive(network, n_steps, 12.0), kernel_mode)
    assert np.abs(sim.slow_filter_state).max() > 0, "the slow synapses must carry current"


def test_threaded_kernel_with_slow_synapses_matches_numpy_twin():
    network = small_network("izhikevich2003", "euler", "delta", "sparse", noise=3.0, n_neurons=2500,
                            probability=0.02, slow_synapses=SLOW)
    _compare(network, 120, drive(network, 120, 12.0), "compiled", threads=3)


def test_dense_and_sparse_storage_agree():
    sparse = small_network(storage="sparse", synapse="exponential")
    dense = small_network(storage="dense", synapse="exponential")
    assert dense.connectivity.is_dense and not sparse.connectivity.is_dense
    ext = drive(sparse, 300, 12.0)
    results = []
    for net in (sparse, dense):
        sim = Simulation(net, ext, seed=1)
        sim.run(n_steps=300)
        results.append((sim.recorder.spike_steps, sim.recorder.spike_ids, sim.v.copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
