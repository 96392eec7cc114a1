from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH

from dataset_builder.dedup import (
    DedupConfig,
    content_hash,
    deduplicate,
    rank_repos,
    split_pair,
    survivor_key,
)
from dataset_builder.dedup_near import (
    TOKEN_RE,
    _ngram_hashes,
    affine32_permutations,
    candidate_pairs,
    fmix32,
    gauss_legendre,
    hash_powers,
    lsh_params,
    minhash_signatures,
    token_hashes,
)
from dataset_builder.record import Record, record_id

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "flyte",
    "task",
    "workflow",
    "node",
    "launch",
    "plan",
    "execution",
    "project",
    "domain",
    "version",
    "cache",
    "retry",
    "input",
    "output",
    "literal",
    "blob",
    "schema",
]


def code(seed: int, lines: int = 60) -> str:
    """Deterministic, distinct pseudo-Python: different seeds share almost no 5-grams."""
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        a, b, c = (f"{rng.choice(WORDS)}_{rng.randrange(1000)}" for _ in range(3))
        out.append(f"    {a} = {b}({c}, {rng.randrange(10**6)}) + {i}")
    return "def f():\n" + "\n".join(out) + "\n"


def rec(repo: str, path: str, content: str, split: str = "train") -> Record:
    return Record(
        id=record_id(repo, path), repo=repo, path=path, language="python", content=content,
        bytes=len(content.encode()), lines=content.count("\n"), commit_sha="0" * 40, blob_sha="0" * 40,
        license="Apache-2.0", split=split, is_test=False, is_doc=False, is_notebook=False, parses=True,
    )  # fmt: skip


RANK = {"flyte": 0, "flytekit": 1, "flytepropeller": 2, "flytesnacks": 3}


def near_copy(text: str) -> str:
    """Rename one identifier, reformat, change a few lines."""
    lines = text.split("\n")
    first = lines[1].split()[0]
    lines = [ln.replace(first, "renamed_var") for ln in lines]
    lines[10] = "    changed_line = 1"
    lines[20] = "    another_change = compute(2)"
    lines[30] = "    third = 3"
    return "\n".join(ln.replace(" = ", "=") for ln in lines)


def corpus() -> list[Record]:
    base, shared, test_src, val_src = code(1), code(2), code(3), code(4)
    return [
        rec("flyte", "flytepropeller/pkg/a.py", base),
        rec("flytepropeller", "pkg/a.py", "\n".join("  " + ln + "  " for ln in base.split("\n"))),  # exact
        rec("flytekit", "flytekit/near.py", near_copy(shared)),  # near copy of flyte's file
        rec("flyte", "shared.py", shared),
        rec("flytekit", "train_copy.py", test_src),  # train copy of a test file
        rec("flytesnacks", "examples/x.py", test_src, split="test"),
        rec("flytesnacks", "examples/x_again.py", test_src, split="test"),  # test stays intact
        rec("flytekit", "val.py", near_copy(val_src), split="validation"),  # validation near-dups train
        rec("flytepropeller", "train_of_val.py", val_src),
        rec("flytekit", "unique.py", code(5)),
        rec("flyte", "tiny.py", "x=1"),  # too short for 5-grams; no exact twin: kept
        rec("flytekit", "tiny.py", "y = 2"),
    ]


def test_content_hash_ignores_whitespace_only():
    assert content_hash("def f():\n    return 1\n") == content_hash("def f():\r\n\treturn   1")
    assert content_hash("a = 1") != content_hash("a = 2")


def test_tokenizer_matches_reference_regex():
    text = "def f(x_1, y):\n\treturn x_1**2 + y.attr['k'] # é ünïcode_id 3.14\n"
    data = text.encode()
    hashes, starts = token_hashes(data)
    tokens = [m.group() for m in TOKEN_RE.finditer(data)]
    assert [data[s : s + len(t)] for s, t in zip(starts, tokens, strict=True)] == tokens
    by_token = dict(zip(tokens, hashes.tolist(), strict=True))
    again, _ = token_hashes(b"   x_1 ")  # position independent
    assert again.tolist() == [by_token[b"x_1"]]
    assert len(set(by_token.values())) == len(by_token)


