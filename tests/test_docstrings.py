"""Every public name, method, property and field has a docstring (what the API reference shows).

Fields are documented with ``#:`` comments before their annotation (what Sphinx's autodoc
reads); methods, properties, classes and functions with docstrings. Run with ``-s`` to see
the count.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator

import trio_mws
import trio_mws.testing

MODULES = [trio_mws, trio_mws.testing]


def _field_docs(cls: type) -> Iterator[tuple[str, bool]]:
    """(field name, documented) for each annotated field in the class body."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    tree = ast.parse(source)
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            if name.startswith("_"):
                continue
            previous = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
            yield name, previous.startswith("#:")


def _members(cls: type) -> Iterator[tuple[str, bool]]:
    if issubclass(cls, BaseException) or cls.__module__.startswith("enum"):
        return
    is_enum = hasattr(cls, "__members__")
    if not is_enum:
        yield from _field_docs(cls)
    for name, attribute in vars(cls).items():
        if name.startswith("_") or is_enum:
            continue
        value = attribute
        if isinstance(attribute, (staticmethod, classmethod)):
            value = attribute.__func__
        if callable(value) or isinstance(value, property):
            yield name, bool(getattr(value, "__doc__", None))


def public_members() -> list[tuple[str, bool]]:
    """Every public name (and member) of the package, with whether it has documentation."""
    found: dict[str, bool] = {}
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if name == "__version__":
                continue
            qualified = f"{module.__name__}.{name}"
            found[qualified] = bool(inspect.getdoc(obj))
            if inspect.isclass(obj):
                for member, documented in _members(obj):
                    found[f"{qualified}.{member}"] = documented
    return sorted(found.items())


def test_every_public_member_is_documented() -> None:
    members = public_members()
    missing = [name for name, documented in members if not documented]
    print(f"\ndocstring coverage: {len(members) - len(missing)}/{len(members)} public members")
    assert not missing, f"undocumented: {missing}"
    assert len(members) > 120  # the check found the fields, not only the classes
