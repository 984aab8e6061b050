"""The protocol package is sans-I/O: no trio, no sockets, no clock, no other WebSocket library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import trio_mws.protocol

FORBIDDEN = {"trio", "socket", "ssl", "select", "selectors", "asyncio", "wsproto", "websockets"}
# ``time`` is loaded by the interpreter itself, so its absence is checked in the sources.
FORBIDDEN_IN_SOURCE = FORBIDDEN | {"time", "datetime", "threading"}


def test_importing_the_package_loads_no_io_module() -> None:
    package = Path(trio_mws.protocol.__file__).parent.parent
    script = (
        "import sys, types\n"
        # a stand-in parent package, so that trio_mws/__init__.py (the connection) is not run
        "parent = types.ModuleType('trio_mws')\n"
        f"parent.__path__ = [{str(package)!r}]\n"
        "sys.modules['trio_mws'] = parent\n"
        "import trio_mws.protocol\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(result.stdout.split())
    assert "trio_mws" in loaded
    assert not loaded & FORBIDDEN


def test_no_module_of_the_package_imports_io_or_a_clock() -> None:
    for path in Path(trio_mws.protocol.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_IN_SOURCE, (path.name, name)
