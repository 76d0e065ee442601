"""The layers import only downwards, and no private name crosses a package (docs/architecture.md).

::

    experiment layer   reservoir.experiment (experiment files, task registry, runner, CLI), reservoir.__main__
    paradigms          tasks: inputs, teachers, schedules, their metrics
    analysis           reads run files and the engine's public types
    engine             reservoir (everything else)

Checked on the source (every import statement, also inside functions), so a cycle cannot hide
behind a function-local import.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reservoir", "paradigms", "analysis")

ALLOWED = {
    "engine": {"engine"},
    "analysis": {"analysis", "engine"},
    "paradigms": {"paradigms", "analysis", "engine"},
    "experiment": {"experiment", "paradigms", "analysis", "engine"},
}


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if module == "reservoir.__main__" or module == "reservoir.experiment" or module.startswith("reservoir.experiment."):
        return "experiment"
    return "engine" if top == "reservoir" else top


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            yield ".".join(parts), path, is_package


def imports(module: str, path: Path, is_package: bool):
    """``(line, imported module, imported names)`` of every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names = [alias.name for alias in node.names]
            yield node.lineno, target, names
            for name in names:  # "from package import module"
                yield node.lineno, f"{target}.{name}", []


ALL = list(modules())


def test_every_module_is_in_a_layer():
    assert {layer_of(m) for m, _, _ in ALL} == set(ALLOWED)


@pytest.mark.parametrize("module,path,is_package", ALL, ids=[m for m, _, _ in ALL])
def test_imports_go_only_downwards(module, path, is_package):
    layer = layer_of(module)
    wrong = [f"line {line}: imports {target} ({layer_of(target)} layer)"
             for line, target, _ in imports(module, path, is_package)
             if layer_of(target) is not None and layer_of(target) not in ALLOWED[layer]]
    assert not wrong, f"{module} ({layer} layer) may import only {sorted(ALLOWED[layer])}:\n" + "\n".join(wrong)


NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


# public names of the standard library that start with an underscore
STDLIB_API = {"_exit"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in NAMEDTUPLE_API | STDLIB_API


@pytest.mark.parametrize("module,path,is_package", ALL, ids=[m for m, _, _ in ALL])
def test_no_private_name_crosses_a_package(module, path, is_package):
    layer = layer_of(module)
    wrong = []
    for line, target, names in imports(module, path, is_package):
        if layer_of(target) not in (None, layer):
            wrong += [f"line {line}: from {target} import {name}" for name in names if _private(name)]
            wrong += [f"line {line}: import {target}" for part in target.split(".") if _private(part)]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # obj._private on anything but self/cls: another object's internals
        if (isinstance(node, ast.Attribute) and _private(node.attr)
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            wrong.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not wrong, f"{module} reaches into private names:\n" + "\n".join(wrong)
