"""The course notebooks (docs/course/): structure, no stored outputs, claims tied to the text.

The notebooks are executed, with their claim checks, when the documentation site is built
(MyST-NB, ``nb_execution_raise_on_error``; see docs/conf.py); these tests check, without a
kernel, what must hold of the files themselves.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
COURSE = ROOT / "docs" / "course"
LESSONS = sorted(COURSE.glob("lesson*.ipynb"))

sys.path.insert(0, str(COURSE))
import coursekit  # noqa: E402


def _nb(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell: dict) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _markdown(nb: dict) -> str:
    text = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.sub(r"\s+", " ", text)


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _claims(nb: dict) -> list[tuple[str, list[str]]]:
    """(quote, tags of its cell) of every ``claim("...", ...)`` call in the code cells."""
    out = []
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_src(c))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
                assert isinstance(node.args[0], ast.Constant), ast.unparse(node)
                out.append((node.args[0].value, _tags(c)))
    return out


def test_six_lessons_in_the_course_index():
    assert [p.stem.split("-")[0] for p in LESSONS] == [f"lesson{i}" for i in range(1, 7)]
    index = (COURSE / "index.md").read_text()
    for p in LESSONS:
        assert f"\n{p.stem}\n" in index, f"{p.stem} missing from the course toctree"
        assert f"]({p.name})" in index, f"{p.stem} missing from the course table"


def test_no_committed_notebook_has_outputs():
    """Notebooks are stored stripped; outputs are made when the site is built."""
    skip = {".venv", "_build", ".ipynb_checkpoints", ".git", "node_modules"}
    found = [p for p in ROOT.rglob("*.ipynb") if not skip & set(p.relative_to(ROOT).parts)]
    assert set(LESSONS) <= set(found)
    for p in found:
        for i, c in enumerate(_nb(p)["cells"]):
            if c["cell_type"] == "code":
                assert c.get("outputs") == [], f"{p.name} cell {i} has outputs"
                assert c.get("execution_count") is None, f"{p.name} cell {i} was executed"


def test_old_teaching_notebook_moved_into_the_course():
    assert not (ROOT / "examples" / "teaching.ipynb").exists()


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_structure(path):
    nb = _nb(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    md = _markdown(nb)
    assert md.startswith("# Lesson "), "the first cell is the lesson's title"
    assert "**Learning goals.**" in md and "**The story.**" in md
    assert re.search(r"\*About \d\d minutes\.", md), "the lesson states its duration"
    minutes = int(re.search(r"\*About (\d\d) minutes", md).group(1))
    assert 20 <= minutes <= 40
    # exercises, each with a worked answer folded away (<details>: collapsed in Jupyter,
    # on GitHub and on the site alike)
    exercises = md.split("## Exercises", 1)[1]
    n_ex = len(re.findall(r"\*\*\d\.\*\*", exercises))
    n_ans = len(re.findall(r"<details> <summary>Answer</summary>", exercises))
    assert n_ex >= 3 and n_ans == n_ex
    # figures: every lesson draws several
    code = [_src(c) for c in nb["cells"] if c["cell_type"] == "code"]
    assert sum(bool(re.search(r"plt\.subplots|plot_\w+\(|\.plot\(", s)) for s in code) >= 3


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_widget_has_a_static_figure_above_it(path):
    """A widget cell's output is removed on the site: the same view is drawn just above it
    for the default values, so the lesson reads correctly without a kernel."""
    cells = [c for c in _nb(path)["cells"] if c["cell_type"] == "code"]
    widgets = [i for i, c in enumerate(cells) if "widgets.interact(" in _src(c)]
    if path.stem.startswith(("lesson3", "lesson6")):
        assert not widgets       # tables and sweeps: nothing to slide
        return
    assert widgets, "an interactive lesson without a widget"
    for i in widgets:
        assert "remove-output" in _tags(cells[i])
        view = re.search(r"widgets\.interact\(\s*(\w+)", _src(cells[i])).group(1)
        assert re.search(rf"^{view}\(\)\s*$", _src(cells[i - 1]), re.M), \
            f"{view}() is not drawn for its defaults above the widget"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_claim_quotes_the_text(path):
    """Each number or statement the text makes is checked by a ``claim`` in a hidden cell,
    and each claim's quote is found word for word in the lesson's text."""
    nb = _nb(path)
    md = _markdown(nb)
    claims = _claims(nb)
    assert len(claims) >= 5
    for quote, tags in claims:
        assert re.sub(r"\s+", " ", quote) in md, f"{quote!r} is not in the text"
        assert "remove-cell" in tags


@pytest.mark.parametrize(("text", "number", "half"), [
    ("peaks at 4.2 h", 4.2, 0.05), ("about 11 600 times", 11600, 0.5),
    ("only −0.09", -0.09, 0.005), ("(+0.50)", 0.5, 0.005), ("1,000 ng/mL", 1000, 0.5),
    ("3e-3 cm/min", 3e-3, 5e-4), ("about three times higher", 3, 0.5),
    ("about a quarter less", 0.25, 0.5),
])
def test_quoted_number(text, number, half):
    got, h = coursekit.quoted_number(text)
    assert got == pytest.approx(number) and h == pytest.approx(half)


def test_claim_fails_when_the_text_disagrees():
    coursekit.claim("peaks at 4.2 h", 4.24)
    coursekit.claim("peaks at 4.2 h", 4.15)
    with pytest.raises(AssertionError, match="the model gives 4.26"):
        coursekit.claim("peaks at 4.2 h", 4.26)
    coursekit.claim("about 30 times", 33.0, rel=0.15)
    with pytest.raises(AssertionError):
        coursekit.claim("about 30 times", 36.0, rel=0.15)
    with pytest.raises(AssertionError, match="does not show it"):
        coursekit.claim("the brain peaks later", False)
    with pytest.raises(ValueError):
        coursekit.claim("no number here", 1.0)


def test_every_public_module_has_an_api_page():
    import csfmodel

    api = ROOT / "docs" / "api"
    pages = {p.stem for p in api.glob("*.md")}
    for mod in pkgutil.iter_modules(csfmodel.__path__):
        if mod.name.startswith("_") or mod.name == "cli":
            continue
        assert mod.name in pages, f"docs/api/{mod.name}.md is missing (copy docs/api/drugs.md)"
        text = (api / f"{mod.name}.md").read_text()
        assert f".. automodule:: csfmodel.{mod.name}\n" in text
        importlib.import_module(f"csfmodel.{mod.name}")
