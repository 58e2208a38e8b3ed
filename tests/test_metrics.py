"""Tests for petl.metrics against accuracy matrices worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from petl.errors import ConfigError
from petl.metrics import (
    accuracy,
    average_accuracy,
    average_incremental_accuracy,
    backward_transfer,
    forgetting,
    forgetting_per_task,
    forward_transfer,
    per_class_accuracy,
    plasticity,
    summarize,
)

# R[i, j] = score on task j after training task i.
R3 = [
    [0.9, 0.1, 0.2],
    [0.7, 0.8, 0.3],
    [0.6, 0.5, 0.9],
]
INIT3 = [0.1, 0.2, 0.1]

# Task 0 improves after training task 1 (0.80 -> 0.85), so its best earlier score is not
# the diagonal: here Chaudhry's forgetting and -BWT differ.
R4 = [
    [0.80, 0.20, 0.10, 0.25],
    [0.85, 0.90, 0.15, 0.20],
    [0.70, 0.50, 0.85, 0.30],
    [0.50, 0.60, 0.40, 0.95],
]
INIT4 = [0.25, 0.25, 0.25, 0.25]


def approx(x):
    return pytest.approx(x, abs=1e-12)


class TestThreeTasks:
    def test_average_accuracy(self):
        # (0.6 + 0.5 + 0.9) / 3 = 2.0 / 3
        assert average_accuracy(R3) == approx(2.0 / 3)

    def test_forgetting_per_task(self):
        # f_0 = max(0.9, 0.7) - 0.6 = 0.3
        # f_1 = max(0.1, 0.8) - 0.5 = 0.3
        # f_2 = 0 (last task)
        np.testing.assert_allclose(forgetting_per_task(R3), [0.3, 0.3, 0.0], atol=1e-12)

    def test_forgetting(self):
        # (0.3 + 0.3) / 2 = 0.3
        assert forgetting(R3) == approx(0.3)

    def test_backward_transfer(self):
        # ((0.6 - 0.9) + (0.5 - 0.8)) / 2 = (-0.3 - 0.3) / 2 = -0.3
        assert backward_transfer(R3) == approx(-0.3)

    def test_forward_transfer(self):
        # j=1: R[0,1] - init[1] = 0.1 - 0.2 = -0.1
        # j=2: R[1,2] - init[2] = 0.3 - 0.1 =  0.2
        # (-0.1 + 0.2) / 2 = 0.05
        assert forward_transfer(R3, INIT3) == approx(0.05)

    def test_plasticity(self):
        # (0.9 + 0.8 + 0.9) / 3 = 2.6 / 3
        assert plasticity(R3) == approx(2.6 / 3)

    def test_average_incremental_accuracy(self):
        # row 0: 0.9; row 1: (0.7 + 0.8) / 2 = 0.75; row 2: (0.6 + 0.5 + 0.9) / 3 = 2/3
        # in 1/180 units: 0.9 = 162, 0.75 = 135, 2/3 = 120 -> sum 417 / 180; mean = 417 / 540
        assert average_incremental_accuracy(R3) == approx(417 / 540)


class TestFourTasks:
    def test_average_accuracy(self):
        # (0.50 + 0.60 + 0.40 + 0.95) / 4 = 2.45 / 4 = 0.6125
        assert average_accuracy(R4) == approx(0.6125)

    def test_forgetting_per_task(self):
        # f_0 = max(0.80, 0.85, 0.70) - 0.50 = 0.35   (best score is row 1, not the diagonal)
        # f_1 = max(0.20, 0.90, 0.50) - 0.60 = 0.30
        # f_2 = max(0.10, 0.15, 0.85) - 0.40 = 0.45
        # f_3 = 0
        np.testing.assert_allclose(forgetting_per_task(R4), [0.35, 0.30, 0.45, 0.0], atol=1e-12)

    def test_forgetting(self):
        # (0.35 + 0.30 + 0.45) / 3 = 1.10 / 3
        assert forgetting(R4) == approx(1.10 / 3)

    def test_backward_transfer(self):
        # ((0.50 - 0.80) + (0.60 - 0.90) + (0.40 - 0.85)) / 3 = (-0.30 - 0.30 - 0.45) / 3 = -0.35
        assert backward_transfer(R4) == approx(-0.35)
        # Here forgetting != -BWT because R[1, 0] > R[0, 0].
        assert forgetting(R4) > -backward_transfer(R4)

    def test_forward_transfer(self):
        # j=1: 0.20 - 0.25 = -0.05; j=2: 0.15 - 0.25 = -0.10; j=3: 0.30 - 0.25 = 0.05
        # (-0.05 - 0.10 + 0.05) / 3 = -0.10 / 3
        assert forward_transfer(R4, INIT4) == approx(-0.10 / 3)

    def test_plasticity(self):
        # (0.80 + 0.90 + 0.85 + 0.95) / 4 = 3.50 / 4 = 0.875
        assert plasticity(R4) == approx(0.875)

    def test_average_incremental_accuracy(self):
        # row 0: 0.80; row 1: (0.85 + 0.90) / 2 = 0.875; row 2: (0.70 + 0.50 + 0.85) / 3 = 2.05 / 3
        # row 3: 2.45 / 4 = 0.6125. In 1/120 units: 96 + 105 + 82 + 73.5 = 356.5
        # mean = 356.5 / 480
        assert average_incremental_accuracy(R4) == approx(356.5 / 480)

    def test_summarize(self):
        s = summarize(R4, INIT4)
        assert s == {
            "average_accuracy": approx(0.6125),
            "forgetting": approx(1.10 / 3),
            "bwt": approx(-0.35),
            "fwt": approx(-0.10 / 3),
            "plasticity": approx(0.875),
            "average_incremental_accuracy": approx(356.5 / 480),
            "final_accuracy_per_task": [0.50, 0.60, 0.40, 0.95],
        }
        assert all(type(v) is float for k, v in s.items() if k != "final_accuracy_per_task")

    def test_summarize_without_initial(self):
        s = summarize(np.array(R4))
        assert s["fwt"] is None
        assert s["bwt"] == approx(-0.35)


def test_summaries_read_as_the_exact_fractions_of_counts():
    # 0.93 - 0.88 is 0.050000000000000044 in floats; the exact value is 0.05 (15 of 300
    # rows, the default bench's APER), and a summary compared with a 0.05 bar must say so
    R = [[0.93, 0.0], [0.88, 0.9]]
    assert forgetting(R) != 0.05
    s = summarize(R)
    assert s["forgetting"] == 0.05
    assert s["bwt"] == -0.05
    assert abs(s["average_accuracy"] - average_accuracy(R)) <= 5e-13


def test_negative_forgetting_when_a_task_improves():
    # f_0 = max(0.5) - 0.7 = -0.2; BWT = 0.7 - 0.5 = 0.2
    R = [[0.5, 0.0], [0.7, 0.9]]
    np.testing.assert_allclose(forgetting_per_task(R), [-0.2, 0.0], atol=1e-12)
    assert forgetting(R) == approx(-0.2)
    assert backward_transfer(R) == approx(0.2)


def test_forgetting_max_includes_rows_before_the_task_was_trained():
    # As in Chaudhry et al., l ranges over 0..T-2, so R[0, 1] counts for task 1:
    # f_1 = max(0.9, 0.4) - 0.3 = 0.6 (the diagonal alone would give 0.1).
    R = [[0.5, 0.9, 0.0], [0.5, 0.4, 0.0], [0.5, 0.3, 0.8]]
    np.testing.assert_allclose(forgetting_per_task(R), [0.0, 0.6, 0.0], atol=1e-12)


class TestOneTask:
    R1 = ((0.7,),)

    def test_values(self):
        assert average_accuracy(self.R1) == approx(0.7)
        assert forgetting(self.R1) == 0.0
        np.testing.assert_array_equal(forgetting_per_task(self.R1), [0.0])
        assert backward_transfer(self.R1) == 0.0
        assert forward_transfer(self.R1, [0.1]) == 0.0
        assert plasticity(self.R1) == approx(0.7)
        assert average_incremental_accuracy(self.R1) == approx(0.7)

    def test_summarize(self):
        s = summarize(np.array([[0.7]]), initial=[0.1])
        assert s["forgetting"] == 0.0
        assert s["bwt"] == 0.0
        assert s["fwt"] == 0.0
        assert s["final_accuracy_per_task"] == [0.7]


def test_returns_python_floats_and_does_not_modify_input():
    R = np.array(R3)
    before = R.copy()
    for fn in (
        average_accuracy,
        forgetting,
        backward_transfer,
        plasticity,
        average_incremental_accuracy,
    ):
        assert type(fn(R)) is float
    assert type(forward_transfer(R, INIT3)) is float
    np.testing.assert_array_equal(R, before)


def test_integer_matrix_is_accepted():
    assert average_accuracy([[1, 0], [0, 1]]) == 0.5


@pytest.mark.parametrize(
    ("R", "match"),
    [
        ([0.1, 0.2], "2-D"),
        ([[[0.1]]], "2-D"),
        (np.zeros((0, 0)), "empty"),
        ([[]], "empty"),
        ([[0.1, 0.2]], "square"),
        (np.zeros((3, 2)), "square"),
        ([[0.1, math.nan], [0.2, 0.3]], "finite"),
        ([[0.1, 0.2], [math.inf, 0.3]], "finite"),
        ([[0.1, 0.2], [0.3]], "equal length"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
@pytest.mark.parametrize(
    "fn",
    [
        average_accuracy,
        forgetting,
        forgetting_per_task,
        backward_transfer,
        plasticity,
        average_incremental_accuracy,
        summarize,
    ],
)
def test_bad_matrix(fn, R, match):
    with pytest.raises(ConfigError, match=match):
        fn(R)


def test_nan_position_is_reported():
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        forgetting([[0.1, math.nan], [0.2, 0.3]])


@pytest.mark.parametrize("initial", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4], [[0.1, 0.2, 0.3]]])
def test_initial_wrong_length(initial):
    with pytest.raises(ConfigError, match="length 3"):
        forward_transfer(R3, initial)
    with pytest.raises(ConfigError, match="length 3"):
        summarize(R3, initial)


def test_initial_not_finite():
    with pytest.raises(ConfigError, match="finite"):
        forward_transfer(R3, [0.1, math.nan, 0.2])


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        plasticity([[0.1, 0.2]])


class TestAccuracy:
    def test_accuracy(self):
        # 3 of 4 correct
        assert accuracy([0, 1, 2, 2], [0, 1, 2, 1]) == 0.75
        assert accuracy(np.array([1]), np.array([0])) == 0.0

    def test_accuracy_from_scores(self):
        # argmax rows: 1, 0, 1 vs labels 1, 0, 0 -> 2 of 3
        scores = [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]
        assert accuracy(scores, [1, 0, 0]) == approx(2 / 3)

    def test_per_class_accuracy(self):
        preds = [0, 0, 1, 1, 1, 0]
        labels = [0, 0, 1, 1, 0, 1]
        # class 0: examples 0, 1, 4 -> preds 0, 0, 1 -> 2/3
        # class 1: examples 2, 3, 5 -> preds 1, 1, 0 -> 2/3
        # class 2 ("c") absent from labels -> omitted
        out = per_class_accuracy(preds, labels, ["a", "b", "c"])
        assert out == {"a": approx(2 / 3), "b": approx(2 / 3)}
        assert list(out) == ["a", "b"]

    def test_per_class_accuracy_absent_class_omitted(self):
        # only class 2 occurs; one of two right
        assert per_class_accuracy([2, 0], [2, 2], ["x", "y", "z"]) == {"z": 0.5}

    @pytest.mark.parametrize(
        ("preds", "labels", "match"),
        [
            ([0, 1], [0], "same length"),
            ([], [], "empty"),
            ([[[0]]], [0], "1-D"),
            ([0], [[0]], "1-D"),
        ],
    )
    def test_accuracy_errors(self, preds, labels, match):
        with pytest.raises(ConfigError, match=match):
            accuracy(preds, labels)
        with pytest.raises(ConfigError, match=match):
            per_class_accuracy(preds, labels, ["a", "b"])

    @pytest.mark.parametrize("labels", [[0, 2], [-1, 0], [0.5, 1.0]])
    def test_per_class_accuracy_bad_labels(self, labels):
        with pytest.raises(ConfigError, match="class ids"):
            per_class_accuracy([0, 1], labels, ["a", "b"])
