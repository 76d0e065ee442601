"""Faults a long run meets, each tried for real: kill -9 and ctrl-C of a child process followed
by --resume, damaged and foreign files, a write that fails (file size limit; a full tmpfs where
mounting is allowed), two writers on one folder, absurd durations, and the progress bar."""
from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis import load_run
from reservoir.experiment.cli import main
from reservoir.experiment.guards import RunFolderError, RunFolderLock
from reservoir.recording import FileFormatError

from .helpers import differing_datasets, run_file_datasets

ROOT = Path(__file__).resolve().parents[1]
# a what/when run small enough for a test: 100 neurons, 6 trials of 1200 ms
TINY = ["--set", "network.n_neurons=100", "--set", 'task.blocks=[{name="b", n_trials=6}]',
        "--set", "duration_ms=7200", "--set", "readouts.snapshot_every_ms=1200"]


# 30 trials, long enough for several chunks and checkpoints
LONGER = ["--set", 'task.blocks=[{name="b", n_trials=30}]', "--set", "duration_ms=36000",
          "--set", "checkpoint_every_ms=1200"]


def _command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reservoir", "run", *TINY, "--out", str(out), "--no-progress", *extra]


def _assert_same_datasets(a: Path, b: Path) -> None:
    differing = differing_datasets(run_file_datasets(a), run_file_datasets(b))
    assert not differing, differing


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "uninterrupted"
    assert main(["run", *TINY, "--out", str(out), "--no-progress"]) == 0
    return out