def test_signatures_equal_datasketch_minhash():
    texts = [code(7, 30), "a b c d e f g h", "tiny"]
    sig, counts = minhash_signatures(texts, num_perm=128, seed=3, ngram=5, batch_bytes=50)
    assert counts.tolist()[1:] == [4, 0]
    for text, row in zip(texts[:2], sig[:2], strict=True):
        tok, _ = token_hashes(text.encode())
        shingles, _ = _ngram_hashes(tok, np.zeros(len(tok), dtype=np.int64), 5)
        ref = MinHash(num_perm=128, seed=3, hashfunc=lambda x: x)
        ref.update_batch([int(s) for s in shingles])
        assert np.array_equal(row, ref.hashvalues)
    assert (sig[2] == np.iinfo(np.uint32).max).all()
    assert np.array_equal(fmix32(np.array([0], np.uint32)), [0])


def test_repeated_ngrams_count_but_do_not_change_signatures():
    # Signatures come from each document's distinct 5-grams; the counts still include every repeat. Several
    # documents sharing 5-grams in one batch must not borrow each other's minimums.
    repeated = "x = f(a, b)\n" * 20 + code(2, 10)
    texts = [repeated, code(2, 10), "x = f(a, b)\n" * 3, repeated]
    sig, counts = minhash_signatures(texts, num_perm=64, seed=5, ngram=5, batch_bytes=10**6)
    for text, row, count in zip(texts, sig, counts, strict=True):
        tok, _ = token_hashes(text.encode())
        shingles, _ = _ngram_hashes(tok, np.zeros(len(tok), dtype=np.int64), 5)
        assert count == len(shingles)  # repeats included
        if text is repeated:
            assert len(set(shingles.tolist())) < count / 2  # the case under test: mostly repeats
        ref = MinHash(num_perm=64, seed=5, hashfunc=lambda x: x)
        ref.update_batch([int(s) for s in shingles])
        assert np.array_equal(row, ref.hashvalues)
    assert np.array_equal(sig[0], sig[3]) and not np.array_equal(sig[0], sig[1])


def test_candidate_pairs_match_minhashlsh_query():
    base = [code(s, 40) for s in range(6)]
    texts = base + [near_copy(t) for t in base[:3]] + [base[0]]
    sig, _ = minhash_signatures(texts)
    b, r = lsh_params(0.7, 256)
    ours = {tuple(p) for p in candidate_pairs(sig, b, r).tolist()}
    lsh = MinHashLSH(threshold=0.7, num_perm=256)
    sketches = [LeanMinHash(seed=1, hashvalues=row, scheme="affine32") for row in sig]
    for i, s in enumerate(sketches):
        lsh.insert(i, s)
    theirs = {(min(i, j), max(i, j)) for i, s in enumerate(sketches) for j in lsh.query(s) if i != j}
    assert ours == theirs
    assert {(0, 6), (1, 7), (2, 8), (0, 9)} <= ours


def test_survivor_rule():
    ranks = rank_repos(
        {"flyte": 200, "flytepropeller": 100, "flytekit": 200}, ["flytekit", "flyte", "flytepropeller"]
    )
    assert ranks == {"flytekit": 0, "flyte": 1, "flytepropeller": 2}  # newest first, then config order
    key = lambda r: survivor_key(r, ranks)  # noqa: E731
    test_doc = rec("flytepropeller", "z.py", "", split="test")
    ordered = sorted(
        [rec("flytekit", "b.py", "", "validation"), rec("flytepropeller", "a.py", ""),
         rec("flyte", "b.py", ""), rec("flyte", "a.py", ""), test_doc],
        key=key,
    )  # fmt: skip
    assert [(r.split, r.repo, r.path) for r in ordered] == [
        ("test", "flytepropeller", "z.py"),
        ("train", "flyte", "a.py"),
        ("train", "flyte", "b.py"),
        ("train", "flytepropeller", "a.py"),
        ("validation", "flytekit", "b.py"),
    ]
    with pytest.raises(ValueError, match="no rank"):
        survivor_key(rec("other", "a.py", ""), ranks)
    with pytest.raises(ValueError, match="not in the config order"):
        rank_repos({"x": 1}, [])
    assert split_pair("train", "train") == "within train" and split_pair("train", "test") == "train↔test"


