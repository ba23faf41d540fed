"""Accuracy and binary F1 as an ``evaluate`` metric module, shipped with the workbook and loaded by
path (``evaluate.load(<this file>)``), so scoring needs no download from the hub. The arithmetic
is scikit-learn's, as in the hub's own ``accuracy`` and ``f1`` modules."""
import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score

_DESCRIPTION = "Accuracy and F1 of the positive class (label 1), for binary classification such as MRPC."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels (0 or 1).
    references (list of int): true labels (0 or 1).
Returns:
    accuracy (float): share of predictions equal to the reference.
    f1 (float): F1 of label 1.
"""
_CITATION = "scikit-learn: Machine Learning in Python, Pedregosa et al., JMLR 12, 2011."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AccuracyF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references):
        return {"accuracy": float(accuracy_score(references, predictions)),
                "f1": float(f1_score(references, predictions, zero_division=0.0))}
