"""The one typed-dataclass-from-YAML loader: every recipe (fine-tuning and pretraining) goes through it.

A recipe is one flat YAML file under `training/recipes/` (alignment-handbook style) whose keys are the fields
of a dataclass. `recipe_mapping` reads it, applies `KEY=VALUE` overrides from the command line and rejects
unknown keys (with a did-you-mean); the dataclass's `__post_init__` then checks every value's type
(`type_problems`) and range (`rule_problems`), so a typo fails at once with one line that says what to change,
instead of hours into a run. Only PyYAML is imported here: parsers and `--help` stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).parent / "recipes"

# Range rules: a name → (check, what the value must be). Fields are assigned to rules by each config.
# Trainer's convention for max_steps: a positive count, or -1 to train for num_train_epochs instead.
RULES: dict[str, tuple[Any, str]] = {
    "positive": (lambda v: v > 0, "must be positive"),
    "non_negative": (lambda v: v >= 0, "must be 0 or more"),
    "fraction": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "beta": (lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    "steps": (lambda v: v > 0 or v == -1, "must be positive, or -1 to train for num_train_epochs"),
    "rank": (lambda v: v >= -1, "must be -1 (not distributed) or a process rank"),
}


def rule_problems(config: Any, rules_by_field: dict[str, str]) -> list[str]:
    """`name=value: must be …` for every numeric field outside its rule's range (None and strings pass:
    they mean the library's default behaviour, or a value the type check already judged)."""
    problems = []
    for name, rule in rules_by_field.items():
        value = getattr(config, name, None)
        if not rule or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        ok, need = RULES[rule]
        if not math.isfinite(value) or not ok(value):
            problems.append(f"{name}={value!r}: {need}")
    return problems


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value (str, int, float, bool, None, list, dict) fits a field annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value is a or (type(value) is type(a) and value == a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args else True
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)  # `fim_rate: 1` is fine
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, (hint, str))  # the library turns the string into its enum (or says no)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}" if args else "a list"
    return getattr(origin or hint, "__name__", str(hint))


def type_problems(config: Any, names: set[str], skip_defaults: bool = False) -> list[str]:
    """YAML gives strings, ints, floats, lists: check them against the annotations so `lora_r: "16"` or
    `learning_rate: abc` is an error naming the field rather than a crash deep inside training."""
    hints = typing.get_type_hints(type(config))
    fields = {f.name: f for f in dataclasses.fields(config)}
    problems = []
    for name in sorted(names):
        value, f = getattr(config, name), fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if skip_defaults and (value is default or value == default):
            continue
        if not _matches(value, hints[name]):
            problems.append(f"{name}={value!r} has the wrong type: expected {_describe(hints[name])}")
    return problems


def recipe_path(recipe: str) -> Path:
    """`tiny` → training/recipes/tiny.yaml; a path to a .yaml file is used as is."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        raise FileNotFoundError(
            f"recipe file {recipe} not found: pass an existing .yaml file or one of {known}"
        )
    path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no recipe {recipe!r}: choose one of {known}, or pass a path to a .yaml")
    return path


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a number (YAML 1.2; PyYAML alone reads it as a string) and refuses
    a key given twice (PyYAML alone keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (line {mark.line + 1}): keep one", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str, where: str) -> Any:
    """YAML text → Python values, or a one-line ValueError saying where the syntax is wrong."""
    try:
        return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{where} is not valid YAML{at}: {problem}; fix the syntax there") from exc


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["max_steps=5", "fim_rate=0.5"]` → {"max_steps": 5, "fim_rate": 0.5} (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {pair!r} is not KEY=VALUE (e.g. --set max_steps=10)")
        out[key.strip()] = load_yaml(value, f"--set {pair!r}: the value")
    return strategies_as_strings(out)


def strategies_as_strings(data: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads `eval_strategy: no` as False; the Trainer's *_strategy fields want the string "no"."""
    return {
        k: "no" if isinstance(k, str) and k.endswith("_strategy") and v is False else v
        for k, v in data.items()
    }


def recipe_mapping(cls: type, recipe: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's YAML mapping with `overrides` applied, its keys checked against `cls`'s fields, and
    `recipe_name` set to the file's stem (unless given)."""
    path = recipe_path(recipe)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: save the recipe as UTF-8 YAML") from exc
    data = load_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} holds a YAML {type(data).__name__}, not a mapping: a recipe is `field: value` lines"
        )
    known = {f.name for f in dataclasses.fields(cls)}
    for key in [*data, *(overrides or {})]:
        if key not in known:
            source = "--set" if key in (overrides or {}) else str(path)
            raise ValueError(f"{source}: {unknown_field(cls, key, known)}")
    return strategies_as_strings({"recipe_name": path.stem, **data, **(overrides or {})})


def unknown_field(cls: type, key: Any, known: set[str]) -> str:
    """Why `key` is no field of `cls`: renamed (`cls.RENAMED_FIELDS` names the new key) or a typo."""
    renamed = getattr(cls, "RENAMED_FIELDS", {})
    if key in renamed:
        return f"field {key!r} was renamed to TRL's name: write {renamed[key]} instead"
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {key!r}{hint}"


def field_flags(extra: list[str]) -> list[tuple[str, str]]:
    """TRL-style `--key value` / `--key=value` / bare `--flag` (true) → [(the flag as typed, `key=value`)],
    in order, so `python -m training train --config r.yaml --learning_rate 1e-4` works as TrlParser's does.
    The flag is kept to name it in the error when it is no recipe field."""
    out, i = [], 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or len(token) == 2:
            raise ValueError(f"unrecognized arguments: {token} (recipe fields are given as --KEY VALUE)")
        key, sep, value = token[2:].partition("=")
        key = key.replace("-", "_")
        if not sep:
            nxt = extra[i + 1] if i + 1 < len(extra) else None
            if nxt is None or nxt.startswith("--"):
                value = "true"  # HfArgumentParser's convention: a bare boolean flag turns it on
            else:
                value, i = nxt, i + 1
        out.append((token.partition("=")[0], f"{key}={value}"))
        i += 1
    return out


def flag_overrides(cls: type, flags: list[tuple[str, str]]) -> dict[str, Any]:
    """`field_flags` output → overrides, refusing a flag that is no field of `cls` as argparse would."""
    known = {f.name for f in dataclasses.fields(cls)}
    for flag, pair in flags:
        key = pair.partition("=")[0]
        if key in getattr(cls, "RENAMED_FIELDS", {}):
            raise ValueError(f"unrecognized arguments: {flag} ({unknown_field(cls, key, known)})")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean --{close[0]}?" if close else ""
            raise ValueError(f"unrecognized arguments: {flag} (no recipe field {key!r}{hint})")
    return parse_overrides([pair for _, pair in flags])
