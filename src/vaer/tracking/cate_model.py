"""The fitted CATE function as an MLflow pyfunc model.

``mlflow.pyfunc.load_model(uri).predict(firms)`` takes the *raw* modifier columns of
new firms (the same names and kinds as in the experiment's table; categorical levels
must be among those seen in fitting) and returns one row per firm with

- ``tau_hat``: the estimated conditional effect :math:`\\hat\\tau(x)` of one more unit of
  the treatment on the outcome,
- ``ci_low``, ``ci_high``: a pointwise ``1 - alpha`` confidence interval for the firm's
  effect where the estimator has one that is valid for it (the cluster forests:
  bootstrap of little bags over half-samples of clusters, Athey, Tibshirani and Wager,
  2019, *Ann. Statist.* 47(2)), computed a block of rows at a time; NaN otherwise,
- ``interval``: what the interval covers, ``firm`` or ``none`` (a linear CATE model's
  interval would cover the best linear projection of the effect, not a firm's effect).

Predict parameters: ``estimator`` (the label of one of the run's estimators; default the
first) and ``alpha`` (default 0.05). The model carries the feature encoding
(:class:`vaer.data.design.FeatureEncoder`); the econml estimators are stored with joblib
as the artifact ``estimators``. The sklearn flavour cannot save econml models, hence
pyfunc. Unpickling needs ``vaer`` (this class, the encoder and the zero-nuisance
stand-ins pickled with the econml models), which is not on a package index: the model
therefore carries the code of the ``vaer`` that logged it (MLflow ``code_paths``, the
``code/vaer`` folder of the model) and its ``requirements.txt`` pins vaer's own runtime
dependencies at the versions that fitted it, so that an environment built from the
model alone (``mlflow models serve``, ``spark_udf``, a fresh virtual environment with
``pip install -r requirements.txt``) loads it. Without them it failed there with
"No module named 'vaer'". Where ``vaer`` is already imported, that copy is used.

The input schema declares every numeric modifier ``double`` (an ``int8`` or ``float32``
column of a Stata file is upcast) and every categorical one ``Any``: MLflow's own
enforcement cannot pass a pandas ``category`` column (what pandas makes of a Stata
variable with value labels) as ``string``, and refused raw rows of a labelled ``.dta``
file with "Can not safely convert category to <U0". The levels are checked by the model
itself (:meth:`FeatureEncoder.transform`: a level not seen in fitting is an error naming
the column and the known levels), whatever the column's dtype (text, ``category`` or
pandas' string dtype).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from vaer.data.design import FeatureEncoder
from vaer.estimators.chunks import by_rows

OUTPUT_COLUMNS = ["tau_hat", "ci_low", "ci_high", "interval"]
REQUIREMENTS = ("econml", "scikit-learn", "lightgbm", "numpy", "pandas", "scipy", "joblib")
"""What the model needs when vaer's own distribution metadata cannot be read (vaer run
from a source tree that was never installed)."""
DIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class CateModel(PythonModel):
    """Effects of the treatment with confidence intervals for new firms, from their raw
    columns.

    Parameters
    ----------
    encoder : FeatureEncoder
        Fitted on the modifiers of the run's table.
    labels : sequence of str
        Estimator labels; the first is the default.
    intervals : mapping, optional
        Label -> ``firm`` (the estimator has per-firm intervals) or ``none`` (default).
    """

    def __init__(
        self,
        encoder: FeatureEncoder,
        labels: list[str],
        intervals: Mapping[str, str] | None = None,
    ) -> None:
        if not labels:
            raise ValueError("`labels` must name at least one estimator; got []")
        self.encoder = encoder
        self.labels = list(labels)
        self.intervals = {label: (intervals or {}).get(label, "none") for label in labels}
        self._models: dict[str, Any] = {}

    def load_context(self, context: Any) -> None:
        """Load the econml estimators from the ``estimators`` artifact."""
        import joblib

        self._models = joblib.load(context.artifacts["estimators"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """``tau_hat``, ``ci_low``, ``ci_high`` and ``interval`` per row of ``model_input``.

        Raises
        ------
        ValueError
            If ``estimator`` is not one of the run's, ``alpha`` is not in (0, 1), or the
            input lacks a column or has an unseen level.
        """
        params = params or {}
        label = params.get("estimator") or self.labels[0]
        if label not in self._models:
            raise ValueError(f"unknown estimator '{label}'; this model has {self.labels}")
        alpha = float(params.get("alpha", 0.05))
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must be in (0, 1); got {alpha}")
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        x = self.encoder.transform(frame).to_numpy(dtype=np.float64)
        model = self._models[label]
        tau = np.asarray(model.effect(x), dtype=np.float64).ravel()
        low = high = np.full(len(tau), np.nan)
        if self.intervals[label] == "firm":
            bounds = by_rows(lambda part: model.effect_interval(part, alpha=alpha), x)
            low = np.concatenate([np.ravel(lo) for lo, _ in bounds])
            high = np.concatenate([np.ravel(hi) for _, hi in bounds])
        return pd.DataFrame(
            {"tau_hat": tau, "ci_low": low, "ci_high": high, "interval": self.intervals[label]}
        )


def runtime_requirements() -> list[str]:
    """The distributions the logged model needs, each pinned to its installed version:
    vaer's runtime dependencies (its ``Requires-Dist`` without extras; MLflow pins itself),
    or :data:`REQUIREMENTS` when vaer's metadata cannot be read.

    Returns
    -------
    list of str
        ``name==version`` per distribution (``name`` alone if it is not installed).
    """
    try:
        declared = metadata.requires("vaer") or []
    except metadata.PackageNotFoundError:
        declared = []
    # a Requires-Dist line is "name<specifiers>[; markers]"; extras are markers
    runtime = [text for text in declared if "extra" not in text.partition(";")[2]]
    names = [match.group(0) for text in runtime if (match := DIST_NAME.match(text))]
    names = [name for name in names if name.lower() != "mlflow"] or list(REQUIREMENTS)
    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def package_code(folder: Path) -> Path:
    """Copy the Python modules of the imported ``vaer`` package (no templates, fonts or
    caches: unpickling needs only modules) to ``folder / "vaer"``, the code logged with
    the model.

    Parameters
    ----------
    folder : Path
        An existing folder.

    Returns
    -------
    Path
        ``folder / "vaer"``.
    """
    import shutil

    import vaer

    def not_modules(directory: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if (not name.endswith(".py") and not (Path(directory) / name).is_dir())
            or name == "__pycache__"
        }

    target = folder / "vaer"
    shutil.copytree(Path(vaer.__file__).resolve().parent, target, ignore=not_modules)
    return target


def input_schema(encoder: FeatureEncoder) -> Any:
    """The model's input schema: the raw modifier columns, numeric ones ``double``,
    categorical ones ``Any`` (their levels are checked by the model; see the module
    docstring).

    Parameters
    ----------
    encoder : FeatureEncoder

    Returns
    -------
    mlflow.types.Schema
    """
    from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

    return Schema(
        [
            ColSpec(AnyType() if column in encoder.levels else DataType.double, column)
            for column in encoder.columns
        ]
    )


def plain_example(example: pd.DataFrame, encoder: FeatureEncoder) -> pd.DataFrame:
    """``example`` with categorical columns as plain text and numeric ones as float64,
    the form kept as the model's input example (readable without the source file's
    dtypes, e.g. a Stata value-labelled ``category``)."""
    return pd.DataFrame(
        {
            column: example[column].astype(str).astype(object)
            if column in encoder.levels
            else example[column].astype(np.float64)
            for column in encoder.columns
        },
        index=pd.RangeIndex(len(example)),
    )


def log_cate_model(
    *,
    models: Mapping[str, Any],
    encoder: FeatureEncoder,
    example: pd.DataFrame,
    intervals: Mapping[str, str] | None = None,
    name: str = "cate_model",
) -> str:
    """Log fitted econml estimators as one pyfunc model in the active run.

    Parameters
    ----------
    models : mapping
        Estimator label -> fitted econml estimator (fitted on ``encoder``'s columns).
    encoder : FeatureEncoder
    example : DataFrame
        A few rows of raw modifier columns (any dtypes, e.g. Stata's labelled
        ``category``): kept as the input example in plain form (:func:`plain_example`).
    intervals : mapping, optional
        Label -> ``firm`` or ``none``: which estimators give per-firm intervals.
    name : str
        The model's name in the run.

    Returns
    -------
    str
        The model URI (``models:/...``).
    """
    import joblib
    from mlflow.models import ModelSignature, infer_signature

    labels = list(models)
    python_model = CateModel(encoder, labels, intervals)
    python_model._models = dict(models)
    example = plain_example(example, encoder)
    output = python_model.predict(None, example)
    inferred = infer_signature(example, output, params={"estimator": labels[0], "alpha": 0.05})
    signature = ModelSignature(
        inputs=input_schema(encoder), outputs=inferred.outputs, params=inferred.params
    )
    python_model._models = {}
    quiet = logging.getLogger("mlflow.pyfunc")
    level = quiet.level
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "estimators.joblib"
        joblib.dump(dict(models), path)
        # mlflow warns that the python model is cloudpickled: known, the class is ours
        quiet.setLevel(logging.ERROR)
        try:
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=python_model,
                artifacts={"estimators": str(path)},
                signature=signature,
                input_example=example,
                pip_requirements=runtime_requirements(),
                code_paths=[str(package_code(Path(tmp)))],
            )
        finally:
            quiet.setLevel(level)
    return str(info.model_uri)
