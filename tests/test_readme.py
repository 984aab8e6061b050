"""The code in README.md (and docs/**/*.md, when there are docs) runs as a reader would run it.

- Every ```python block is a complete program. It runs in its own interpreter, with a deadline,
  against the embedded echo server, whose URL replaces the placeholder URLs
  (``wss://example.org/...``, ``ws://127.0.0.1:8765/...``; the path is kept). It must exit 0,
  and each ``# prints: TEXT`` comment must match a line of its output, in order.
- Every command of a ```sh block runs too (``.venv/bin/`` being this interpreter's directory),
  except what would install or recurse: ``python3 -m venv`` is skipped, ``pip install -e
  ".[extra]"`` is checked for the extras existing, and ``python -m pytest`` (this suite) is
  checked with ``--version``.
"""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 60  # seconds per block: generous for a loaded machine, short for a hang
BIN = Path(sys.executable).parent

_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PLACEHOLDER_URL = re.compile(r"wss?://(?:example\.org|127\.0\.0\.1:8765)/([^\s\"']*)")
_PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def markdown_files() -> list[Path]:
    docs = ROOT / "docs"
    return [ROOT / "README.md", *(sorted(docs.rglob("*.md")) if docs.is_dir() else [])]


def blocks(language: str) -> list[Block]:
    found = []
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match.group(1) == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append(Block(path, line, language, match.group(2)))
    return found


PYTHON_BLOCKS = blocks("python")
SHELL_BLOCKS = blocks("sh")


def with_server(text: str, url: str) -> str:
    """``text`` with every placeholder URL replaced by ``url`` (the path kept)."""
    return _PLACEHOLDER_URL.sub(lambda match: url + match.group(1), text)


def test_the_readme_has_code_to_run() -> None:
    assert len(PYTHON_BLOCKS) >= 1
    assert len(SHELL_BLOCKS) >= 1
    # Most blocks talk to the placeholder server; some start servers of their own.
    assert any(_PLACEHOLDER_URL.search(block.code) for block in PYTHON_BLOCKS)


def test_placeholder_urls_are_replaced_path_and_all() -> None:
    code = 'a("wss://example.org/chat") b("ws://127.0.0.1:8765/") c(wss://example.com/)'
    assert with_server(code, "ws://127.0.0.1:9/") == (
        'a("ws://127.0.0.1:9/chat") b("ws://127.0.0.1:9/") c(wss://example.com/)'
    )


async def run(command: list[str], *, stdin: bytes = b"") -> tuple[int, str, str]:
    with trio.fail_after(DEADLINE):
        result = await trio.run_process(
            command, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.name)
async def test_python_block_runs(block: Block, echo_url: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(with_server(block.code, echo_url), encoding="utf-8")
    status, out, err = await run([sys.executable, str(script)])
    assert status == 0, err
    lines = iter(out.splitlines())
    for expected in _PRINTS.findall(block.code):
        assert any(line == expected for line in lines), (expected, out)


def shell_commands() -> list[tuple[str, str]]:
    """(block name, command) for each command of the sh blocks, comments dropped."""
    commands = []
    for block in SHELL_BLOCKS:
        for raw in block.code.splitlines():
            line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
            commands += [(block.name, part.strip()) for part in line.split("&&") if part.strip()]
    return commands


@pytest.mark.parametrize(("where", "command"), shell_commands(), ids=str)
async def test_shell_command_works(where: str, command: str, echo_url: str) -> None:
    words = shlex.split(command)
    if words[:3] == ["python3", "-m", "venv"]:
        return  # creating a virtual environment is CI's own first step
    if "pip" in Path(words[0]).name and words[1:2] == ["install"]:
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
        for spec in words[2:]:
            for extra in re.findall(r"\[([^\]]*)\]", spec):
                assert set(extra.split(",")) <= set(extras), (where, command)
        return
    if words[-2:] == ["-m", "pytest"]:
        command += " --version"  # the suite itself is what is running now
    command = with_server(command.replace(".venv/bin/", f"{BIN}/"), echo_url)
    status, _out, err = await run(["bash", "-c", command])
    assert status == 0, (where, command, err)
    assert "Traceback" not in err
