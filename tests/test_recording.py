import h5py
import numpy as np
import pytest

from analysis import load_run, read_outputs, read_spikes, read_traces, read_weight_snapshots
from reservoir import recording, resolve_config
from reservoir.experiment import simulate
from reservoir.experiment.cli import main
from reservoir.recording import FORMAT_VERSION, FileFormatError, RunFileRecorder


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
        assert pop["timestamps"].dtype == np.float64 and pop["node_ids"].dtype == np.uint32
        assert FORMAT_VERSION == 2
        for name in ("timestamps", "node_ids"):  # standard filters only: gzip after shuffle
            assert pop[name].compression == "gzip" and pop[name].shuffle and pop[name].compression_opts == 1
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


# ---------------------------------------------------------------- format 2: compression, lazy reads

# a what/when run with readouts, snapshots and traces; several HDF5 chunks of every stream
SMALL_EXPERIMENT = ["--set", "network.n_neurons=100", "--set", 'task.blocks=[{name="b", n_trials=4}]',
                    "--set", "duration_ms=4800", "--set", "readouts.snapshot_every_ms=600",
                    "--set", "recording.trace_neurons=[2, 5, 40]"]


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment") / "run"
    assert main(["run", *SMALL_EXPERIMENT, "--out", str(out), "--no-progress"]) == 0
    return out


def _rows_read(monkeypatch, prefix: str) -> list:
    """Count the elements every read of a dataset under ``prefix`` returns."""
    read = []
    original = h5py.Dataset.__getitem__

    def counting(self, key):
        values = original(self, key)
        if self.name.startswith(prefix):
            read.append((self.name, np.asarray(values).size))
        return values

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    return read


def test_read_outputs_traces_and_snapshots_equal_the_whole_run_cut(experiment_dir, monkeypatch):
    run = load_run(experiment_dir)
    assert run.outputs.shape[1] == 3 and run.trace_v.shape[1] == 3
    t_start, t_stop = 1000.0, 2000.0
    read = _rows_read(monkeypatch, "/readouts/")
    time_ms, outputs = read_outputs(experiment_dir, t_start, t_stop)
    monkeypatch.undo()
    inside = (run.output_time_ms >= t_start) & (run.output_time_ms < t_stop)
    np.testing.assert_array_equal(time_ms, run.output_time_ms[inside])
    np.testing.assert_array_equal(outputs, run.outputs[inside])
    # the window's rows (time and outputs) plus the bisection's single-element probes
    assert sum(n for _, n in read) <= 4 * inside.sum() + 2 * 64 < run.outputs.size
    _, what = read_outputs(experiment_dir, t_start, t_stop, columns="what")
    np.testing.assert_array_equal(what, run.outputs[inside][:, 1:3])
    _, picked = read_outputs(experiment_dir, t_start, t_stop, columns=["what[1]", 0])
    np.testing.assert_array_equal(picked, run.outputs[inside][:, [2, 0]])
    with pytest.raises(ValueError, match="no readout unit"):
        read_outputs(experiment_dir, columns=["nope"])
    all_time, all_outputs = read_outputs(experiment_dir)
    np.testing.assert_array_equal(all_outputs, run.outputs)

    read = _rows_read(monkeypatch, "/traces/")
    time_ms, v, u = read_traces(experiment_dir, t_start, t_stop, neurons=[40, 2])
    monkeypatch.undo()
    inside = (run.trace_time_ms >= t_start) & (run.trace_time_ms < t_stop)
    np.testing.assert_array_equal(time_ms, run.trace_time_ms[inside])
    np.testing.assert_array_equal(v, run.trace_v[inside][:, [2, 0]])
    np.testing.assert_array_equal(u, run.trace_u[inside][:, [2, 0]])
    assert sum(n for name, n in read if name != "/traces/node_ids") <= 7 * inside.sum() + 2 * 64 < run.trace_v.size
    with pytest.raises(ValueError, match="not traced"):
        read_traces(experiment_dir, neurons=[3])

    everything = run.weight_snapshots()
    assert everything.shape[0] == 9 and run.snapshot_time_ms.size == 9
    read = _rows_read(monkeypatch, "/readouts/weights")
    time_ms, weights = read_weight_snapshots(experiment_dir, [7, 2], units="when")
    monkeypatch.undo()
    np.testing.assert_array_equal(time_ms, run.snapshot_time_ms[[7, 2]])
    np.testing.assert_array_equal(weights, everything[[7, 2]][:, :1])
    assert sum(n for _, n in read) == 2 * everything[0].size
    time_ms, weights = read_weight_snapshots(experiment_dir, slice(3, None, 2))
    np.testing.assert_array_equal(weights, everything[3::2])
    np.testing.assert_array_equal(read_weight_snapshots(experiment_dir)[1], everything)
    np.testing.assert_array_equal(read_weight_snapshots(experiment_dir, -1)[1], everything[-1:])


