"""Strip outputs, execution counts and run-specific metadata from the notebooks in ``notebooks/``
(they are committed without outputs; ``tests/test_notebooks.py`` checks it)::

    .venv/bin/python -m tests.strip_notebooks            # every notebook
    .venv/bin/python -m tests.strip_notebooks PATH ...   # the given ones
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def strip(path: Path) -> bool:
    """Strip one notebook in place; return whether it changed."""
    text = path.read_text()
    notebook = json.loads(text)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        for key in ("execution", "collapsed", "scrolled"):
            cell.get("metadata", {}).pop(key, None)
    notebook.get("metadata", {}).pop("widgets", None)
    new = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new)
    return new != text


def main(argv=None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        if strip(path):
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
