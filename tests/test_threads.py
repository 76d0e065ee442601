"""The multi-threaded kernel: any thread count gives the single-threaded run, bit for bit.

The kernel's threads own whole work blocks of neurons (reservoir/parallel.py); noise streams
and the readouts' partial sums are per block, so nothing may depend on the thread count. These
tests run networks of several blocks with 1, 2 and 3 threads and compare everything the run
produces, and check the pieces: the barrier, the split of the work, the thread-count rules,
checkpoints across thread counts, and a failing thread that must not leave the others waiting.
"""
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from reservoir import Simulation
from reservoir.config import ConfigError, resolve_config
from reservoir.experiment.cli import build_parser
from reservoir.fastrng import block_states, jump, next_uint64, seed_state
from reservoir.parallel import (MIN_NEURONS_PER_THREAD, SYNC_LENGTH, WORK_BLOCK_NEURONS, available_cores, barrier,
                                resolve_threads, thread_bounds)
from reservoir.readouts import Readouts, ReadoutsConfig, Teacher
from reservoir.simulation import NumericalInstabilityError

from .helpers import drive, small_network

N_NEURONS = 2500  # three work blocks (1024, 1024, 452)

GROUPS = [
    {"name": "when", "n_units": 1,
     "three_factor": {"learning_rate": 0.002, "centering": "running_mean", "normalization": "variance",
                      "tau_mean_ms": 20.0, "normalization_floor": 0.01, "bias_learning_rate": 0.2,
                      "prediction_lead_ms": 2.0, "tau_eligibility_ms": 5.0}},
    {"name": "what", "n_units": 2, "rectify": True, "initial_weight_std": 0.01,
     "three_factor": {"learning_rate": 0.05, "tau_eligibility_ms": 50, "post_factor": "output",
                      "weight_min": -0.05, "weight_max": 0.05, "weight_decay_per_ms": 0.001}},
    {"name": "surprised", "n_units": 1, "three_factor": {"learning_rate": 0.05, "gate": "surprise",
                                                         "surprise_threshold": 0.2}},
    {"name": "winner", "n_units": 2, "initial_weight_std": 0.01,
     "three_factor": {"learning_rate": 0.05, "gate": "selective", "centering": "running_mean"}},
    {"name": "replayed", "n_units": 1,  # stores its windows (the kernel's storage, split over the threads)
     "three_factor": {"learning_rate": 0.05, "tau_eligibility_ms": 30.0, "consolidation": {"mode": "replay"}}},
]
RLS_GROUP = {"name": "force", "n_units": 1, "rule": "rls", "rls": {"alpha": 2.0, "learn_every_steps": 3}}


def _network(storage="sparse", synapse="exponential", slow_synapses=None):
    return small_network("izhikevich2003", "euler", synapse, storage, noise=3.0, n_neurons=N_NEURONS,
                         probability=0.02, slow_synapses=slow_synapses)


def _run(network, threads, n_steps=150, groups=None, chunk_steps=41, feedback=False):
    """Everything a run produces, as a dict of arrays."""
    readouts = teacher = None
    if groups is not None:
        if feedback:  # the first group's outputs drive the network back
            groups = [dict(groups[0], feedback_gain=0.5), *groups[1:]]
        config = ReadoutsConfig.model_validate({
            "groups": groups, "store_capacity_steps": 200,
            "traces": [{"kind": "exponential", "tau_ms": 20.0}, {"kind": "double_exponential"}]})
        readouts = Readouts(config, network.n_neurons, network.dt_ms, seed=2)
        assert readouts.has_feedback == feedback
        rng = np.random.default_rng(0)
        teacher = Teacher(rng.random((n_steps, readouts.n_units)),
                          gates=(rng.random((n_steps, readouts.n_units)) < 0.8),
                          store=np.arange(n_steps) % 3 == 0)
    sim = Simulation(network, drive(network, n_steps, 12.0), seed=4, trace_ids=[3, 1500, 2400], trace_every_steps=2,
                     chunk_steps=chunk_steps, readouts=readouts, teacher=teacher, threads=threads)
    assert sim.threads == threads
    sim.run(n_steps=n_steps)
    rec = sim.recorder
    out = {"spike_steps": rec.spike_steps, "spike_ids": rec.spike_ids, "trace_v": rec.trace_v, "trace_u": rec.trace_u,
           "v": sim.v.copy(), "u": sim.u.copy(), "filter": sim.filter_state.copy(), "noise": sim.noise_state.copy(),
           "slow_filter": sim.slow_filter_state.copy()}
    if readouts is not None:
        out.update({f"readouts/{name}": np.array(values, copy=True) for name, values in readouts.get_state().items()})
        out["outputs"] = rec.outputs
    sim.close()
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("storage,synapse", [("sparse", "exponential"), ("dense", "double_exponential"),
                                             ("sparse", "delta")])
