"""Documents → training sequences: tokenize, chunk to the context, apply FIM, close with EOS.

The output is a `datasets.Dataset` with one `input_ids` column, which TRL's SFTTrainer takes as is (and
packs). Work is batched: the long documents of a batch are tokenized (with offsets, for chunking) in one
call and all FIM pieces of a batch in two more, so the Rust tokenizer does the heavy lifting on all cores.
`python -m training prepare --recipe R --dataset D --dump N FILE.jsonl` writes what the model sees.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset
from tqdm.auto import tqdm

from training.data import chunk_spans
from training.fim import (
    FimPlan,
    FimTokens,
    assemble,
    clm_tokens,
    encode_batch,
    encode_pieces,
    fim_pieces,
    fim_tokens,
    plain_backend,
    plan_fim,
)

# BOS <PRE> <SUF> <MID> <EOT> EOS, plus slack for the few tokens that cutting a chunk into three pieces at
# characters can add (a token split at each cut, a leading "▁" on the prefix).
FIM_OVERHEAD = 6 + 10

# Documents of up to this many UTF-8 bytes per budget token are first encoded without offsets, which costs
# about 60% of an encoding with offsets. Code averages ~3.8 bytes per token, so nearly all of them fit and
# never need offsets; the few that do not are encoded a second time. Speed only: the output is the same.
COUNT_FIRST = 3


# (document index in the batch, chunk text, the chunk's ids when the chunking already computed them)
Chunked = tuple[int, str, list[int] | None]


@dataclass
class Example:
    input_ids: list[int]
    mode: str
    doc_index: int
    plan: FimPlan


@dataclass
class PrepareStats:
    documents: int = 0
    chunks: int = 0
    tokens: int = 0
    modes: Counter = field(default_factory=Counter)

    def add(self, example: Example) -> None:
        self.chunks += 1
        self.tokens += len(example.input_ids)
        self.modes[example.mode] += 1


class Preparer:
    """Turns batches of documents into training sequences of at most `max_length` tokens.

    Output is a pure function of (texts, languages, rng state): the same as preparing each document alone
    with `encode_piece` / `chunk_spans` (tests/test_prepare_batched.py holds that reference). Only the
    work is batched, so that the Rust tokenizer encodes hundreds of texts per call on all cores.
    """

    def __init__(self, tokenizer, max_length: int, fim_rate: float, spm_rate: float):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.fim_rate, self.spm_rate = fim_rate, spm_rate
        # FIM ids are required only when FIM is on; CLM needs just BOS/EOS.
        self.tokens: FimTokens = fim_tokens(tokenizer) if fim_rate > 0 else clm_tokens(tokenizer)
        self.budget = max_length - FIM_OVERHEAD
        if self.budget < 16:
            raise ValueError(f"max_length={max_length} leaves no room for text after the FIM tokens")

    def prepare(self, texts: list[str], languages: list[str], rng: np.random.Generator, first_index: int = 0):
        """One batch of documents → Examples, in document order (chunks in text order)."""
        return self.finish(self.chunk(texts, languages), languages, rng, first_index)

    def finish(
        self, chunks: list[Chunked], languages: list[str], rng: np.random.Generator, first_index: int = 0
    ):
        """A batch's chunks (from `chunk`) → Examples. All randomness is drawn here, in chunk order."""
        # Plan FIM for every chunk of the batch first (the only randomness, drawn in chunk order), then
        # encode all pieces in two batched calls: with and without SentencePiece's leading space.
        plans = [plan_fim(text, rng, self.fim_rate, self.spm_rate) for _, text, _ in chunks]
        spaced, nospace = [], []
        for plan, (_, _, ids) in zip(plans, chunks, strict=True):
            if plan.mode == "clm" and ids is not None:
                continue  # a CLM chunk whose tokens are known keeps them (the document's own tokenization)
            for text, leading_space in fim_pieces(plan):
                (spaced if leading_space else nospace).append(text)
        spaced_ids = iter(encode_pieces(self.tokenizer, spaced, leading_space=True))
        nospace_ids = iter(encode_pieces(self.tokenizer, nospace, leading_space=False))
        out = []
        for plan, (doc, text, ids) in zip(plans, chunks, strict=True):
            if plan.mode == "clm" and ids is not None:
                pieces = [ids]
            else:
                pieces = [next(spaced_ids if space else nospace_ids) for _, space in fim_pieces(plan)]
            input_ids = assemble(plan, pieces, self.tokens)
            if len(input_ids) > self.max_length:
                out.extend(self._split_again(text, languages[doc], rng, first_index + doc))
            else:
                out.append(Example(input_ids, plan.mode, first_index + doc, plan))
        return out

    def chunk(self, texts: list[str], languages: list[str]) -> list[Chunked]:
        """Cut the batch's documents to the budget: (document index, chunk text, its ids when known).

        A document whose UTF-8 size (+1 for SentencePiece's leading "▁") fits the budget cannot have more
        tokens than that (every token covers at least one byte), so it is not tokenized here at all. Other
        documents up to `COUNT_FIRST` bytes per budget token are counted first with the cheap ids-only
        encoding (most of them fit); only documents that need cutting are encoded with offsets.
        """
        sizes = [len(t) if t.isascii() else len(t.encode("utf-8")) for t in texts]
        medium = [i for i, n in enumerate(sizes) if self.budget < n + 1 <= COUNT_FIRST * self.budget]
        ids_of: dict[int, list[int]] = {}
        for i, ids in zip(medium, encode_batch(self.tokenizer, [texts[i] for i in medium]), strict=True):
            if len(ids) <= self.budget:
                ids_of[i] = ids
        long_docs = [i for i, n in enumerate(sizes) if n + 1 > self.budget and i not in ids_of]
        encoded = self._encode_with_offsets([texts[i] for i in long_docs])
        offsets_of = dict(zip(long_docs, encoded, strict=True))
        chunks: list[Chunked] = []
        for i, text in enumerate(texts):
            if i in offsets_of:
                ids, offsets = offsets_of[i]
                for c in chunk_spans(text, languages[i], offsets, self.budget):
                    chunks.append((i, text[c.start : c.end], ids[c.token_start : c.token_end]))
            else:
                chunks.append((i, text, ids_of.get(i)))
        return chunks

    def _encode_with_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """(ids, character offsets) of each text, without BOS/EOS, in one batched call."""
        if not texts:
            return []
        backend = plain_backend(self.tokenizer)
        if backend is None:
            enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
            return list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))
        return [(e.ids, e.offsets) for e in backend.encode_batch(texts, add_special_tokens=False)]

    def _split_again(self, text: str, language: str, rng: np.random.Generator, doc: int) -> list[Example]:
        """Rare: FIM cuts added more tokens than the slack allows. Halve the chunk and prepare the halves."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        half = max(16, (len(enc["input_ids"]) + 1) // 2)
        parts = [text[c.start : c.end] for c in chunk_spans(text, language, enc["offset_mapping"], half)]
        if len(parts) < 2:
            raise ValueError(
                f"a {len(enc['input_ids'])}-token chunk does not fit max_length={self.max_length}"
            )
        examples = self.prepare(parts, [language] * len(parts), rng)
        for ex in examples:
            ex.doc_index = doc
        return examples


def iter_examples(
    preparer: Preparer,
    texts: Iterable[str],
    languages: Iterable[str],
    rng: np.random.Generator,
    batch_size: int = 256,
) -> Iterator[Example]:
    """Stream Examples over a corpus split, `batch_size` documents at a time.

    Chunking the next batch (tokenizer and tree-sitter calls, which release the GIL) runs on a worker thread
    while this one plans and assembles the current batch, so the Python work overlaps the native work.
    Chunking draws no random numbers, so the output is the same as preparing the batches one by one.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending, start = None, 0
        for batch_t, batch_l in _batches(texts, languages, batch_size):
            future = pool.submit(preparer.chunk, batch_t, batch_l)
            if pending is not None:
                yield from preparer.finish(pending[0].result(), pending[1], rng, start)
                start += len(pending[1])
            pending = (future, batch_l)
        if pending is not None:
            yield from preparer.finish(pending[0].result(), pending[1], rng, start)


