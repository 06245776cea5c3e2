"""Data: readers, validation against column roles (tables and firm-year panels), synthetic
data with known truth (a firm table and a firm-year panel)."""

from vaer.data.design import AnalysisData, FeatureEncoder, build_analysis_data, encode_features
from vaer.data.panel_validation import validate_panel
from vaer.data.readers import file_fingerprint, read_frame
from vaer.data.synthetic import SyntheticPanel, make_synthetic_panel
from vaer.data.synthetic_table import SyntheticTable, make_synthetic_table
from vaer.data.truth import Truth
from vaer.data.validation import DataValidationError, validate_table

__all__ = [
    "AnalysisData",
    "DataValidationError",
    "FeatureEncoder",
    "SyntheticPanel",
    "SyntheticTable",
    "Truth",
    "build_analysis_data",
    "encode_features",
    "file_fingerprint",
    "make_synthetic_panel",
    "make_synthetic_table",
    "read_frame",
    "validate_panel",
    "validate_table",
]
