"""Kill or interrupt a small what/when run at random points, resume it, and compare its run file
with the uninterrupted run's, dataset by dataset (docs/reproducibility.md, "Faults").

    python -m tests.fault_trials --trials 30 --seed 4            # one JSON line per trial, then a summary

Every fifth trial is a ctrl-C (SIGINT), the others kill -9; each signal comes at a random time
after the run's first checkpoint. Kept out of the test suite for its length (about 25 s a trial);
tests/test_faults.py does one of each per run.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import h5py

from tests.helpers import differing_datasets, run_file_datasets

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="seed of the signal times")
    parser.add_argument("--n-trials-per-run", type=int, default=12, help="what/when trials of the run")
    parser.add_argument("--max-delay-s", type=float, default=3.0, help="signal up to this long after the first checkpoint")
    parser.add_argument("--out", default=None, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    base = Path(args.out or tempfile.mkdtemp(prefix="fault_trials-"))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    run_args = ["--set", "network.n_neurons=100", "--set", f'task.blocks=[{{name="b", n_trials={args.n_trials_per_run}}}]',
                "--set", f"duration_ms={args.n_trials_per_run * 1200}", "--set", "readouts.snapshot_every_ms=1200",
                "--no-progress"]

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "reservoir", "run", *run_args, "--out", str(out), *extra]

    reference = base / "uninterrupted"
    subprocess.run(command(reference), cwd=ROOT, check=True, capture_output=True)
    expected = run_file_datasets(reference / "run.h5")
    rng = random.Random(args.seed)
    outcomes = Counter()
    for i in range(args.trials):
        sig = signal.SIGINT if i % 5 == 0 else signal.SIGKILL
        out = base / f"trial{i}"
        child = subprocess.Popen(command(out, "--set", "checkpoint_every_ms=300"), cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (out / "checkpoint.h5").exists() and child.poll() is None:
            time.sleep(0.01)
        delay = rng.uniform(0.0, args.max_delay_s)
        time.sleep(delay)
        child.send_signal(sig)
        child.wait()
        with h5py.File(out / "run.h5", "r") as f:
            status, steps = str(f.attrs["status"]), int(f.attrs["steps_completed"])
        resumed = subprocess.run(command(out, "--resume", str(out)), cwd=ROOT, capture_output=True, text=True)
        same = resumed.returncode == 0 and not differing_datasets(expected, run_file_datasets(out / "run.h5"))
        row = dict(trial=i, signal=sig.name, delay_s=round(delay, 2), exit=child.returncode, status_at_signal=status,
                   steps_at_signal=steps, resume_exit=resumed.returncode, identical=same,
                   resume_message=resumed.stderr.strip().splitlines()[-1] if resumed.returncode else "")
        outcomes[(sig.name, status, resumed.returncode, same)] += 1
        print(json.dumps(row), flush=True)
    print("summary (signal, status when signalled, resume exit, identical): count")
    for key, count in sorted(outcomes.items()):
        print(f"  {key}: {count}")
    if args.out is None:
        shutil.rmtree(base, ignore_errors=True)
    lost = sum(n for (_, status, code, same), n in outcomes.items() if code == 0 and not same or code == 1)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
