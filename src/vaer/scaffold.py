"""``vaer init``: a first experiment file for a data file, every guessed role marked.

:func:`experiment_text` renders :class:`vaer.data.guess.RoleGuesses` as a commented YAML
experiment: each guessed value carries a ``# guessed: <why>; confirm`` comment, columns
given no role are listed with the reason, and everything else (estimators, robustness,
reports) comes from vaer's defaults.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from vaer.data.guess import Guess, RoleGuesses

COMMENT_AT = 40
"""Column at which the ``# guessed`` comments start (when the value is shorter)."""


def study_name(path: Path) -> str:
    """An experiment name from a file name (letters, digits, ``_.-``), ``study`` if none."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_.-")
    return name if name and name[0].isalnum() else "study"


def _scalar(value: str) -> str:
    """A YAML scalar: plain when safe, else double-quoted (JSON strings are valid YAML)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*", value) and value.lower() not in {
        "yes",
        "no",
        "true",
        "false",
        "null",
        "on",
        "off",
        "y",
        "n",
    }:
        return value
    return json.dumps(value, ensure_ascii=False)


def _line(text: str, comment: str) -> str:
    return f"{text.ljust(COMMENT_AT)} # {comment}" if comment else text


def _guessed(reason: str) -> str:
    return f"guessed: {reason}; confirm"


def experiment_text(data_path: str, guesses: RoleGuesses, *, name: str) -> str:
    """The commented experiment YAML for ``data_path``.

    Parameters
    ----------
    data_path : str
        As the user gave it (relative paths resolve against the folder vaer runs from).
    guesses : RoleGuesses
    name : str
        The experiment's name.

    Returns
    -------
    str
    """
    singles = guesses.singles
    lines = [
        f"# Experiment for {data_path}, written by `vaer init` on {datetime.now(UTC):%Y-%m-%d}"
        f" ({guesses.n_rows} rows, {guesses.n_units} firms).",
        "# Every role was guessed from the columns: check each line marked '# guessed: ...",
        "# confirm' and edit it. Estimators, heterogeneity, attribution, robustness and the",
        "# report come from vaer's defaults (`vaer validate` lists the files merged).",
        "# Then: vaer validate <this file>   and   vaer run <this file>",
        f"name: {_scalar(name)}",
        "data:",
        f"  path: {_scalar(data_path)}",
        _line(f"  mode: {guesses.mode}", _guessed(guesses.mode_reason)),
    ]
    if guesses.mode == "panel":
        lines += [
            "measures:",
            _line(
                "  shock: covid2020",
                "the shock window: gfc2009, tradewar2019, covid2020 or "
                "{pre: [..], trough: [..], recovery: [..]}; its years must be in the data",
            ),
        ]
    lines.append("roles:")

    def single(role: str, guess: Guess | None, fallback: str = "") -> None:
        if guess is not None:
            lines.append(_line(f"  {role}: {_scalar(guess.value)}", _guessed(guess.reason)))
        elif fallback:
            lines.append(fallback)

    single("unit", singles.get("unit"))
    if guesses.mode == "panel":
        single("time", singles.get("time"))
        single(
            "exports", singles.get("exports"), "  exports: CHANGE_ME   # the export value column"
        )
        single("industry", singles.get("industry"), "  # industry: <industry code column>")
        lines.append(_line("  outcome: resilience", "built by the measures from exports"))
        lines.append(_line("  treatment: va_index", "built from the VA components"))
    else:
        single("outcome", singles.get("outcome"))
        single("treatment", singles.get("treatment"))
    single(
        "cluster",
        singles.get("cluster"),
        "  # cluster: <city column>   # no column had many firms per value",
    )
    single("instrument", singles.get("instrument"))
    if guesses.mode == "panel":
        if guesses.va_components:
            lines.append(_line("  va_components:", "city-year components; the first feeds the LQ"))
            lines += [
                _line(f"    - {_scalar(g.value)}", _guessed(g.reason))
                for g in guesses.va_components
            ]
        else:
            lines.append("  va_components: [CHANGE_ME]   # city-year digital-economy measures")
        single("va_firm", singles.get("va_firm"))

    def listing(role: str, items: list[Guess], what: str) -> None:
        if not items:
            lines.append(_line(f"  {role}: []", what))
            return
        lines.append(_line(f"  {role}:", what))
        lines.extend(_line(f"    - {_scalar(g.value)}", _guessed(g.reason)) for g in items)

    listing(
        "controls",
        [],
        "confounders the effect should not vary with: move them here from modifiers",
    )
    listing(
        "modifiers",
        [*guesses.firm_types, *guesses.modifiers],
        "what the effect may vary with (pre-shock levels)",
    )
    listing("firm_types", guesses.firm_types, "categorical columns to report effects by")
    if guesses.mechanisms:
        lines.append(_line("  mechanisms:", "channel -> proxy columns"))
        lines += [
            _line(f"    {_scalar(k)}: [{_scalar(g.value)}]", _guessed(g.reason))
            for k, g in guesses.mechanisms.items()
        ]
        lines.append(_line("  mediators:", "channel -> changes of its proxies over the window"))
        lines += [
            _line(f"    {_scalar(k)}: [{_scalar(g.value)}]", _guessed(g.reason))
            for k, g in guesses.mediators.items()
        ]
    if guesses.left_out:
        lines.append("# columns given no role:")
        lines += [f"#   {g.value}: {g.reason}" for g in guesses.left_out]
    return "\n".join(lines) + "\n"
