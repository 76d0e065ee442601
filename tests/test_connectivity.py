import numpy as np
import pytest

from reservoir import build_network, resolve_config
from reservoir import connectivity as conn
from reservoir.rng import stream


def net(overrides, seed=1, preset="izhikevich2003"):
    cfg = resolve_config(preset, overrides)
    return build_network(cfg.network, cfg.integration, seed)


def test_netm_weights_match_izhikevich_2003():
    n = net({})
    w = n.connectivity.to_dense()  # (pre, post)
    exc = n.neurons.is_excitatory
    assert n.connectivity.is_dense and n.connectivity.n_synapses == 1000 * 1000  # all-to-all, self included
    assert exc.sum() == 800
    assert np.all((w[exc] >= 0) & (w[exc] <= 0.5)) and np.all((w[~exc] <= 0) & (w[~exc] >= -1))
    assert abs(w[exc].mean() - 0.25) < 0.005 and abs(w[~exc].mean() + 0.5) < 0.01  # U(0,1) means


def test_bernoulli_density_and_no_self_connections():
    n = net({"network": {"n_neurons": 2000, "connectivity": {
        "rule": "bernoulli", "probability": 0.05, "allow_self_connections": False}}})
    c = n.connectivity
    pre, post = c.pre_post_pairs()
    expected = 0.05 * 2000 * 1999
    assert abs(c.n_synapses - expected) < 5 * np.sqrt(expected * 0.95)  # 5 binomial standard deviations
    assert not np.any(pre == post)
    for j in (0, 17, 1999):  # rows sorted, no duplicates
        row = c.indices[c.indptr[j]:c.indptr[j + 1]]
        assert np.all(np.diff(row) > 0)


def test_netm_scheme_rescales_to_expected_in_degree():
    n = net({"network": {"n_neurons": 2000, "connectivity": {
        "rule": "bernoulli", "probability": 0.1, "allow_self_connections": False}}})
    pre, _ = n.connectivity.pre_post_pairs()
    exc_w = n.connectivity.weights[n.neurons.is_excitatory[pre]]
    # U(0, 0.5) scaled by 1000 / (0.1 * 1999): mean 0.25 * 5.0025
    assert abs(exc_w.mean() - 0.25 * 1000 / (0.1 * 1999)) < 0.02


def test_fixed_in_degree_is_exact():
    n = net({"network": {"n_neurons": 300, "connectivity": {"rule": "fixed_in_degree", "in_degree": 25}}})
    _, post = n.connectivity.pre_post_pairs()
    assert np.all(np.bincount(post, minlength=300) == 25)


def test_nicola_clopath_rows_are_balanced_and_scaled():
    n = net({"network": {"n_neurons": 1000}}, preset="nicola_clopath2017")
    pre, post = n.connectivity.pre_post_pairs()
    w = n.connectivity.weights
    row_means = np.bincount(post, weights=w, minlength=1000) / np.bincount(post, minlength=1000)
    assert np.max(np.abs(row_means)) < 1e-9
    expected_sd = 5000 / (0.1 * np.sqrt(1000))
    assert abs(w.std() / expected_sd - 1) < 0.03
    assert (w > 0).any() and (w < 0).any()  # no Dale's law in this scheme


def test_connectivity_is_reproducible_from_the_seed():
    overrides = {"network": {"n_neurons": 400, "connectivity": {"rule": "bernoulli", "probability": 0.1}}}
    a, b, c = net(overrides, 5), net(overrides, 5), net(overrides, 6)
    np.testing.assert_array_equal(a.connectivity.indices, b.connectivity.indices)
    np.testing.assert_array_equal(a.connectivity.weights, b.connectivity.weights)
    np.testing.assert_array_equal(a.neurons.c, b.neurons.c)
    assert a.connectivity.n_synapses != c.connectivity.n_synapses or not np.array_equal(
        a.connectivity.indices, c.connectivity.indices)


def test_auto_storage_chooses_dense_for_dense_networks():
    sparse = net({"network": {"n_neurons": 500, "connectivity": {"rule": "bernoulli", "probability": 0.05}}})
    dense = net({"network": {"n_neurons": 500, "connectivity": {"rule": "bernoulli", "probability": 0.5}}})
    assert not sparse.connectivity.is_dense and dense.connectivity.is_dense
    np.testing.assert_array_equal(dense.connectivity.to_dense(), dense.connectivity.to_scipy().toarray())


def test_bad_rules_and_duplicates_are_rejected():
    rng = stream(0, "connectivity")
    with pytest.raises(ValueError, match="connectivity rule"):
        conn.sample_pairs("ring", 10, rng)
    with pytest.raises(ValueError, match="probability"):
        conn.sample_pairs("bernoulli", 10, rng, probability=0.0)
    with pytest.raises(ValueError, match="duplicate"):
        conn.from_pre_post(3, np.array([0, 0]), np.array([1, 1]), np.array([1.0, 2.0]))
