"""What a permuted-digits run's features allow: the ideal (ridge) readout, per task and joint.

    python -m analysis.digits_ceiling RUN_DIR [--alphas 0.01 0.1 1 10] [--max-train N]

The window-mean features of the run's training and test presentations are rebuilt from its
spikes (:func:`analysis.features.window_means`); a ridge classifier (one-hot targets, the same
linear read-out as the three-factor readout: argmax of ``W x + b``) is fitted on the training
presentations of each task alone and of all tasks together, and scored on the test
presentations. The regularisation is chosen on a held-out fifth of the training presentations.
This is the ceiling the online rule is compared with (``docs/results-continual.md``).

A run that stopped early (status ``failed``, ``interrupted`` or ``running``) is measured on the
tasks whose training and test presentations it recorded whole, and the output says so; the
test presentations of every task come after all the training, so a run stopped before them is
refused (exit status 2), as is a folder without ``run.h5``; a damaged run file exits with
status 1.
"""
from __future__ import annotations

import argparse

import numpy as np

from .features import window_means
from .io import load_run
from .run_status import read_run_status, recorded_whole, run_errors_exit


def ridge_fit(X: np.ndarray, labels: np.ndarray, alpha: float, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of the ridge regression of one-hot labels on ``X`` (bias unpenalised)."""
    mean = X.mean(axis=0)
    Y = np.eye(n_classes)[labels]
    Xc = X - mean
    W = np.linalg.solve(Xc.T @ Xc + alpha * len(X) * np.eye(X.shape[1]), Xc.T @ (Y - Y.mean(axis=0))).T
    return W, Y.mean(axis=0) - W @ mean


def _accuracy(W, b, X, labels) -> float:
    return float(np.mean(np.argmax(X @ W.T + b, axis=1) == labels))


def _best_alpha(X, labels, alphas, rng) -> float:
    order = rng.permutation(len(X))
    held = order[: len(X) // 5]
    fit = order[len(X) // 5:]
    scores = [_accuracy(*ridge_fit(X[fit], labels[fit], a), X[held], labels[held]) for a in alphas]
    return float(alphas[int(np.argmax(scores))])


def tasks_recorded(run) -> list[int]:
    """The tasks of a permuted-digits run whose training and test presentations the run
    recorded whole: all of them, unless it stopped early. ``ValueError`` for another task."""
    task = run.config.get("task", {})
    if task.get("kind") != "permuted_digits":
        raise ValueError(f"{run.path}: not a permuted-digits run (task.kind is {task.get('kind')!r})")
    table = run.tables["presentations"]
    whole = recorded_whole(run, table["onset_ms"], task["presentation_ms"])
    return [t for t in range(int(task["n_tasks"])) if whole[table["task"] == t].all()]


def digits_ceiling(run, alphas=(1e-5, 1e-4, 1e-3, 1e-2, 0.1), max_train: int | None = None, seed: int = 0) -> dict:
    """Test accuracy of the ideal ridge readout per task (trained on that task alone) and joint
    (trained on the training presentations of every task measured), with the chosen
    regularisation, on the tasks the run recorded whole (:func:`tasks_recorded`; ``tasks`` in
    the result). ``ValueError`` if there is none."""
    task = run.config.get("task", {})
    tasks = tasks_recorded(run)
    if not tasks:
        raise ValueError(f"{run.path}: no task's training and test presentations are all recorded")
    table = run.tables["presentations"]
    offset = task["presentation_ms"] - task["readout_ms"]
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for t in tasks:
        rows = np.flatnonzero(~table["test"] & (table["task"] == t))
        if max_train is not None:
            rows = rows[:max_train]
        train[t] = (window_means(run, table["onset_ms"][rows] + offset, task["readout_ms"]), table["label"][rows])
        rows = np.flatnonzero(table["test"] & (table["task"] == t))
        test[t] = (window_means(run, table["onset_ms"][rows] + offset, task["readout_ms"]), table["label"][rows])
    per_task = []
    for t in tasks:
        alpha = _best_alpha(*train[t], alphas, rng)
        per_task.append(_accuracy(*ridge_fit(*train[t], alpha), *test[t]))
    X = np.concatenate([train[t][0] for t in tasks])
    labels = np.concatenate([train[t][1] for t in tasks])
    alpha = _best_alpha(X, labels, alphas, rng)
    W, b = ridge_fit(X, labels, alpha)
    joint = [_accuracy(W, b, *test[t]) for t in tasks]
    return {"tasks": tasks, "per_task": per_task, "per_task_mean": float(np.mean(per_task)), "joint": joint,
            "joint_mean": float(np.mean(joint)), "joint_alpha": alpha}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.digits_ceiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a permuted-digits run folder")
    parser.add_argument("--alphas", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3, 1e-2, 0.1],
                        help="ridge regularisations to choose from (times the number of rows)")
    parser.add_argument("--max-train", type=int, default=None, help="training presentations per task used")
    args = parser.parse_args(argv)
    if args.max_train is not None and args.max_train < 2:
        parser.error(f"argument --max-train: expected at least 2 presentations per task, got {args.max_train}")
    with run_errors_exit(parser):
        status = read_run_status(args.run)
        run = load_run(args.run)
        try:
            tasks = tasks_recorded(run)
        except ValueError as error:  # another task's run
            parser.error(str(error))
        n_tasks = int(run.config["task"]["n_tasks"])
        if not tasks:
            raise status.incomplete(f"none of its {n_tasks} tasks has all its training and test presentations "
                                    "recorded (the test presentations come after every task's training)")
        if not status.complete:
            print(status.partial(f"measuring tasks {', '.join(map(str, tasks))} of 0-{n_tasks - 1}, those whose "
                                 "training and test presentations are all recorded"))
        result = digits_ceiling(run, tuple(args.alphas), args.max_train)
    print(f"ideal ridge readout, test accuracy: per task (each alone) {100 * result['per_task_mean']:.1f} %, "
          f"joint (the tasks together, alpha {result['joint_alpha']:g}) {100 * result['joint_mean']:.1f} %")
    print("task:    ", " ".join(f"{t:5d}" for t in result["tasks"]))
    print("per task:", " ".join(f"{100 * a:5.1f}" for a in result["per_task"]))
    print("joint:   ", " ".join(f"{100 * a:5.1f}" for a in result["joint"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
