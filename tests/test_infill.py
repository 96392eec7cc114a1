"""The infilling benchmark: which lines become holes, seeded extraction, reassembly, trimming to a token
budget, greedy PSM generation (batched = unbatched), and the metrics on known pairs."""

from __future__ import annotations

import random

import pytest
import torch

from training.evaluation.metrics import exact_match_strict
from training.fim import encode_piece, fim_tokens, psm_prompt_ids, spm_prompt_ids
from training.infill import (
    Task,
    aggregate,
    candidate_holes,
    decode_middle,
    edit_similarity,
    exact_match,
    extract_tasks,
    filled_file_parses,
    generate_middles,
    parse_clean,
    read_tasks,
    score_tasks,
    write_tasks,
)
from training.tiny import build_tiny_model, build_tiny_tokenizer

PY = '''import os

X = 1


def add(a, b):
    """Add two numbers.

    Returns the sum."""
    c = a + b
    # a comment

    return c


class A:
    @staticmethod
    def m(x): return x

    def n(self, y):
        z = y * 2
        return z
'''
GO = """package main

// main prints.
func main() {
\tx := 1
\t// note
\tfmt.Println(x)
}

func (s *S) Get() int { return s.v }
"""


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer([PY, GO], vocab_size=400)


def _records(n=6):
    rows = []
    for i in range(n):
        rows.append(
            {"content": PY.replace("add", f"add{i}"), "repo": "r", "path": f"p{i}.py", "language": "python"}
        )
        rows.append({"content": GO.replace("x", f"x{i}"), "repo": "g", "path": f"m{i}.go", "language": "go"})
    rows.append({"content": "def broken(:\n    pass\n", "repo": "r", "path": "bad.py", "language": "python"})
    rows.append({"content": "# Title\n", "repo": "r", "path": "README.md", "language": "markdown"})
    return rows


def test_holes_are_code_lines_inside_function_bodies():
    py = candidate_holes("python", PY)
    # rows (0-based): 9 `c = a + b`, 12 `return c`, 20 `z = y * 2`, 21 `return z`. Not: the docstring (6-8),
    # the comment (10), the blank line (11), module code (0, 2), headers, or `def m(x): return x` (17).
    assert py["single_line"] == [(9, 9), (12, 12), (20, 20), (21, 21)]
    assert py["multi_line"] == [(20, 21)]  # 9..12 is broken by the comment and the blank line
    go = candidate_holes("go", GO)
    assert go["single_line"] == [(4, 4), (6, 6)]  # not the comment (5), the braces, or the one-line method
    assert go["multi_line"] == []
    assert candidate_holes("python", "def broken(:\n    pass\n") == {"single_line": [], "multi_line": []}


def test_extraction_is_deterministic_and_reassembles_the_file(tok):
    records = _records()
    tasks = extract_tasks(records, tok, num_tasks=10, seed=3, prefix_tokens=None, suffix_tokens=None)
    assert tasks == extract_tasks(records, tok, num_tasks=10, seed=3, prefix_tokens=None, suffix_tokens=None)
    assert tasks != extract_tasks(records, tok, num_tasks=10, seed=4, prefix_tokens=None, suffix_tokens=None)
    # Go has no multi-line holes here, so the 10 tasks go to the 3 buckets that have some: 4 + 3 + 3.
    kinds = [(t.language, t.kind) for t in tasks]
    assert kinds.count(("python", "single_line")) == 4
    assert kinds.count(("python", "multi_line")) == 3 and kinds.count(("go", "single_line")) == 3
    assert len({t.task_id for t in tasks}) == 10
    by_path = {r["path"]: r["content"] for r in records}
    for t in tasks:
        content = by_path[t.path]
        assert t.prefix + t.middle + t.suffix == content
        assert content[t.span[0] : t.span[1]] == t.middle
        assert t.middle.endswith("\n") and t.prefix.endswith("\n")
        lines = content.split("\n")[t.lines[0] - 1 : t.lines[1]]
        assert t.middle == "\n".join(lines) + "\n"
        assert t.path != "bad.py"


def test_trimming_keeps_the_nearest_whole_lines_within_budget(tok):
    records = _records(2)
    tasks = extract_tasks(records, tok, num_tasks=8, seed=0, prefix_tokens=12, suffix_tokens=6)
    untrimmed = extract_tasks(records, tok, num_tasks=8, seed=0, prefix_tokens=None, suffix_tokens=None)
    by_path = {r["path"]: r["content"] for r in records}
    assert [t.middle for t in tasks] == [t.middle for t in untrimmed]
    assert any(len(t.prefix) < len(u.prefix) for t, u in zip(tasks, untrimmed, strict=True))
    for t, u in zip(tasks, untrimmed, strict=True):
        content = by_path[t.path]
        assert t.prefix + t.middle + t.suffix == content[t.window[0] : t.window[1]]
        assert u.prefix.endswith(t.prefix) and u.suffix.startswith(t.suffix)  # the nearest code is kept
        assert t.window[0] == 0 or content[t.window[0] - 1] == "\n"  # cut at line boundaries
        assert t.suffix == "" or t.suffix.endswith("\n")
        assert len(encode_piece(tok, t.prefix, leading_space=True)) <= 12
        assert len(encode_piece(tok, t.suffix, leading_space=False)) <= 6


