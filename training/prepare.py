"""Documents → training sequences: tokenize, chunk to the context, apply FIM, close with EOS.

The output is a `datasets.Dataset` with one `input_ids` column, which TRL's SFTTrainer takes as is (and
packs). FIM applies to documents that fit one context only, as in Code Llama; a longer one becomes CLM
chunks, BOS and the leading space on the first, EOS on the last. Long documents are cut in their text
(training.data.chunk_spans) to a character budget estimated from the token budget, so every character is
tokenized once: as part of its chunk's CLM text or FIM pieces, all those of a batch in two batched calls,
so the Rust tokenizer does the heavy lifting on all cores.
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

from flyte_llama_common.atomic import write_text_atomic
from training.data import chunk_spans, is_char_cut
from training.fim import (
    FimPlan,
    FimTokens,
    assemble,
    clm_tokens,
    decode_piece,
    encode_pieces,
    fim_pieces,
    fim_tokens,
    plan_fim,
)

# BOS <PRE> <SUF> <MID> <EOT> EOS, plus slack for the few tokens that cutting a chunk into three pieces at
# characters can add (a token split at each cut, a leading "▁" on the prefix). A chunk that still ends up
# longer than max_length is split again (Preparer._split_again).
FIM_OVERHEAD = 6 + 10

# Characters per token assumed when cutting documents before tokenizing them (chunks of up to
# (max_length - FIM_OVERHEAD) * CHARS_PER_TOKEN characters). A chunk denser than this does not fit and is
# split again and re-encoded (counted in PrepareStats.resplit): a low estimate costs context per chunk, a
# high one re-encoding. On the real corpus with the benchmark's BPE, full-size chunks have a median of 3.9
# characters per token and 3.0 re-splits 4% of sequences (a conda lock file, mostly); Code Llama's own
# tokenizer was not measured (no download here). Tune it with bench/bench_prepare.py --chars-per-token.
CHARS_PER_TOKEN = 3.0


@dataclass
class Chunked:
    doc: int  # index of the document in its batch
    text: str
    char_cut: bool  # starts inside a line (a line longer than a whole chunk was cut)
    first: bool = True  # starts the document: BOS and SentencePiece's leading space
    last: bool = True  # ends the document: EOS

    @property
    def whole(self) -> bool:
        """The whole document in one context: the only chunks FIM may apply to."""
        return self.first and self.last


@dataclass
class Example:
    input_ids: list[int]
    mode: str
    doc_index: int
    plan: FimPlan
    char_cut: bool = False
    resplit: bool = False  # made by splitting again a chunk whose encoding was longer than max_length


@dataclass
class PrepareStats:
    documents: int = 0
    chunks: int = 0
    tokens: int = 0
    modes: Counter = field(default_factory=Counter)
    resplit: int = 0  # sequences from chunks split again after encoding: many means CHARS_PER_TOKEN is high
    char_cuts: int = 0  # sequences that start inside a line

    def add(self, example: Example) -> None:
        self.chunks += 1
        self.tokens += len(example.input_ids)
        self.modes[example.mode] += 1
        self.resplit += example.resplit
        self.char_cuts += example.char_cut


class Preparer:
    """Turns batches of documents into training sequences of at most `max_length` tokens.

    Output is a pure function of (texts, languages, rng state): the same as preparing each document alone
    with `chunk_text` / `encode_piece` (tests/test_prepare_batched.py holds that reference). Only the work
    is batched, so that the Rust tokenizer encodes hundreds of texts per call on all cores.
    """

    def __init__(
        self,
        tokenizer,
        max_length: int,
        fim_rate: float,
        spm_rate: float,
        chars_per_token: float = CHARS_PER_TOKEN,
    ):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.fim_rate, self.spm_rate = fim_rate, spm_rate
        # FIM ids are required only when FIM is on; CLM needs just BOS/EOS.
        self.tokens: FimTokens = fim_tokens(tokenizer) if fim_rate > 0 else clm_tokens(tokenizer)
        budget = max_length - FIM_OVERHEAD
        if budget < 16:
            raise ValueError(f"max_length={max_length} leaves no room for text after the FIM tokens")
        self.max_chars = int(budget * chars_per_token)

    def prepare(self, texts: list[str], languages: list[str], rng: np.random.Generator, first_index: int = 0):
        """One batch of documents → Examples, in document order (chunks in text order)."""
        return self.finish(self.chunk(texts, languages), languages, rng, first_index)

    def chunk(self, texts: list[str], languages: list[str]) -> list[Chunked]:
        """Cut the batch's documents to `max_chars` characters each. Text only: nothing is tokenized here."""
        out = []
        for i, text in enumerate(texts):
            spans = chunk_spans(text, languages[i], self.max_chars)
            for k, (start, end) in enumerate(spans):
                out.append(Chunked(i, text[start:end], is_char_cut(text, start), k == 0, k == len(spans) - 1))
        return out

    def finish(
        self, chunks: list[Chunked], languages: list[str], rng: np.random.Generator, first_index: int = 0
    ) -> list[Example]:
        """A batch's chunks (from `chunk`) → Examples. All randomness is drawn here, in chunk order."""
        # Plan FIM for every whole document of the batch first (the only randomness, drawn in chunk order),
        # then encode all pieces in two batched calls: with and without SentencePiece's leading space.
        # Code Llama applies FIM "to documents that are not cut across multiple model contexts only"; the
        # chunks of a longer document are CLM and draw nothing. Like a document cut by the context in
        # Code Llama's packed stream, only the first chunk has BOS and the file-start space, only the last
        # has EOS (a continuation is not a new file, and the model must not learn to stop mid-file).
        plans = [
            plan_fim(c.text, rng, self.fim_rate, self.spm_rate) if c.whole else FimPlan("clm", c.text, "", "")
            for c in chunks
        ]
        pieces = [
            fim_pieces(plan) if c.whole else [(c.text, c.first)]
            for plan, c in zip(plans, chunks, strict=True)
        ]
        spaced = [text for p in pieces for text, space in p if space]
        nospace = [text for p in pieces for text, space in p if not space]
        spaced_ids = iter(encode_pieces(self.tokenizer, spaced, leading_space=True))
        nospace_ids = iter(encode_pieces(self.tokenizer, nospace, leading_space=False))
        out = []
        for plan, chunk, chunk_pieces in zip(plans, chunks, pieces, strict=True):
            ids = [next(spaced_ids if space else nospace_ids) for _, space in chunk_pieces]
            input_ids = assemble(plan, ids, self.tokens, add_eos=chunk.last, add_bos=chunk.first)
            if len(input_ids) > self.max_length:
                out.extend(self._split_again(chunk, languages[chunk.doc], rng, first_index + chunk.doc))
            else:
                out.append(Example(input_ids, plan.mode, first_index + chunk.doc, plan, chunk.char_cut))
        return out

    def _split_again(self, chunk: Chunked, language: str, rng: np.random.Generator, doc: int):
        """A chunk whose text was denser than `max_chars` assumed (or grew by FIM's cuts): cut it in halves at
        its definition/line boundaries and prepare them (recursively, should a half still not fit). Rare with
        a conservative CHARS_PER_TOKEN; each time costs one more encoding of the chunk's text."""
        text = chunk.text
        spans = chunk_spans(text, language, (len(text) + 1) // 2)
        if len(spans) < 2:
            raise ValueError(f"a {len(text)}-character chunk does not fit max_length={self.max_length}")
        # The halves of a chunk continue one another: the document no longer fits one context, so they are
        # CLM, with BOS on the first and EOS on the last only where the chunk had them.
        parts = [
            Chunked(
                0,
                text[a:b],
                chunk.char_cut if a == 0 else is_char_cut(text, a),
                first=chunk.first and k == 0,
                last=chunk.last and k == len(spans) - 1,
            )
            for k, (a, b) in enumerate(spans)
        ]
        examples = self.finish(parts, [language], rng)
        for ex in examples:
            ex.doc_index, ex.resplit = doc, True
        return examples


def iter_examples(
    preparer: Preparer,
    texts: Iterable[str],
    languages: Iterable[str],
    rng: np.random.Generator,
    batch_size: int = 256,
) -> Iterator[Example]:
    """Stream Examples over a corpus split, `batch_size` documents at a time.

    Chunking the next batch (tree-sitter and string searches) runs on a worker thread while this one
    tokenizes and assembles the current batch. Chunking draws no random numbers and does not depend on
    other batches, so the output is the same as preparing the batches one by one.
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
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rows


def describe(ex: Example, doc: dict, tokens: FimTokens, tokenizer) -> dict:
    """One example for humans: ids, mode, and each segment between special tokens decoded separately and
    exactly (`decode_piece`: no space dropped, so a piece encoded with SentencePiece's leading space, the CLM
    text and the PSM prefix, shows that space: what the model sees)."""
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
                segments.append(decode_piece(tokenizer, current))
                current = []
            segments.append(f"<{specials[i]}>")
        else:
            current.append(i)
    if current:
        segments.append(decode_piece(tokenizer, current))
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


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from training.config import recipe_from_args
    from training.data import load_corpus

    config, _ = recipe_from_args(args, data_only=True)  # tokenization only: no GPU needed
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
    for col in ("documents", "sequences", "tokens", "clm", "psm", "spm", "split again", "cut in a line"):
        table.add_column(col, justify="right")
    m = stats.modes
    row = (stats.documents, stats.chunks, stats.tokens, m["clm"], m["psm"], m["spm"])
    table.add_row(*map(str, (*row, stats.resplit, stats.char_cuts)))
    Console().print(table)
    return 0
