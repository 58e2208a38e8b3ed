"""`petl bench` with every family: a tiny causal LM on instruction records (generation,
exact match) and a tiny BERT tagger on BIO records (tokens, entity F1), each end to end
through the CLI from a config, and each giving the matrix a Learner gives on the same
stream with the same settings (so the config reached the family, the model class and the
data reader as written)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import petl
from petl.cli import main
from tests.families.family_data import (
    bert_tagger,
    causal_lm,
    gen_records,
    ner_records,
    word_tokenizer,
    wordpiece_tokenizer,
)

TRAIN = {"epochs": 8, "batch_size": 8, "lr": 3e-3, "warmup_ratio": 0.0, "max_length": 32}


def _write_tasks(folder, records: dict, keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Each task's train/test records as JSON lines files; returns the `files` table."""
    files = {}
    for name, spec in records.items():
        files[name] = {}
        for split in ("train", "test"):
            path = folder / f"{name}_{split}.jsonl"
            path.write_text(
                "".join(json.dumps({k: r[k] for k in keys}) + "\n" for r in spec[split])
            )
            files[name][split] = str(path)
    return files


def _bench(tmp_path, family, model_dir, stream: dict, capsys, *argv: str) -> dict:
    """Runs `petl bench` on a one-run config (full fine-tuning) and returns results.json."""
    import yaml

    config = {
        "name": "tiny",
        "output_dir": str(tmp_path / "out"),
        "family": family,
        "model": {"path": str(model_dir)},
        "stream": {"source": "files", **stream},
        "train": TRAIN,
        "runs": [{"name": "SeqFT", "method": "none"}],
    }
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # keeps the task order
    assert main(["bench", str(path), "--no-progress", *argv]) == 0, capsys.readouterr().err
    if "--dry-run" in argv:
        return {"stdout": capsys.readouterr().out}
    with open(tmp_path / "out" / "results.json") as f:
        return json.load(f)


def _learner_matrix(model, tokenizer, stream, family) -> np.ndarray:
    config = petl.TrainConfig(**TRAIN, seed=0, num_threads=1, progress=False)
    learner = petl.Learner(model, tokenizer, method=None, config=config, family=family)
    return learner.fit(stream).accuracy


def _generation_setup(tmp_path):
    model_dir = tmp_path / "lm"
    causal_lm("llama").save_pretrained(model_dir)
    word_tokenizer().save_pretrained(model_dir)
    records = gen_records()
    stream = {
        "files": _write_tasks(tmp_path, records, ("input", "output")),
        "instructions": {name: spec["instruction"] for name, spec in records.items()},
    }
    return model_dir, records, stream


def test_generation_config_reads_instruction_records(tmp_path, capsys):
    model_dir, _, stream = _generation_setup(tmp_path)
    family = {"name": "generation", "decoding": "labels"}
    out = _bench(tmp_path, family, model_dir, stream, capsys, "--dry-run")["stdout"]
    assert "data: generation, class-incremental, topic (48 train/16 test)" in out
    assert "mood (48 train/16 test)" in out and "seqft-seed0" in out


@pytest.mark.slow  # trains two tasks twice (bench and Learner), ~30 s on a shared CPU
def test_generation_family_through_petl_bench(tmp_path, capsys):
    from petl.families.generation import GenerationFamily

    model_dir, records, stream = _generation_setup(tmp_path)
    report = _bench(
        tmp_path, {"name": "generation", "decoding": "labels"}, model_dir, stream, capsys
    )

    results = report["cells"][0]["results"]
    assert results["metric"] == ["exact_match", "exact_match"]
    assert report["stream"]["family"] == "generation"
    R = np.array(results["accuracy"])
    assert R[0, 0] >= 0.9 and R[1, 1] >= 0.9  # the tiny LM learns each instruction task
    direct = _learner_matrix(
        causal_lm("llama"),
        word_tokenizer(),
        petl.Stream.from_records(records, family="generation"),
        GenerationFamily(decoding="labels"),
    )
    # Exact-match fractions of 16 test rows: the same run gives the same counts.
    np.testing.assert_allclose(R, direct, atol=1e-9)
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "exact match" in markdown and "avg EM" in markdown


@pytest.mark.slow  # trains two tasks twice (bench and Learner)
def test_tokens_family_through_petl_bench(tmp_path, capsys):
    from petl.families.tokens import TokenFamily

    model_dir = tmp_path / "tagger"
    bert_tagger().save_pretrained(model_dir)
    wordpiece_tokenizer().save_pretrained(model_dir)
    records = ner_records()
    stream = {
        "files": _write_tasks(tmp_path, records, ("tokens", "tags")),
        "types": {name: spec["types"] for name, spec in records.items()},
    }
    report = _bench(tmp_path, "tokens", model_dir, stream, capsys)

    results = report["cells"][0]["results"]
    assert results["metric"] == ["f1", "f1"]
    R = np.array(results["accuracy"])
    direct = _learner_matrix(
        bert_tagger(),
        wordpiece_tokenizer(),
        petl.Stream.from_records(records, family="tokens"),
        TokenFamily(),
    )
    np.testing.assert_allclose(R, direct, atol=1e-9)  # F1 of the same predictions
    assert R[1, 1] > 0.5  # the tagger learns the second task's entities
    assert "avg F1" in (tmp_path / "out" / "report.md").read_text()


def test_a_family_its_source_cannot_read_is_refused():
    from petl.bench import config as bc
    from petl.errors import ConfigError

    run = {"runs": [{"method": "lora"}]}
    with pytest.raises(ConfigError, match="source = 'offline' holds classification tasks"):
        bc.validate({**run, "family": "generation"})
    with pytest.raises(ConfigError, match=r"unknown family 'generative'.*generation"):
        bc.validate({**run, "family": "generative"})
    with pytest.raises(ConfigError, match=r"Unknown key family\.decode.*decoding"):
        bc.validate({**run, "family": {"name": "generation", "decode": "labels"}})
    with pytest.raises(ConfigError, match="family: Unknown decoding"):
        bc.validate({**run, "family": {"name": "generation", "decoding": "beam"}})


def test_shipped_generative_config_matches_the_script_it_replaces():
    from petl.bench import config as bc

    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "configs")
    cfg = bc.load(os.path.join(path, "generative_smollm2.toml"))
    assert cfg.family.name == "generation" and cfg.family.options == {"decoding": "labels"}
    assert cfg.model == "smollm2" and cfg.stream.tasks == ["sst-2", "agnews", "amazon"]
    assert [(r.name, [n for n, _ in r.strategies]) for r in cfg.runs] == [
        ("SeqLoRA (naive)", []),
        ("LoRA+Replay", ["replay"]),
        ("O-LoRA", ["olora"]),
    ]
    assert cfg.runs[0].method_options == {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"],
    }
