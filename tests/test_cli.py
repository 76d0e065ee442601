import json
import subprocess
import sys

import pytest

from reservoir.experiment.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reservoir", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args", [["--help"], ["simulate", "--help"], ["presets", "--help"]])
def test_help_is_complete(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: reservoir" in text
    if args[0] == "simulate":
        for option in ("--preset", "--duration-ms", "--seed", "--out", "--n-neurons", "--connection-probability",
                       "--noise-std-excitatory", "--noise-std-inhibitory", "--dt-ms", "--scheme", "--set",
                       "--resume", "--checkpoint-every-ms"):
            assert option in text


def test_presets_lists_all(capsys):
    assert main(["presets"]) == 0
    text = capsys.readouterr().out
    assert "izhikevich2003" in text and "nicola_clopath2017" in text and "inhibition_induced_bursting" in text


@pytest.mark.parametrize("args,named", [
    (["--duration-ms", "-5"], "--duration-ms"),
    (["--duration-ms", "abc"], "--duration-ms"),
    (["--connection-probability", "1.5"], "--connection-probability"),
    (["--n-neurons", "0"], "--n-neurons"),
    (["--seed", "-1"], "--seed"),
    (["--preset", "nope"], "--preset"),
    (["--scheme", "rk4"], "--scheme"),
    (["--set", "network.foo=1"], "network.foo"),
    (["--set", "network.connectivity.probability=2"], "network.connectivity.probability"),
    (["--set", "integration.dt_ms=0.3"], "duration_ms"),
    (["--set", "novalue"], "--set"),
])
def test_bad_arguments_exit_2_naming_the_argument(args, named, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(out), "--duration-ms", "100", *args] if "--duration-ms" not in args
             else ["simulate", "--out", str(out), *args])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()  # nothing half-written


def test_missing_out_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--duration-ms", "10"])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err


def test_simulate_writes_a_run_folder_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["simulate", "--preset", "izhikevich2003", "--duration-ms", "200", "--seed", "3", "--out", str(out),
            "--n-neurons", "200", "--connection-probability", "0.2", "--noise-std-excitatory", "4", "--no-progress"]
    assert main(args) == 0
    assert (out / "run.h5").exists() and (out / "figures/raster.png").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_neurons"] == 200 and metrics["duration_ms"] == 200
    resolved = (out / "config.resolved.toml").read_text()
    assert 'rule = "bernoulli"' in resolved and "probability = 0.2" in resolved and "excitatory_std = 4.0" in resolved
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_firing_type_preset_writes_traces(tmp_path):
    out = tmp_path / "tonic"
    assert main(["simulate", "--preset", "tonic_spiking", "--out", str(out), "--no-progress"]) == 0
    assert (out / "figures/traces.png").exists()


def test_resume_through_the_cli(tmp_path):
    out = tmp_path / "run"
    base = ["simulate", "--duration-ms", "300", "--n-neurons", "100", "--out", str(out), "--no-progress"]
    assert main(base + ["--checkpoint-every-ms", "120"]) == 0
    with pytest.raises(SystemExit) as exit_info:  # a finished run is not resumed
        main(["simulate", "--resume", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    (out / "metrics.json").unlink()  # as if stopped while computing the metrics
    assert main(["simulate", "--resume", str(out), "--no-progress"]) == 0
    assert (out / "metrics.json").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--resume", str(tmp_path / "missing"), "--no-progress"])
    assert exit_info.value.code == 2


def test_console_entry_point_module():
    result = run_cli("--version")
    assert result.returncode == 0 and "reservoir" in result.stdout