def _chunks_outside(dataset: h5py.Dataset, rows: slice) -> list:
    """(file offset, size) of the chunks of ``dataset`` holding none of ``rows``."""
    outside = []
    for i in range(dataset.id.get_num_chunks()):
        info = dataset.id.get_chunk_info(i)
        first = info.chunk_offset[0]
        if first + dataset.chunks[0] <= rows.start or first >= rows.stop:
            outside.append((info.byte_offset, info.size))
    return outside


def _long_recording(path) -> None:
    """A complete run file written by the recorder, of synthetic streams long enough for several
    HDF5 chunks each: 12 s at 0.5 ms, 120,000 spikes, 3 readout units, 2 traced neurons, 13 snapshots."""
    from types import SimpleNamespace

    readouts = SimpleNamespace(unit_names=["when[0]", "what[0]", "what[1]"], n_units=3, n_features=40,
                               group_slices={"when": slice(0, 1), "what": slice(1, 3)},
                               config=SimpleNamespace(output_every_steps=2), encoders=np.zeros((0, 3)))
    recorder = RunFileRecorder(path, 0.5, trace_ids=np.array([1, 4]), readouts=readouts)
    rng = np.random.default_rng(1)
    for chunk in range(120):
        steps = np.arange(chunk * 200, chunk * 200 + 200)
        if chunk % 10 == 0:
            recorder.write_snapshot(int(steps[0]), rng.normal(size=(3, 40)))
        recorder.write_spikes(np.repeat(steps, 5), rng.integers(0, 1000, 1000))
        recorder.write_traces(steps, rng.normal(size=(200, 2)), rng.normal(size=(200, 2)))
        recorder.write_outputs(steps[::2], rng.normal(size=(100, 3)))
        recorder.mark("running", "", steps[-1] + 1)
    recorder.write_snapshot(24000, rng.normal(size=(3, 40)))
    recorder.mark("complete", "", 24000)
    recorder.close()


