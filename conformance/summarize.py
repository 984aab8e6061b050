#!/usr/bin/env python3
"""Summarise an Autobahn|Testsuite client report.

Usage::

    python conformance/summarize.py REPORT_DIR [AGENT ...] [--md] [--expect-cases N]

``REPORT_DIR`` is the fuzzingserver's ``outdir`` (it holds ``index.json``). Without
``AGENT`` every agent in the report is summarised.

For each agent it prints, per test-suite section, how many cases ended with each
``behavior`` (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED) and each
``behaviorClose`` (``close:OK``, ``close:WRONG CODE``, ...), plus the summed case
durations, then the ids of the cases that count as failures. ``--md`` prints the tables
as Markdown (for the README).

A case counts as a failure when its ``behavior`` is FAILED or UNIMPLEMENTED (trio_mws
implements permessage-deflate, so the compression sections must run), or when its
``behaviorClose`` is FAILED or UNCLEAN (what Autobahn's own HTML report marks red).

Exit status: 0 when every agent passed; 1 when a case failed or an agent's case count
differs from ``--expect-cases``; 2 when the report or an agent is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
"""``behavior`` values, in the column order of the table."""
CLOSE_BEHAVIORS = ("OK", "WRONG CODE", "FAILED BY CLIENT", "INFORMATIONAL", "UNCLEAN", "FAILED")
"""``behaviorClose`` values, in the column order of the table."""
PASSING_BEHAVIORS = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})
"""Any other ``behavior`` is a failure."""
FAILING_CLOSE_BEHAVIORS = frozenset({"FAILED", "UNCLEAN"})
"""``behaviorClose`` values that are failures (unknown values are failures as well)."""
MAX_LISTED = 40
"""Failure lists longer than this are cut short."""


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key for case ids such as ``"12.1.10"``."""
    return tuple(int(part) for part in case_id.split("."))


def is_failure(case: Mapping[str, Any]) -> bool:
    """Whether a case result counts as a conformance failure."""
    close = case["behaviorClose"]
    return case["behavior"] not in PASSING_BEHAVIORS or (
        close in FAILING_CLOSE_BEHAVIORS or close not in CLOSE_BEHAVIORS
    )


def _ordered(known: Sequence[str], seen: Iterable[str]) -> list[str]:
    """``known`` values followed by any unexpected values from ``seen``."""
    return list(known) + sorted(set(seen) - set(known))


def section_table(cases: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Build the per-section table for one agent: (header, rows), the last row is the total."""
    counts: dict[str, Counter[str]] = {}
    millis: Counter[str] = Counter()
    for case_id in sorted(cases, key=case_key):
        case = cases[case_id]
        section = case_id.split(".")[0] + ".*"
        counter = counts.setdefault(section, Counter())
        counter.update(["cases", case["behavior"], "close:" + case["behaviorClose"]])
        millis[section] += case.get("duration") or 0
    counts["total"] = sum(counts.values(), Counter())
    millis["total"] = sum(millis.values())

    seen = {key for counter in counts.values() for key in counter}
    behaviors = _ordered(BEHAVIORS, (k for k in seen if k != "cases" and ":" not in k))
    # close:OK always; the other close columns only when some case has them.
    closes = [
        c
        for c in _ordered(
            [f"close:{c}" for c in CLOSE_BEHAVIORS], (k for k in seen if k.startswith("close:"))
        )
        if c == "close:OK" or c in seen
    ]
    columns = ["cases", *behaviors, *closes]
    header = ["section", *columns, "secs"]
    rows = [
        [name, *(str(counter[c]) for c in columns), f"{millis[name] / 1000:.1f}"]
        for name, counter in counts.items()
    ]
    return header, rows


def format_table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Render a table as aligned plain text or as Markdown."""
    if markdown:
        lines = [header, ["---"] * len(header), *rows]
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in [header, *rows]
    )


def _id_list(ids: list[str]) -> str:
    """Space-separated ids, cut short after MAX_LISTED."""
    if not ids:
        return "-"
    more = f" ... (+{len(ids) - MAX_LISTED} more)" if len(ids) > MAX_LISTED else ""
    return " ".join(ids[:MAX_LISTED]) + more


def summarize_agent(
    agent: str, cases: Mapping[str, Mapping[str, Any]], markdown: bool, expect: int | None
) -> bool:
    """Print the summary of one agent; return whether it passed."""
    header, rows = section_table(cases)
    print(f"**{agent}**\n" if markdown else f"== {agent} ==")
    print(format_table(header, rows, markdown))
    print()

    ids = sorted(cases, key=case_key)
    failed = [c for c in ids if cases[c]["behavior"] == "FAILED"]
    unimplemented = [c for c in ids if cases[c]["behavior"] == "UNIMPLEMENTED"]
    # The remaining failures: bad behaviorClose, or a behavior this script does not know.
    listed = set(failed) | set(unimplemented)
    other = [c for c in ids if is_failure(cases[c]) and c not in listed]
    print(f"{agent}: {len(failed)} FAILED: {_id_list(failed)}")
    print(f"{agent}: {len(unimplemented)} UNIMPLEMENTED: {_id_list(unimplemented)}")
    print(f"{agent}: {len(other)} more failed (behaviorClose or other): {_id_list(other)}")
    passed = not (failed or unimplemented or other)
    if expect is not None and len(ids) != expect:
        passed = False
        print(f"{agent}: report has {len(ids)} cases, expected {expect}")
    print(f"{agent}: {'PASSED' if passed else 'FAILED'}\n")
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description="Summarise an Autobahn|Testsuite client report (see module docstring)."
    )
    parser.add_argument("report_dir", type=Path, help="the fuzzingserver outdir (has index.json)")
    parser.add_argument("agents", nargs="*", metavar="AGENT", help="agents (default: all)")
    parser.add_argument("--md", action="store_true", help="print Markdown tables")
    parser.add_argument(
        "--expect-cases", type=int, metavar="N", help="fail unless each agent ran N cases"
    )
    args = parser.parse_args(argv)

    index_path = args.report_dir / "index.json"
    try:
        index: dict[str, dict[str, dict[str, Any]]] = json.loads(index_path.read_text())
    except FileNotFoundError:
        print(f"no report {index_path}: did the client reach /updateReports?", file=sys.stderr)
        return 2
    agents: list[str] = args.agents or sorted(index)
    missing = [agent for agent in agents if agent not in index]
    if missing or not agents:
        have = ", ".join(sorted(index)) or "none"
        print(f"agent(s) {', '.join(missing)} not in {index_path} (have: {have})", file=sys.stderr)
        return 2

    results = [summarize_agent(a, index[a], args.md, args.expect_cases) for a in agents]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