def _batches(
    texts: Iterable[str], languages: Iterable[str], size: int
) -> Iterator[tuple[list[str], list[str]]]:
    batch_t, batch_l = [], []
    for text, language in zip(texts, languages, strict=True):
        batch_t.append(text)
        batch_l.append(language)
        if len(batch_t) == size:
            yield batch_t, batch_l
            batch_t, batch_l = [], []
    if batch_t:
        yield batch_t, batch_l


def prepare_split(
    split, preparer: Preparer, seed: int, desc: str = "prepare", limit: int | None = None
) -> tuple[Dataset, PrepareStats]:
    """A corpus split (with `content` and `language`) → (Dataset of input_ids, stats)."""
    if limit is not None:
        split = split.select(range(min(limit, len(split))))
    stats, arrays, pending = PrepareStats(documents=len(split)), [], []
    rng = np.random.default_rng(seed)
    bar = tqdm(total=len(split), desc=desc, unit="doc", disable=None)
    for batch in split.iter(batch_size=1024):
        for ex in iter_examples(preparer, batch["content"], batch["language"], rng):
            stats.add(ex)
            pending.append(ex.input_ids)
        # Arrow int32 lists keep a large corpus in a fraction of the memory of Python lists.
        arrays.append(pa.array(pending, type=pa.list_(pa.int32())))
        pending = []
        bar.update(len(batch["content"]))
    bar.close()
    table = pa.table({"input_ids": pa.chunked_array(arrays, type=pa.list_(pa.int32()))})
    return Dataset(table), stats


