"""The model card's evaluation sections: every system with intervals, plain-word comparisons, API usage."""

from __future__ import annotations

import copy

from test_model_card import _d, _i, eval_results, render

from model_card.model_card import card_metrics, split_front_matter
from training.eval_results import validate_results


def with_api(results: dict) -> dict:
    results = copy.deepcopy(results)
    fam = {
        "api_import": _i(0.5, 0.8, 10) | {"api_valid": 0.9},
        "api_decorator": _i(0.3, 0.6, 10) | {"api_valid": 0.7},
    }
    results["api_usage"] = {
        "tasks_file": "api_usage_tasks.jsonl",
        "base": {"overall": _i(0.2, 0.5, 20) | {"api_valid": 0.55}, "by_kind": fam},
        "adapter": {"overall": _i(0.4, 0.7, 20) | {"api_valid": 0.8}, "by_kind": fam},
        "baselines": {"previous_line": {"overall": _i(0.0, 0.2, 20) | {"api_valid": 0.1}}},
        "differences": {"adapter - base": _d(0.2, 0.2, 20)},
        "api_valid_counted": 18,
        "api_valid_excluded": {"reference_not_valid_here": 2},
        "summary": {"cut": 23, "by_family": {"api_import": 10, "api_decorator": 10}, "dropped": {}},
    }
    return results


def test_card_shows_all_systems_comparisons_and_decontamination():
    text = render(eval_results())
    assert "| **this adapter** | 40 | 0.325 [0.275, 0.375]" in text
    assert "| baseline: repeat the previous line | 40 | 0.062 [0.012, 0.113]" in text
    assert "The adapter vs base model: exact match better (+0.200, 95% CI [+0.170, +0.230])" in text
    assert "5\ndropped because the hole with 2 lines of context" in text
    assert "12.3% (123 of 1000) also occur verbatim in train" in text


def test_no_detectable_difference_is_said_so():
    results = eval_results()
    results["infilling"]["differences"]["adapter - base"] = _d(0.01, -0.001, 40) | {
        "overall": {"tasks": 40, "exact_match": {"value": 0.01, "ci95": [-0.02, 0.04]}}
    }
    assert "exact match no detectable difference (+0.010" in render(results)


def test_api_usage_section_and_the_adapters_api_validity_in_the_model_index():
    results = with_api(eval_results())
    validate_results(results)
    text = render(results)
    assert "### Flyte API usage" in text and "(23 cut:" in text
    assert "| **this adapter** | 20 | 0.400 [0.350, 0.450] | 0.700 [0.660, 0.740] | 0.800 |" in text
    assert "| import | 10 |" in text and "| decorator | 10 |" in text
    assert "18 tasks counted; 2 whose reference" in text
    assert set(card_metrics(split_front_matter(text))) == {
        "Test perplexity",
        "Infilling exact match",
        "Infilling edit similarity",
        "API-usage validity",  # the adapter's own, from the `api_usage` config; never the base's
    }
    meta = split_front_matter(text)
    entry = next(
        r
        for r in meta["model-index"][0]["results"]
        if any(m["name"] == "API-usage validity" for m in r["metrics"])
    )
    assert entry["dataset"]["config"] == "api_usage"
    assert [m["value"] for m in entry["metrics"]] == [results["api_usage"]["adapter"]["overall"]["api_valid"]]


def test_staging_publishes_the_api_tasks_the_results_name_and_refuses_a_link(tmp_path):
    import json

    import pytest
    from test_model_card import CODE_LLAMA, make_run

    from model_card.stage import StageError, stage_model

    run = make_run(tmp_path / "run")
    results = with_api(
        json.loads((run / "eval_results.json").read_text()) | {"infilling": eval_results()["infilling"]}
    )
    results["infilling"]["tasks_file"] = "infilling_tasks.jsonl"
    (run / "eval_results.json").write_text(json.dumps(results))
    (run / "api_usage_tasks.jsonl").write_text('{"task_id": "python-api_import-0000"}\n')
    args = dict(repo_id="flyte-test/flyte-llama-tiny", base_model_id=CODE_LLAMA)
    out = stage_model(run / "adapter", run / "eval_results.json", tmp_path / "hub" / "m", **args)
    assert (out / "api_usage_tasks.jsonl").read_text() == (run / "api_usage_tasks.jsonl").read_text()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the Hub")
    (run / "api_usage_tasks.jsonl").unlink()
    (run / "api_usage_tasks.jsonl").symlink_to(secret)
    with pytest.raises(StageError, match=r"api_usage\.tasks_file"):
        stage_model(run / "adapter", run / "eval_results.json", tmp_path / "hub" / "m2", **args)
    assert not (tmp_path / "hub" / "m2").exists()


def test_card_reads_bits_per_byte_against_the_counting_baselines():
    results = eval_results()
    rec = lambda v, lo, hi: {"overall": {"bits_per_byte": v, "documents": 9, "ci95": [lo, hi]}}  # noqa: E731
    results["held_out_bits_per_byte"] = {
        "systems": {
            "base": rec(3.1, 3.0, 3.2),
            "adapter": rec(2.6, 2.5, 2.7),
            "byte_unigram": rec(5.1, 5.0, 5.2),
            "byte_ngram": rec(2.3, 2.2, 2.4),
        },
        "differences": {
            "adapter - base": {"bits_per_byte": -0.5, "ci95": [-0.6, -0.4]},
            "adapter - byte_ngram": {"bits_per_byte": 0.3, "ci95": [0.2, 0.4]},
        },
    }
    text = render(results)
    assert "Against counting alone" in text
    assert "| baseline: byte n-gram of the train split (Witten-Bell) | 2.300 [2.200, 2.400] | 9 |" in text
    assert "**this adapter** vs base model: 0.500 bits/byte fewer" in text
    assert "vs baseline: byte n-gram of the train split (Witten-Bell): 0.300 bits/byte more" in text
    del results["held_out_bits_per_byte"]
    assert "Against counting alone" not in render(results)
