"""The ``reservoir`` command line (also ``python -m reservoir``).

``reservoir run [EXPERIMENT.toml]`` runs an experiment file (readouts learning on a task; by
default the packaged what/when experiment) into a run folder; ``reservoir simulate`` runs a
plain network (no learning) from a preset, or resumes one from its checkpoint; ``reservoir
presets`` lists the presets; ``reservoir report`` writes an HTML page of one run folder or
comparing several (docs/reports.md). Bad arguments exit with status 2 and a message that names the
argument or configuration key; nothing is written. A numerical blow-up (of the network or of a
readout) exits with status 1 and names the neuron or unit, the step and ``dt``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tomllib
from importlib.resources import files
from typing import Any

from .. import __version__
from ..config import ConfigError, resolve_config
from ..firing_types import FIRING_TYPES
from ..presets import NETWORK_PRESETS, preset_config, preset_names
from ..simulation import NumericalInstabilityError, ReadoutDivergenceError


def _positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
        return value
    parse.__name__ = name
    return parse


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _nonnegative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def _integer(low: int, high: int | None = None):
    """An argparse type for integers in ``[low, high)``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value >= high):
            bound = f">= {low}" if high is None else f"in [{low}, {high})"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value
    return parse


_positive_int = _integer(1)
_seed = _integer(0, 2**63)


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``KEY.PATH=VALUE`` (the ``--set`` argument) as ``(path parts, value)``; the value is read
    as TOML where it parses, else as a bare string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY.PATH=VALUE, got {text!r}")
    path = key.strip().split(".")
    if not all(part.strip() for part in path):
        raise argparse.ArgumentTypeError(f"{key.strip()!r} in {text!r}: an empty part in KEY.PATH "
                                         "(expected names and list indices joined by single dots)")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare strings need no quotes
    return path, value


