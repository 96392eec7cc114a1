"""The card's four-way table and its advice, derived from the paired intervals (never written by hand)."""

from __future__ import annotations

import copy

from test_model_card import _d, _i, eval_results, render

from model_card.eval_view import recommendation, retrieval_view
from training.eval_results import validate_results

SYSTEMS = ["base", "base+retrieval", "adapter", "adapter+retrieval"]


def _with_retrieval(differences: dict) -> dict:
    results = copy.deepcopy(eval_results())
    results["settings"]["retrieval"] = {
        "index": "./retrieval_index",
        "chunks": 10,
        "k": 5,
        "token_budget": 512,
    }
    tasks = results["infilling"]["base"]["overall"]["tasks"]
    results["infilling"]["retrieval"] = {
        "base": {"overall": _i(0.31, 0.61, tasks)},
        "adapter": {"overall": _i(0.47, 0.77, tasks)},
        "differences": differences,
        "leaks": {"count": 3, "checked": 40},
        "context": {},
    }
    validate_results(results)
    return results


def test_recommendation_picks_the_cheapest_unbeaten_system():
    up, flat = _d(0.1, 0.1, 50), _d(0.01, 0.0, 50)  # interval above zero / including zero
    d = {
        "adapter - base": up,
        "base+retrieval - base": up,
        "adapter+retrieval - adapter": up,
        "adapter - base+retrieval": flat,
        "adapter+retrieval - base+retrieval": up,
        "adapter+retrieval - base": up,
    }
    text = recommendation(SYSTEMS, d, 50)
    assert text.startswith("Use this adapter with retrieved context")
    assert "base model, base model + retrieval, this adapter (paired" in text
    # retrieval helps the base, the adapter adds nothing: the cheaper base + retrieval wins
    d3 = {k: flat for k in d} | {
        "base+retrieval - base": up,
        "adapter - base": up,
        "adapter+retrieval - base": up,
    }
    assert recommendation(SYSTEMS, d3, 50).startswith("Use the base model with retrieved context")
    none = recommendation(SYSTEMS, {k: flat for k in d}, 50)
    assert none.startswith("Use the base model alone") and "no combination is detectably better" in none
    # a key in the other order counts too: base - base+retrieval below zero means base+retrieval is better
    flipped = {k: flat for k in d if k != "base+retrieval - base"} | {
        "base - base+retrieval": _d(-0.1, -0.1, 50)
    }
    assert recommendation(SYSTEMS, flipped, 50).startswith("Use the base model with retrieved context")


def test_card_shows_the_four_way_table_and_the_advice():
    flat = _d(0.0, 0.0, 40)
    results = _with_retrieval(
        {"base+retrieval - base": flat, "adapter+retrieval - adapter": _d(0.1, 0.1, 40)}
        | {k: flat for k in ("adapter - base+retrieval", "adapter+retrieval - base+retrieval")}
    )
    text = render(results)
    assert "### Fine-tune, retrieve, or both" in text
    view = retrieval_view(results["infilling"])
    names = [r["name"] for r in view["rows"]]
    assert names == [
        "base model",
        "base model + retrieval",
        "**this adapter**",
        "**this adapter** + retrieval",
    ]
    for name in names:
        assert f"| {name} |" in text
    assert view["recommendation"] in text
    assert "on 3 of the\n40 tasks" in text
    assert "### Fine-tune, retrieve, or both" not in render(eval_results())