def test_a_window_reads_no_chunk_outside_it(tmp_path):
    """Every chunk of the spike ids, outputs, traces and weights outside a 1 s window is
    overwritten with garbage: the window still reads back exactly, reading everything fails.
    (The time columns stay whole: the bisection that finds the window reads some of them.)"""
    path = tmp_path / "run.h5"
    _long_recording(path)
    run = load_run(path)
    everything = run.weight_snapshots()
    t_start, t_stop, snapshot = 5000.0, 6000.0, 4
    garbage = {}
    with h5py.File(path, "r") as f:
        for name, time_name in (("spikes/reservoir/node_ids", "spikes/reservoir/timestamps"),
                                ("readouts/output", "readouts/output_time_ms"),
                                ("traces/v", "traces/time_ms"), ("traces/u", "traces/time_ms")):
            assert f[name].compression == "gzip"
            times = f[time_name][()]
            rows = slice(int(np.searchsorted(times, t_start)), int(np.searchsorted(times, t_stop)))
            garbage[name] = _chunks_outside(f[name], rows)
        garbage["weights"] = _chunks_outside(f["readouts/weights"], slice(snapshot, snapshot + 1))
    assert all(len(chunks) >= 2 for chunks in garbage.values()), garbage
    with open(path, "r+b") as raw:
        for offset, size in (chunk for chunks in garbage.values() for chunk in chunks):
            raw.seek(offset)
            raw.write(b"\xa5" * size)
    times, ids = read_spikes(path, t_start, t_stop)
    inside = (run.spike_times_ms >= t_start) & (run.spike_times_ms < t_stop)
    np.testing.assert_array_equal(times, run.spike_times_ms[inside])
    np.testing.assert_array_equal(ids, run.spike_ids[inside])
    time_ms, outputs = read_outputs(path, t_start, t_stop)
    np.testing.assert_array_equal(outputs, run.outputs[(run.output_time_ms >= t_start) & (run.output_time_ms < t_stop)])
    time_ms, v, u = read_traces(path, t_start, t_stop)
    traced = (run.trace_time_ms >= t_start) & (run.trace_time_ms < t_stop)
    np.testing.assert_array_equal(v, run.trace_v[traced])
    np.testing.assert_array_equal(u, run.trace_u[traced])
    np.testing.assert_array_equal(read_weight_snapshots(path, [snapshot])[1], everything[[snapshot]])
    with pytest.raises(FileFormatError, match="damaged"):
        load_run(path)
    for read in (read_weight_snapshots, read_outputs, read_spikes):
        with pytest.raises(FileFormatError, match="damaged"):
            read(path)


def _as_format_1(source, target) -> None:
    """A copy of a format-2 run file in format 1: uncompressed datasets, uint64 spike ids."""
    with h5py.File(source, "r") as src, h5py.File(target, "w", track_order=True) as dst:
        def copy(name, item):
            if isinstance(item, h5py.Group):
                dst.require_group(name).attrs.update(item.attrs)
                return
            values = item[()]
            if name.endswith("spikes/reservoir/node_ids"):
                values = values.astype(np.uint64)
            options = dict(chunks=item.chunks, maxshape=item.maxshape) if item.chunks else {}
            dst.create_dataset(name, data=values, track_times=False, **options).attrs.update(item.attrs)
        dst.attrs.update(src.attrs)
        dst.attrs["format_version"] = 1
        src.visititems(copy)


def test_format_1_files_still_load_with_the_same_dtypes(experiment_dir, tmp_path):
    old = tmp_path / "v1.h5"
    _as_format_1(experiment_dir / "run.h5", old)
    with h5py.File(old, "r") as f:
        assert f["spikes/reservoir/node_ids"].dtype == np.uint64 and f["readouts/output"].compression is None
    new, before = load_run(experiment_dir), load_run(old)
    assert before.format_version == 1 and new.format_version == 2
    assert before.spike_ids.dtype == new.spike_ids.dtype == np.int64
    for name in ("spike_times_ms", "spike_ids", "outputs", "trace_v", "trace_u", "output_time_ms"):
        np.testing.assert_array_equal(getattr(before, name), getattr(new, name))
    np.testing.assert_array_equal(before.weight_snapshots(), new.weight_snapshots())
    for path in (old, experiment_dir):
        times, ids = read_spikes(path, 1000.0, 1500.0)
        assert ids.dtype == np.int64 and times.dtype == np.float64
    np.testing.assert_array_equal(read_spikes(old, 1000.0, 1500.0)[1], read_spikes(experiment_dir, 1000.0, 1500.0)[1])
    np.testing.assert_array_equal(read_outputs(old, 500.0, 900.0)[1], read_outputs(experiment_dir, 500.0, 900.0)[1])
    # a format-1 file being resumed keeps its layout (uint64 ids, uncompressed chunks)
    counts = {"spikes": 100, "traces": 10, "outputs": 5, "snapshots": 1}
    recorder = RunFileRecorder(old, before.dt_ms, resume=counts)
    recorder.write_spikes(np.array([3, 3, 4]), np.array([1, 7, 2], dtype=np.int32))
    recorder.close()
    with h5py.File(old, "r") as f:
        ids = f["spikes/reservoir/node_ids"]
        assert ids.dtype == np.uint64 and ids.shape == (103,) and list(ids[100:]) == [1, 7, 2]
        assert f.attrs["format_version"] == 1


