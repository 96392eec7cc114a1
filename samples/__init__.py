"""Small Flyte-style sample repos that ship with the project (the embedded offline default).

The file trees live in ``samples/repos/<name>/``; :func:`samples.make_repos.make_sample_repos` turns each
into a git repo with one deterministic commit, so the corpus builder can pin and read them exactly as it
reads the nine real Flyte repos. See ``samples/README.md`` for what is planted in them and why.

Import from :mod:`samples.make_repos`. This package does not import it eagerly, so that
``python -m samples.make_repos`` runs the module exactly once.
"""
