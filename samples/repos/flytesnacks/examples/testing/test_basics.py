"""Testing tasks and workflows

Tasks are plain functions, so ordinary pytest tests cover them. This file tests the resource
helpers that every example uses; run it with ``pytest examples/testing``.
"""

import pytest
from flytekit import Resources
from flytekit.core.resources import parse_cpu, parse_memory


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("512", 512), ("1Ki", 1024), ("500Mi", 500 * 2**20), ("2G", 2 * 10**9), ("1.5Gi", int(1.5 * 2**30))],
)
def test_parse_memory(quantity, expected):
    assert parse_memory(quantity) == expected


def test_parse_memory_rejects_unknown_suffix():
    with pytest.raises(ValueError, match="unknown memory suffix"):
        parse_memory("7Qi")


def test_millicores():
    assert parse_cpu("250m") == 0.25
    assert parse_cpu("2") == 2.0


def test_resources_to_dict_uses_kubernetes_names():
    res = Resources(cpu="1", mem="1Gi", gpu="1")
    assert res.to_dict() == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}


def test_resources_validate_eagerly():
    with pytest.raises(ValueError):
        Resources(mem="lots")
    with pytest.raises(ValueError, match="whole number"):
        Resources(gpu="0.5")


def test_requests_within_limits():
    limits = Resources(cpu="2", mem="4Gi")
    assert Resources(cpu="500m", mem="1Gi").fits_within(limits)
    assert not Resources(cpu="3").fits_within(limits)
    assert not Resources(mem="5Gi").fits_within(limits)
