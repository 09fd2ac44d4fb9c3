"""Human-readable eval reports: ``report.md`` and PNG plots beside ``report.json``.

Plots (matplotlib, no display needed): ``recall_at_k.png`` (product recall@k, overall and per
tag), ``by_tag.png`` (recall@1 and source-factory precision@1 per tag, with 95 % intervals when
the report has them), ``latency_by_node.png`` (p50 and p95 wall time of each graph node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RECALL_KS = (1, 3, 5, 10)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _interval(intervals: dict[str, Any], key: str) -> str:
    span = intervals.get(key)
    return f"[{span[0]:.3f}, {span[1]:.3f}]" if span else ""


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    groups = {"all": report["metrics"], **report.get("by_tag", {})}

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, metrics in groups.items():
        ys = [metrics.get(f"product_recall@{k}") for k in RECALL_KS]
        if all(y is not None for y in ys):
            ax.plot(RECALL_KS, ys, marker="o", linewidth=2.5 if name == "all" else 1, label=name)
    ax.set(xlabel="k", ylabel="product recall@k", ylim=(0, 1.02), xticks=RECALL_KS,
           title="Product recall@k")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, loc="lower right")
    written.append(_save(fig, out_dir / "recall_at_k.png"))

    tags = list(report.get("by_tag", {}))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(tags) + 2), 4.5))
    width = 0.4
    for offset, key in ((-width / 2, "product_recall@1"), (width / 2, "source_factory_precision@1")):
        values = [report["by_tag"][t].get(key) or 0.0 for t in tags]
        spans = [(report.get("by_tag_intervals", {}).get(t) or {}).get(key) for t in tags]
        errors = [[v - s[0] if s else 0 for v, s in zip(values, spans)],
                  [s[1] - v if s else 0 for v, s in zip(values, spans)]]
        ax.bar([i + offset for i in range(len(tags))], values, width, yerr=errors, capsize=3,
               label=key)
    ax.set_xticks(range(len(tags)), tags, rotation=30, ha="right")
    ax.set(ylim=(0, 1.05), title="By tag (95% bootstrap intervals)")
    ax.legend(fontsize=8)
    written.append(_save(fig, out_dir / "by_tag.png"))

    nodes = report.get("node_latency_ms") or {}
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(nodes)
    ax.barh([i + 0.2 for i in range(len(names))], [nodes[n]["p50"] for n in names], 0.4,
            label="p50")
    ax.barh([i - 0.2 for i in range(len(names))], [nodes[n]["p95"] for n in names], 0.4,
            label="p95")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="ms", title="Latency per graph node")
    if names:
        ax.legend(fontsize=8)
    written.append(_save(fig, out_dir / "latency_by_node.png"))
    return written


def markdown(report: dict[str, Any], plots: list[Path] = ()) -> str:
    intervals = report.get("intervals") or {}
    lines = [f"# Eval report: {Path(str(report.get('set') or 'eval set')).name}", "",
             f"- agent: {report.get('agent') or '-'}",
             f"- cases: {report.get('case_count')} ({report['metrics'].get('n')} scored, "
             f"{report['metrics'].get('n_errors')} failed)",
             f"- run at: {report.get('timestamp')}"]
    provenance = report.get("provenance") or {}
    for key in ("code_version", "catalog_fingerprint", "index_fingerprint", "set_sha256"):
        if provenance.get(key):
            lines.append(f"- {key.replace('_', ' ')}: `{provenance[key]}`")
    lines += ["", "## Metrics", "", "| metric | value | 95% interval |", "|---|---:|---|"]
    for key, value in report["metrics"].items():
        lines.append(f"| {key} | {_fmt(value)} | {_interval(intervals, key)} |")
    tags = list(report.get("by_tag", {}))
    if tags:
        keys = [k for k in report["metrics"] if k not in ("n_errors",)]
        lines += ["", "## By tag", "", "| metric | " + " | ".join(tags) + " |",
                  "|---|" + "---:|" * len(tags)]
        for key in keys:
            cells = [_fmt(report["by_tag"][t].get(key)) for t in tags]
            if any(cell != "-" for cell in cells):
                lines.append(f"| {key} | " + " | ".join(cells) + " |")
    nodes = report.get("node_latency_ms") or {}
    if nodes:
        lines += ["", "## Latency per node (ms)", "", "| node | p50 | p95 |", "|---|---:|---:|"]
        lines += [f"| {name} | {v['p50']} | {v['p95']} |" for name, v in nodes.items()]
    if report.get("errors"):
        lines += ["", "## Failed cases", ""]
        lines += [f"- `{e['id']}`: {e['error']}" for e in report["errors"]]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``report.md`` and the plots into ``out_dir``; return the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, out)
    md = out / "report.md"
    md.write_text(markdown(report, plots), encoding="utf-8")
    return [md, *plots]
