"""Reading experiments: YAML files, defaults, ``--set`` overrides and readable errors.

This is the only module of vaer that reads YAML. The merge order is

1. vaer's defaults, shipped in the package (``vaer/config/default.yaml``, read with
   :mod:`importlib.resources`), so they travel with the installed package;
2. the project's ``configs/default.yaml`` in the current working directory, if there is
   one (the folder vaer runs from is the project: relative ``data.path``, ``report.out``
   and the ``mlruns/`` store resolve there too);
3. the files named by the experiment's optional ``base:`` list (paths relative to the
   experiment file), in order;
4. the experiment file itself;
5. ``--set a.b=value`` overrides, in order (values are parsed as YAML scalars).

Mappings merge key by key; lists and scalars replace. Where the experiment file lives
does not change what it resolves to (only the folder vaer runs from does);
:func:`config_sources` lists the files merged.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, RootModel, ValidationError

from vaer.config.models import ExperimentConfig


class ConfigError(ValueError):
    """An experiment file or override is invalid; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid experiment config{where}:\n{body}")


PROJECT_DEFAULTS = Path("configs") / "default.yaml"
"""A project's own defaults, relative to the folder vaer runs from."""


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid YAML, or does not hold a mapping.
    """
    if not path.is_file():
        raise ConfigError([f"file not found: {path}"])
    return parse_yaml(path.read_text(encoding="utf-8"), str(path))


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text holding a mapping (``source`` names it in errors).

    Raises
    ------
    ConfigError
        If the text is not valid YAML or does not hold a mapping.
    """
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=source) from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(
            [f"the top level must be a mapping of sections; got {type(content).__name__}"],
            source=source,
        )
    return content


def package_defaults() -> dict[str, Any]:
    """vaer's own defaults: ``default.yaml`` shipped inside the ``vaer.config`` package."""
    resource = resources.files("vaer.config").joinpath("default.yaml")
    return parse_yaml(resource.read_text(encoding="utf-8"), package_defaults_location())


def package_defaults_location() -> str:
    """Where the package defaults are read from (for ``vaer validate``)."""
    return str(resources.files("vaer.config").joinpath("default.yaml"))


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


@dataclass(frozen=True)
class ConfigSource:
    """One layer of a resolved experiment, in merge order.

    Attributes
    ----------
    role : str
        ``package defaults``, ``project defaults``, ``base``, ``experiment`` or ``--set``.
    location : str
        The file (or, for ``--set``, the override text).
    """

    role: str
    location: str


def project_defaults_file(project: Path | None = None) -> Path | None:
    """The project's ``configs/default.yaml`` in ``project`` (default: the working
    directory), if it exists."""
    candidate = (project or Path.cwd()) / PROJECT_DEFAULTS
    return candidate.resolve() if candidate.is_file() else None


def _layers(
    path: Path, project: Path | None
) -> tuple[dict[str, Any], list[ConfigSource], list[tuple[ConfigSource, dict[str, Any]]]]:
    """The experiment mapping (``base`` removed) and the layers merged under it."""
    experiment = read_yaml(path)
    layers: list[tuple[ConfigSource, dict[str, Any]]] = [
        (ConfigSource("package defaults", package_defaults_location()), package_defaults())
    ]
    own = project_defaults_file(project)
    if own is not None and own != path:
        layers.append((ConfigSource("project defaults", str(own)), read_yaml(own)))
    bases = experiment.pop("base", [])
    if isinstance(bases, str):
        bases = [bases]
    for base in bases:
        location = (path.parent / base).resolve()
        layers.append((ConfigSource("base", str(location)), read_yaml(location)))
    return experiment, [s for s, _ in layers], layers


def config_sources(
    path: Path | str, overrides: Iterable[str] = (), *, project: Path | None = None
) -> list[ConfigSource]:
    """Every layer :func:`load_raw` merges for ``path``, in merge order.

    Parameters
    ----------
    path : path-like
        The experiment file.
    overrides : iterable of str
        ``--set`` strings (listed last).
    project : Path, optional
        The project folder whose ``configs/default.yaml`` applies; default: the working
        directory.

    Returns
    -------
    list of ConfigSource
    """
    path = Path(path).resolve()
    _, sources, _ = _layers(path, project)
    return [
        *sources,
        ConfigSource("experiment", str(path)),
        *(ConfigSource("--set", text) for text in overrides),
    ]


def load_raw(
    path: Path | str, overrides: Iterable[str] = (), *, project: Path | None = None
) -> dict[str, Any]:
    """Merge the package defaults, the project's defaults, ``base`` files, the experiment
    and overrides into one raw mapping (merge order in the module docstring).

    Parameters
    ----------
    path : path-like
        The experiment file.
    overrides : iterable of str
        ``key.path=value`` strings applied after all files.
    project : Path, optional
        The project folder whose ``configs/default.yaml`` applies; default: the working
        directory.

    Returns
    -------
    dict
    """
    path = Path(path).resolve()
    experiment, _, layers = _layers(path, project)
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = deep_merge(merged, layer)
    merged = deep_merge(merged, experiment)
    for text in overrides:
        keys, value = parse_override(text)
        set_path(merged, keys, value)
    return merged


def load_experiment(
    path: Path | str, overrides: Iterable[str] = (), *, project: Path | None = None
) -> ExperimentConfig:
    """Load and validate an experiment file over the package's and the project's defaults.

    Parameters
    ----------
    path : path-like
        The experiment YAML file.
    overrides : iterable of str
        ``key.path=value`` strings applied after all files.
    project : Path, optional
        The project folder whose ``configs/default.yaml`` applies; default: the working
        directory.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        Listing every problem, each with its full key path, the bad value and what is allowed.
    """
    raw = load_raw(path, overrides, project=project)
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
        if isinstance(node, type) and issubclass(node, RootModel):  # e.g. `labels:`
            node = _model_in(node.model_fields["root"].annotation)
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
