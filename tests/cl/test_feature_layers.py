"""Features from several hidden layers (`layers=` of the statistic heads): what each layer
contributes, how "head" pooling reads its last layer, and clear errors for bad layer lists."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.testing import assert_close

import petl
from petl.errors import ConfigError
from petl.features import backbone_features, check_layers, select_layers
from petl.heads import detach_final_layer
from tests.cl.cl_data import make_bert


def _batch(tok: Any) -> dict[str, torch.Tensor]:
    texts = ["w0 w1 w2", "w3 w4", "w5 w6 w7 w8 w9"]
    return dict(tok(texts, padding=True, return_tensors="pt"))


def _model() -> torch.nn.Module:
    model = make_bert(seed=1).eval()
    detach_final_layer(model)
    return model


@pytest.mark.parametrize("pooling", ["mean", "cls", "head"])
def test_every_layer_is_pooled_and_the_last_matches_single_layer_features(
    tok: Any, pooling: str
) -> None:
    model, batch = _model(), _batch(tok)
    with torch.no_grad():
        last = backbone_features(model, batch, pooling)
        every = backbone_features(model, batch, pooling, layers="all")
        chosen = backbone_features(model, batch, pooling, layers=[0, -1])
        states = model(**batch, output_hidden_states=True).hidden_states
    assert every.shape == (3, 2, 32)  # 2 transformer layers of width 32
    # the same forward pass read at another place: equal up to float rounding
    assert_close(every[:, -1], last, rtol=1e-6, atol=1e-6)
    assert_close(chosen[:, 1], last, rtol=1e-6, atol=1e-6)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    first = (states[1] * mask).sum(1) / mask.sum(1) if pooling != "cls" else states[1][:, 0]
    assert_close(every[:, 0], first, rtol=1e-6, atol=1e-6)
    embeddings = (states[0] * mask).sum(1) / mask.sum(1) if pooling != "cls" else states[0][:, 0]
    assert_close(chosen[:, 0], embeddings, rtol=1e-6, atol=1e-6)


def test_layer_lists_are_checked(tok: Any) -> None:
    assert select_layers("all", 7) == [1, 2, 3, 4, 5, 6]
    assert select_layers("last", 7) == [6]
    assert select_layers([0, -1, 3], 7) == [0, 6, 3]
    with pytest.raises(ConfigError, match="hidden state 9, but the model has 3"):
        backbone_features(_model(), _batch(tok), "mean", layers=[9])
    with pytest.raises(ConfigError, match="'last', 'all' or a non-empty list"):
        check_layers("every")
    for bad in ([], [1.5], "x", [True]):
        with pytest.raises(ConfigError, match="layers"):
            petl.FeCAM(layers=bad)


def test_defaults_every_layer_for_covariance_heads_last_for_ncm() -> None:
    assert petl.FeCAM().layers == "all"
    assert petl.RanPAC().layers == "all"
    assert petl.NCM().layers == "last"
    assert petl.APER()._head.layers == "all"
    assert petl.APER(head_options={"layers": "last"})._head.layers == "last"
