"""Loading the corpus and cutting long documents into chunks that fit the context.

The corpus is the dataset folder of docs/ARCHITECTURE.md §2 (or its Hub id at a pinned revision). A document
longer than the context is cut at top-level definition boundaries where tree-sitter parses its language, at
line starts otherwise, and only ever between two tokens of the document's own tokenization, so no
identifier or merged token is split in half (the earlier attempt cut by characters).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetDict, load_dataset

REQUIRED_COLUMNS = ("content", "language", "repo", "path")

# Corpus language (docs/ARCHITECTURE.md §1) → tree-sitter-language-pack grammar name.
GRAMMARS = {
    "python": "python",
    "go": "go",
    "typescript": "typescript",
    "tsx": "tsx",
    "javascript": "javascript",
    "protobuf": "proto",
    "shell": "bash",
    "makefile": "make",
    "dockerfile": "dockerfile",
    "markdown": "markdown",
    "rst": "rst",
    "yaml": "yaml",
    "toml": "toml",
    "json": "json",
}


def load_corpus(
    dataset: str, revision: str | None = None, splits: tuple[str, ...] = ("train",)
) -> DatasetDict:
    """The corpus splits from a dataset folder (offline) or a Hub dataset id at `revision`."""
    if not dataset:
        raise ValueError("no dataset given: pass --dataset PATH (a corpus folder) or --dataset ORG/NAME")
    local = Path(dataset).expanduser()
    if local.exists():
        corpus = _read_folder(local)
    else:
        try:
            corpus = load_dataset(dataset, revision=revision)
        except Exception as exc:  # offline, missing repo, bad revision: say what to do
            raise RuntimeError(
                f"could not load dataset {dataset!r} at revision {revision!r} from the Hub ({exc}). "
                "Check the id and revision, or pass a local dataset folder with --dataset PATH."
            ) from exc
    for split in splits:
        if split not in corpus:
            raise ValueError(f"dataset {dataset!r} has no {split!r} split (it has {', '.join(corpus)})")
        missing = [c for c in REQUIRED_COLUMNS if c not in corpus[split].column_names]
        if missing:
            raise ValueError(f"dataset {dataset!r} split {split!r} lacks columns {missing}")
    return corpus


def _read_folder(folder: Path) -> DatasetDict:
    """The splits of a local dataset folder, read straight from its Parquet shards.

    Not `load_dataset(folder)`: datasets 5.2 keys its cache of a local folder on the card, not on the
    Parquet contents, so a rebuilt corpus with an unchanged README silently loads the old rows (or fails
    its split-size check). Reading the shards directly is always the folder's current content.
    """
    import pyarrow.parquet as pq

    shards: dict[str, list[Path]] = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        shards.setdefault(path.name.split("-")[0], []).append(path)
    if not shards:
        raise FileNotFoundError(f"{folder} is not a dataset folder (expected data/<split>-*.parquet)")
    return DatasetDict(
        {
            split: Dataset(pa.concat_tables([pq.read_table(p) for p in paths]))
            for split, paths in shards.items()
        }
    )


@cache
def _parser(language: str):
    name = GRAMMARS.get(language)
    if name is None:
        return None
    try:
        from tree_sitter_language_pack import get_parser

        return get_parser(name)
    except Exception:  # a grammar that is missing in this install: fall back to line boundaries
        return None


def definition_starts(text: str, language: str) -> list[int]:
    """Character offsets where top-level syntax nodes (def, class, func, type, …) start; [] when the
    language has no grammar or the file does not parse cleanly."""
    parser = _parser(language)
    if parser is None:
        return []
    data = text.encode("utf-8")
    tree = parser.parse(data)
    if tree.root_node.has_error:
        return []
    starts = [child.start_byte for child in tree.root_node.children]
    if not text.isascii():  # tree-sitter counts bytes; Python strings count characters
        starts = [len(data[:b].decode("utf-8", errors="ignore")) for b in starts]
    return starts


def line_starts(text: str) -> list[int]:
    """Character offsets of the first character of every line."""
    starts, i = [0], text.find("\n")
    while i != -1:
        starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


@dataclass(frozen=True)
class Chunk:
    """A span of a document: characters [start, end) and tokens [token_start, token_end) of its encoding."""

    start: int
    end: int
    token_start: int
    token_end: int


def token_boundaries(offsets: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(token indices k where a cut between token k-1 and k splits no token, their character offsets).

    Byte-fallback tokens of one character share its offsets, and a merged token such as ":\\n    " covers
    several characters: neither can be cut, which this excludes.
    """
    ks, chars = [], []
    for k in range(1, len(offsets)):
        start = offsets[k][0]
        if offsets[k - 1][1] <= start and offsets[k - 1][0] < start:
            ks.append(k)
            chars.append(start)
    return ks, chars


