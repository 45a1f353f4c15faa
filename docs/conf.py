"""Sphinx configuration of the csfmodel documentation site and course.

Build (a warning is an error)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The course notebooks under ``docs/course/`` are stored without outputs and executed
here, once, by MyST-NB (nbclient, a real ipykernel); a failing cell, including the
checks of the numbers the text quotes, fails the build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import csfmodel  # noqa: E402

project = "csfmodel"
author = "csfmodel developers"
copyright = "csfmodel developers"
release = csfmodel.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "figures/*.md"]
templates_path = ["_templates"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# ---------------------------------------------------------------- MyST and notebooks
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"          # outputs are never committed: always execute
nb_execution_timeout = 600           # per cell: the first numba compile on a cold cache
nb_execution_raise_on_error = True   # a failing cell or claim check fails the build
nb_execution_show_tb = True
nb_merge_streams = True
# ipywidgets: the site shows the static figure drawn above each widget; the widget
# itself needs a kernel (its cell output is removed with the ``remove-output`` tag)
nb_ipywidgets_js: dict = {}           # no widget JavaScript from a CDN: the site is static

# ---------------------------------------------------------------- API reference
autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# ---------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"csfmodel {release}"
html_static_path: list[str] = []


# ---------------------------------------------------------------- README links
#: the README links to files of the repository by their path from its root; on the site
#: these become links to the file's source (a download), or plain text for a folder
_LINK = re.compile(r"(\[[^\]]*)\]\((?!https?://|#)([^)\s]+)\)")


def _readme_links(app, relative_path, parent_docname, content):
    """Rewrite the README's repository-relative links for the page that includes it.

    ``docs/X`` becomes ``X`` (a page or figure of this site); another page of the
    repository (``benchmarks/README.md``) or a folder is not on the site: its name
    stays, as text; any other file becomes a link to its source (a download).
    """
    if Path(relative_path).name != "README.md" or parent_docname != "readme":
        return

    def fix(m: re.Match) -> str:
        text, target = m.group(1), m.group(2)
        if target.startswith("docs/"):
            return f"{text}]({target[len('docs/'):]})"
        path = ROOT / target.split("#")[0]
        if path.is_dir() or path.suffix in (".md", ".ipynb"):
            return text[1:]                        # "[name" -> "name", no link
        return f"{text}](../{target})"

    content[0] = _LINK.sub(fix, content[0])


# ---------------------------------------------------------------- public names
_PUBLIC_NAMES = "```{csfmodel-public-names}\n```"


def _public_names(app, docname, source):
    """The table of the package's public names (``csfmodel._LAZY``), each linked to its
    documentation in the module that defines it, so that it never goes stale."""
    if _PUBLIC_NAMES not in source[0]:
        return
    rows = ["| name | module |", "|---|---|"]
    for name, module in sorted(csfmodel._LAZY.items(), key=lambda kv: (kv[1], kv[0])):
        rows.append(f"| {{py:obj}}`{name} <{module}.{name}>` | {{py:mod}}`{module}` |")
    source[0] = source[0].replace(_PUBLIC_NAMES, "\n".join(rows))


def setup(app):
    app.connect("include-read", _readme_links)
    app.connect("source-read", _public_names)
