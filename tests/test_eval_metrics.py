"""The evaluation's parts on hand-made cases: metrics, decontamination, freshness, baselines, intervals."""

from __future__ import annotations

import numpy as np
import pytest
from gitrepos import GitRepo

from flyte_llama_common.schemas import Task
from training.evaluation import baselines, decontam, freshness, intervals, metrics, scoring
from training.infill import _parses

FILE = "import os\n\n\ndef add(a, b):\n    c = a + b\n    return c\n"
HOLE = "    c = a + b\n"
LO = FILE.index(HOLE)
SPAN = (LO, LO + len(HOLE))


def task(kind="single_line", middle=HOLE, span=SPAN, content=FILE, **kw) -> Task:
    fields = dict(task_id="t", repo="r", path="a.py", language="python", kind=kind)
    fields |= dict(prefix=content[: span[0]], suffix=content[span[1] :], middle=middle)
    fields |= dict(lines=(5, 5), span=span, window=(0, len(content)))
    return Task(**(fields | kw))


def valid(fill: str) -> bool | None:
    return metrics.valid_fill("python", FILE, SPAN, HOLE, fill, _parses)


# ---------------------------------------------------------------- metrics


def test_blank_garbage_and_undefined_fills_are_not_valid():
    assert valid("    c = a + b") is True
    assert valid("    c = a - b\n") is True
    assert valid("") is False and valid("   \n") is False  # deleting the line parses, but is no answer
    assert valid("    plplplplpl") is False  # a bare identifier parses: the old parse rate counted it
    assert valid("    c = a + undefined_thing") is False
    assert valid("    c = os.sep + a") is True  # `os` is imported by the file
    assert valid("c = a + b") is False  # dedented: not Python any more
    assert metrics.valid_fill("go", FILE, SPAN, HOLE, "x", _parses) is None


def test_names_the_file_already_lacked_are_not_blamed_on_the_fill():
    content = "def f():\n    x = 1\n    return missing\n"
    lo = content.index("    x = 1\n")
    span = (lo, lo + len("    x = 1\n"))
    assert metrics.valid_fill("python", content, span, "    x = 1\n", "    x = 2", _parses) is True


def test_exact_match_follows_the_field_and_strict_keeps_indentation():
    assert metrics.exact_match("c = a + b", HOLE, "single_line")  # indentation differs: still a match
    assert not metrics.exact_match_strict("c = a + b", HOLE)
    assert metrics.exact_match_strict("    c = a + b   \n", HOLE)
    # A single-line task cuts the generation at its first newline; a multi-line one does not.
    assert metrics.exact_match("    c = a + b\n    return c\n", HOLE, "single_line")
    assert not metrics.exact_match("    c = a + b\n    return c\n", HOLE, "multi_line")
    assert not metrics.exact_match_strict("    c = a + b\n    return c\n", HOLE)
    assert not metrics.exact_match("", HOLE, "single_line")


def test_score_row_uses_the_truncated_fill_for_validity():
    row = scoring.score_row(task(), FILE, "    c = a + b\n    plplpl(", _parses)
    assert row["exact_match"] is True and row["exact_match_strict"] is False
    assert row["valid_fill"] is True  # what counts is the first line
    assert row["edit_similarity"] < 1.0


# ---------------------------------------------------------------- decontamination


TRAIN = "def other():\n    pass\nimport   os\n\ndef add(a, b):\n    c  =  a + b\n    return c\n"


def test_a_planted_leak_is_dropped_and_a_clean_task_kept():
    index = decontam.LineIndex.build([TRAIN])
    # The hole with two lines of context each side occurs in train (whitespace differs): dropped.
    assert decontam.verdict(index, FILE, SPAN, HOLE, k=2, min_chars=20) == decontam.WINDOW_SEEN
    clean_file = "import os\n\n\ndef mul(a, b):\n    d = a * b * 7\n    return d\n"
    lo = clean_file.index("    d = a * b * 7\n")
    span = (lo, lo + len("    d = a * b * 7\n"))
    assert decontam.verdict(index, clean_file, span, "    d = a * b * 7\n", 2, 5) == decontam.CLEAN


def test_a_long_middle_seen_in_train_is_dropped_even_with_new_context():
    middle = "    result = compute_everything(alpha, beta)\n"
    content = f"def g():\n    new_line = 1\n{middle}    other = 2\n"
    lo = content.index(middle)
    train = f"x = 0\n{middle.strip()}\ny = 1\n"
    index = decontam.LineIndex.build([train])
    span = (lo, lo + len(middle))
    assert decontam.verdict(index, content, span, middle, k=1, min_chars=20) == decontam.MIDDLE_SEEN
    # Short middles are too generic to count on their own (`return x` is everywhere).
    assert decontam.verdict(index, content, span, middle, k=1, min_chars=100) == decontam.CLEAN


