"""Draw docs/benchmarks.png from the newest full (non-smoke) result of every scenario.

    bench/.venv/bin/python bench/chart.py [--results bench/results] [--out docs/benchmarks.png]

`bench/run` calls this after every full run, so the chart always shows the latest figures of
each scenario (each panel says which run and commit it comes from). One panel per scenario:
the medians of every server, rat_engine rows highlighted, the issue's target as a dashed line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# scenario key in the results JSON -> (title, median field, unit, higher is better, target)
PANELS: list[tuple[str, str, str, str, bool, float | None]] = [
    ("fanout", "S1 fan-out, 1,000 subscribers", "events_per_s", "deliveries/s", True, 120_000),
    ("fanout-10k", "S1 fan-out, 10,000 subscribers", "events_per_s", "deliveries/s", True, 100_000),
    ("latency", "S1 latency p99 at 5,000 deliveries/s", "p99_ms", "ms (lower is better)", False, 15),
    ("stream", "S2 one stream of small JSON events", "events_per_s", "events/s", True, 200_000),
    ("sync_clients", "S3 seed-style sync streams: clients done", "completed_within", "clients", True, None),
    ("idle", "S4 memory per idle stream", "kb_per_stream", "KB (lower is better)", False, 4),
    ("json", "S5 GET /json, wrk -c64", "rps", "requests/s", True, 50_000),
]


def newest_results(results: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """scenario -> (its section, the run's environment), from the newest non-smoke file."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for path in sorted(results.glob("*.json")):
        if path.stem.endswith("-smoke"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("args", {}).get("smoke"):
            continue
        for key, *_ in PANELS:
            section = data.get(key)
            if isinstance(section, dict) and section.get("median"):
                env = {**data.get("environment", {}), "args": data.get("args", {})}
                found[key] = (section, env)  # later files win
    return found


def draw(found: dict[str, tuple[dict[str, Any], dict[str, Any]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [panel for panel in PANELS if panel[0] in found]
    if not panels:
        raise SystemExit("chart: no full benchmark results yet (run bench/run --scenario ...)")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.3 * len(panels)), squeeze=False)
    for ax, (key, title, field, unit, higher, target) in zip(axes[:, 0], panels, strict=True):
        section, env = found[key]
        target_here = target
        if key == "sync_clients":
            title = f"{title} within 15 s (of {env['args'].get('clients', '?')})"
        # A server with no successful run gets no bar: "failed" next to its name instead of 0.
        rows = [
            (name if values.get("runs_ok") else f"{name} (failed)", values.get(field) or 0)
            for name, values in section["median"].items()
            if isinstance(values, dict)
        ]
        rows.sort(key=lambda row: row[1], reverse=not higher)
        names = [name for name, _ in rows][::-1]
        values = [value for _, value in rows][::-1]
        colors = ["#c0392b" if name.startswith("rat_engine") else "#95a5a6" for name in names]
        ax.barh(names, values, color=colors)
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.0f}" if value >= 100 else f" {value:,.1f}", va="center", fontsize=8)
        if target_here is not None:
            ax.axvline(target_here, color="#2c3e50", linestyle="--", linewidth=1)
            ax.text(target_here, -0.45, " target", fontsize=7, color="#2c3e50", va="top")
        stamp = f"{env.get('date', '?')[:16]} · rat_engine {env.get('rat_engine_commit', '?')}"
        ax.set_title(f"{title}  —  {stamp}", fontsize=9, loc="left")
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.18)
    fig.suptitle("rat_engine beside its peers (medians; one core per side; 2-core VM)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks.png")
    args = parser.parse_args()
    found = newest_results(args.results)
    draw(found, args.out)
    print(f"chart: {args.out} ({', '.join(sorted(found))})")


if __name__ == "__main__":
    main()
