"""``reservoir sweep``: the sweep file, its points, and sweeps on a real 2-worker Dask LocalCluster
(tiny what/when runs): the table, a failing point, a rerun that skips finished points, and a
worker killed while points run."""
import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from reservoir.config import ConfigError
from reservoir.experiment.cli import main as cli_main
from reservoir.experiment.sweep import (SweepError, flatten_metrics, load_sweep, parameter_sets, parse_sweep,
                                        run_sweep)

TINY = """
experiment = "whatwhen.toml"
seeds = {seeds}
[set]
"network.n_neurons" = 200
"readouts.snapshot_every_ms" = 6000.0
duration_ms = {duration}
"task.blocks.0.n_trials" = {trials}
"task.test_trials" = 1
"""


def tiny_sweep(folder: Path, seeds="[1, 2]", trials=3, grid="", name="tiny.toml") -> Path:
    path = folder / name
    path.write_text(TINY.format(seeds=seeds, duration=trials * 1200.0, trials=trials) + grid)
    return path


def read_table(out: Path) -> list[dict]:
    with open(out / "sweep.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the sweep file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, named", [
    ({"seeds": [1]}, "experiment"),
    ({"experiment": "whatwhen.toml"}, "seeds"),
    ({"experiment": "whatwhen.toml", "seeds": [1, 1]}, "seeds"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "grdi": {}}, "grdi"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "grid": {"network": {"n_neurons": 500}}}, "grid.network.n_neurons"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "grid": {"network": {"n_neurons": []}}}, "network.n_neurons"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "grid": {"a.b,c.d": [[1, 2], [3]]}}, "a.b,c.d"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "random": {"seed": 0, "x.y": {"uniform": [0, 1]}}},
     "random.n_samples"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "random": {"n_samples": 2, "x": {"y": {"normal": [0, 1]}}}},
     "random.x.y.normal"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "random": {"n_samples": 2, "x": {"log_uniform": [0, 1]}}},
     "random.x"),
    ({"experiment": "whatwhen.toml", "seeds": [1], "grid": {"x": [1]}, "random": {"n_samples": 1, "x": {
        "choice": [1]}}}, "x: swept twice"),
])
def test_sweep_file_errors_name_the_key(data, named):
    with pytest.raises(SweepError) as error:
        parse_sweep(data)
    assert named in str(error.value)


def test_a_bad_experiment_key_fails_before_anything_runs(tmp_path):
    path = tiny_sweep(tmp_path, grid='[grid]\n"network.n_neuronz" = [100, 200]\n')
    with pytest.raises(ConfigError, match="network.n_neuronz"):
        load_sweep(path)
    path = tiny_sweep(tmp_path, grid='[grid]\n"network.n_neurons" = [100, -5]\n')
    with pytest.raises(ConfigError, match=r"n_neurons=-5/seed1(.|\n)*network.n_neurons"):
        load_sweep(path)


def test_cli_exits_2_naming_the_key_and_writes_nothing(tmp_path, capsys):
    path = tiny_sweep(tmp_path, grid='[grid]\n"task.test_trialz" = [1, 2]\n')
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["sweep", str(path), "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    assert "task.test_trialz" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "broken.toml").write_text('experiment = "whatwhen.toml"\nseeds = "1"\n')
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["sweep", str(tmp_path / "broken.toml"), "--no-progress"])
    assert exit_info.value.code == 2 and "seeds" in capsys.readouterr().err


def test_grid_times_seeds_expands_in_order_with_readable_ids(tmp_path):
    grid = ('[grid]\n"network.noise.excitatory_std,network.noise.inhibitory_std" = [[0.5, 0.25], [1.0, 0.5]]\n'
            'network.n_neurons = [200, 300]\n')
    sweep = load_sweep(tiny_sweep(tmp_path, grid=grid))
    ids = [p.id for p in sweep.points]
    assert len(ids) == 2 * 2 * 2 == len(set(ids))
    assert ids[:3] == ["excitatory_std=0.5,inhibitory_std=0.25,n_neurons=200/seed1",
                       "excitatory_std=0.5,inhibitory_std=0.25,n_neurons=200/seed2",
                       "excitatory_std=0.5,inhibitory_std=0.25,n_neurons=300/seed1"]
    last = sweep.points[-1]
    assert last.overrides["network"]["noise"] == {"excitatory_std": 1.0, "inhibitory_std": 0.5}
    assert last.overrides["network"]["n_neurons"] == 300 and last.overrides["seed"] == 2
    assert last.overrides["task"]["test_trials"] == 1  # [set]
    assert sweep.parameter_keys() == ["network.noise.excitatory_std", "network.noise.inhibitory_std",
                                      "network.n_neurons"]
    assert load_sweep(tiny_sweep(tmp_path, grid=grid)).resolved() == sweep.resolved()


