"""The compiled kernel agrees bit for bit with its NumPy twin (tests/naive.py)."""
import itertools

import numpy as np
import pytest

from reservoir import Simulation
from reservoir.fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, fill_standard_normal, seed_state
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


def _compare(network, n_steps, ext, kernel_mode, chunk_steps=37):
    noise = None
    if network.has_noise:
        # the engine's noise stream (xoshiro256++ ziggurat, tested on its own in test_fastrng.py)
        noise = np.empty((n_steps, network.n_neurons))
        fill_standard_normal(seed_state(stream_seed(11, "noise")), noise, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)
    sim = Simulation(network, ext, seed=11, trace_ids=[0, 5], trace_every_steps=3, chunk_steps=chunk_steps)
    sim.run(n_steps=n_steps)
    twin = naive_simulate(network, n_steps, ext, noise, trace_ids=[0, 5], trace_every=3)
    rec = sim.recorder
    assert rec.spike_ids.size > 10, "the test network must spike to test anything"
    np.testing.assert_array_equal(rec.spike_steps, twin["spike_steps"])
    np.testing.assert_array_equal(rec.spike_ids, twin["spike_ids"])
    for name in ("v", "u", "filter_state", "filter_aux"):
        np.testing.assert_array_equal(getattr(sim, name), twin[name], err_msg=name)
    np.testing.assert_array_equal(rec.trace_steps, twin["trace_steps"])
    np.testing.assert_array_equal(rec.trace_v, twin["trace_v"])
    np.testing.assert_array_equal(rec.trace_u, twin["trace_u"])


@pytest.mark.parametrize("model,scheme,synapse,storage,noise", CASES)
def test_kernel_matches_numpy_twin(model, scheme, synapse, storage, noise, kernel_mode):
    n_steps = 400 if kernel_mode == "compiled" else 60
    network = small_network(model, scheme, synapse, storage, noise)
    amplitude = 12.0 if model == "izhikevich2003" else 800.0
    if model == "izhikevich2007":  # the 2007 preset's 1000 pA bias already drives it
        amplitude = 200.0
    _compare(network, n_steps, drive(network, n_steps, amplitude), kernel_mode)


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
