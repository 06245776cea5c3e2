"""The data stage: read or generate the analysis table, validate it, describe it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vaer.config.models import DataConfig, Roles
from vaer.data.readers import file_fingerprint, read_frame
from vaer.data.synthetic_table import make_synthetic_table
from vaer.data.truth import Truth
from vaer.data.validation import validate_table


@dataclass(frozen=True)
class LoadedData:
    """A validated analysis table and where it came from.

    Attributes
    ----------
    frame : DataFrame
        One row per unit.
    source : str
        The file path, or a description of the generator.
    fingerprint : str
        Hash of the input file's bytes, or of the generator's config and seed.
    truth : Truth or None
        Known effects, when the data are synthetic.
    """

    frame: pd.DataFrame
    source: str
    fingerprint: str
    truth: Truth | None = None

    def summary(self, roles: Roles) -> dict[str, Any]:
        """Counts for the report and the run's tags."""
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "rows": len(self.frame),
            "units": int(self.frame[roles.unit].nunique()),
            "clusters": int(self.frame[roles.cluster].nunique())
            if roles.cluster
            else len(self.frame),
            "synthetic": self.truth is not None,
        }


def load_data(config: DataConfig, roles: Roles, *, seed: int) -> LoadedData:
    """Read or generate the table named by ``config`` and validate it against ``roles``.

    Raises
    ------
    FileNotFoundError
        If ``data.path`` does not exist.
    vaer.data.validation.DataValidationError
        If the table does not fit the roles.
    """
    if config.source == "synthetic":
        table = make_synthetic_table(config.synthetic, random_state=seed)
        spec = json.dumps(
            {"generator": "synthetic_table", "seed": seed, **config.synthetic.model_dump()},
            sort_keys=True,
        )
        loaded = LoadedData(
            frame=table.frame,
            source=f"built-in synthetic firm table (seed {seed}, {config.synthetic.n_units} firms)",
            fingerprint=hashlib.sha256(spec.encode()).hexdigest()[:16],
            truth=table.truth,
        )
    else:
        if config.path is None:
            raise ValueError("`data.path` is required when `data.source` is 'file'")
        loaded = LoadedData(
            frame=read_frame(config.path),
            source=str(config.path),
            fingerprint=file_fingerprint(config.path),
        )
    validate_table(
        loaded.frame, roles, min_firms_per_type=config.min_firms_per_type, source=loaded.source
    )
    return loaded
