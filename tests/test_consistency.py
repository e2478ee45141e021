"""Occlusion-consistency metrics on known cases (torch-free module)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.errors import InputError
from sdk.training.consistency import agreement, bootstrap_ci, cohen_kappa, consistency, tv_distance, write_consistency

LABELS = ("a", "b", "c")


def _probs(labels: np.ndarray, k: int = 3, conf: float = 0.8) -> np.ndarray:
    p = np.full((len(labels), k), (1 - conf) / (k - 1))
    p[np.arange(len(labels)), labels] = conf
    return p


def test_kappa_known_values() -> None:
    # po = 0.75, marginals (0.5, 0.5) and (0.25, 0.75): pe = 0.5 -> kappa = 0.5
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.5)
    assert cohen_kappa(np.array([0, 1, 2, 0]), np.array([0, 1, 2, 0])) == pytest.approx(1.0)
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0])) == pytest.approx(-1.0)


def test_identical_models_agree_fully_and_constant_model_has_zero_kappa() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 3, 60)
    t = _probs(ref)
    people = [f"p{i // 3}" for i in range(60)]
    const = _probs(np.zeros(60, int))
    rep = consistency(t, {"clean": t, "const": const}, people, labels=LABELS, n_boot=200)
    clean = rep.rows["clean"]
    assert clean.agreement == 1.0 and clean.kappa == pytest.approx(1.0) and clean.tv == pytest.approx(0.0)
    assert clean.agreement_ci == (1.0, 1.0)
    c = rep.rows["const"]
    assert c.kappa == pytest.approx(0.0, abs=1e-12)
    assert c.agreement == pytest.approx(np.mean(ref == 0))
    assert c.agreement_ci[0] <= c.agreement <= c.agreement_ci[1]
    assert rep.people == 20


def test_constant_teacher_and_model_kappa_is_zero() -> None:
    a = np.zeros(10, int)
    assert cohen_kappa(a, a, 3) == 0.0
    assert agreement(a, a) == 1.0


def test_tv_distance() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert tv_distance(p, q).tolist() == [1.0, 0.0]


def test_bootstrap_resamples_people_not_faces() -> None:
    # one person holds all the disagreement: a person-level bootstrap gives a wide interval
    vals = np.array([1.0] * 50 + [0.0] * 50)
    people = ["a"] * 50 + [f"p{i}" for i in range(50)]
    lo, hi = bootstrap_ci(people, lambda i: float(vals[i].mean()), n=300, seed=1)
    assert lo < 0.4 and hi > 0.6


def test_shape_mismatch_is_an_input_error(tmp_path) -> None:
    t = _probs(np.array([0, 1, 2]))
    with pytest.raises(InputError, match="do not match"):
        consistency(t, {"x": t[:2]}, ["a", "b", "c"], labels=LABELS)
    rep = consistency(t, {"clean": t}, ["a", "b", "c"], labels=LABELS, n_boot=20)
    paths = write_consistency([rep], tmp_path)
    assert json.loads(paths["json"].read_text())[0]["protocols"]["clean"]["agreement"] == 1.0
    assert paths["png"].stat().st_size > 1000 and "| clean |" in paths["md"].read_text()
