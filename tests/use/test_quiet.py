"""petl silences the harmless messages it causes (the MISSING classifier report, the
gradient-checkpointing FutureWarning), only around its own calls."""

from __future__ import annotations

import warnings

import torch

import petl
from tests.cl.cl_data import make_bert, make_tokenizer, split_records


def test_loading_a_model_folder_is_quiet(tmp_path, capfd) -> None:
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    encoder = BertModel(make_bert().config)  # an encoder checkpoint: no classifier weights
    encoder.save_pretrained(str(tmp_path))
    make_tokenizer().save_pretrained(str(tmp_path))
    stream = petl.Stream.from_records(split_records([[0, 1]], n_train=8, n_test=4))
    before = hf_logging.get_verbosity()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learner = petl.Learner(str(tmp_path), config=petl.TrainConfig(epochs=1, progress=False))
        learner.fit(stream)
    err = capfd.readouterr().err
    assert "MISSING" not in err and "Loading weights" not in err, err
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]
    assert hf_logging.get_verbosity() == before  # nothing changed outside petl's calls


def test_no_escape_codes_when_stderr_is_not_a_terminal(capfd) -> None:
    from petl.progress import disabled

    stream = petl.Stream.from_records(split_records([[0, 1]], n_train=8, n_test=4))
    learner = petl.Learner(
        make_bert(),
        make_tokenizer(),
        strategies=[petl.EWC(fisher_samples=4)],  # training, evaluation and Fisher bars
        config=petl.TrainConfig(epochs=1, progress=True),
    )
    learner.fit(stream)
    assert disabled(learner) is None  # on: tqdm draws only on a terminal
    err = capfd.readouterr().err  # captured: not a terminal
    assert "\r" not in err and "\x1b" not in err, err[:300]
    learner.config.progress = False
    assert disabled(learner) is True