def test_deduplicate_keeps_and_drops_exactly_the_planted_copies():
    records = corpus()
    result = deduplicate(records, RANK)
    dropped = {(r.repo, r.path): (r.reason, r.kept_repo, r.kept_path) for r in result.removed}
    assert dropped == {
        ("flytepropeller", "pkg/a.py"): ("exact", "flyte", "flytepropeller/pkg/a.py"),
        ("flytekit", "flytekit/near.py"): ("near", "flyte", "shared.py"),
        ("flytekit", "train_copy.py"): ("exact", "flytesnacks", "examples/x.py"),
        ("flytekit", "val.py"): ("near", "flytepropeller", "train_of_val.py"),
    }
    assert [r.path for r in result.kept] == [
        "flytepropeller/pkg/a.py", "shared.py", "examples/x.py", "examples/x_again.py", "train_of_val.py",
        "unique.py", "tiny.py", "tiny.py",
    ]  # fmt: skip
    assert all(0.7 <= r.similarity < 1.0 for r in result.removed if r.reason == "near")
    report = result.report
    assert report["removed"] == {"files": 4, "exact": 2, "near": 2, "bytes": sum(
        r.bytes for r in records if (r.repo, r.path) in dropped)}  # fmt: skip
    assert report["by_split_pair"] == {
        "train↔test": {"exact": 1, "near": 0},
        "validation↔train": {"exact": 0, "near": 1},
        "within train": {"exact": 1, "near": 1},
    }
    assert report["by_repo_pair"] == {
        "flyte ↔ flytekit": {"exact": 0, "near": 1},
        "flyte ↔ flytepropeller": {"exact": 1, "near": 0},
        "flytekit ↔ flytepropeller": {"exact": 0, "near": 1},
        "flytekit ↔ flytesnacks": {"exact": 1, "near": 0},
    }
    assert report["too_short_for_near"] == 2


def test_no_train_or_validation_doc_duplicates_a_test_doc_afterwards():
    kept = deduplicate(corpus(), RANK).kept
    again = deduplicate(kept, RANK)
    assert again.removed == []


def test_chained_cluster_does_not_drop_dissimilar_documents():
    # A ~ B and B ~ C, but A and C share less: keeping A must not drop C.
    lines = code(11, 120).split("\n")[1:]
    a, b, c = ("\n".join(lines[lo : lo + 100]) for lo in (0, 10, 20))  # J ≈ 0.82, 0.82, 0.67
    records = [rec("flyte", "a.py", a), rec("flyte", "b.py", b), rec("flyte", "c.py", c)]
    sig, _ = minhash_signatures([a, b, c])
    sim = lambda i, j: (sig[i] == sig[j]).mean()  # noqa: E731
    assert sim(0, 1) >= 0.7 and sim(1, 2) >= 0.7 > sim(0, 2)
    assert [r.path for r in deduplicate(records, RANK).kept] == ["a.py", "c.py"]


def test_deterministic_and_order_independent():
    records = corpus()
    first = deduplicate(records, RANK)
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    second = deduplicate(shuffled, RANK)
    assert json.dumps(first.report, sort_keys=True) == json.dumps(second.report, sort_keys=True)
    assert first.removed == second.removed
    assert {r.id for r in first.kept} == {r.id for r in second.kept}
    assert deduplicate(records, RANK).kept == first.kept  # same input, same output order


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="not unique"):
        deduplicate([rec("flyte", "a.py", "x"), rec("flyte", "a.py", "y")], RANK)
    with pytest.raises(ValueError, match="split"):
        deduplicate([rec("flyte", "a.py", "x", split="dev")], RANK)
    with pytest.raises(ValueError, match="threshold"):
        DedupConfig(threshold=0)


def test_permutations_and_lsh_params_equal_datasketch():
    # dedup_near reproduces these two pieces of datasketch so a build never imports scipy through it.
    from datasketch.lsh import _optimal_param

    for num_perm, seed in [(16, 0), (128, 3), (256, 1), (256, 12345)]:
        ours = affine32_permutations(num_perm, seed)
        theirs = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])
        assert ours[0].dtype == np.uint32
    for num_perm in (16, 64, 128, 256):
        for threshold in (0.1, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
            assert lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)
    lsh = MinHashLSH(threshold=0.7, num_perm=256)
    assert lsh_params(0.7, 256) == (lsh.b, lsh.r)