def dump_examples(
    split, preparer: Preparer, seed: int, n: int, path: Path, tokenizer, max_docs: int = 5000
) -> list[dict]:
    """Write `n` prepared examples as JSON lines, covering every mode that occurs (CLM, PSM, SPM) first."""
    rng = np.random.default_rng(seed)
    split = split.select(range(min(max_docs, len(split))))
    by_mode: dict[str, list[Example]] = {}
    for ex in iter_examples(preparer, split["content"], split["language"], rng):
        by_mode.setdefault(ex.mode, []).append(ex)
        if len(by_mode) == 3 and all(len(v) >= n for v in by_mode.values()):
            break
    chosen, queues = [], [list(v) for v in by_mode.values()]
    while len(chosen) < n and any(queues):  # round-robin over the modes
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    rows = [describe(ex, split[ex.doc_index], preparer.tokens, tokenizer) for ex in chosen]
    tmp = path.with_name(path.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(path)
    return rows


def describe(ex: Example, doc: dict, tokens: FimTokens, tokenizer) -> dict:
    """One example for humans: ids, mode, and each segment between special tokens decoded separately."""
    specials = {
        tokens.bos_id: "BOS",
        tokens.prefix_id: "PRE",
        tokens.suffix_id: "SUF",
        tokens.middle_id: "MID",
        tokens.eot_id: "EOT",
        tokens.eos_id: "EOS",
    }
    segments, current = [], []
    for i in ex.input_ids:
        if i in specials:
            if current:
                segments.append(tokenizer.decode(current))
                current = []
            segments.append(f"<{specials[i]}>")
        else:
            current.append(i)
    if current:
        segments.append(tokenizer.decode(current))
    return {
        "repo": doc.get("repo"),
        "path": doc.get("path"),
        "language": doc.get("language"),
        "mode": ex.mode,
        "num_tokens": len(ex.input_ids),
        "pieces": {"prefix": ex.plan.prefix, "middle": ex.plan.middle, "suffix": ex.plan.suffix},
        "segments": segments,
        "input_ids": ex.input_ids,
    }


def tokenizer_for(config, train_split):
    """The recipe's tokenizer: the tiny one is trained on the train split exactly as `train` builds it."""
    from training.modeling import load_tokenizer, pin_revision
    from training.tiny import build_tiny_tokenizer, sample_texts

    if config.is_tiny:
        return build_tiny_tokenizer(
            sample_texts(train_split["content"], config.tiny_tokenizer_chars), config.tiny_vocab_size
        )
    return load_tokenizer(
        config.model_name_or_path, pin_revision(config.model_name_or_path, config.model_revision)
    )


def add_args(parser) -> None:
    from training.config import add_recipe_args

    add_recipe_args(parser)
    parser.add_argument("--split", default=None, help="corpus split (default: the recipe's train split)")
    parser.add_argument(
        "--dump", nargs=2, metavar=("N", "FILE"), help="write N prepared examples (all modes) as JSON lines"
    )


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from training.config import recipe_from_args
    from training.data import load_corpus

    config, _ = recipe_from_args(args)
    split = args.split or config.train_split
    corpus = load_corpus(
        config.dataset, config.dataset_revision, tuple(dict.fromkeys([config.train_split, split]))
    )
    tokenizer = tokenizer_for(config, corpus[config.train_split])
    preparer = Preparer(tokenizer, config.max_length, config.effective_fim_rate, config.spm_rate)
    if args.dump:
        rows = dump_examples(
            corpus[split], preparer, config.seed, int(args.dump[0]), Path(args.dump[1]), tokenizer
        )
        print(f"wrote {len(rows)} examples ({', '.join(r['mode'] for r in rows)}) to {args.dump[1]}")
        return 0
    _, stats = prepare_split(corpus[split], preparer, config.seed, f"prepare {split}", config.max_train_docs)
    table = Table(title=f"prepared {split} ({config.recipe_name}, max_length {config.max_length})")
    for col in ("documents", "sequences", "tokens", "clm", "psm", "spm"):
        table.add_column(col, justify="right")
    m = stats.modes
    table.add_row(*map(str, (stats.documents, stats.chunks, stats.tokens, m["clm"], m["psm"], m["spm"])))
    Console().print(table)
    return 0
