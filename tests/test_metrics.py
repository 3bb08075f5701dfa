"""Metrics on inputs with known answers (mean class accuracy is balanced accuracy, computed once)."""

import numpy as np
import pytest

from transfer_core.metrics import (accuracy, confusion_matrix, confusion_report, mean_class_accuracy,
                                   normalized_confusion)


def test_confusion_matrix_rows_are_targets():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize("targets, predictions, name, value", [
    ([0, 1], [8, 1], "predictions", 8), ([0, 3], [0, 0], "targets", 3), ([-1, 0], [0, 0], "targets", -1)])
def test_confusion_matrix_refuses_a_class_index_out_of_range(targets, predictions, name, value):
    """Counted in the flat matrix, prediction 8 of 3 classes for target 0 lands on the diagonal (target
    2, prediction 2): a wrong answer counted as right (accuracy 1.0), silently."""
    with pytest.raises(ValueError, match=rf"{name} hold 1 value\(s\) outside 0..2 \(e.g. {value}\).*num_classes=3"):
        confusion_matrix(np.array(targets), np.array(predictions), 3)


def test_accuracy_is_correct_over_total():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert accuracy(cm) == 0.5


def test_mean_class_accuracy_averages_recalls_of_present_classes():
    # class 0: 9/10 right, class 1: 0/1 right -> overall 0.818..., balanced 0.45
    targets = np.array([0] * 10 + [1])
    predictions = np.array([0] * 9 + [1] + [0])
    cm = confusion_matrix(targets, predictions, 3)
    assert abs(mean_class_accuracy(cm) - 0.45) < 1e-12
    assert abs(accuracy(cm) - 9 / 11) < 1e-12


def test_normalized_confusion_rows_sum_to_one_or_zero():
    cm = np.array([[2, 2], [0, 0]])
    assert normalized_confusion(cm).tolist() == [[0.5, 0.5], [0.0, 0.0]]


def test_confusion_report_keys_per_class_accuracy_by_name():
    cm = np.array([[3, 1], [0, 0]])
    report = confusion_report(cm, ("Happy", "Sad"))
    assert report["per_class_accuracy"] == {"Happy": 0.75, "Sad": None}
    assert report["confusion"] == [[3, 1], [0, 0]]