def set_path(tree: dict, path: list[str], value: Any) -> None:
    """Set ``tree[path[0]][path[1]]... = value``, creating sections on the way."""
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            raise argparse.ArgumentTypeError(f"{'.'.join(path)}: {part} is not a section")
    tree[path[-1]] = value


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a default only where there is a meaningful one (not None, not an empty list)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        meaningful = not (default is None or default is False or default == [] or default == argparse.SUPPRESS)
        if meaningful and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _threads(text: str):
    """``--threads``: ``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reservoir",
        description="Spiking-reservoir simulator: compiled Izhikevich networks with local plasticity.",
        epilog="Run 'reservoir COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"reservoir {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sim = commands.add_parser(
        "simulate", help="run a plain network (no learning) and write a run folder",
        description=(
            "Run a network preset without learning and write OUT/run.h5 (spikes in the SONATA "
            "layout, traces, network), OUT/config.resolved.toml, OUT/metrics.json and "
            "OUT/figures/raster.png. Options override the preset; --set reaches any key of the "
            "configuration (see docs/configuration.md)."),
        formatter_class=_HelpFormatter)
    sim.add_argument("--preset", default="izhikevich2003", choices=preset_names(), metavar="NAME",
                     help="network or firing-type preset; 'reservoir presets' lists them")
    sim.add_argument("--duration-ms", type=_positive_float("duration"), default=None,
                     help="simulated time in ms (default: the preset's)")
    sim.add_argument("--seed", type=_seed, default=0, help="the run's one seed")
    sim.add_argument("--out", default=None, help="output folder (required unless --resume)")
    sim.add_argument("--n-neurons", type=_positive_int, default=None, help="number of neurons")
    sim.add_argument("--connection-probability", type=_probability, default=None,
                     help="Bernoulli connection probability (switches an all-to-all preset to 'bernoulli')")
    sim.add_argument("--noise-std-excitatory", type=_nonnegative_float, default=None,
                     help="std of the per-step Gaussian current noise of excitatory neurons")
    sim.add_argument("--noise-std-inhibitory", type=_nonnegative_float, default=None,
                     help="std of the per-step Gaussian current noise of inhibitory neurons")
    sim.add_argument("--dt-ms", type=_positive_float("dt"), default=None, help="integration step (ms)")
    sim.add_argument("--scheme", choices=["euler", "izhikevich2003", "izhikevich2004"], default=None,
                     help="integration scheme (docs/model-and-numerics.md)")
    sim.add_argument("--checkpoint-every-ms", type=_positive_float("checkpoint interval"), default=None,
                     help="write OUT/checkpoint.h5 at this simulated-time interval")
    sim.add_argument("--set", dest="assignments", type=parse_assignment, action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override any configuration key (repeatable)")
    sim.add_argument("--resume", metavar="DIR", default=None,
                     help="continue the run in DIR from its checkpoint (other options are ignored)")
    sim.add_argument("--overwrite", action="store_true", help="replace an existing run in OUT")
    sim.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sim.add_argument("--threads", type=_threads, default=None, metavar="N|auto",
                     help=("threads of the compiled kernel (default: the configuration's, 'auto'); the results are "
                           "the same for every count; also applies to --resume"))

    run = commands.add_parser(
        "run", help="run an experiment file (readouts learning on a task)",
        description=(
            "Run an experiment file (TOML: network, integration, readouts, task; see "
            "docs/configuration.md) and write a run folder: config.resolved.toml, run.h5, metrics.json "
            "and figures/*.png. The whole configuration is validated first; errors name the key path."),
        formatter_class=_HelpFormatter)
    run.add_argument("experiment", nargs="?", default=None, metavar="EXPERIMENT.toml",
                     help="experiment file (default: the packaged what/when experiment, experiments/whatwhen.toml)")
    run.add_argument("--set", dest="assignments", type=parse_assignment, action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override any key of the experiment (repeatable)")
    run.add_argument("--seed", type=_seed, default=None, help="the run's one seed (default: the file's)")
    run.add_argument("--out", default=None, help="output folder (default: runs/NAME-seedSEED)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run in OUT")
    run.add_argument("--resume", metavar="DIR", default=None,
                     help=("continue the interrupted run in DIR from its checkpoint (written by ctrl-C, or every "
                           "checkpoint_every_ms); the other arguments are ignored"))
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--threads", type=_threads, default=None, metavar="N|auto",
                     help=("threads of the compiled kernel (default: the experiment's, 'auto'); the results are the "
                           "same for every count; also applies to --resume"))

    presets = commands.add_parser("presets", help="list the presets",
                                  description="List the presets with a one-line description.")
    report = commands.add_parser(
        "report", help="write an HTML report of a run folder, or compare several",
        description=(
            "Write one self-contained HTML page (figures embedded, nothing loaded from elsewhere): of one run "
            "folder (summary, metrics, figures, resolved configuration, run file), or comparing several (metrics "
            "side by side with the differences highlighted, figures of the same name in a row, the differences "
            "of the configurations). See docs/reports.md."),
        formatter_class=_HelpFormatter)
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by 'reservoir run' or 'simulate'")
    report.add_argument("--out", default=None,
                        help="the HTML file to write (default: RUN_DIR/report.html for one run, report.html here for several)")
    for subparser in (sim, run, presets, report):
        subparser.set_defaults(subparser=subparser)
    from .sweep import add_sweep_parser  # here, not at the top: sweep.py imports this module
    add_sweep_parser(commands, _HelpFormatter)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {"seed": args.seed}
    flags = {
        ("duration_ms",): args.duration_ms,
        ("network", "n_neurons"): args.n_neurons,
        ("network", "noise", "excitatory_std"): args.noise_std_excitatory,
        ("network", "noise", "inhibitory_std"): args.noise_std_inhibitory,
        ("integration", "dt_ms"): args.dt_ms,
        ("integration", "scheme"): args.scheme,
        ("checkpoint_every_ms",): args.checkpoint_every_ms,
        ("threads",): args.threads,
    }
    if args.connection_probability is not None:
        flags[("network", "connectivity", "probability")] = args.connection_probability
        if preset_config(args.preset).get("network", {}).get("connectivity", {}).get("rule") == "all_to_all":
            flags[("network", "connectivity", "rule")] = "bernoulli"
    for path, value in flags.items():
        if value is not None:
            set_path(overrides, list(path), value)
    for path, value in args.assignments:
        set_path(overrides, path, value)
    return overrides


def _describe_presets() -> str:
    lines = ["network presets:"]
    for name, cfg in NETWORK_PRESETS.items():
        net = cfg["network"]
        lines.append(f"  {name:32s} {net['n_neurons']} neurons, {net['neuron_model']}, "
                     f"{net['connectivity']['rule']}, {cfg['integration']['scheme']} at {cfg['integration']['dt_ms']} ms")
    lines.append("single-neuron firing types (Izhikevich 2004, Fig. 1):")
    for name, ft in FIRING_TYPES.items():
        lines.append(f"  {name:32s} ({ft.panel}) a={ft.a:g} b={ft.b:g} c={ft.c:g} d={ft.d:g}, "
                     f"{ft.duration_ms:g} ms at {ft.dt_ms:g} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "presets":
        print(_describe_presets())
        return 0
    if args.command == "sweep":
        from .sweep import run_sweep_command
        return run_sweep_command(args)
    if args.command == "report":
        return _report(args)
    # The experiment machinery (paradigms, analysis, Matplotlib) is imported only when a command
    # runs, so that --help and presets answer in a fraction of the time.
    from analysis.plots import use_file_backend

    from ..recording import FileFormatError
    from .runner import RunFailedError, RunFolderError, RunInterrupted, resume, simulate

    use_file_backend()
    sub = args.subparser
    try:
        if args.command == "run" and args.resume is not None:
            metrics = resume(args.resume, progress=not args.no_progress, threads=args.threads)
            out = args.resume
        elif args.command == "run":
            metrics, out = _run_experiment(args, sub)
        elif args.resume is not None:
            metrics = resume(args.resume, progress=not args.no_progress, threads=args.threads)
            out = args.resume
        else:
            if args.out is None:
                sub.error("argument --out: required (the output folder)")
            try:
                config = resolve_config(args.preset, _overrides(args))
            except argparse.ArgumentTypeError as error:
                sub.error(f"argument --set: {error}")
            metrics = simulate(config, args.out, progress=not args.no_progress, overwrite=args.overwrite)
            out = args.out
    except ConfigError as error:
        sub.error("invalid configuration:\n" + str(error))
    except RunFolderError as error:
        sub.error(str(error))
    except RunFailedError as error:
        print(f"reservoir {args.command}: {error}", file=sys.stderr)
        if error.hdf5_broken:  # HDF5 cannot close the file it failed to write; its clean-up would crash
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    except (NumericalInstabilityError, ReadoutDivergenceError, FileFormatError) as error:
        print(f"reservoir {args.command}: {error}", file=sys.stderr)
        return 1
    except RunInterrupted as error:
        print(f"reservoir {args.command}: {error}", file=sys.stderr)
        return 130
    rate = metrics["mean_rate_hz"]
    print(f"wrote {out}: {metrics['n_spikes']} spikes, mean rate {rate:.2f} Hz, "
          f"wall time {metrics['wall_time_s']:.2f} s; figures: {', '.join(metrics['figures'])}")
    extra = {k: v for k, v in metrics.items()
             if k not in _BASE_METRICS and (v is None or isinstance(v, (int, float, str)))}
    if extra:
        print("metrics: " + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                                      for k, v in extra.items()))
    if any(isinstance(v, (dict, list)) for k, v in metrics.items() if k != "figures"):
        print(f"all metrics: {out}/metrics.json")
    if metrics.get("claims"):
        from analysis.claims import verdict_table

        print(verdict_table(metrics["claims"], width=shutil.get_terminal_size((110, 24)).columns))
    return 0


DEFAULT_EXPERIMENT = "whatwhen.toml"

_BASE_METRICS = {"n_neurons", "duration_ms", "n_spikes", "mean_rate_hz", "mean_rate_excitatory_hz",
                 "mean_rate_inhibitory_hz", "population_rhythm_peak_hz", "figures", "wall_time_s"}


def _report(args: argparse.Namespace) -> int:
    """``reservoir report``: a folder that is not a complete run folder exits 2 (naming it and
    what is missing), a damaged run file 1."""
    from analysis.report import ReportError, write_report

    from ..recording import FileFormatError

    try:
        path = write_report(args.run_dirs, args.out)
    except ReportError as error:
        args.subparser.error(str(error))
    except (FileFormatError, OSError) as error:
        print(f"reservoir report: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _run_experiment(args: argparse.Namespace, sub: argparse.ArgumentParser):
    from .config import load_experiment
    from .runner import run_experiment

    if args.experiment is None:
        args.experiment = str(files("experiments") / DEFAULT_EXPERIMENT)
    overrides: dict[str, Any] = {}
    try:
        for path, value in args.assignments:
            set_path(overrides, path, value)
    except argparse.ArgumentTypeError as error:
        sub.error(f"argument --set: {error}")
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.threads is not None:
        overrides["threads"] = args.threads
    config = load_experiment(args.experiment, overrides)
    out = args.out or f"runs/{config.name}-seed{config.seed}"
    return run_experiment(config, out, progress=not args.no_progress, overwrite=args.overwrite), out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
