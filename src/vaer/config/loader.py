"""Reading experiments: YAML files, defaults, ``--set`` overrides and readable errors.

This is the only module of vaer that reads YAML. The merge order is

1. ``configs/default.yaml`` of the project the experiment file lives in (the nearest
   ancestor folder holding ``configs/default.yaml``), if there is one;
2. the files named by the experiment's optional ``base:`` list (paths relative to the
   experiment file), in order;
3. the experiment file itself;
4. ``--set a.b=value`` overrides, in order (values are parsed as YAML scalars).

Mappings merge key by key; lists and scalars replace.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vaer.config.models import ExperimentConfig


class ConfigError(ValueError):
    """An experiment file or override is invalid; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid experiment config{where}:\n{body}")


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid YAML, or does not hold a mapping.
    """
    if not path.is_file():
        raise ConfigError([f"file not found: {path}"])
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=str(path)) from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(
            [f"the top level must be a mapping of sections; got {type(content).__name__}"],
            source=str(path),
        )
    return content


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``: mappings recursively, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.0=value`` into its key path and its YAML-parsed value.

    Raises
    ------
    ConfigError
        If there is no ``=`` or the key path is empty.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"--set expects key.path=value; got '{text}'"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def set_path(tree: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set ``value`` at ``path`` in a nested dict/list tree, creating mappings as needed.

    Raises
    ------
    ConfigError
        If a list index is not an integer or is out of range.
    """
    node: Any = tree
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            if not part.lstrip("-").isdigit():
                raise ConfigError([f"{where}: a list index must be an integer; got '{part}'"])
            index = int(part)
            if not -len(node) <= index < len(node):
                raise ConfigError(
                    [f"{where}: index {index} is out of range; the list has {len(node)} items"]
                )
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if child is None:
                    node[part] = child = {}
                elif not isinstance(child, dict | list):
                    raise ConfigError(
                        [f"{where}.{path[depth + 1]}: '{where}' is a value, not a section"]
                    )
                node = child
        else:
            parent = ".".join(path[:depth])
            raise ConfigError([f"{where}: '{parent}' is a value, not a section"])


def find_project_root(start: Path) -> Path | None:
    """The nearest ancestor of ``start`` holding ``configs/default.yaml``."""
    for folder in [start, *start.parents]:
        if (folder / "configs" / "default.yaml").is_file():
            return folder
    return None


def load_raw(path: Path | str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Merge defaults, ``base`` files, the experiment and overrides into one raw mapping."""
    path = Path(path).resolve()
    experiment = read_yaml(path)
    root = find_project_root(path.parent)
    merged: dict[str, Any] = {}
    if root is not None and (root / "configs" / "default.yaml").resolve() != path:
        merged = read_yaml(root / "configs" / "default.yaml")
    bases = experiment.pop("base", [])
    if isinstance(bases, str):
        bases = [bases]
    for base in bases:
        merged = deep_merge(merged, read_yaml((path.parent / base).resolve()))
    merged = deep_merge(merged, experiment)
    for text in overrides:
        keys, value = parse_override(text)
        set_path(merged, keys, value)
    return merged


def load_experiment(path: Path | str, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Load and validate an experiment file.

    Parameters
    ----------
    path : path-like
        The experiment YAML file.
    overrides : iterable of str
        ``key.path=value`` strings applied after all files.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        Listing every problem, each with its full key path, the bad value and what is allowed.
    """
    raw = load_raw(path, overrides)
    return validate_config(raw, source=str(path))


def validate_config(raw: Mapping[str, Any], source: str | None = None) -> ExperimentConfig:
    """Validate a raw mapping into an :class:`ExperimentConfig` with readable errors."""
    try:
        return ExperimentConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, ExperimentConfig), source=source) from None


# ------------------------------------------------------------------ error messages


