"""Run-file size per dataset, and what reading a window of a run costs against reading all of it.

Run::

    .venv/bin/python benchmarks/bench_file_size.py RUN_DIR [RUN_DIR ...]    # existing run folders (or run.h5 files)
    .venv/bin/python benchmarks/bench_file_size.py                          # a shortened default run (40 trials, 48 s)
    .venv/bin/python benchmarks/bench_file_size.py RUN_DIR --compress-timing # also the end-of-run compression's cost

For each run file it prints

- the file's size and, per dataset, the bytes stored (``get_storage_size``), the bytes of the
  values (``nbytes``), their ratio, dtype, chunk shape and filters;
- the median time (``--repeats``) of reading a ``--window-ms`` window from the middle of the run
  with :func:`analysis.read_spikes` and :func:`analysis.read_outputs`, against reading every
  spike (``read_spikes`` without a window) and every output, and against :func:`analysis.load_run`
  (everything). The file is in the page cache after the first repeat: these are the costs of
  HDF5 and of decompression, not of the disk;
- with ``--compress-timing``: the file rewritten uncompressed, as a run writes it while it goes
  (in a temporary folder beside it), then the time of :func:`reservoir.recording.compress_run_file`
  on that copy (what a run spends when it completes) and the copy's size.

``--kill-trials N`` (no run needed) measures why a run's datasets are compressed only when it
completes: a child process appends rows to three chunked datasets and flushes in a loop,
noting after each flush how many rows the file holds; it is killed (SIGKILL) at a random time,
N times per layout (uncompressed; gzip + shuffle; gzip + shuffle with HDF5's free-space tracking
off), and every row flushed before the kill is read back. A "bad" trial lost flushed rows.

Two run folders of the same configuration and seed, one written before a format change and one
after, compare the formats (``docs/file-format.md``, "Size").
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHORT_RUN = ["run", str(REPO / "experiments" / "whatwhen.toml"), "--set", "task.blocks.0.n_trials=40",
             "--set", "duration_ms=48000"]
"""The shortened default run (the guard's, ``tests/guard.py``)."""


def run_file(path: Path) -> Path:
    return path / "run.h5" if path.is_dir() else path


def dataset_table(file: Path) -> tuple[list[tuple], int]:
    rows = []
    with h5py.File(file, "r") as f:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                filters = "+".join(x for x in (("shuffle" if item.shuffle else ""),
                                               (f"{item.compression}({item.compression_opts})" if item.compression else ""),
                                               ("scaleoffset" if item.scaleoffset is not None else "")) if x)
                rows.append((item.id.get_storage_size(), item.nbytes, name, item.dtype.str, item.shape, item.chunks,
                             filters or "none"))
        f.visititems(visit)
    rows.sort(key=lambda row: -row[0])
    return rows, file.stat().st_size


def median_time(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def reading_costs(file: Path, window_ms: float, repeats: int) -> list[tuple[str, float, str]]:
    from analysis import load_run, read_outputs, read_spikes

    with h5py.File(file, "r") as f:
        duration = float(f.attrs["steps_completed"]) * float(f.attrs["dt_ms"])
        has_readouts = "readouts" in f
    start = max(0.0, duration / 2 - window_ms / 2)
    stop = start + window_ms
    costs = []
    seconds, (times, _) = median_time(lambda: read_spikes(file, start, stop), repeats)
    costs.append((f"read_spikes, {window_ms:g} ms window", seconds, f"{times.size:,} spikes"))
    seconds, (times, _) = median_time(lambda: read_spikes(file), repeats)
    costs.append(("read_spikes, whole run", seconds, f"{times.size:,} spikes"))
    if has_readouts:
        seconds, (times, _) = median_time(lambda: read_outputs(file, start, stop), repeats)
        costs.append((f"read_outputs, {window_ms:g} ms window", seconds, f"{times.size:,} rows"))
        seconds, (times, _) = median_time(lambda: read_outputs(file), repeats)
        costs.append(("read_outputs, whole run", seconds, f"{times.size:,} rows"))
    seconds, _ = median_time(lambda: load_run(file), max(1, repeats // 2))
    costs.append(("load_run (everything)", seconds, ""))
    return costs


def uncompressed_copy(source: Path, target: Path) -> None:
    """``source`` as a run writes it while it goes: chunked datasets uncompressed, same chunks."""
    with h5py.File(source, "r") as src:
        order = bool(src["/"].id.get_create_plist().get_link_creation_order())
        with h5py.File(target, "w", track_order=order) as dst:
            def copy(group, out):
                for key in group.attrs:
                    out.attrs[key] = group.attrs[key]
                for name, item in group.items():
                    if isinstance(item, h5py.Group):
                        copy(item, out.create_group(name))
                    else:
                        options = dict(chunks=item.chunks, maxshape=item.maxshape) if item.chunks else {}
                        made = out.create_dataset(name, shape=item.shape, dtype=item.dtype, track_times=False, **options)
                        step = (item.chunks[0] * 64) if item.chunks else max(1, item.shape[0] if item.shape else 1)
                        for start in range(0, item.shape[0] if item.shape else 0, step):
                            made[start:start + step] = item[start:start + step]
                        if not item.shape:
                            made[()] = item[()]
                        for key in item.attrs:
                            made.attrs[key] = item.attrs[key]
            copy(src, dst)


def compress_timing(file: Path) -> tuple[float, float, int, int]:
    from reservoir.recording import compress_run_file

    with tempfile.TemporaryDirectory(dir=file.parent) as tmp:
        raw = Path(tmp) / "run.h5"
        uncompressed_copy(file, raw)
        raw_size = raw.stat().st_size
        wall, cpu = time.perf_counter(), time.process_time()
        compress_run_file(raw)
        return time.perf_counter() - wall, time.process_time() - cpu, raw_size, raw.stat().st_size


KILL_CHILD = r"""
import os, sys
import h5py, numpy as np
path, layout = sys.argv[1], sys.argv[2]
filters = dict(compression="gzip", compression_opts=1, shuffle=True) if layout != "uncompressed" else {}
space = dict(fs_strategy="aggregate") if layout == "gzip, no free-space tracking" else {}
f = h5py.File(path, "w", rdcc_nbytes=4 << 20, **space)
columns = [f.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(2048,), dtype="f8", track_times=False,
                            **filters) for name in "abc"]
noted = os.open(path + ".rows", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
rows, rng = 0, np.random.default_rng(0)
while True:
    more = int(rng.integers(50, 700))
    for column in columns:
        column.resize(rows + more, axis=0)
        column[rows:] = np.arange(rows, rows + more) * 0.5
    rows += more
    f.flush()
    os.pwrite(noted, str(rows).encode().ljust(20), 0)
"""


def kill_trials(trials: int) -> None:
    import random
    import signal
    import subprocess

    print(f"\nkill -9 of a writer appending and flushing in a loop, {trials} kills per layout:\n")
    print("| layout | bad trials | what failed |")
    print("|---|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("uncompressed", "gzip", "gzip, no free-space tracking"):
            bad, errors = 0, set()
            for _ in range(trials):
                path = Path(tmp) / "killed.h5"
                child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(path), layout])
                time.sleep(random.uniform(0.3, 1.5))
                child.send_signal(signal.SIGKILL)
                child.wait()
                try:
                    noted = Path(str(path) + ".rows")
                    rows = int(noted.read_text().strip() or 0) if noted.exists() else 0
                    with h5py.File(path, "r") as f:
                        for name in "abc":
                            if not np.array_equal(f[name][:rows], np.arange(rows) * 0.5):
                                raise ValueError("values differ")
                except Exception as error:  # noqa: BLE001 - any failure to read back is what is counted
                    bad += 1
                    errors.add(str(error).split("(")[-1].rstrip(")")[:60])
            print(f"| {layout} | {bad} / {trials} | {'; '.join(sorted(errors))} |")


def report(path: Path, args) -> None:
    file = run_file(path)
    with h5py.File(file, "r") as f:
        version, status = int(f.attrs.get("format_version", -1)), f.attrs.get("status")
    rows, size = dataset_table(file)
    stored = sum(row[0] for row in rows)
    print(f"\n## {file} (format {version}, {status})\n")
    print(f"file {size / 1e6:.2f} MB; datasets store {stored / 1e6:.2f} MB of {sum(r[1] for r in rows) / 1e6:.2f} MB "
          f"of values; HDF5 metadata and unused space {(size - stored) / 1e6:.2f} MB\n")
    print("| dataset | stored MB | values MB | ratio | dtype | chunks | filters |")
    print("|---|---:|---:|---:|---|---|---|")
    shown = [row for row in rows if row[0] >= args.min_bytes]
    for stored_bytes, nbytes, name, dtype, shape, chunks, filters in shown:
        ratio = f"{nbytes / stored_bytes:.1f}x" if stored_bytes else "-"
        print(f"| `{name}` {shape} | {stored_bytes / 1e6:.3f} | {nbytes / 1e6:.3f} | {ratio} | {dtype} | {chunks} | {filters} |")
    rest = rows[len(shown):]
    if rest:
        print(f"| {len(rest)} smaller datasets | {sum(r[0] for r in rest) / 1e6:.3f} | {sum(r[1] for r in rest) / 1e6:.3f} | | | | |")
    print(f"\nreading (median of {args.repeats}, file in the page cache):\n")
    print("| read | seconds | what |")
    print("|---|---:|---|")
    for label, seconds, what in reading_costs(file, args.window_ms, args.repeats):
        print(f"| {label} | {seconds:.4f} | {what} |")
    if args.compress_timing:
        wall, cpu, raw_size, compressed = compress_timing(file)
        print(f"\ncompress_run_file on an uncompressed copy ({raw_size / 1e6:.2f} MB, as written during the run): "
              f"{wall:.2f} s ({cpu:.2f} s CPU) -> {compressed / 1e6:.2f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="run folders or run.h5 files (default: a shortened default run)")
    parser.add_argument("--window-ms", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-bytes", type=int, default=10_000, help="datasets storing less are summed in one row")
    parser.add_argument("--compress-timing", action="store_true", help="time compress_run_file on an uncompressed copy")
    parser.add_argument("--kill-trials", type=int, default=0, help="only the kill -9 experiment, N kills per layout")
    args = parser.parse_args(argv)
    if args.kill_trials:
        kill_trials(args.kill_trials)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs
        if not runs:
            from reservoir.experiment.cli import main as cli

            folder = Path(tmp) / "short"
            print(f"running: reservoir {' '.join(SHORT_RUN)} --out {folder}")
            started = time.perf_counter()
            assert cli([*SHORT_RUN, "--out", str(folder), "--no-progress"]) == 0
            print(f"run took {time.perf_counter() - started:.1f} s (kernels compiled or loaded from the cache included)")
            runs = [folder]
        for path in runs:
            report(path, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