def test_tasks_file_round_trip(tok, tmp_path):
    tasks = extract_tasks(_records(2), tok, num_tasks=4, seed=0)
    write_tasks(tmp_path / "t.jsonl", tasks)
    assert read_tasks(tmp_path / "t.jsonl") == tasks
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]


def test_no_python_or_go_is_a_clear_error(tok):
    with pytest.raises(ValueError, match="no Python or Go function bodies"):
        extract_tasks([{"content": "# x\n", "repo": "r", "path": "a.md", "language": "markdown"}], tok, 4)


def test_exact_match_and_edit_similarity_on_known_pairs():
    assert exact_match("    return c  \n", "    return c\n")  # trailing whitespace and newline ignored
    assert exact_match("a\nb \n\n", "a\nb")
    # The field's convention strips surrounding whitespace; the strict variant keeps indentation.
    assert exact_match("return c\n", "    return c\n", "single_line")
    assert not exact_match_strict("return c\n", "    return c\n")
    assert exact_match_strict("    return c  \n", "    return c\n")
    assert not exact_match("a\n\nb", "a\nb")
    assert not exact_match_strict("a\n\nb", "a\nb")
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("abc", "abd") == pytest.approx(2 / 3)
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "xy") == 0.0
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("x = 1   \n", "x = 1") == 1.0


def test_parse_check_and_aggregation():
    content = PY
    lo = content.index("    c = a + b\n")
    task = Task(
        "t", "r", "a.py", "python", "single_line", "", "", "    c = a + b\n", (10, 10), (lo, lo + 14), (0, 0)
    )
    assert filled_file_parses(task, content, "    c = a - b")  # newline restored
    assert not filled_file_parses(task, content, "    c = (a +")
    assert not filled_file_parses(task, content, "c = a + b")  # dedented: tree-sitter alone accepts it
    # Deleting the line leaves a file that parses, but writing nothing is not an answer.
    assert parse_clean("python", content[: task.span[0]] + content[task.span[1] :]) is not None
    assert not filled_file_parses(task, content, "   \n ")
    go_task = Task("g", "g", "m.go", "go", "multi_line", "", "", "x\n", (1, 1), (0, 2), (0, 2))
    contents = {("r", "a.py"): content, ("g", "m.go"): "x\n"}
    scores = score_tasks([task, go_task], ["    c = a + b\n", "y"], contents)
    assert [s["exact_match"] for s in scores] == [True, False]
    assert [s["valid_fill"] for s in scores] == [True, None]  # valid fill is for Python only
    block = aggregate([task, go_task], scores)
    overall = {k: v for k, v in block["overall"].items() if k != "ci95"}
    assert overall == {
        "exact_match": 0.5,
        "exact_match_strict": 0.5,
        "edit_similarity": 0.5,
        "valid_fill": 1.0,
        "tasks": 2,
    }
    assert block["overall"]["ci95"]["exact_match"] == [0.0, 1.0]
    assert block["by_language"]["go"]["valid_fill"] is None
    assert block["by_kind"]["single_line"]["tasks"] == 1


def test_aggregation_does_not_depend_on_task_order():
    """A published (sorted) copy of the tasks must give the very same numbers, to the last bit."""
    rng = random.Random(0)
    tasks = [
        Task(
            f"t{i}",
            "r",
            f"{i}.py",
            "python",
            ("single_line", "multi_line")[i % 2],
            "",
            "",
            "x\n",
            (1, 1),
            (0, 2),
            (0, 2),
        )
        for i in range(200)
    ]
    scores = [
        {
            "task_id": t.task_id,
            "exact_match": rng.random() < 0.1,
            "exact_match_strict": rng.random() < 0.1,
            "edit_similarity": rng.random(),
            "valid_fill": rng.random() < 0.5,
        }
        for t in tasks
    ]
    order = list(range(200))
    rng.shuffle(order)
    assert aggregate([tasks[i] for i in order], [scores[i] for i in order]) == aggregate(tasks, scores)


def test_decode_middle_keeps_leading_spaces(tok):
    for middle in ("    return a + b\n", " x", "\tfmt.Println(x)\n", "ünï\n"):
        assert decode_middle(tok, encode_piece(tok, middle, leading_space=False)) == middle


@pytest.mark.parametrize("mode", ["psm", "spm"])
def test_greedy_generation_matches_a_hand_loop_and_batching(tok, mode):
    model = build_tiny_model(tok, max_position_embeddings=256).eval()
    tasks = extract_tasks(_records(2), tok, num_tasks=5, seed=1, prefix_tokens=30, suffix_tokens=10)
    one = generate_middles(model, tok, tasks, max_new_tokens=6, batch_size=1, mode=mode)
    assert generate_middles(model, tok, tasks, max_new_tokens=6, batch_size=3, mode=mode) == one
    fim = fim_tokens(tok)
    ids = (psm_prompt_ids if mode == "psm" else spm_prompt_ids)(tok, tasks[0].prefix, tasks[0].suffix)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(6):
            nxt = int(model(torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt in (fim.eot_id, fim.eos_id):
                break
            new.append(nxt)
    assert one[0] == decode_middle(tok, new)