def test_line_overlap_counts_long_lines_only():
    index = decontam.LineIndex.build(["a_long_line_of_code = something_else()\nx = 1\n"])
    found = decontam.line_overlap(
        index, ["a_long_line_of_code  =  something_else()\nx = 1\nnew_long_line_here = 12345\n"]
    )
    assert found == {"lines": 2, "in_train": 1, "share": 0.5}


def test_extract_tasks_fills_its_quota_with_clean_tasks_and_returns_the_drops():
    from training.infill import extract_tasks
    from training.tiny import build_tiny_tokenizer

    records = [
        {"content": FILE, "repo": "r", "path": "a.py", "language": "python"},
        {
            "content": FILE.replace("add", "sub").replace("+", "-"),
            "repo": "r",
            "path": "b.py",
            "language": "python",
        },
    ]
    tok = build_tiny_tokenizer([FILE], vocab_size=300)
    index = decontam.LineIndex.build([TRAIN])

    def check(t, content):
        return decontam.verdict(index, content, t.span, t.middle, 2, 20)

    tasks = extract_tasks(records, tok, num_tasks=2, seed=0, verdict=check)
    kept = [t for t in tasks if t.contamination == decontam.CLEAN]
    dropped = [t for t in tasks if t.contamination != decontam.CLEAN]
    assert len(kept) == 2 and {t.path for t in kept} == {"b.py"}  # every hole of a.py occurs in TRAIN
    assert dropped and {t.path for t in dropped} == {"a.py"}
    assert all(t.task_id.split("-")[-2] == "dropped" for t in dropped)
    assert all(check(t, records[0 if t.path == "a.py" else 1]["content"]) == t.contamination for t in tasks)


# ---------------------------------------------------------------- freshness


OLD_A = "def f():\n    old = 1\n    return old\n"
NEW_A = "def f():\n    old = 1\n    new = 2\n    return old\n"


def test_fresh_flag_from_back_dated_commits(tmp_path):
    repo = GitRepo.init(tmp_path / "flytesnacks")
    repo.commit({"a.py": OLD_A}, when="2022-05-01T12:00:00+00:00")
    sha = repo.commit({"a.py": NEW_A}, when="2024-02-03T12:00:00+00:00")
    dates = freshness.blame_dates(repo.path / ".git", sha, "a.py", [(2, 3)])
    assert dates == {2: "2022-05-01", 3: "2024-02-03"}
    old = task(task_id="old", repo="flytesnacks", lines=(2, 2))
    new = task(task_id="new", repo="flytesnacks", lines=(3, 3))
    both = task(task_id="both", repo="flytesnacks", lines=(2, 3))
    lost = task(task_id="lost", repo="elsewhere", lines=(1, 1))
    ranges = freshness.authored_ranges([old, new, both, lost], {"flytesnacks": sha}, tmp_path)
    assert ranges == {
        "old": ("2022-05-01", "2022-05-01"),
        "new": ("2024-02-03", "2024-02-03"),
        "both": ("2022-05-01", "2024-02-03"),
        "lost": None,
    }
    cutoff = freshness.CODE_LLAMA_CUTOFF
    assert [freshness.is_fresh(ranges[k], cutoff) for k in ("old", "new", "both", "lost")] == [
        False,
        True,
        False,
        None,
    ]
    with pytest.raises(ValueError, match="40-hex"):
        freshness.blame_dates(repo.path / ".git", "HEAD", "a.py", [(1, 1)])


# ---------------------------------------------------------------- baselines


def test_baselines_on_hand_made_tasks():
    t = task()
    assert baselines.previous_line(t.prefix) == "def add(a, b):"
    prefix = "x = 1\ny = 2\nz = 3\nx = 1\n"
    assert baselines.file_copy(prefix, "w = 9\n", 1) == "y = 2"  # what followed the same line before
    assert baselines.file_copy(prefix, "", 2) == "y = 2\nz = 3"
    model = baselines.NgramModel.train(["def f(x):\n    return x + 1\n"] * 4)
    assert model.complete("def g(y):\n    ", 1) == "return x + 1"
    assert all(model.best[n] for n in range(baselines.ORDER))  # every order is used, the 4-grams too
    # The longest seen context wins: "=y" is followed by ";" only after "x", by ":" otherwise.
    tie = baselines.NgramModel.train(["x=y;\n", "u=y:\n", "v=y:\n"])
    assert tie.complete("x=y", 1) == ";" and tie.complete("w=y", 1) == ":"
    preds = baselines.predictions([t], model)
    assert set(preds) == set(baselines.NAMES) and preds["previous_line"] == ["def add(a, b):"]


# ---------------------------------------------------------------- intervals


