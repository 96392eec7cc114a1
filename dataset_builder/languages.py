"""Which language a file is (extension, file name, shebang) and whether it is a test or a doc.

Languages are the lowercase names of docs/ARCHITECTURE.md. Anything else is "unsupported" and dropped
by the filters. The tree-sitter parse check is shared with training: flyte_llama_common.treesitter.
"""

from __future__ import annotations

import posixpath
import re

LANGUAGES = (
    "python",
    "go",
    "typescript",
    "tsx",
    "javascript",
    "protobuf",
    "markdown",
    "rst",
    "shell",
    "dockerfile",
    "makefile",
    "yaml",
    "toml",
    "json",
)

EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".go": "go",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".proto": "protobuf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".dockerfile": "dockerfile",
    ".mk": "makefile",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".ipynb": "notebook",  # converted to the kernel's language by notebooks.py
}

# Exact file names (lowercased) that carry no telling extension.
FILE_NAMES = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "makefile",
    "gnumakefile": "makefile",
    ".bashrc": "shell",
    ".envrc": "shell",
}

_SHEBANG = re.compile(rb"^#!\s*(?:/usr/bin/env\s+(?:-S\s+)?)?(?:\S*/)?(\w+)")
SHEBANG_INTERPRETERS = {
    "python": "python",
    "python3": "python",
    "sh": "shell",
    "bash": "shell",
    "zsh": "shell",
    "dash": "shell",
    "node": "javascript",
}

# Language → grammar name in tree-sitter-language-pack. Prose formats (markdown, rst) are not "code":
# a markdown parse never fails, so the check would say nothing; their `parses` is None.
# Grammars and the parse check are shared with training (flyte_llama_common.treesitter).

DOC_LANGUAGES = {"markdown", "rst"}

_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing|__tests__|testdata|test_data|e2e|integration_tests?)/"
    r"|(^|/)test_[^/]*\.py$|_test\.(py|go)$|(^|/)conftest\.py$"
    r"|\.(test|spec)\.(ts|tsx|js|jsx|mjs)$"
)
_DOC_PATH = re.compile(r"(^|/)(docs?|documentation|rsts?)/")


def detect_language(path: str, head: bytes = b"") -> str | None:
    """Language of `path` from its extension, then its file name, then the shebang in `head`.

    Returns "notebook" for .ipynb (the caller converts it) and None when the language is unsupported.
    """
    name = posixpath.basename(path).lower()
    if name in FILE_NAMES:
        return FILE_NAMES[name]
    if name.startswith("dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    ext = posixpath.splitext(name)[1]
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if not ext and head.startswith(b"#!"):
        match = _SHEBANG.match(head)
        if match:
            return SHEBANG_INTERPRETERS.get(match.group(1).decode())
    return None


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path.lower()))


def is_doc(path: str, language: str, is_notebook: bool) -> bool:
    return language in DOC_LANGUAGES or is_notebook or bool(_DOC_PATH.search(path.lower()))
