"""Loading the corpus and cutting long documents into chunks that fit the context.

The corpus is the dataset folder of docs/ARCHITECTURE.md §2 (or its Hub id at a pinned revision). A document
longer than the context is cut in its text, before any tokenization: at top-level definition boundaries
where tree-sitter parses its language, at line starts otherwise, and only at a character position inside a
line that alone is longer than a chunk. Each chunk is then tokenized on its own, so no token can straddle a
cut: that is how "never inside a token" holds (the earlier attempt cut tokenized text by characters).
"""

from __future__ import annotations

import bisect
import itertools
from pathlib import Path

import pyarrow as pa
from datasets import Dataset, DatasetDict, load_dataset

from flyte_llama_common.treesitter import parser as _parser

REQUIRED_COLUMNS = ("content", "language", "repo", "path")

# Corpus language → tree-sitter grammar: the corpus builder's map, plus the prose formats, whose top-level
# sections are good places to cut a long document even though their parse check says nothing.


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


def chunk_spans(text: str, language: str, max_chars: int) -> list[tuple[int, int]]:
    """Cut a document into character spans [start, end) of at most `max_chars` characters.

    Greedy from the start: end each chunk at the last top-level definition that fits (keeping chunks at
    least a quarter of `max_chars`, so one small def does not make a tiny chunk), else at the last line start
    that fits, else (one line longer than the chunk) after the last space that fits, else at `max_chars`.
    The spans cover the text exactly. Tree-sitter only runs on documents that need cutting.
    """
    n = len(text)
    if n <= max_chars:
        return [(0, n)]
    defs, lines = definition_starts(text, language), line_starts(text)
    cuts, start = [], 0
    while n - start > max_chars:
        limit, floor = start + max_chars, start + max(1, max_chars // 4)
        cut = (
            _last_in(defs, floor, limit) or _last_in(lines, floor, limit) or _last_in(lines, start + 1, limit)
        )
        if cut is None:  # one line longer than a chunk: cut inside it, preferably between words
            space = text.rfind(" ", floor, limit)
            cut = space + 1 if space != -1 else limit
        cuts.append(cut)
        start = cut
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


def is_char_cut(text: str, start: int) -> bool:
    """Whether a chunk starting at `start` was cut inside a line (see `chunk_spans`)."""
    return start > 0 and text[start - 1] != "\n"


def _last_in(sorted_positions: list[int], lo: int, hi: int) -> int | None:
    """The largest p in `sorted_positions` with lo <= p <= hi, or None."""
    i = bisect.bisect_right(sorted_positions, hi)
    return sorted_positions[i - 1] if i and sorted_positions[i - 1] >= lo else None


def chunk_text(text: str, language: str, max_chars: int) -> list[str]:
    """Convenience: the texts of `chunk_spans`."""
    return [text[start:end] for start, end in chunk_spans(text, language, max_chars)]


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