def test_bootstrap_interval_covers_the_known_mean():
    rng = np.random.default_rng(3)
    sample = rng.normal(0.3, 1.0, size=4000)
    lo, hi = intervals.bootstrap_ci(sample, seed=1)
    assert lo < 0.3 < hi
    assert (hi - lo) / 2 == pytest.approx(1.96 / np.sqrt(4000), rel=0.15)  # the normal-theory width
    trials = np.random.default_rng(5)
    covered = sum(
        (ci := intervals.bootstrap_ci(trials.binomial(1, 0.4, 200), seed=s, resamples=1000))[0]
        <= 0.4
        <= ci[1]
        for s in range(200)
    )
    assert covered >= 180  # 95% nominal (≈191 expected); 180 leaves ~3.5 standard errors of trial noise


def test_paired_interval_is_narrower_and_order_free():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    better = base + 0.02 + rng.normal(0, 0.01, 300)
    paired = intervals.paired_ci(better, base)
    assert paired[0] > 0  # a small, consistent gain is detected when paired
    assert intervals.half_width(paired) < intervals.half_width(intervals.bootstrap_ci(better)) / 5
    order = rng.permutation(300)
    assert intervals.paired_ci(better[order], base[order]) == paired
    assert intervals.bootstrap_ci([]) is None
    with pytest.raises(ValueError, match="differ in length"):
        intervals.paired_ci([1.0], [1.0, 2.0])


def test_ratio_interval_and_paired_differences_in_aggregates():
    tasks = [task(task_id=f"t{i}", kind=("single_line", "multi_line")[i % 2]) for i in range(40)]
    a = [
        {
            "exact_match": i % 2 == 0,
            "exact_match_strict": False,
            "edit_similarity": 0.5,
            "valid_fill": True,
            "nll_psm": 2.0,
            "tokens_psm": 4,
            "chars": 10,
        }
        for i in range(40)
    ]
    b = [dict(r, exact_match=False, nll_psm=3.0) for r in a]
    block = scoring.aggregate(tasks, a, seed=0)
    assert block["overall"]["exact_match"] == 0.5
    assert block["overall"]["nats_per_char_psm"] == pytest.approx(0.2)
    assert block["overall"]["ci95"]["nats_per_char_psm"] == pytest.approx([0.2, 0.2])
    diff = scoring.paired_difference(tasks, a, b, seed=0)["overall"]
    assert diff["exact_match"]["value"] == 0.5 and diff["exact_match"]["ci95"][0] > 0
    assert diff["nats_per_char_psm"]["value"] == pytest.approx(-0.1)


# ---------------------------------------------------------------- likelihood


def test_teacher_forced_likelihood_equals_a_hand_computation():
    import torch

    from training.evaluation import likelihood
    from training.fim import fim_tokens
    from training.tiny import build_tiny_model, build_tiny_tokenizer

    tok = build_tiny_tokenizer([FILE * 3], vocab_size=300)
    model = build_tiny_model(tok, max_position_embeddings=128).eval()
    tasks = [task(), task(task_id="u", middle="    return c\n", span=(FILE.index("    return c"), len(FILE)))]
    for mode in likelihood.MODES:
        batched = likelihood.middle_nll(model, tok, tasks, mode, batch_size=2)
        for t, (nats, tokens, chars) in zip(tasks, batched, strict=True):
            context, target = likelihood.prompt_and_target(tok, t.prefix, t.middle, t.suffix, mode)
            assert target[-1] == fim_tokens(tok).eot_id and tokens == len(target) and chars == len(t.middle)
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([context + target])).logits[0].double(), -1)
            hand = -sum(logp[len(context) - 1 + i, tok_id].item() for i, tok_id in enumerate(target))
            assert nats == pytest.approx(hand, rel=1e-4)


def test_a_mirror_missing_old_blobs_leaves_tasks_undated(tmp_path):
    repo = GitRepo.init(tmp_path / "flytesnacks")
    repo.commit({"a.py": OLD_A}, when="2022-05-01T12:00:00+00:00")
    old_blob = repo.git("rev-parse", "HEAD:a.py").strip()
    sha = repo.commit({"a.py": NEW_A}, when="2024-02-03T12:00:00+00:00")
    (repo.path / ".git" / "objects" / old_blob[:2] / old_blob[2:]).unlink()  # history a snapshot may lack
    undated: list[str] = []
    t = task(task_id="x", repo="flytesnacks", lines=(2, 3))
    assert freshness.authored_ranges([t], {"flytesnacks": sha}, tmp_path, undated) == {"x": None}
    assert len(undated) == 1 and "flytesnacks/a.py" in undated[0]


def test_a_repo_name_from_a_tasks_file_never_leaves_the_git_folder(tmp_path):
    outside = GitRepo.init(tmp_path / "outside")
    outside.commit({"a.py": OLD_A})
    root = tmp_path / "mirrors"
    root.mkdir()
    assert freshness.find_git_dir(root, "../outside") is None
    assert freshness.find_git_dir(root, str(outside.path)) is None  # an absolute path is not a repo name
    t = task(task_id="x", repo="../outside", lines=(2, 2))
    assert freshness.authored_ranges([t], {"../outside": outside.head()}, root) == {"x": None}