def _start_and_wait_for_checkpoint(out: Path) -> subprocess.Popen:
    child = subprocess.Popen(_command(out, "--set", "checkpoint_every_ms=300"), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.h5").exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child wrote no checkpoint"
        time.sleep(0.05)
    return child


def test_kill_9_then_resume_gives_the_uninterrupted_run(tmp_path, uninterrupted, capsys):
    out = tmp_path / "killed"
    child = _start_and_wait_for_checkpoint(out)
    delay = random.Random().uniform(0.0, 1.5)  # a random point of the run
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    status = h5py.File(out / "run.h5", "r").attrs["status"]
    assert (out / ".lock").read_text().strip() == str(child.pid)  # the killed writer could not remove it
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0, f"killed after {delay:.2f} s (status {status})"
    assert f"taking over the lock of pid {child.pid}, which is no longer running" in capsys.readouterr().err
    _assert_same_datasets(uninterrupted / "run.h5", out / "run.h5")
    assert load_run(out).attributes["status"] == "complete"
    assert not (out / ".lock").exists()


def test_ctrl_c_marks_the_run_interrupted_and_resume_completes_it(tmp_path, uninterrupted):
    out = tmp_path / "interrupted"
    child = _start_and_wait_for_checkpoint(out)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    if child.returncode == 0:
        pytest.skip("the child finished before the signal arrived")
    assert child.returncode == 130, stderr
    assert "resume it with: reservoir run --resume" in stderr
    with h5py.File(out / "run.h5", "r") as f:
        assert f.attrs["status"] == "interrupted"
    assert not (out / ".lock").exists()
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    _assert_same_datasets(uninterrupted / "run.h5", out / "run.h5")


def test_resume_refuses_a_complete_run_and_a_folder_without_checkpoint(tmp_path, uninterrupted, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--resume", str(uninterrupted), "--no-progress"])
    assert exit_info.value.code == 2
    assert "checkpoint.h5 is missing" in capsys.readouterr().err


@pytest.mark.parametrize("damage, expected", [
    ("truncate", "truncated"),
    ("text", "not an HDF5 file"),
    ("foreign", "not a reservoir run file"),
    ("missing_group", "damaged reservoir run file"),
])
def test_damaged_or_foreign_run_files_raise_file_format_error(tmp_path, uninterrupted, damage, expected):
    target = tmp_path / "run.h5"
    data = (uninterrupted / "run.h5").read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "text":
        target.write_text("spike_times,ids\n1.0,3\n")
    elif damage == "foreign":
        with h5py.File(target, "w") as f:
            f["data"] = np.arange(10)
    else:
        target.write_bytes(data)
        with h5py.File(target, "r+") as f:
            del f["traces"]
    with pytest.raises(FileFormatError, match=expected) as error:
        load_run(target)
    assert str(target) in str(error.value)


@pytest.mark.parametrize("damage", ["truncate", "foreign"])
def test_a_damaged_checkpoint_is_named_on_resume(tmp_path, uninterrupted, damage, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("run.h5", "config.resolved.toml"):
        (out / name).write_bytes((uninterrupted / name).read_bytes())
    with h5py.File(out / "run.h5", "r+") as f:
        f.attrs["status"] = "interrupted"
    if damage == "truncate":
        (out / "checkpoint.h5").write_bytes((uninterrupted / "run.h5").read_bytes()[:5000])
    else:
        with h5py.File(out / "checkpoint.h5", "w") as f:
            f["x"] = 1
    assert main(["run", "--resume", str(out), "--no-progress"]) == 1
    message = capsys.readouterr().err
    assert str(out / "checkpoint.h5") in message
    assert ("truncated" if damage == "truncate" else "not a reservoir checkpoint") in message


def _limit_file_size(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def _check_failed_write_left_a_resumable_folder(out: Path, child: subprocess.CompletedProcess) -> None:
    assert child.returncode == 1, child.stderr
    assert "failed at step" in child.stderr and str(out) in child.stderr
    assert not (out / "checkpoint.h5.tmp").exists()
    assert not (out / "metrics.json").exists()
    assert not (out / ".lock").exists()
    with h5py.File(out / "checkpoint.h5", "r") as f:  # the last checkpoint is whole
        assert f.attrs["step"] > 0


def test_a_write_that_fails_marks_the_run_failed_and_keeps_the_checkpoint(tmp_path, uninterrupted):
    """A file-size limit the run file reaches mid-run, as on a full disk. (A complete run file
    is compressed, format 2, so the uninterrupted run's is small; ten traced neurons make this
    run's file grow by some 300 KB per simulated second; the limit leaves room for a checkpoint,
    whose pre-check asks for its arrays' 1.5 MB.)"""
    out = tmp_path / "limited"
    limit = (uninterrupted / "run.h5").stat().st_size + 2_000_000
    traced = ["--set", "recording.trace_neurons=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    child = subprocess.run(_command(out, *LONGER, *traced), cwd=ROOT, capture_output=True, text=True,
                           preexec_fn=_limit_file_size(limit), timeout=300)
    _check_failed_write_left_a_resumable_folder(out, child)
    with h5py.File(out / "run.h5", "r") as f:
        assert f.attrs["status"] == "failed" and "no space left" in f.attrs["message"]
        assert 0 < f.attrs["steps_completed"] < 72000
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0  # with room again, it completes
    assert load_run(out).steps_completed == 72000


@pytest.fixture
def small_tmpfs(tmp_path, uninterrupted):
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    size_kib = ((uninterrupted / "run.h5").stat().st_size + 2_000_000) // 1024  # one checkpoint fits, not two
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount_point)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_marks_the_run_failed_and_keeps_the_checkpoint(small_tmpfs):
    out = small_tmpfs / "run"
    child = subprocess.run(_command(out, *LONGER), cwd=ROOT, capture_output=True, text=True, timeout=300)
    if "would need about" in child.stderr:
        pytest.skip("refused up front by the size estimate")
    _check_failed_write_left_a_resumable_folder(out, child)
    with h5py.File(out / "run.h5", "r") as f:
        assert f.attrs["status"] == "failed"


def test_a_second_writer_is_refused(tmp_path, capsys):
    out = tmp_path / "locked"
    out.mkdir()
    with RunFolderLock(out):
        with pytest.raises(SystemExit) as exit_info:
            main(["run", *TINY, "--out", str(out), "--no-progress"])
        assert exit_info.value.code == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
        with pytest.raises(RunFolderError, match="another process"):
            with RunFolderLock(out):
                pass
    assert not (out / "run.h5").exists()
    with RunFolderLock(out):  # released
        pass


def test_a_complete_run_leaves_no_lock(uninterrupted):
    assert (uninterrupted / "metrics.json").exists()
    assert not (uninterrupted / ".lock").exists()


def test_a_diverged_run_leaves_no_lock(tmp_path, capsys):
    out = tmp_path / "diverged"
    assert main(["run", *TINY, "--set", "readouts.groups.0.three_factor.learning_rate=1e6", "--out", str(out),
                 "--no-progress"]) == 1
    assert "diverged" in capsys.readouterr().err
    assert (out / "run.h5").exists() and not (out / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    out = tmp_path / "stale"
    out.mkdir()
    (out / ".lock").write_text(f"{pid}\n")
    messages = []
    with RunFolderLock(out, report=messages.append):
        assert (out / ".lock").read_text().strip() == str(os.getpid())
    assert len(messages) == 1 and f"taking over the lock of pid {pid}, which is no longer running" in messages[0]
    assert not (out / ".lock").exists()
    with RunFolderLock(out, report=messages.append):  # an empty or missing lock file is no news
        pass
    assert len(messages) == 1


def test_a_lock_file_removed_while_locking_is_not_taken(tmp_path, monkeypatch):
    """The writer removes ``.lock`` as it lets go: a process that opened the file just before then
    locks an orphan, and must lock the file now at the path instead, where a third process looks."""
    from reservoir.experiment import guards

    out = tmp_path / "race"
    out.mkdir()
    calls = []
    real_flock = guards.fcntl.flock

    def flock_after_the_writer_left(fd, operation):
        if operation & guards.fcntl.LOCK_EX:
            calls.append(fd)
            if len(calls) == 1:
                (out / ".lock").unlink()  # the previous writer lets go between our open and our lock
        return real_flock(fd, operation)

    monkeypatch.setattr(guards.fcntl, "flock", flock_after_the_writer_left)
    with RunFolderLock(out):
        assert len(calls) == 2  # the orphan, then the file at the path
        assert (out / ".lock").read_text().strip() == str(os.getpid())
        monkeypatch.setattr(guards.fcntl, "flock", real_flock)
        with pytest.raises(RunFolderError, match="another process"):
            with RunFolderLock(out):
                pass


def test_a_second_process_is_refused_while_the_first_writes(tmp_path):
    out = tmp_path / "busy"
    first = _start_and_wait_for_checkpoint(out)
    try:
        second = subprocess.run(_command(out, "--overwrite"), cwd=ROOT, capture_output=True, text=True, timeout=120)
        if first.poll() is None:
            assert second.returncode == 2 and "being written by another process" in second.stderr, second.stderr
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("assignment", ["duration_ms=1e12", "duration_ms=1e15"])
def test_absurd_durations_are_refused_before_anything_is_written(tmp_path, capsys, assignment):
    out = tmp_path / "absurd"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--set", assignment, "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "duration_ms" in message and ("TB" in message or "PB" in message)
    assert not out.exists()


def test_one_progress_bar_per_run_and_none_when_quiet(tmp_path, monkeypatch):
    import reservoir.experiment.runner as runner
    import reservoir.simulation as simulation

    made = []

    class Counting(runner.tqdm):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(runner, "tqdm", Counting)
    monkeypatch.setattr(simulation, "tqdm", Counting)
    assert main(["run", *TINY, "--out", str(tmp_path / "a")]) == 0
    assert len(made) == 1 and made[0]["disable"] is None  # shown on a terminal, hidden otherwise (tqdm)
    made.clear()
    assert main(["run", *TINY, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert len(made) == 1 and made[0]["disable"] is True


def test_what_a_checkpoint_counts_is_already_in_the_run_file_on_disk(tmp_path):
    """A process killed right after a checkpoint's rename must leave a run file that holds every
    record the checkpoint counts: another process reads the file at that moment."""
    from reservoir.experiment import load_experiment, make_simulation, prepare
    from reservoir.experiment.runner import make_recorder

    config = load_experiment(ROOT / "experiments/whatwhen.toml", {
        "network": {"n_neurons": 100}, "task": {"blocks": [{"name": "b", "n_trials": 2}]}, "duration_ms": 2400.0,
        "readouts": {"snapshot_every_ms": 300.0}})
    prepared = prepare(config)
    recorder = make_recorder(config, tmp_path, prepared)
    sim = make_simulation(config, prepared, recorder)
    sim.run(n_steps=1200, snapshot_every_steps=600)
    sim.save_checkpoint(tmp_path / "checkpoint.h5")
    reader = ("import h5py, json, sys; f = h5py.File(sys.argv[1], 'r'); "
              "print(json.dumps({'snapshots': f['readouts/weights'].shape[0], 'outputs': f['readouts/output'].shape[0],"
              " 'spikes': f['spikes/reservoir/node_ids'].shape[0]}))")
    seen = subprocess.run([sys.executable, "-c", reader, str(tmp_path / "run.h5")], capture_output=True, text=True,
                          env={**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE"})
    recorder.close()
    import json
    on_disk = json.loads(seen.stdout)
    with h5py.File(tmp_path / "checkpoint.h5", "r") as f:
        for stream in ("snapshots", "outputs", "spikes"):
            assert on_disk[stream] >= f.attrs[f"{stream}_written"] > 0, stream
