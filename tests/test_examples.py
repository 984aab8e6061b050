"""Each example runs against the embedded echo server and prints what its docstring says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "echo_client.py": ["UTF8: hello", "BINARY: 010203", "sent 2, received 2"],
    "windows_style.py": [
        "negotiated protocol: chat.v1",
        "text: part one, part two, the end",
        "binary message complete after 3 pieces",
        "closed: Closed(code=1000, reason='done', initiated_locally=True)",
    ],
    "nursery_owner.py": ["ping from a nursery"],
    "error_handling.py": [
        "ConnectError: status CANNOT_CONNECT",
        "get_status agrees: CANNOT_CONNECT",
    ],
}


def test_every_example_is_tested() -> None:
    found = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in EXPECTED[name]:
        assert expected in lines, (expected, lines)