def _model_in(annotation: Any) -> Any:
    """Strip Optional/Annotated/list/dict wrappers down to what the next key indexes."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    return annotation


def _walk(model: Any, loc: Sequence[int | str]) -> tuple[list[str], Any]:
    """Follow a pydantic error location through the model classes.

    Returns the printable path (discriminator tags removed) and the model class that
    holds the last key, if known.
    """
    path: list[str] = []
    node: Any = model
    for part in loc:
        node = _model_in(node)
        origin = typing.get_origin(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            path.append(str(part))
            field = node.model_fields.get(str(part))
            node = field.annotation if field is not None else None
            continue
        if origin in (list, tuple) or origin is typing.Sequence:
            path.append(str(part))
            node = typing.get_args(node)[0]
            continue
        if origin is dict:
            path.append(str(part))
            node = typing.get_args(node)[1]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [_model_in(m) for m in typing.get_args(node)]
            tagged = [
                m
                for m in members
                if isinstance(m, type)
                and issubclass(m, BaseModel)
                and "kind" in m.model_fields
                and part in typing.get_args(m.model_fields["kind"].annotation)
            ]
            if tagged:
                node = tagged[0]
                continue
            path.append(str(part))
            node = None
            continue
        path.append(str(part))
        node = None
    return path, node


def _parent_model(model: Any, loc: Sequence[int | str]) -> Any:
    _, parent = _walk(model, loc[:-1])
    parent = _model_in(parent)
    if typing.get_origin(parent) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(parent) if isinstance(m, type)]
        parent = next((m for m in members if issubclass(m, BaseModel)), None)
    return parent


def _describe_bound(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx", {})
    value = error.get("input")
    kind = "an int" if isinstance(value, int) and not isinstance(value, bool) else "a number"
    symbols = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    key = {
        "greater_than_equal": "ge",
        "greater_than": "gt",
        "less_than_equal": "le",
        "less_than": "lt",
    }[error["type"]]
    return f"must be {kind} {symbols[error['type']]} {ctx.get(key)}"


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """Turn a pydantic error into one line per problem: ``key.path: problem; got value``."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        path, _ = _walk(model, loc)
        where = ".".join(path) or "(top level)"
        kind = error["type"]
        value = error.get("input")
        if kind == "extra_forbidden":
            parent = _parent_model(model, loc)
            allowed = sorted(parent.model_fields) if parent is not None else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            lines.append(f"{where}: unknown key{hint} allowed keys: {', '.join(allowed)}")
        elif kind == "missing":
            lines.append(f"{where}: required but missing")
        elif kind == "union_tag_invalid":
            expected = error.get("ctx", {}).get("expected_tags", "")
            lines.append(f"{where}.kind: unknown kind '{error['ctx']['tag']}'; allowed: {expected}")
        elif kind == "union_tag_not_found":
            lines.append(f"{where}.kind: required; name the estimator kind")
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            lines.append(f"{where}: {_describe_bound(error)}; got {value!r}")
        elif kind == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            lines.append(f"{where}: must be one of {expected}; got {value!r}")
        elif kind in ("int_type", "int_parsing", "int_from_float"):
            lines.append(f"{where}: must be an int; got {value!r}")
        elif kind in ("float_type", "float_parsing"):
            lines.append(f"{where}: must be a number; got {value!r}")
        elif kind in ("bool_type", "bool_parsing"):
            lines.append(f"{where}: must be true or false; got {value!r}")
        elif kind == "string_pattern_mismatch":
            lines.append(
                f"{where}: must start with a letter or digit and use only letters, digits, "
                f"'_', '.', '-'; got {value!r}"
            )
        elif kind == "too_short":
            lines.append(f"{where}: must not be empty")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            shown = "" if isinstance(value, Mapping) else f"; got {value!r}"
            lines.append(f"{where}: {message}{shown}")
    return lines


def dump_config(config: ExperimentConfig) -> str:
    """The resolved config as YAML (what ``config/resolved.yaml`` holds)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
