"""Aggregate raw benchmark results into a markdown table and a ratio bar chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clients import CLIENTS
from bench.workloads import WORKLOADS

BASELINE = "websockets"


@dataclass
class Row:
    """Median figures of one client on one workload over all runs."""

    workload: str
    client: str
    value: float
    spread: float  # (max - min) / median over the runs
    runs: int
    ratio: float | None  # value / websockets.trio value (baseline workload, same run set)
    p50_us: float | None
    p99_us: float | None
    client_cpu: float | None
    server_cpu: float | None
    other_cpu: float | None


def _median(results: Sequence[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def aggregate(results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Row]:
    """Turn ``results[workload][client] -> [run results]`` into rows with medians and ratios."""
    medians: dict[tuple[str, str], float] = {}
    for workload, per_client in results.items():
        for client, runs in per_client.items():
            if runs:
                medians[workload, client] = statistics.median(r["value"] for r in runs)
    rows = []
    for workload, per_client in results.items():
        spec = WORKLOADS[workload]
        base = medians.get((spec.baseline or workload, BASELINE))
        for client, runs in per_client.items():
            if not runs:
                continue
            values = [r["value"] for r in runs]
            value = medians[workload, client]
            rows.append(
                Row(
                    workload=workload,
                    client=client,
                    value=value,
                    spread=(max(values) - min(values)) / value if value else 0.0,
                    runs=len(runs),
                    ratio=value / base if base else None,
                    p50_us=_median(runs, "p50_us"),
                    p99_us=_median(runs, "p99_us"),
                    client_cpu=_median(runs, "client_cpu"),
                    server_cpu=_median(runs, "server_cpu"),
                    other_cpu=_median(runs, "other_cpu"),
                )
            )
    return rows


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _fmt_value(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    """Render the result table (and a header describing the run) as markdown."""
    lines = [
        "# trio_mws benchmark",
        "",
        f"- date: {meta['date']}; machine: {meta['machine']}",
        f"- Python {meta['python']}; trio {meta['versions'].get('trio', '?')}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if k != "trio"),
        f"- echo server: {meta['server']} (separate process); each client runs in its own "
        "process; clients interleaved per round",
        f"- {meta['layout']}",
        f"- {meta['runs']} run(s); figures are medians; *spread* = (max - min) / median",
        f"- sizes: {meta['params']}",
        "- ratio = client / websockets.trio from the same run set (for memory, lower is "
        "better; the partial-mode row is compared with websockets.trio pipelined)",
        "- CPU columns: share of one core used by the client / server process over the timed "
        "section; *other* = the rest of the machine (other processes, hypervisor steal; "
        "from 10 ms ticks), which should be near 0%",
        *load_warning(rows, meta),
        "",
        "| workload | client | value | unit | ratio vs websockets.trio | spread | p50 µs "
        "| p99 µs | client CPU | server CPU | other CPU |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        spec = WORKLOADS[row.workload]
        lines.append(
            f"| {spec.title} | {CLIENTS[row.client].label} | {_fmt_value(row.value)} "
            f"| {spec.unit} | {_fmt(row.ratio, '.2f', 'x')} | {row.spread:.0%} "
            f"| {_fmt(row.p50_us)} | {_fmt(row.p99_us)} "
            f"| {_fmt(row.client_cpu, '.0%')} | {_fmt(row.server_cpu, '.0%')} "
            f"| {_fmt(row.other_cpu, '.0%')} |"
        )
    lines += ["", *server_check(rows, meta)]
    if meta.get("errors"):
        lines += ["", "## Errors", ""]
        lines += [f"- {e}" for e in meta["errors"]]
    return "\n".join(lines) + "\n"


def load_warning(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    """A warning line when the machine was busy with other work during the run."""
    others = [r.other_cpu for r in rows if r.other_cpu is not None]
    before = meta.get("background_load")
    worst = max(others, default=0.0)
    lines = []
    if meta.get("retried"):
        lines.append(
            f"- {meta['retried']} measurement(s) were redone because other load exceeded 15% "
            "of a CPU during them"
        )
    if worst < 0.15 and (before is None or before < 0.15):
        return lines
    return [
        *lines,
        f"- **warning: the machine was busy with other work** (before the run: "
        f"{_fmt(before, '.0%')} of a core; median other CPU up to {worst:.0%} in a row); "
        "figures are noisy: rerun on a quiet machine, or with --wait-quiet 600 --retries 2",
    ]


def server_check(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    """Summarise whether the echo server could be the bottleneck."""
    ws_rows = [r for r in rows if CLIENTS[r.client].websocket and r.server_cpu is not None]
    lines = ["## Is the server the bottleneck?", ""]
    if ws_rows:
        worst = max(ws_rows, key=lambda r: r.server_cpu or 0.0)
        lines.append(
            f"- highest server CPU during a WebSocket client's timed section: "
            f"{worst.server_cpu:.0%} of one core ({CLIENTS[worst.client].label}, "
            f"{worst.workload}; client at {_fmt(worst.client_cpu, '.0%')})"
        )
    headroom = meta.get("server_headroom")
    if headroom:
        lines.append(
            f"- headroom probe: a {headroom['client']} client (asyncio, separate process) "
            f"pipelining {headroom['messages']:,} x {headroom['size']} B messages through the "
            f"same server reached {headroom['value']:,.0f} msg/s with the server at "
            f"{headroom['server_cpu']:.0%} CPU"
        )
    lines.append(
        "- a client pinned near 100% CPU while the server stays well below it is client-bound"
    )
    return lines


COLORS = {
    "trio_mws": "#1f77b4",
    "trio_mws_partial": "#6baed6",
    "trio_websocket": "#2ca02c",
    "raw_tcp": "#7f7f7f",
}


def chart(rows: list[Row], path: Path) -> bool:
    """Draw ratios to websockets.trio per workload per client; return False without matplotlib.

    Bars read "higher is better": the memory ratio is inverted (websockets.trio / client).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, NullLocator
    except ImportError:
        return False
    workloads = [w for w in WORKLOADS if any(r.workload == w for r in rows)]
    clients = [c for c in CLIENTS if c != BASELINE and any(r.client == c for r in rows)]
    by_key = {(r.workload, r.client): r for r in rows if r.ratio}
    fig, ax = plt.subplots(figsize=(11, 5.5))
    most = max((sum((w, c) in by_key for c in clients) for w in workloads), default=1)
    width = 0.8 / max(1, most)
    labelled: set[str] = set()
    lowest = 1.0
    for j, workload in enumerate(workloads):
        present = [c for c in clients if (workload, c) in by_key]
        for i, client in enumerate(present):
            row = by_key[workload, client]
            assert row.ratio is not None
            ratio = row.ratio if WORKLOADS[workload].higher_is_better else 1 / row.ratio
            lowest = min(lowest, ratio)
            x = j + (i - (len(present) - 1) / 2) * width
            label = None if client in labelled else CLIENTS[client].label
            labelled.add(client)
            bars = ax.bar([x], [ratio], width, label=label, color=COLORS.get(client))
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="websockets.trio = 1")
    ax.set_xticks(range(len(workloads)), [WORKLOADS[w].short for w in workloads], fontsize=8)
    ax.set_yscale("log")
    ticks = [2.0**e for e in range(-6, 7)]
    ax.set_ylim(bottom=max(t for t in ticks if t <= lowest * 0.9))
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set_ylabel("ratio to websockets.trio (higher is better, log scale)")
    ax.set_title("trio WebSocket clients relative to websockets.trio (medians)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
