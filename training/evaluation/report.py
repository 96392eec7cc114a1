"""The infilling table `evaluate` prints: every system on the same tasks, each value with its 95% interval,
and the paired change adapter − base (or base − best baseline when there is no adapter)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

ROW_METRICS = (
    ("exact_match", "EM"),
    ("exact_match_strict", "EM strict"),
    ("edit_similarity", "edit sim"),
    ("valid_fill", "valid fill"),
    ("api_valid", "API valid"),
    ("nats_per_char_psm", "nats/char PSM"),
    ("nats_per_char_spm", "nats/char SPM"),
)


def cell(record: Mapping[str, Any] | None, metric: str) -> str:
    if not record or record.get(metric) is None:
        return "-"
    ci = (record.get("ci95") or {}).get(metric)
    text = f"{record[metric]:.3f}"
    return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text


def change(diff: Mapping[str, Any] | None, metric: str) -> str:
    entry = (diff or {}).get(metric)
    if not entry:
        return "-"
    ci = entry.get("ci95")
    text = f"{entry['value']:+.3f}"
    return f"{text} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else text


def infilling_table(infilling: Mapping[str, Any], title: str = "infilling") -> Table:
    models = [m for m in ("base", "adapter") if m in infilling]
    baselines = list(infilling.get("baselines") or {})
    systems = {m: infilling[m] for m in models} | {b: infilling["baselines"][b] for b in baselines}
    pair = "adapter - base" if len(models) == 2 else None
    diffs = infilling.get("differences") or {}
    table = Table(title=f"{title} (95% bootstrap intervals)")
    for col in ("metric", "slice", *systems, *([pair] if pair else [])):
        table.add_column(col, justify="left" if col in ("metric", "slice") else "right")
    first = next(iter(systems.values()))
    slices = [("overall", first.get("overall"))]
    if "fresh" in first:
        slices.append(("fresh", first["fresh"]))
    slices += [(f"kind {k}", v) for k, v in (first.get("by_kind") or {}).items()]
    for metric, label in ROW_METRICS:
        if all(((s.get("overall") or {}).get(metric)) is None for s in systems.values()):
            continue
        for name, record in slices:
            cells = [cell(_pick(s, name), metric) for s in systems.values()]
            if pair:
                cells.append(
                    change((diffs.get(pair) or {}).get(name), metric) if name in ("overall", "fresh") else ""
                )
            table.add_row(label, f"{name} ({record['tasks']})", *cells)
    return table


def _pick(block: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    if name in ("overall", "fresh"):
        return block.get(name)
    return (block.get("by_kind") or {}).get(name.split(" ", 1)[1])