def test_the_room_asked_for_bounds_what_a_flush_adds(tmp_path, monkeypatch):
    """The disk-full pre-check asks for an upper bound of what the writes until the next flush
    add to the file (HDF5 allocates the chunks when it flushes them), whatever the data."""
    asked = []
    monkeypatch.setattr(recording, "ensure_room", lambda path, needed: asked.append(needed))
    path = tmp_path / "run.h5"
    recorder = RunFileRecorder(path, 0.5, trace_ids=np.arange(7))
    rng = np.random.default_rng(3)
    size, step, grown = path.stat().st_size, 0, 0
    for _ in range(80):
        n = int(rng.integers(0, 3000))
        recorder.write_spikes(np.sort(rng.integers(step, step + 200, n)), rng.integers(0, 2**31, n))
        recorder.write_traces(np.arange(step, step + 200), rng.normal(size=(200, 7)), rng.normal(size=(200, 7)))
        step += 200
        bound = asked[-1] + recording.METADATA_ROOM_BYTES
        recorder.mark("running", "", step)
        new_size = path.stat().st_size
        assert new_size - size <= bound
        grown += new_size > size
        size = new_size
    recorder.close()
    assert grown > 20


def _datasets(path) -> dict:
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.__setitem__(name, (item.dtype, item[()]))
                     if isinstance(item, h5py.Dataset) else None)
    return found


def _record_chunks(recorder: RunFileRecorder, chunks) -> None:
    for chunk in chunks:  # the data of each chunk depends on the chunk alone
        rng = np.random.default_rng(chunk)
        steps = np.arange(chunk * 200, chunk * 200 + 200)
        recorder.write_spikes(np.repeat(steps, 5), rng.integers(0, 1000, 1000))
        recorder.write_traces(steps, rng.normal(size=(200, 2)), rng.normal(size=(200, 2)))
        recorder.mark("running", "", steps[-1] + 1)


def _new_recorder(path, compress: bool = True) -> RunFileRecorder:
    recorder = RunFileRecorder(path, 0.5, trace_ids=np.array([1, 4]), attributes={"seed": 5, "preset": ""},
                               compress=compress)
    recorder.write_table("trials", {"onset_ms": np.arange(1000) * 1200.0, "test": np.arange(1000) % 7 == 0})
    return recorder


def _small_recording(path, status: str, compress: bool = True) -> RunFileRecorder:
    recorder = _new_recorder(path, compress)
    _record_chunks(recorder, range(30))
    recorder.mark(status, "", 6000)
    return recorder


def test_a_complete_run_file_is_compressed_losslessly_and_deterministically(tmp_path):
    """Marked complete and closed, the file is rewritten compressed: the same datasets (values,
    dtypes), attributes in the same order; equal contents give equal bytes; a failed (or
    interrupted) run's file stays as written, chunks in place."""
    _small_recording(tmp_path / "raw.h5", "complete", compress=False).close()
    _small_recording(tmp_path / "a.h5", "complete").close()
    _small_recording(tmp_path / "b.h5", "complete").close()
    _small_recording(tmp_path / "failed.h5", "failed").close()
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    assert (tmp_path / "a.h5").stat().st_size < (tmp_path / "raw.h5").stat().st_size / 3
    raw, compressed = _datasets(tmp_path / "raw.h5"), _datasets(tmp_path / "a.h5")
    assert raw.keys() == compressed.keys()
    for name, (dtype, values) in raw.items():
        assert compressed[name][0] == dtype, name
        np.testing.assert_array_equal(compressed[name][1], values, err_msg=name)
    with h5py.File(tmp_path / "raw.h5", "r") as f, h5py.File(tmp_path / "a.h5", "r") as g:
        assert list(f.attrs) == list(g.attrs) and g.attrs["status"] == "complete"
        for name in f.attrs:
            assert h5py.h5a.open(g.id, name.encode()).dtype == h5py.h5a.open(f.id, name.encode()).dtype, name
        assert f["traces/v"].compression is None and g["traces/v"].compression == "gzip"
        assert g["traces/v"].chunks == f["traces/v"].chunks and g["traces/v"].maxshape == (None, 2)
        assert g["spikes/reservoir/timestamps"].attrs["units"] == "ms"
        # written whole: compressed from 4 KiB on
        assert f["task/trials/onset_ms"].chunks is None and g["task/trials/onset_ms"].compression == "gzip"
        assert g["task/trials/test"].chunks is None and g["traces/node_ids"].chunks is None
    with h5py.File(tmp_path / "failed.h5", "r") as f:
        assert f["spikes/reservoir/node_ids"].compression is None
    # compressing again, or compressing the file as written, gives the same bytes
    recording.compress_run_file(tmp_path / "b.h5")
    recording.compress_run_file(tmp_path / "raw.h5")
    assert (tmp_path / "b.h5").read_bytes() == (tmp_path / "a.h5").read_bytes() == (tmp_path / "raw.h5").read_bytes()


