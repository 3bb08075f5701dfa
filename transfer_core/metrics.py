"""Evaluation metrics, computed once on the full prediction list (reference/datasets.md §5).

Mean class accuracy is the mean of the diagonal of the row-normalised confusion matrix (rows are
targets), i.e. sklearn's balanced accuracy — never averaged per batch as some repos do.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): rows are targets, columns predictions."""
    targets = np.asarray(targets, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if targets.shape != predictions.shape:
        raise ValueError(f"targets {targets.shape} and predictions {predictions.shape} differ in shape")
    # out of range, a label would land in another cell of the flat count (target 0, prediction 9 of 7
    # classes counts as target 1 predicted as 2) or past its end
    for name, values in (("targets", targets), ("predictions", predictions)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(f"{name} hold {bad.size} value(s) outside 0..{num_classes - 1} (e.g. {int(bad[0])}): "
                             f"expected class indices of num_classes={num_classes}")
    flat = targets * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(cm: np.ndarray) -> float:
    """Overall accuracy: correct / N (0.0 for an empty matrix)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class with no target sample."""
    support = cm.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean of per-class recalls over the classes present in the targets."""
    recalls = per_class_accuracy(cm)
    present = recalls[~np.isnan(recalls)]
    return float(present.mean()) if present.size else 0.0


def normalized_confusion(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (rows with no samples stay 0)."""
    support = cm.sum(axis=1, keepdims=True).astype(np.float64)
    return np.divide(cm, support, out=np.zeros(cm.shape, dtype=np.float64), where=support > 0)


def confusion_report(cm: np.ndarray, class_names: tuple[str, ...] | list[str]) -> dict:
    """A json-able summary: raw and row-normalised matrices, per-class accuracy by name."""
    recalls = per_class_accuracy(cm)
    return {
        "class_names": list(class_names),
        "confusion": cm.astype(int).tolist(),
        "confusion_normalized": normalized_confusion(cm).round(6).tolist(),
        "per_class_accuracy": {name: (None if np.isnan(r) else float(r))
                               for name, r in zip(class_names, recalls)},
        "accuracy": accuracy(cm),
        "mean_class_accuracy": mean_class_accuracy(cm),
    }
