"""Documentation kept true by construction: the configuration reference is generated from the
models, every key has a meaning, and the project's pages link only to files that exist inside
the repository."""
import re
from pathlib import Path

import pytest

from reservoir.experiment.reference import missing_descriptions, render

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_configuration_reference_is_current():
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: run python -m reservoir.experiment.reference --write docs/configuration.md")


def test_every_configuration_key_has_a_meaning():
    assert missing_descriptions() == []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_stay_inside_the_repository_and_resolve(page):
    text = page.read_text()
    assert "../shared" not in text, f"{page.name} points outside the repository"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+:", target):  # http(s):, mailto:
            continue
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} is outside the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"
