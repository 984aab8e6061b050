"""Aggregate raw benchmark results into markdown tables, target checks and a ratio chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clients import CLIENTS
from bench.targets import SUBJECT, TARGETS, Target
from bench.workloads import WORKLOADS

#: The clients every row is compared with, in column order.
BASELINES = ("websockets_asyncio", "aiohttp", "websockets_trio")
#: The baseline of the chart's lower panel.
CHART_BASELINE = "websockets_asyncio"


@dataclass
class Row:
    """Median figures of one client on one workload over all runs."""

    workload: str
    client: str
    value: float
    spread: float  # (max - min) / median over the runs
    runs: int
    #: Ratio to each baseline client (higher is better; see :func:`ratio`); None if missing.
    ratios: dict[str, float | None]
    p50_us: float | None
    p99_us: float | None
    client_cpu: float | None
    client_cpu_us_per_op: float | None
    server_cpu: float | None
    other_cpu: float | None


def ratio(value: float, base: float | None, higher_is_better: bool) -> float | None:
    """``value / base``, or ``base / value`` when lower is better: > 1 means better."""
    if not base or not value:
        return None
    return value / base if higher_is_better else base / value


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
        for client, runs in per_client.items():
            if not runs:
                continue
            values = [r["value"] for r in runs]
            value = medians[workload, client]
            base_workload = spec.baseline or workload
            rows.append(
                Row(
                    workload=workload,
                    client=client,
                    value=value,
                    spread=(max(values) - min(values)) / value if value else 0.0,
                    runs=len(runs),
                    ratios={
                        b: ratio(value, medians.get((base_workload, b)), spec.higher_is_better)
                        for b in BASELINES
                    },
                    p50_us=_median(runs, "p50_us"),
                    p99_us=_median(runs, "p99_us"),
                    client_cpu=_median(runs, "client_cpu"),
                    client_cpu_us_per_op=_median(runs, "client_cpu_us_per_op"),
                    server_cpu=_median(runs, "server_cpu"),
                    other_cpu=_median(runs, "other_cpu"),
                )
            )
    return rows


#: Informational rows of the target table: no target, compared with one client.
INFO = (Target("latency-same-core", "websockets_asyncio"), Target("wss-handshake", "aiohttp"))


def target_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """One entry per target (and informational row) whose workload was measured."""
    by_key = {(r.workload, r.client): r for r in rows}
    out = []
    for target in (*TARGETS, *INFO):
        mine = by_key.get((target.workload, SUBJECT))
        if mine is None:
            continue
        spec = WORKLOADS[target.workload]
        base = by_key.get((target.workload, target.baseline)) if target.baseline else None
        versus = ratio(mine.value, base.value if base else None, spec.higher_is_better)
        if target.max_value is not None:
            versus = ratio(mine.value, target.max_value, spec.higher_is_better)
        label = CLIENTS[target.baseline].label if target.baseline else None
        is_target = target.min_ratio is not None or target.max_value is not None
        out.append(
            {
                "workload": target.workload,
                "title": spec.title,
                "unit": spec.unit,
                "op": spec.op,
                "baseline": target.baseline,
                "target": target.describe(label, spec.unit) if is_target else None,
                "value": mine.value,
                "baseline_value": base.value if base else target.max_value,
                "ratio": versus,
                # The ratio to reach: a bound is met when bound / value >= 1.
                "goal": 1.0 if target.max_value is not None else target.min_ratio,
                "met": target.met(mine.value, versus) if is_target else None,
                "cpu_us_per_op": mine.client_cpu_us_per_op,
                "baseline_cpu_us_per_op": base.client_cpu_us_per_op if base else None,
                # Baseline CPU / trio_mws CPU per op: steadier than throughput on a busy machine.
                "cpu_ratio": ratio(
                    mine.client_cpu_us_per_op or 0.0,
                    base.client_cpu_us_per_op if base else None,
                    higher_is_better=False,
                ),
            }
        )
    return out


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def targets_markdown(targets: list[dict[str, Any]]) -> list[str]:
    """The target table: trio_mws against each target's baseline, and whether it is met."""
    lines = [
        "| workload | trio_mws | baseline | ratio | target | met | client CPU per op: "
        "trio_mws / baseline | CPU ratio |",
        "|---|--:|--:|--:|---|:-:|--:|--:|",
    ]
    for t in targets:
        baseline = CLIENTS[t["baseline"]].label if t["baseline"] else "bound"
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        cpu = "-"
        if t["cpu_us_per_op"] is not None:
            mine, base = _cpu(t["cpu_us_per_op"]), _cpu(t["baseline_cpu_us_per_op"])
            cpu = f"{mine} / {base} µs per {t['op']}"
        lines.append(
            f"| {t['title']} | {_fmt_value(t['value'])} {t['unit']} "
            f"| {_fmt_value(t['baseline_value'])} ({baseline}) | {_fmt(t['ratio'], '.2f', 'x')} "
            f"| {t['target'] or 'no target'} | {met} | {cpu} | {_fmt(t['cpu_ratio'], '.2f', 'x')} |"
        )
    return lines


