"""Exports round-trip: neo spike trains (which elephant reads) and NWB files read back by pynwb."""
import numpy as np
import pytest

from analysis import load_run
from reservoir.experiment.cli import main

neo = pytest.importorskip("neo")
pynwb = pytest.importorskip("pynwb")

TINY = ["--set", "network.n_neurons=100", "--set", 'task.blocks=[{name="b", n_trials=4}]',
        "--set", "duration_ms=4800"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    assert main(["run", *TINY, "--out", str(out), "--no-progress"]) == 0
    return load_run(out)


def test_neo_trains_hold_every_spike_at_its_time(run):
    from analysis.export import to_neo

    trains = to_neo(run)
    assert len(trains) == run.n_neurons
    assert sum(len(t) for t in trains) == run.spike_ids.size > 0
    for neuron in (0, 17, run.n_neurons - 1):
        expected = np.sort(run.spike_times_ms[run.spike_ids == neuron])
        np.testing.assert_array_equal(np.sort(trains[neuron].magnitude), expected)
        assert str(trains[neuron].units.dimensionality) == "ms"
        assert trains[neuron].annotations["neuron_id"] == neuron
    window = to_neo(run, 1000.0, 2000.0)
    inside = (run.spike_times_ms >= 1000.0) & (run.spike_times_ms < 2000.0)
    assert sum(len(t) for t in window) == inside.sum()


def test_elephant_statistics_run_on_the_neo_trains(run):
    statistics = pytest.importorskip("elephant.statistics")
    from analysis.export import to_neo

    trains = to_neo(run)
    rate = statistics.mean_firing_rate(trains[3]).rescale("Hz").magnitude
    assert rate == pytest.approx((run.spike_ids == 3).sum() / (run.duration_ms / 1000.0))


def test_nwb_file_reads_back_the_units_outputs_and_trials(run, tmp_path):
    from analysis.export import main as export_main

    path = tmp_path / "run.nwb"
    assert export_main([str(run.path), "--nwb", str(path)]) == 0
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units = nwb.units
        assert len(units) == run.n_neurons
        total = 0
        for neuron in range(run.n_neurons):
            times = np.asarray(units["spike_times"][neuron])
            expected = run.spike_times_ms[run.spike_ids == neuron] / 1000.0
            np.testing.assert_array_equal(times, np.sort(expected))
            total += times.size
        assert total == run.spike_ids.size
        assert list(units["excitatory"][:]) == list(run.is_excitatory)
        outputs = nwb.acquisition["readout_outputs"]
        np.testing.assert_array_equal(outputs.data[:], run.outputs)
        np.testing.assert_array_equal(outputs.timestamps[:], run.output_time_ms / 1000.0)
        trials = nwb.trials.to_dataframe()
        table = run.tables["trials"]
        assert len(trials) == len(table["trial"])
        np.testing.assert_array_equal(trials["start_time"].to_numpy(), table["onset_step"] * run.dt_ms / 1000.0)
        np.testing.assert_array_equal(trials["cue"].to_numpy(), table["cue"])
    with pytest.raises(SystemExit):  # refuses to overwrite
        export_main([str(run.path), "--nwb", str(path)])
