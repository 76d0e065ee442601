import h5py
import numpy as np
import pytest

from analysis import load_run
from reservoir import resolve_config
from reservoir.recording import FORMAT_VERSION, FileFormatError
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
