import h5py
import numpy as np
import pytest

from analysis import load_run
from reservoir import resolve_config
from reservoir.recording import FORMAT_VERSION, FileFormatError, RunFileRecorder
from reservoir.experiment import simulate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = resolve_config("izhikevich2003", {"duration_ms": 300, "seed": 1, "network": {"n_neurons": 200},
                                            "recording": {"trace_neurons": [0, 10], "trace_every_steps": 2}})
    simulate(cfg, out, progress=False)
    return out


def test_sonata_spike_layout(run_dir):
    with h5py.File(run_dir / "run.h5") as f:
        pop = f["spikes/reservoir"]
        assert pop.attrs["sorting"] == "by_time"
        assert pop["timestamps"].attrs["units"] == "ms"
        assert pop["timestamps"].dtype == np.float64 and pop["node_ids"].dtype == np.uint64
        t = pop["timestamps"][()]
        assert t.size > 0 and np.all(np.diff(t) >= 0) and t.max() < 300
        assert f.attrs["format_name"] == "reservoir-run" and f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["status"] == "complete" and f.attrs["seed"] == 1
        assert "n_neurons = 200" in f.attrs["config_toml"]


def test_load_run_round_trip(run_dir):
    run = load_run(run_dir)
    assert run.n_neurons == 200 and run.duration_ms == 300 and run.config["seed"] == 1
    assert run.trace_v.shape == (150, 2) and np.all(np.diff(run.trace_time_ms) == 2.0)
    assert run.spike_ids.max() < 200
    assert run.is_excitatory.sum() == 160


def test_outputs_of_a_run_folder(run_dir):
    for name in ("config.resolved.toml", "metrics.json", "figures/raster.png", "figures/traces.png"):
        assert (run_dir / name).exists(), name


def test_unsupported_version_names_the_writer(run_dir, tmp_path):
    copy = tmp_path / "run.h5"
    copy.write_bytes((run_dir / "run.h5").read_bytes())
    with h5py.File(copy, "r+") as f:
        f.attrs["format_version"] = 99
        f.attrs["writer"] = "reservoir 9.9.9"
    with pytest.raises(FileFormatError, match=r"reservoir 9\.9\.9.*version 99"):
        load_run(copy)


def test_foreign_file_is_rejected(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(FileFormatError, match="not a reservoir run file"):
        load_run(tmp_path / "other.h5")


def test_marking_the_status_keeps_the_attributes_creation_index(tmp_path):
    """The status is marked after every chunk: replacing the attributes would take a new creation
    index each time, which HDF5 refuses after 2^15 on a file that tracks creation order (a run of
    tens of simulated minutes); they are changed in place."""
    recorder = RunFileRecorder(tmp_path / "run.h5", 0.5, attributes={f"extra{k}": k for k in range(12)})

    def creation_order(name):
        return h5py.h5a.get_info(recorder.file.id, name=name.encode()).corder

    before = {name: creation_order(name) for name in ("status", "message", "steps_completed")}
    for step in range(50):
        recorder.mark("running", "", step)
    recorder.mark("failed", "a longer message than before", 50)
    assert {name: creation_order(name) for name in before} == before
    recorder.close()
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["status"] == "failed" and f.attrs["steps_completed"] == 50


def test_read_spikes_reads_only_the_window(run_dir, monkeypatch):
    """A time window of the spikes equals the whole run's spikes cut to it, and reading it reads
    the window's rows plus a few bisection probes, not the whole spike table."""
    from analysis import read_spikes

    run = load_run(run_dir)
    assert run.spike_ids.size > 500
    t_start, t_stop = 0.3 * run.duration_ms, 0.4 * run.duration_ms
    read = []
    original = h5py.Dataset.__getitem__

    def counting(self, key):
        values = original(self, key)
        if self.name.startswith("/spikes/"):
            read.append(np.asarray(values).size)
        return values

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    times, ids = read_spikes(run_dir, t_start, t_stop)
    monkeypatch.undo()
    inside = (run.spike_times_ms >= t_start) & (run.spike_times_ms < t_stop)
    np.testing.assert_array_equal(times, run.spike_times_ms[inside])
    np.testing.assert_array_equal(ids, run.spike_ids[inside])
    assert sum(read) <= 2 * inside.sum() + 2 * 64 < run.spike_ids.size
    some = [3, 7, 11]
    times, ids = read_spikes(run_dir, t_start, t_stop, neurons=some)
    keep = inside & np.isin(run.spike_ids, some)
    np.testing.assert_array_equal(ids, run.spike_ids[keep])
    all_times, _ = read_spikes(run_dir)
    np.testing.assert_array_equal(all_times, run.spike_times_ms)