def test_gauss_legendre_equals_numpy_and_lsh_params_need_no_lapack(monkeypatch):
    # leggauss finds its nodes with LAPACK, which wakes OpenBLAS's spinning thread pool in every build.
    for n in (1, 2, 7, 16, 64, 100):
        nodes, weights = gauss_legendre(n)
        ref_nodes, ref_weights = np.polynomial.legendre.leggauss(n)
        assert np.allclose(nodes, ref_nodes, rtol=0, atol=1e-14)
        assert np.allclose(weights, ref_weights, rtol=0, atol=1e-14)

    lsh = MinHashLSH(threshold=0.7, num_perm=256)

    def no_lapack(*args, **kwargs):
        raise AssertionError("lsh_params called LAPACK")

    monkeypatch.setattr(np.linalg, "eigvalsh", no_lapack)
    monkeypatch.setattr(np.linalg, "eigh", no_lapack)
    lsh_params.cache_clear()
    try:
        assert lsh_params(0.7, 256) == (lsh.b, lsh.r)
    finally:
        lsh_params.cache_clear()


def test_near_dedup_never_imports_scipy():
    code_ = "import sys, dataset_builder.dedup, dataset_builder.pipeline; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _reference_token_hash(token: bytes) -> int:
    """The token hash spelled out: sum of byte_j * B^j over the token's bytes, mod 2^64."""
    base = 0x9E3779B97F4A7C15
    return sum(c * pow(base, j, 1 << 64) for j, c in enumerate(token)) % (1 << 64)


def test_token_hashes_equal_the_polynomial_definition():
    # The vectorised hash (powers by doubling, classes by bytes.translate) must give exactly the values
    # of the definition: a changed hash would change signatures, near pairs and so the corpus.
    rng = random.Random(7)
    alphabet = [*"abcXYZ_09 \t\n\r\f\v()[]{}.,:;=+-*/'\"#", "é", "ü", "日本", "\x1c"]
    text = "".join(rng.choice(alphabet) for _ in range(3000)) + " " + "x" * 70_000  # one long token
    data = text.encode()
    hashes, starts = token_hashes(data)
    tokens = [m.group() for m in TOKEN_RE.finditer(data)]
    assert [data[s : s + len(t)] for s, t in zip(starts, tokens, strict=True)] == tokens
    assert hashes.tolist() == [_reference_token_hash(t) for t in tokens]
    # Shared powers (as minhash_signatures passes them) give the same hashes.
    shared = token_hashes(data, hash_powers(len(data) + 10))
    assert np.array_equal(shared[0], hashes) and np.array_equal(shared[1], starts)


def test_content_hash_fast_path_equals_the_definition():
    # ASCII text takes a bytes.translate path; it must equal "".join(text.split()) for every whitespace
    # str.split knows, and Unicode whitespace must still count as whitespace.
    def definition(text: str) -> str:
        import hashlib

        return hashlib.blake2b("".join(text.split()).encode("utf-8"), digest_size=16).hexdigest()

    ascii_text = "".join(chr(c) for c in range(128)) * 3
    assert content_hash(ascii_text) == definition(ascii_text)
    assert content_hash("a\x1cb\x1fc d") == content_hash("abcd")
    assert content_hash("a\u00a0b\u2028c") == content_hash("abc") == definition("a\u00a0b\u2028c")
    assert content_hash("a\u00a0b") != content_hash("a\u00e9b")


def test_corpus_builder_never_imports_scipy():
    # datasets patches a builder's module for streaming when the builder is made, importing scipy.io to do
    # it; the corpus builder's module opts out (it never streams).
    code_ = (
        "import sys, tempfile\n"
        "from dataset_builder.config import load_config\n"
        "from dataset_builder.hf_builder import make_builder\n"
        "make_builder(load_config(None), {}, tempfile.mkdtemp())\n"
        "print('scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
