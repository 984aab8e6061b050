"""Sphinx configuration: ``python -m sphinx -W -b html docs OUT`` builds the site."""

from __future__ import annotations

import trio_mws

project = "trio_mws"
author = "trio_mws contributors"
copyright = "2026, trio_mws contributors"
release = trio_mws.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# The API reference documents the public names, in the order the source gives them.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"undoc-members": False, "show-inheritance": True}
# Every reference must resolve: a broken cross-reference is an error under -W.
nitpicky = True
nitpick_ignore_regex = [
    # Standard library and third-party types named in signatures (no intersphinx: the
    # build must work offline).
    (r"py:class", r"(ssl|socket|os|trio|cryptography|enum|collections|typing|types)\..*"),
    (r"py:class", r"(random|ipaddress)\..*"),
    (r"py:class", r"(trio\.abc\..*|Certificate|_EventIterator|TaskStatus.*|Nursery)"),
    (r"py:class", r"(SendStream|AsyncResource|PathLike|SSLContext|Iterable|Sequence)"),
    (r"py:class", r"(Callable|Awaitable|AsyncIterator|Any|NoneType|ScriptHandler)"),
    (r"py:class", r"(CustomValidator|IntEnum|Flag|Exception|BaseException)"),
    (r"py:class", r"trio_websocket\..*"),
    # Private helpers named in public signatures (an iterator's own class, say).
    (r"py:.*", r".*\._[A-Za-z].*"),
]

html_theme = "furo"
html_title = f"trio_mws {release}"
html_static_path = ["_static"]

# `-b linkcheck` checks the links inside the site only: this build runs offline.
linkcheck_ignore = [r"https?://.*"]
