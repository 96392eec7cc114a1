from flytekit import ImageSpec


def test_tag_is_stable_and_content_derived():
    spec = ImageSpec(name="trainer", packages=["torch", "pandas"])
    assert spec.tag == ImageSpec(name="trainer", packages=("torch", "pandas")).tag
    assert spec.tag != spec.with_packages("scikit-learn").tag


def test_registry_does_not_change_the_tag():
    spec = ImageSpec(name="trainer")
    pushed = ImageSpec(name="trainer", registry="ghcr.io/flyteorg")
    assert spec.tag == pushed.tag
    assert pushed.image_name() == f"ghcr.io/flyteorg/trainer:{spec.tag}"


def test_dockerfile_lists_packages_in_order():
    spec = ImageSpec(
        name="etl",
        packages=("polars", "duckdb"),
        apt_packages=("git",),
        env={"MAINTAINER": "user@example.com"},
    )
    dockerfile = spec.to_dockerfile()
    assert dockerfile.splitlines()[0] == "FROM python:3.11-slim"
    assert "RUN pip install --no-cache-dir duckdb polars" in dockerfile
    assert "ENV MAINTAINER=user@example.com" in dockerfile
