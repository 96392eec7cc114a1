"""The likelihood floors: a Witten-Bell byte n-gram whose probabilities are checked by hand, normalised, never
reaching across a document start, and reported beside the models with intervals."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from training.evaluation import likelihood_baselines
from training.evaluation.byte_ngram import ALPHABET, ByteNgram, bits_per_byte, pick_order


def test_unigram_and_bigram_probabilities_match_a_hand_computation():
    model = ByteNgram.train(["abab"], order=2)
    nats = model.nats_by_order(["ab"])
    # order 1: counts a=2, b=2 over N=4 with T=2 distinct: P(c) = (C(c) + T/257) / (N + T)
    p_uni = (2 + 2 / ALPHABET) / (4 + 2)
    assert nats[0, 0] == pytest.approx(-2 * math.log(p_uni))
    # order 2: 'a' after the boundary: seen once (C=1, T=1) -> (1 + 1*P1(a)) / 2;
    # 'b' after 'a': seen twice (C=2, T=1) -> (2 + P1(b)) / 3
    p_a = (1 + p_uni) / 2
    p_b = (2 + p_uni) / 3
    assert nats[1, 0] == pytest.approx(-math.log(p_a) - math.log(p_b))


def test_probabilities_are_normalised_over_the_alphabet():
    model = ByteNgram.train(["def f(x):\n    return x\n", "def g(y):\n    return y + 1\n"], order=4)
    prefix = "def h(z):\n    ret"
    total = 0.0
    for byte in range(256):
        text = prefix.encode() + bytes([byte])
        nats = model.nats_by_order([text.decode("latin-1")], [len(prefix)])  # one scored byte
        total += math.exp(-nats[-1, 0]) if byte < 128 else 0.0
    # every ASCII continuation plus the (tiny) mass of non-ASCII bytes and the boundary symbol
    assert 0.99 < total <= 1.0


def test_contexts_never_reach_across_a_document_start():
    model = ByteNgram.train(["xyz", "abc"], order=3)
    # 'a' at a document start has the boundary context, whatever the previous document ended with
    alone = model.nats_by_order(["abc"])
    after = model.nats_by_order(["xyz", "abc"])
    assert after[:, 1] == pytest.approx(alone[:, 0])


def test_score_from_counts_only_the_scored_bytes_but_uses_the_context():
    model = ByteNgram.train(["hello world"] * 3, order=4)
    whole = model.nats_by_order(["hello world"])[-1, 0]
    head = model.nats_by_order(["hello "])[-1, 0]
    tail = model.nats_by_order(["hello world"], [len("hello ")])[-1, 0]
    assert whole == pytest.approx(head + tail)


def test_order_is_picked_on_validation_and_repetition_is_learned():
    text = "for i in range(10):\n    print(i)\n"
    model = ByteNgram.train([text] * 20, order=6)
    order, scores = pick_order(model, [text])
    assert order == 6 and scores[6] < scores[1] / 4
    nats = model.nats_by_order([text])
    assert bits_per_byte(nats[5], [text]) < 0.5 < bits_per_byte(nats[0], [text])


def test_the_section_gives_systems_intervals_and_paired_differences():
    train = [{"content": "import os\nprint(os.getcwd())\n" * 5, "language": "python"}]
    records = [
        {"content": "import os\nprint(os.listdir())\n", "repo": "a", "language": "python"},
        {"content": "import sys\nprint(sys.argv)\n", "repo": "b", "language": "python"},
        {"content": "import os\nos.remove(x)\n", "repo": "b", "language": "python"},
    ]
    fitted, info = likelihood_baselines.fit({"train": train, "validation": train}, 10_000)
    assert info["byte_ngram_order"] in range(1, 9) and info["byte_ngram_train_bytes"] == 145
    sizes = [len(r["content"]) for r in records]
    good = [0.5 * n for n in sizes]  # a "model" at 0.5 nats per byte
    section = likelihood_baselines.bits_per_byte_section({"base": good}, fitted, records, seed=0)
    base = section["systems"]["base"]["overall"]
    assert base["bits_per_byte"] == pytest.approx(0.5 / math.log(2))
    assert base["documents"] == 3 and base["ci95"][0] <= base["bits_per_byte"] <= base["ci95"][1]
    assert set(section["systems"]) == {"base", "byte_unigram", "byte_ngram"}
    assert set(section["systems"]["byte_ngram"]) == {"overall", "repo:a", "repo:b"}
    diff = section["differences"]["base - byte_unigram"]
    uni = section["systems"]["byte_unigram"]["overall"]["bits_per_byte"]
    assert diff["bits_per_byte"] == pytest.approx(base["bits_per_byte"] - uni)
    assert diff["ci95"][1] < 0  # the 0.5-nat "model" beats the unigram on every resample


def test_middle_rows_score_the_middle_given_the_prefix():
    fitted, _ = likelihood_baselines.fit({"train": [{"content": "a = 1\nb = 2\n" * 10}]}, 10_000)
    task = SimpleNamespace(task_id="t0", prefix="a = 1\n", middle="b = 2\n", suffix="")
    rows = likelihood_baselines.middle_rows(fitted, [task])
    model, order = fitted
    expected = model.nats_by_order(["a = 1\nb = 2\n"], [6])[order - 1, 0]
    assert rows["byte_ngram"][0] == {
        "task_id": "t0", "nll_psm": pytest.approx(expected), "nll_spm": pytest.approx(expected), "chars": 6,
    }  # fmt: skip
    assert np.isfinite(rows["byte_unigram"][0]["nll_psm"])
