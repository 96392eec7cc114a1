"""The end-of-build summary tables (rich): files and bytes kept per repo and split, drops by reason,
dedup/decontamination by split pair and repo pair, redactions by kind and repo."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .record import SPLITS


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def kept_table(manifest: dict[str, Any]) -> Table:
    table = Table(title=f"{manifest['name']} v{manifest['version']}: kept files (MB) per repo and split")
    table.add_column("repo")
    table.add_column("commit")
    for split in SPLITS:
        table.add_column(f"{split} files", justify="right")
        table.add_column(f"{split} MB", justify="right")
    totals = {s: [0, 0] for s in SPLITS}
    for src in manifest["sources"]:
        per = manifest["per_repo"].get(src["name"], {})
        cells = []
        for split in SPLITS:
            c = per.get(split, {"files": 0, "bytes": 0})
            totals[split][0] += c["files"]
            totals[split][1] += c["bytes"]
            cells += [str(c["files"]), _mb(c["bytes"])]
        table.add_row(src["name"], src["commit_sha"][:10], *cells)
    table.add_section()
    table.add_row(
        "total", "", *[x for s in SPLITS for x in (str(totals[s][0]), _mb(totals[s][1]))], style="bold"
    )
    return table


def drops_table(manifest: dict[str, Any]) -> Table:
    table = Table(title="dropped files by stage and reason")
    table.add_column("stage")
    table.add_column("reason")
    table.add_column("files", justify="right")
    total = 0
    for stage, reasons in manifest["drops"].items():
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            table.add_row(stage, reason, str(n))
            total += n
    table.add_section()
    table.add_row("total", "", str(total), style="bold")
    return table


def dedup_table(manifest: dict[str, Any]) -> Table:
    dedup = manifest.get("dedup") or {}
    removed = dedup.get("removed", {})
    table = Table(
        title="dedup + decontamination",
        caption=f"removed {removed.get('files', 0)} of {dedup.get('input', {}).get('files', 0)} files "
        f"({_mb(removed.get('bytes', 0))} MB)",
    )
    table.add_column("removed ↔ kept")
    table.add_column("exact", justify="right")
    table.add_column("near", justify="right")
    for key in ("by_split_pair", "by_repo_pair"):
        for label, counts in dedup.get(key, {}).items():
            table.add_row(label, str(counts["exact"]), str(counts["near"]))
        table.add_section()
    return table


def redactions_table(manifest: dict[str, Any]) -> Table:
    red = manifest.get("redactions") or {}
    table = Table(title=f"redactions: {red.get('total', 0)} in {red.get('files', 0)} files")
    table.add_column("repo")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for repo, kinds in red.get("by_repo", {}).items():
        for kind, n in kinds.items():
            table.add_row(repo, kind, str(n))
    return table


def print_summary(manifest: dict[str, Any], console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and CI: rich would squeeze the tables into 80 columns
            console = Console(width=140)
    console.print(kept_table(manifest))
    console.print(drops_table(manifest))
    console.print(dedup_table(manifest))
    console.print(redactions_table(manifest))
