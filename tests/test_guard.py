"""Behaviour guard: the default experiment, FORCE sine (both shortened) and a plain ``net.m`` run
produce the recorded files (``tests/guard.py`` says what is compared, where, and how to
regenerate the record deliberately)."""
import json

import numpy as np
import pytest

from .guard import (CASES, CHECKSUMS, DATA, FILE_KEYS, KERNEL_KEYS, NUMERIC_KEYS, content_sha256, environment,
                    file_sha256, metrics_sha256, metrics_without_wall_time, run_case)

RECORD = json.loads(CHECKSUMS.read_text())
HERE = environment()


def _differs(keys):
    return {key: (RECORD["environment"].get(key), HERE[key]) for key in keys if HERE[key] != RECORD["environment"].get(key)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    if _differs(KERNEL_KEYS):
        pytest.skip(f"the guard was recorded in another kernel environment (recorded, here): {_differs(KERNEL_KEYS)}; "
                    "runs agree there only to rounding. Record it here, deliberately: python -m tests.guard --write --why")
    out = tmp_path_factory.mktemp("guard")
    return {name: run_case(name, out) for name in CASES}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_file_content_is_unchanged(folders, case):
    assert content_sha256(folders[case] / "run.h5") == RECORD["cases"][case]["run_h5_content_sha256"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_file_bytes_are_unchanged(folders, case):
    if _differs(FILE_KEYS):
        pytest.skip(f"file bytes were recorded with another HDF5 library (recorded, here): {_differs(FILE_KEYS)}; "
                    "the content digest is still compared")
    assert file_sha256(folders[case] / "run.h5") == RECORD["cases"][case]["run_h5_sha256"]


def _close(actual, expected, path=""):
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), path
        for key in expected:
            _close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, (str, bool)) and actual is not None:
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, err_msg=path)
    else:
        assert actual == expected, path


@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_are_unchanged(folders, case):
    metrics = metrics_without_wall_time(folders[case])
    if not _differs(NUMERIC_KEYS):
        assert metrics_sha256(metrics) == RECORD["cases"][case]["metrics_sha256"]
    else:  # other linear-algebra kernels: the same numbers to rounding
        _close(metrics, json.loads((DATA / f"{case}.metrics.json").read_text()))