def test_random_sampling_is_deterministic_and_within_bounds():
    data = {"experiment": "whatwhen.toml", "seeds": [1],
            "random": {"n_samples": 6, "seed": 7, "readouts": {"groups": {"0": {"three_factor": {
                "learning_rate": {"log_uniform": [1e-5, 1e-4]}}}}},
                       "network.bias_current": {"uniform": [4.0, 6.0]}, "task.test_trials": {"choice": [1, 2, 3]}}}
    first, again = parameter_sets(parse_sweep(data)), parameter_sets(parse_sweep(data))
    assert first == again and len(first) == 6 and len({label for label, _ in first}) == 6
    for label, params in first:
        assert 1e-5 <= params["readouts.groups.0.three_factor.learning_rate"] <= 1e-4
        assert 4.0 <= params["network.bias_current"] <= 6.0 and params["task.test_trials"] in (1, 2, 3)
    assert first[0][0].startswith("s0,learning_rate=")
    other = parameter_sets(parse_sweep({**data, "random": {**data["random"], "seed": 8}}))
    assert [p for _, p in other] != [p for _, p in first]


def test_metrics_flatten_to_scalars():
    metrics = {"a": 1.0, "b": {"c": 2, "d": {"e": None}}, "figures": ["x.png"], "angles": [1.0, 2.0],
               "conditions": [{"block": 0, "cue": "C1", "lead_ms": 3.0, "curve": [1, 2]}], "name": "x"}
    assert flatten_metrics(metrics) == {"a": 1.0, "b.c": 2, "b.d.e": None, "angles.0": 1.0, "angles.1": 2.0,
                                        "conditions.b0.C1.lead_ms": 3.0, "conditions.b0.C1.curve.0": 1,
                                        "conditions.b0.C1.curve.1": 2, "name": "x"}


# --- on a 2-worker local cluster ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    from reservoir.experiment.sweep import local_client

    client = local_client(2)
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def test_sweep_runs_records_a_failing_point_and_a_rerun_skips_finished_points(tmp_path, client):
    # learning_rate 1e6 passes validation but the "when" readout diverges while the run goes
    grid = '[grid]\n"readouts.groups.0.three_factor.learning_rate" = [3e-5, 1e6]\n'
    sweep = load_sweep(tiny_sweep(tmp_path, grid=grid))
    out = tmp_path / "out"
    result = run_sweep(sweep, out, client=client, progress=False)
    assert result.counts == {"complete": 2, "failed": 2, "skipped-finished": 0}
    rows = read_table(out)
    assert [r["point"] for r in rows] == [p.id for p in sweep.points]
    for row in rows:
        rate = float(row["readouts.groups.0.three_factor.learning_rate"])
        if rate == 3e-5:
            assert row["status"] == "complete" and row["error"] == ""
            assert float(row["n_neurons"]) == 200 and row["probability_scaling.slope"] != ""
            assert json.loads((out / row["point"] / "metrics.json").read_text())["n_neurons"] == 200
        else:
            assert row["status"] == "failed" and row["error"].startswith("ReadoutDivergenceError")
            assert "diverged" in (out / row["point"] / "error.txt").read_text()
            assert row["n_neurons"] == ""
    assert json.loads((out / "sweep.json").read_text())["points"][0]["id"] == rows[0]["point"]

    again = run_sweep(load_sweep(tiny_sweep(tmp_path, grid=grid)), out, client=client, progress=False)
    assert again.counts == {"complete": 0, "failed": 2, "skipped-finished": 2}
    rows_again = read_table(out)
    for before, after in zip(rows, rows_again):
        if before["status"] == "complete":
            assert after["status"] == "skipped-finished"
            assert after["probability_scaling.slope"] == before["probability_scaling.slope"]


def test_a_killed_worker_loses_no_point(tmp_path, client):
    sweep = load_sweep(tiny_sweep(tmp_path, seeds="[1, 2, 3, 4]", trials=6))
    out = tmp_path / "out"
    killed = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = [address for address, keys in client.processing().items() if keys]
            started = list(out.glob("seed*/run.h5"))
            if busy and started:
                time.sleep(0.5)  # inside a run
                pids = client.run(os.getpid)
                killed["pid"] = pids[busy[0]]
                os.kill(killed["pid"], signal.SIGKILL)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    result = run_sweep(sweep, out, client=client, progress=False)
    killer.join()
    assert killed, "no worker was killed"
    assert result.counts == {"complete": 4, "failed": 0, "skipped-finished": 0}
    rows = read_table(out)
    assert [r["status"] for r in rows] == ["complete"] * 4
    assert all(json.loads((out / f"seed{s}" / "metrics.json").read_text())["n_neurons"] == 200 for s in range(1, 5))
    # the nanny restarted the killed worker
    deadline = time.monotonic() + 30
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed["pid"] not in client.run(os.getpid).values()


@pytest.mark.parametrize("name", ["whatwhen_claims.toml", "when_ceiling_noise_by_size.toml"])
def test_shipped_sweeps_validate(name):
    from importlib.resources import files

    sweep = load_sweep(Path(str(files("experiments") / "sweeps" / name)))
    assert sweep.experiment.name == "whatwhen.toml"
    assert len(sweep.points) == {"whatwhen_claims.toml": 5, "when_ceiling_noise_by_size.toml": 10}[name]
