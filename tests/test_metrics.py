import numpy as np
import pytest

from mlpcli.data import Split
from mlpcli.nn.model import MLP
from mlpcli.report.metrics import confusion_matrix, evaluate_split, per_class_report


def test_confusion_matrix_rows_are_true_labels():
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_per_class_report_by_hand():
    report = per_class_report(np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]]))
    # class 0: predicted twice (1 right), true twice (1 found)
    assert report[0] == {"class": 0, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report[1]["precision"] == 0.5 and report[1]["recall"] == 1.0
    assert report[1]["f1"] == pytest.approx(2 / 3)
    assert report[2]["precision"] == 1.0 and report[2]["recall"] == pytest.approx(2 / 3)


def test_class_never_predicted_gets_zero_not_nan():
    report = per_class_report(np.array([[2, 0], [1, 0]]))
    assert report[1] == {"class": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_evaluate_split_agrees_with_its_parts():
    model = MLP.initialize([5, 4, 3], np.random.default_rng(0))
    X = np.random.default_rng(1).normal(size=(50, 5)).astype(np.float32)
    y = np.random.default_rng(2).integers(0, 3, 50)
    figures = evaluate_split(model, Split(X, y))
    assert figures["accuracy"] == pytest.approx((model.predict(X) == y).mean())
    assert figures["loss"] == pytest.approx(model.loss_and_gradients(X, y)[0], rel=1e-5)
    assert np.sum(figures["confusion_matrix"]) == 50
