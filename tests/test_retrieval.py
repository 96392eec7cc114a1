"""The retrieval index (chunks at definition boundaries, BM25 over code tokens, saved without pickles) and the
cross-file context in PSM and SPM prompts (exact token layout, the budget, the leak check)."""

from __future__ import annotations

import json

import pytest

from flyte_llama_common.schemas import Task
from training.evaluation import crossfile
from training.evaluation.retrieval import (
    Chunk,
    Retriever,
    build_index,
    chunk_file,
    chunk_spans,
    code_tokens,
    query_text,
)
from training.fim import fim_tokens, infill_prompt_ids
from training.tiny import build_tiny_tokenizer

LIB = (
    "import os\n\n\n"
    "def read_config(path):\n    with open(path) as f:\n        return f.read()\n\n\n"
    "# a comment that belongs to the class\n"
    "class TaskEnvironment:\n    def __init__(self, name):\n        self.name = name\n\n"
    "    def run_task(self, fn):\n        return fn(self.name)\n"
)
OTHER = "def unrelated_helper(x):\n    return x * 2\n"
GO = (
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println(1)\n}\n\n'
    "func helper() int {\n\treturn 2\n}\n"
)
ROWS = [
    {"repo": "flytekit", "path": "flytekit/env.py", "language": "python", "content": LIB},
    {"repo": "flytekit", "path": "flytekit/other.py", "language": "python", "content": OTHER},
    {"repo": "flyte", "path": "cmd/main.go", "language": "go", "content": GO},
    {"repo": "flyte", "path": "README.md", "language": "markdown", "content": "# Flyte\n" + "line\n" * 70},
]


def test_code_tokens_split_identifiers():
    assert code_tokens("env = TaskEnvironment(get_parser)") == [
        "env",
        "taskenvironment",
        "task",
        "environment",
        "get_parser",
        "get",
        "parser",
    ]
    assert code_tokens("x1 = 42") == ["x1", "x", "1", "42"]


def test_chunks_follow_definitions():
    spans = chunk_spans("python", LIB)
    # the imports, the function, then the class with the comment above it
    assert spans == [(0, 0), (3, 5), (8, 14)]
    chunks = chunk_file(ROWS[0])
    assert chunks[1].text.startswith("def read_config") and (chunks[1].start_line, chunks[1].end_line) == (
        4,
        6,
    )
    assert chunks[2].text.startswith("# a comment") and "def run_task" in chunks[2].text
    go = chunk_spans("go", GO)
    assert [GO.split("\n")[a] for a, _ in go] == ["package main", "func main() {", "func helper() int {"]


def test_languages_without_grammar_use_line_windows():
    spans = chunk_spans("markdown", ROWS[3]["content"], max_lines=30)
    assert spans == [(0, 29), (30, 59), (60, 70)]
    # a long definition is windowed too
    long_fn = "def f():\n" + "    x = 1\n" * 100
    assert max(b - a + 1 for a, b in chunk_spans("python", long_fn, max_lines=40)) == 40


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_index(ROWS, tmp_path_factory.mktemp("idx") / "retrieval")


def test_index_saves_without_pickles_and_loads(index):
    files = {p.relative_to(index).as_posix() for p in index.rglob("*") if p.is_file()}
    assert "chunks.jsonl" in files and "retrieval.json" in files
    assert not any(f.endswith((".pkl", ".pickle")) for f in files)
    meta = json.loads((index / "retrieval.json").read_text())
    assert meta["files"] == 4 and meta["chunks"] == len((index / "chunks.jsonl").read_text().splitlines())
    r = Retriever.load(index)
    hits = r.top_k("env = TaskEnvironment('x')\nenv.run_task(fn)", k=2)
    assert hits[0][0].path == "flytekit/env.py" and "class TaskEnvironment" in hits[0][0].text
    assert all(s > 0 for _, s in hits) and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_top_k_excludes_the_file_and_returns_nothing_for_unknown_words(index):
    r = Retriever.load(index)
    hits = r.top_k("TaskEnvironment run_task", k=5, exclude=("flytekit", "flytekit/env.py"))
    assert all(c.path != "flytekit/env.py" for c, _ in hits)
    assert r.top_k("zzzqqq wwwvvv", k=5) == []
    assert r.top_k("", k=5) == []


def test_load_rejects_a_folder_that_is_not_an_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a retrieval index"):
        Retriever.load(tmp_path)