def test_network_is_the_same_for_every_thread_count(storage, synapse):
    network = _network(storage, synapse)
    one = _run(network, 1)
    assert one["spike_ids"].size > 500
    assert len(set(one["spike_ids"] // WORK_BLOCK_NEURONS)) == 3, "every block must spike"
    for threads in (2, 3):
        _assert_same(one, _run(network, threads))


@pytest.mark.parametrize("storage,synapse", [("sparse", "delta"), ("dense", "exponential")])
def test_slow_synapses_are_the_same_for_every_thread_count(storage, synapse):
    """Slow synapses (their own CSR, always sparse, cut by their own row split) beside a sparse
    and a dense fast population."""
    network = _network(storage, synapse, slow_synapses={"fraction": 0.5, "tau_ms": 40.0, "weight_scale": 2.0})
    assert network.slow_connectivity.n_synapses > 10_000 and network.connectivity.is_dense == (storage == "dense")
    one = _run(network, 1)
    assert one["spike_ids"].size > 500 and np.abs(one["slow_filter"]).max() > 0
    assert len(set(one["spike_ids"] // WORK_BLOCK_NEURONS)) == 3, "every block must spike"
    for threads in (2, 3):
        _assert_same(one, _run(network, threads))


@pytest.mark.parametrize("groups,feedback", [(GROUPS, False), (GROUPS, True), (GROUPS + [RLS_GROUP], False)])
def test_learning_readouts_are_the_same_for_every_thread_count(groups, feedback):
    """Three-factor units of every kind (split over the threads), with feedback, and with an RLS
    unit (the readouts then run on one thread while the network runs on all)."""
    network = _network()
    one = _run(network, 1, groups=groups, feedback=feedback)
    assert np.abs(one["readouts/weights"]).max() > 0 and np.ptp(one["outputs"]) > 0
    assert np.abs(one["readouts/store_stored_features"]).max() > 0
    _assert_same(one, _run(network, 2, groups=groups, feedback=feedback))
    _assert_same(one, _run(network, 3, groups=groups, feedback=feedback, chunk_steps=150))


def test_blow_up_is_reported_alike_by_every_thread_count():
    network = _network()
    network.neurons.v_peak_mV[1700] = np.inf  # never resets: its v runs away to inf (in the second work block)
    network.bias[1700] = 20.0
    reports = []
    for threads in (1, 2):
        sim = Simulation(network, seed=1, threads=threads)
        with pytest.raises(NumericalInstabilityError) as info:
            sim.run(n_steps=1000)
        reports.append((info.value.neuron, info.value.step, str(info.value)))
        sim.close()
    assert reports[0] == reports[1] and reports[0][0] == 1700 and reports[0][1] < 1000


def test_checkpoint_moves_between_thread_counts(tmp_path):
    network = _network()
    whole = _run(network, 1, n_steps=120)
    first = Simulation(network, drive(network, 120, 12.0), seed=4, trace_ids=[3, 1500, 2400], trace_every_steps=2,
                       chunk_steps=41, threads=3)
    first.run(n_steps=60)
    first.save_checkpoint(tmp_path / "c.h5")
    second = Simulation(network, drive(network, 120, 12.0), seed=4, trace_ids=[3, 1500, 2400], trace_every_steps=2,
                        chunk_steps=41, threads=1)
    second.load_checkpoint(tmp_path / "c.h5")
    second.run(n_steps=60)
    np.testing.assert_array_equal(second.v, whole["v"])
    np.testing.assert_array_equal(second.noise_state, whole["noise"])
    np.testing.assert_array_equal(np.concatenate([first.recorder.spike_ids, second.recorder.spike_ids]),
                                  whole["spike_ids"])


def test_a_one_generator_checkpoint_is_refused_for_a_network_of_several_blocks(tmp_path):
    import h5py

    from reservoir.recording import FileFormatError

    network = _network()
    sim = Simulation(network, seed=4)
    sim.save_checkpoint(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "a") as f:  # one generator (as format 4 held)
        del f["state/noise_state"]
        f["state/noise_state"] = seed_state(np.random.SeedSequence(1))
    with pytest.raises(FileFormatError, match="1 noise generator.*3 .*rerun from the start"):
        Simulation(network, seed=4).load_checkpoint(tmp_path / "c.h5")


def test_block_generators_start_at_the_seed_and_jump_apart():
    sequence = np.random.SeedSequence(9)
    states = block_states(sequence, 3)
    np.testing.assert_array_equal(states[0], seed_state(np.random.SeedSequence(9)))
    np.testing.assert_array_equal(states[1], jump(states[0]))
    np.testing.assert_array_equal(states[2], jump(states[1]))
    # the jump is a polynomial in the generator's transition: it commutes with a draw
    advanced = states[0].copy()
    next_uint64(advanced)
    after_jump = states[1].copy()
    next_uint64(after_jump)
    np.testing.assert_array_equal(jump(advanced), after_jump)
    assert len({tuple(row) for row in states}) == 3


def test_barrier_orders_the_threads_writes():
    from numba import njit

    @njit(nogil=True)
    def worker(values, sync, thread, n_threads, n_steps):
        n = values.shape[0]
        lo, hi = n * thread // n_threads, n * (thread + 1) // n_threads
        generation = 0
        for step in range(n_steps):
            for i in range(lo, hi):
                values[i] += 1.0
            generation = barrier(sync, n_threads, generation)
            for i in range(n):  # every thread sees every other thread's writes of this step
                if values[i] != step + 1.0:
                    return -1
            generation = barrier(sync, n_threads, generation)
        return generation

    for n_threads in (1, 2, 3):
        values, sync = np.zeros(999), np.zeros(SYNC_LENGTH, dtype=np.int64)
        results = [None] * n_threads

        def call(t):
            results[t] = worker(values, sync, t, n_threads, 3000)

        others = [threading.Thread(target=call, args=(t,)) for t in range(1, n_threads)]
        for thread in others:
            thread.start()
        call(0)
        for thread in others:
            thread.join()
        assert results == [6000] * n_threads


def test_thread_bounds_are_whole_blocks():
    np.testing.assert_array_equal(thread_bounds(2500, 1), [0, 2500])
    np.testing.assert_array_equal(thread_bounds(2500, 2), [0, 1024, 2500])
    np.testing.assert_array_equal(thread_bounds(2500, 3), [0, 1024, 2048, 2500])
    np.testing.assert_array_equal(thread_bounds(10_000, 2), [0, 5120, 10_000])
    with pytest.raises(ValueError, match=r"threads must lie in \[1, 3\] for 2500 neurons"):
        thread_bounds(2500, 4)


def test_thread_count_rules(monkeypatch):
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert resolve_threads("auto", 1000) == 1
    assert resolve_threads("auto", 2 * MIN_NEURONS_PER_THREAD) == min(2, available_cores())
    assert resolve_threads(2, 2500) == 2
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ValueError, match="threads must be a positive integer or 'auto'"):
            resolve_threads(bad, 2500)
    with pytest.raises(ConfigError, match="threads: 3 threads for 2000 neurons; at most 2"):
        resolve_config("izhikevich2003", {"network": {"n_neurons": 2000}, "threads": 3})
    with pytest.raises(ConfigError, match="threads"):
        resolve_config("izhikevich2003", {"threads": 0})
    assert resolve_config("izhikevich2003", {}).threads == "auto"
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")  # as reservoir sweep sets it in each worker
    assert available_cores() == 1 and resolve_threads("auto", 20_000) == 1


def test_threads_flag():
    parser = build_parser()
    assert parser.parse_args(["run", "--threads", "2"]).threads == 2
    assert parser.parse_args(["simulate", "--out", "x", "--threads", "auto"]).threads == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--threads", "0"])


def test_a_failing_thread_does_not_leave_the_others_waiting():
    """A pool thread that fails before it reaches the kernel's barriers: the calling thread must
    return and raise its error (run in a child process, so a hang fails by timeout)."""
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        import reservoir.simulation as simulation
        from tests.helpers import small_network
        real = simulation.simulate_chunk
        def failing(thread, *args):
            if thread == 1:
                raise MemoryError("thread 1 failed")
            return real(thread, *args)
        net = small_network(n_neurons=2500, probability=0.02, noise=3.0)
        sim = simulation.Simulation(net, seed=1, threads=2)
        sim.run(n_steps=20)  # compiled and warm
        simulation.simulate_chunk = failing
        try:
            sim.run(n_steps=20)
        except MemoryError as error:
            print("raised:", error)
    """) % str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "raised: thread 1 failed" in result.stdout