def _cpu(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    """Render the result tables (and a header describing the run) as markdown."""
    before, after = meta.get("load_before"), meta.get("load_after")
    lines = [
        "# trio_mws benchmark",
        "",
        f"- date: {meta['date']}; machine: {meta['machine']}; `{meta.get('command', '')}`, "
        f"{meta['elapsed_s']:.0f} s",
        f"- Python {meta['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- echo servers: {meta['server']} (plain and TLS), websockets asyncio with "
        "permessage-deflate for the compressed row; one separate process. Each client runs in "
        f"its own process; asyncio clients on the {meta.get('asyncio_loop', 'asyncio')} loop; "
        "clients interleaved per round",
        f"- {meta['layout']}",
        f"- {meta['runs']} round(s); figures are medians; *spread* = (max - min) / median",
        f"- sizes: {meta['params']}",
        "- ratios: client / baseline from the same rounds; for memory and CPU per message "
        "(lower is better) baseline / client, so > 1 is better everywhere; *CPU ratio*: "
        "baseline / trio_mws client CPU per op (a target is judged on *ratio*; on a busy "
        "machine the CPU ratio is the steadier of the two)",
        "- client CPU per op: CPU time of the client process only (user + system) over the "
        "timed section, divided by its messages, round trips or connections; CPU %: share of "
        "one core used by the client / server process; *other* = the rest of the machine "
        "(other processes, hypervisor steal; from 10 ms ticks)",
        *_load_lines(before, after),
        *load_warning(rows, meta),
        "",
        "## Targets (issue 7)",
        "",
        *targets_markdown(target_rows(rows)),
        "",
        "## All figures",
        "",
        "| workload | client | value | unit | vs websockets asyncio | vs aiohttp "
        "| vs websockets.trio | spread | p50 µs | p99 µs | client CPU per op | client CPU "
        "| server CPU | other CPU |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        spec = WORKLOADS[row.workload]
        ratios = " | ".join(_fmt(row.ratios[b], ".2f", "x") for b in BASELINES)
        per_op = "-" if row.client_cpu_us_per_op is None else f"{_cpu(row.client_cpu_us_per_op)} µs"
        lines.append(
            f"| {spec.title} | {CLIENTS[row.client].label} | {_fmt_value(row.value)} "
            f"| {spec.unit} | {ratios} | {row.spread:.0%} "
            f"| {_fmt(row.p50_us)} | {_fmt(row.p99_us)} | {per_op} / {spec.op} "
            f"| {_fmt(row.client_cpu, '.0%')} | {_fmt(row.server_cpu, '.0%')} "
            f"| {_fmt(row.other_cpu, '.0%')} |"
        )
    lines += ["", *server_check(rows, meta)]
    if meta.get("errors"):
        lines += ["", "## Errors", ""]
        lines += [f"- {e}" for e in meta["errors"]]
    return "\n".join(lines) + "\n"


def _load_lines(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The machine's load average and other processes' CPU use before and after the run."""
    if not before or not after:
        return []

    def one(load: dict[str, Any]) -> str:
        averages = ", ".join(f"{x:.2f}" for x in load["loadavg"])
        return f"load average {averages}, other processes {load['busy_cores']:.0%} of a core"

    return [f"- machine load before the run: {one(before)}; after: {one(after)}"]


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
    "aiohttp": "#ff7f0e",
    "websockets_trio": "#9467bd",
    "trio_websocket": "#2ca02c",
    "raw": "#7f7f7f",
}


def chart(rows: list[Row], path: Path) -> bool:
    """Draw the targets and every client's ratio to websockets asyncio; False without matplotlib.

    Top: trio_mws's ratio to each target's baseline (the memory bound as bound / value), the
    target as a black tick, green when met. Bottom: ratios of every client to websockets
    asyncio per workload. Bars read "higher is better" (log scale).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    targets = [t for t in target_rows(rows) if t["ratio"] is not None]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [1, 1.3]}
    )
    lowest = highest = 1.0
    for i, t in enumerate(targets):
        goal = t["goal"]
        color = "#2ca02c" if t["met"] else "#d62728" if t["met"] is False else "#7f7f7f"
        bars = top.bar([i], [t["ratio"]], 0.6, color=color)
        top.bar_label(bars, fmt="%.2f", fontsize=8, padding=1)
        if goal:
            top.plot([i - 0.4, i + 0.4], [goal, goal], color="black", linewidth=2)
        lowest = min(lowest, t["ratio"])
        highest = max(highest, t["ratio"], goal or 1.0)
    top.set_xticks(
        range(len(targets)),
        [
            f"{WORKLOADS[t['workload']].short}\nvs "
            + (_short_label(t["baseline"]) if t["baseline"] else "bound")
            for t in targets
        ],
        fontsize=7,
    )
    top.set_title("trio_mws against its targets (black tick; green: met, red: missed)")
    top.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    _log_axis(top, lowest, highest)
    lowest = highest = 1.0

    workloads = [w for w in WORKLOADS if any(r.workload == w for r in rows)]
    clients = [c for c in CLIENTS if c != CHART_BASELINE and any(r.client == c for r in rows)]
    by_key = {(r.workload, r.client): r for r in rows if r.ratios.get(CHART_BASELINE)}
    most = max((sum((w, c) in by_key for c in clients) for w in workloads), default=1)
    width = 0.8 / max(1, most)
    labelled: set[str] = set()
    for j, workload in enumerate(workloads):
        present = [c for c in clients if (workload, c) in by_key]
        for i, client in enumerate(present):
            value = by_key[workload, client].ratios[CHART_BASELINE]
            assert value is not None
            lowest = min(lowest, value)
            highest = max(highest, value)
            x = j + (i - (len(present) - 1) / 2) * width
            label = None if client in labelled else CLIENTS[client].label
            labelled.add(client)
            bars = bottom.bar([x], [value], width, label=label, color=COLORS.get(client))
            bottom.bar_label(bars, fmt="%.2f", fontsize=6, padding=1, rotation=90)
    bottom.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="websockets asyncio")
    bottom.set_xticks(range(len(workloads)), [WORKLOADS[w].short for w in workloads], fontsize=7)
    bottom.set_title("every client relative to websockets asyncio (medians)")
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _log_axis(bottom, lowest, highest)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _short_label(client: str) -> str:
    return CLIENTS[client].label.replace("websockets", "ws")


def _log_axis(ax: Any, lowest: float, highest: float) -> None:
    """Log-scale y axis with power-of-two ticks spanning ``lowest`` to ``highest``."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [2.0**e for e in range(-6, 7)]
    ax.set_yscale("log")
    ax.set_ylim(max(t for t in ticks if t <= lowest * 0.9), highest * 1.5)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set_ylabel("ratio (higher is better, log)")