def chunk_spans(text: str, language: str, offsets: list[tuple[int, int]], budget: int) -> list[Chunk]:
    """Cut a document (tokenized with `offsets`) into spans of at most `budget` tokens.

    Greedy from the start: end each chunk at the last top-level definition that fits (keeping chunks at
    least a quarter of the budget, so one small def does not make a tiny chunk), else at the last line start
    that fits, else at the last token boundary that fits.
    """
    n = len(offsets)
    if n <= budget:
        return [Chunk(0, len(text), 0, n)]
    ks, chars = token_boundaries(offsets)

    def to_tokens(positions: list[int]) -> list[int]:
        # The boundary at or before each position: a def whose "\n" merged with the previous line's last
        # token is cut before that token, so the cut still falls between tokens.
        out = {ks[i - 1] for p in positions if (i := bisect.bisect_right(chars, p)) > 0}
        return sorted(out)

    defs, lines = to_tokens(definition_starts(text, language)), to_tokens(line_starts(text))
    cuts, start = [], 0
    while n - start > budget:
        limit, floor = start + budget, start + max(1, budget // 4)
        cut = (
            _last_in(defs, floor, limit) or _last_in(lines, floor, limit) or _last_in(lines, start + 1, limit)
        )
        cut = cut or _last_in(ks, start + 1, limit)
        if cut is None:  # cannot happen for a real tokenization (every token start is a boundary)
            raise ValueError("no token boundary to cut at: offsets do not look like a tokenization")
        cuts.append(cut)
        start = cut
    bounds = [0, *cuts, n]
    char_at = [0] + [offsets[k][0] for k in cuts] + [len(text)]
    return [Chunk(char_at[i], char_at[i + 1], bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _last_in(sorted_ks: list[int], lo: int, hi: int) -> int | None:
    """The largest k in `sorted_ks` with lo <= k <= hi, or None."""
    i = bisect.bisect_right(sorted_ks, hi)
    return sorted_ks[i - 1] if i and sorted_ks[i - 1] >= lo else None


def chunk_text(tokenizer, text: str, language: str, budget: int) -> list[str]:
    """Convenience: tokenize `text` and return its chunks' texts (see `chunk_spans`)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [text[c.start : c.end] for c in chunk_spans(text, language, enc["offset_mapping"], budget)]


def write_corpus_folder(out: str | Path, splits: dict[str, list[dict]]) -> Path:
    """Write `splits` ({"train": [{"content", "language", "repo", "path"}, …], …}) in the dataset folder
    layout of docs/ARCHITECTURE.md §2 (one Parquet shard per split). For tests and offline demos; the real
    corpus, with its card and manifest, comes from `python -m dataset_builder`."""
    import pyarrow.parquet as pq

    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    configs = []
    for split, rows in splits.items():
        name = f"data/{split}-00000-of-00001.parquet"
        pq.write_table(pa.Table.from_pylist(rows), out / name)
        configs.append(f"  - split: {split}\n    path: {name}")
    card = "---\nconfigs:\n- config_name: default\n  data_files:\n" + "\n".join(configs) + "\n---\n"
    (out / "README.md").write_text(card)
    return out