def test_a_resumed_recording_gives_the_uninterrupted_files_bytes(tmp_path):
    """Cut back to a checkpoint's counts, continued and completed, the recording is compressed
    into the same bytes as the uninterrupted one (the status is changed in place on reopening,
    so even the attributes' order is the same)."""
    _small_recording(tmp_path / "straight.h5", "complete").close()
    recorder = _new_recorder(tmp_path / "resumed.h5")
    _record_chunks(recorder, range(20))
    counts = recorder.counts()
    _record_chunks(recorder, range(20, 26))  # written after the checkpoint, then lost
    recorder.close()  # as a kill leaves it: status running, uncompressed
    with h5py.File(tmp_path / "resumed.h5", "r") as f:
        assert f.attrs["status"] == "running" and f["traces/v"].compression is None
    recorder = RunFileRecorder(tmp_path / "resumed.h5", 0.5, resume=counts)
    _record_chunks(recorder, range(20, 30))
    recorder.mark("complete", "", 6000)
    recorder.close()
    assert (tmp_path / "resumed.h5").read_bytes() == (tmp_path / "straight.h5").read_bytes()


def test_compression_that_cannot_finish_leaves_the_file_whole(tmp_path, monkeypatch):
    """No room for the compressed copy: a warning, the complete file stays uncompressed. A
    failure while copying (a kill, ctrl-C) leaves the original and no temporary file."""
    recorder = _small_recording(tmp_path / "full.h5", "complete")
    monkeypatch.setattr(recording, "writable_room_bytes", lambda path: 1000)
    with pytest.warns(RuntimeWarning, match="left uncompressed"):
        recorder.close()
    monkeypatch.undo()
    run = load_run(tmp_path / "full.h5")
    assert run.attributes["status"] == "complete" and run.spike_ids.size == 30_000
    before = (tmp_path / "full.h5").read_bytes()
    calls = []

    def interrupted(source, target):
        calls.append(source.name)
        if len(calls) > 3:
            raise KeyboardInterrupt
        original(source, target)

    original = recording._copy_attributes
    monkeypatch.setattr(recording, "_copy_attributes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        recording.compress_run_file(tmp_path / "full.h5")
    assert (tmp_path / "full.h5").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["full.h5"]


def test_a_complete_run_file_has_no_unused_space(experiment_dir):
    """What the datasets store is the file, besides HDF5's metadata (the compressed copy is
    written once, in order: no space freed by rewritten chunks)."""
    with h5py.File(experiment_dir / "run.h5", "r") as f:
        stored = []
        f.visititems(lambda name, item: stored.append(item.id.get_storage_size())
                     if isinstance(item, h5py.Dataset) else None)
        assert f["readouts/output"].compression == "gzip"
    size = (experiment_dir / "run.h5").stat().st_size
    assert size <= sum(stored) + 150_000, (size, sum(stored))