def test_build_index_rejects_an_empty_split(tmp_path):
    with pytest.raises(ValueError, match="no text to index"):
        build_index([], tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


def test_query_is_the_code_around_the_hole():
    prefix = "".join(f"p{i}\n" for i in range(20)) + "    x = "
    suffix = "".join(f"s{i}\n" for i in range(20))
    q = query_text(prefix, suffix, prefix_lines=3, suffix_lines=2)
    assert q == "p18\np19\n    x = \ns0\ns1"
    assert query_text("a\nb", None, prefix_lines=1) == "b"


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer([LIB, OTHER, GO, "# Path: flytekit/env.py\n"], vocab_size=400)


def _task(prefix="def main():\n    env = TaskEnvironment('a')\n", middle="    env.run_task(main)\n"):
    return Task(
        task_id="python-single_line-0000",
        repo="flytesnacks",
        path="ex.py",
        language="python",
        kind="single_line",
        prefix=prefix,
        suffix="\nmain()\n",
        middle=middle,
        lines=(3, 3),
        span=(len(prefix), len(prefix) + len(middle)),
        window=(0, len(prefix) + len(middle) + 8),
    )


def test_render_uses_the_target_languages_comments():
    chunk = Chunk("flytekit", "a.py", "python", 1, 2, "def f():\n\n    return 1\n")
    assert crossfile.render_chunk(chunk, "python") == "# Path: flytekit/a.py\n# def f():\n#\n#     return 1\n"
    assert crossfile.render_chunk(chunk, "go").startswith("// Path: flytekit/a.py\n// def f():\n")


@pytest.mark.parametrize("mode", ["psm", "spm"])
def test_context_prompt_layout(index, tok, mode):
    r = Retriever.load(index)
    task = _task()
    (augmented,), (info,) = crossfile.augment_tasks([task], r, tok, k=3, budget=200)
    assert info["chunks"] and info["context_tokens"] <= 200
    assert augmented.prefix.startswith("# Path: ") and augmented.prefix.endswith(task.prefix)
    ids = infill_prompt_ids(tok, augmented.prefix, augmented.suffix, mode)
    fim = fim_tokens(tok)
    for special in (fim.prefix_id, fim.suffix_id, fim.middle_id, tok.bos_token_id):
        assert ids.count(special) == 1
    assert ids[0] == tok.bos_token_id and fim.eot_id not in ids
    order = [fim.prefix_id, fim.suffix_id, fim.middle_id]
    assert [i for i in ids if i in order] == order
    plain = infill_prompt_ids(tok, task.prefix, task.suffix, mode)
    # the context sits right before the prefix: PSM after <PRE>, SPM after <MID>
    anchor = fim.prefix_id if mode == "psm" else fim.middle_id
    assert ids.index(anchor) == plain.index(anchor)
    assert len(ids) > len(plain)
    assert ids[ids.index(anchor) + 1 :] != plain[plain.index(anchor) + 1 :]


def test_budget_keeps_whole_chunks_best_nearest_the_prefix(tok):
    a = Chunk("r", "a.py", "python", 1, 1, "def alpha():\n    return 1\n")
    b = Chunk("r", "b.py", "python", 1, 1, "def beta():\n    return 2\n")
    big = Chunk("r", "big.py", "python", 1, 1, "x = 1\n" * 200)
    one = crossfile.build_context(tok, [a], "python", 10_000)
    both = crossfile.build_context(tok, [a, big, b], "python", one.tokens + 40)
    assert [c.path for c in both.chunks] == ["a.py", "b.py"]  # big did not fit: dropped whole
    assert both.text.index("b.py") < both.text.index("a.py")  # best (a) last, nearest the hole
    assert both.tokens <= one.tokens + 40
    assert crossfile.build_context(tok, [big], "python", 5).text == ""
    assert crossfile.with_context(_task(), crossfile.build_context(tok, [big], "python", 5)) == _task()


def test_a_chunk_that_would_add_a_fim_token_is_dropped(tok):
    fim_text = tok.convert_ids_to_tokens(fim_tokens(tok).middle_id)
    bad = Chunk("r", "bad.py", "python", 1, 1, f"x = '{fim_text}'\n")
    ctx = crossfile.build_context(tok, [bad], "python", 10_000)
    assert ctx.chunks == () and ctx.text == ""


def test_leak_check():
    task = _task(middle="    env.run_task(main, retries=3)\n")
    holds = Chunk("r", "x.py", "python", 1, 2, "def g():\n  env.run_task(main, retries=3)  \n")
    other = Chunk("r", "y.py", "python", 1, 1, "env.run_task(other)\n")
    assert crossfile.leaks(task, [other, holds]) is True
    assert crossfile.leaks(task, [other]) is False
    assert crossfile.leaks(_task(middle="    return x\n"), [holds]) is None  # too short to tell
