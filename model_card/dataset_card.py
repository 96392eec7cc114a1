"""The dataset card (README.md of the Hub dataset repo), rendered from the manifest and the exported data.

YAML metadata goes through huggingface_hub's DatasetCardData; `configs` (data_files per split) and
`dataset_info` (features, split sizes) come from `datasets`' DatasetInfosDict, measured on the exported
Parquet, because `load_dataset` enforces the split sizes written there. The body is the Jinja template
templates/dataset_card.md.j2; sections for dedup, decontamination and redaction appear when the
manifest carries their reports
(removals by reason, by split pair and by repo pair; redactions by kind and by repo), and the `infilling`
config's section once dataset_builder/infilling_config.py has added the benchmark tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md.j2"
SPLIT_ORDER = ("train", "validation", "test")


def size_category(n: int) -> str:
    """The Hub's size_categories label for n rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for limit, label in bounds:
        if n < limit:
            return label
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def human_bytes(n: int | float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _pair_rows(table: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """{"train↔test": {"exact": 1, "near": 2}} → rows with a spaced label, most removals first."""
    rows = [
        {"label": label.replace("↔", " ↔ ").replace("  ", " "), **counts, "total": sum(counts.values())}
        for label, counts in table.items()
    ]
    return sorted(rows, key=lambda r: (-r["total"], r["label"]))


def dedup_view(report: dict[str, Any]) -> dict[str, Any] | None:
    """What the card shows of manifest["dedup"]: totals, by split pair, by repo pair."""
    if not report:
        return None
    return {
        **report,
        "split_pairs": _pair_rows(report.get("by_split_pair", {})),
        "repo_pairs": _pair_rows(report.get("by_repo_pair", {})),
    }


def redaction_view(report: dict[str, Any]) -> dict[str, Any] | None:
    """What the card shows of manifest["redactions"]: totals by kind and by repo."""
    if not report:
        return None
    kinds = sorted(report.get("by_kind", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    repos = sorted(
        ((repo, sum(c.values()), c) for repo, c in report.get("by_repo", {}).items()),
        key=lambda r: (-r[1], r[0]),
    )
    return {**report, "kinds": kinds, "repos": repos}


def _per_repo_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for src in manifest["sources"]:
        per_split = manifest["per_repo"].get(src["name"], {})
        rows.append(
            {
                **src,
                "files": sum(c["files"] for c in per_split.values()),
                "bytes": sum(c["bytes"] for c in per_split.values()),
                "splits": ", ".join(s for s in SPLIT_ORDER if s in per_split) or "—",
            }
        )
    return rows


def _infilling_cells(summary: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """Tasks per (language, kind), from the manifest's per-task counts (see infilling_config.py)."""
    if not summary:
        return {}
    return {
        lang: {
            kind: summary.get("by_language_kind", {}).get(f"{lang}/{kind}", 0) for kind in summary["by_kind"]
        }
        for lang in summary["by_language"]
    }


def card_data(manifest: dict[str, Any], infos: DatasetInfosDict) -> DatasetCardData:
    """YAML metadata: license, language, task, size, configs (data_files per split) and dataset_info."""
    total = sum(s["files"] for s in manifest["splits"].values())
    languages = sorted(manifest["per_language"])
    data = DatasetCardData(
        license="apache-2.0",
        language=["code", "en"],
        task_categories=["text-generation"],
        size_categories=[size_category(total)],
        pretty_name=manifest["name"],
        tags=["code", "flyte", *languages],
        configs=[
            {
                "config_name": "default",
                "default": True,
                "data_files": [
                    {"split": s, "path": f"data/{s}-*.parquet"}
                    for s in SPLIT_ORDER
                    if s in manifest["splits"]
                ],
            },
            *(
                [
                    {
                        "config_name": "infilling",
                        "data_files": [{"split": "test", "path": "infilling/test-*.parquet"}],
                    }
                ]
                if manifest.get("infilling")
                else []
            ),
            *(
                [
                    {
                        "config_name": "api_usage",
                        "data_files": [{"split": "test", "path": "api_usage/test-*.parquet"}],
                    }
                ]
                if manifest.get("api_usage")
                else []
            ),
            *(
                [
                    {
                        "config_name": "execution",
                        "data_files": [{"split": "test", "path": "execution/test-*.parquet"}],
                    }
                ]
                if manifest.get("execution")
                else []
            ),
        ],
    )
    infos.to_dataset_card_data(data)
    return data


def render_dataset_card(manifest: dict[str, Any], infos: DatasetInfosDict) -> DatasetCard:
    """The complete card for the dataset folder described by `manifest`."""
    data = card_data(manifest, infos)
    splits = {s: manifest["splits"][s] for s in SPLIT_ORDER if s in manifest["splits"]}
    return DatasetCard.from_template(
        data,
        template_path=str(TEMPLATE),
        m=manifest,
        repo_id=manifest["config"].get("hub_repo_id") or manifest["name"],
        sources=_per_repo_rows(manifest),
        splits=splits,
        total_files=sum(s["files"] for s in splits.values()),
        total_bytes=sum(s["bytes"] for s in splits.values()),
        per_language=manifest["per_language"],
        split_order=[s for s in SPLIT_ORDER if s in splits],
        drops=manifest.get("drops", {}),
        dedup=dedup_view(manifest.get("dedup") or {}),
        redactions=redaction_view(manifest.get("redactions") or {}),
        filters=manifest["config"]["filters"],
        infilling=manifest.get("infilling"),
        api_usage=manifest.get("api_usage"),
        execution=manifest.get("execution"),
        infilling_cells=_infilling_cells(manifest.get("infilling")),
        hb=human_bytes,
    )
