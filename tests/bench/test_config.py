"""Config validation of `petl bench`: every bad key or value fails at load time, naming the
key and the valid choices; shipped configs validate; the grid expands as documented."""

from __future__ import annotations

import os

import pytest

from petl.bench import config as bc
from petl.errors import ConfigError

BASE = {"runs": [{"name": "a", "method": "lora"}]}


def check(raw, *fragments):
    with pytest.raises(ConfigError) as info:
        bc.validate(raw)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return str(info.value)


def test_unknown_top_level_key_lists_valid_keys():
    msg = check({**BASE, "seed": 1}, "Unknown key seed", "seeds", "stream", "runs")
    assert "Did you mean 'seeds'" in msg


def test_unknown_method_lists_methods():
    msg = check({"runs": [{"method": "lorra"}]}, "runs[0].method", "'lorra'", "Did you mean 'lora'")
    for name in ("lora", "ia3", "bottleneck", "bitfit", "none"):
        assert name in msg


def test_unknown_strategy_lists_strategies():
    msg = check(
        {"runs": [{"method": "lora", "strategies": ["ewk"]}]}, "runs[0].strategies[0]", "'ewk'"
    )
    for name in ("ewc", "replay", "lwf", "task_adapters", "olora", "joint", "naive"):
        assert name in msg


def test_unknown_option_keys_name_the_table():
    check({**BASE, "train": {"lrr": 1}}, "train.lrr", "Did you mean 'lr'", "max_length")
    check(
        {**BASE, "methods": {"lora": {"rank": 8}}},
        "methods.lora.rank",
        "lora_alpha",
        "target_modules",
    )
    check(
        {**BASE, "strategies": {"ewc": {"lambda": 1}}},
        "strategies.ewc.lambda",
        "lam",
        "fisher_samples",
    )
    check(
        {"runs": [{"method": "lora", "strategies": [{"name": "replay", "size": 3}]}]},
        "runs[0].strategies[0] (replay).size",
        "memory",
    )
    check(
        {"runs": [{"method": "lora", "colour": 1}]},
        "runs[0].colour",
        "method_options",
        "strategies",
    )
    check({**BASE, "model": {"name": "x"}}, "model.name", "path")
    check(
        {**BASE, "stream": {"source": "dir", "data_dir": ".", "min_confidence": 0.5}},
        "stream.min_confidence",
        "data_dir",
    )


def test_bad_values_fail_with_the_key():
    check({**BASE, "stream": {"scenario": "klass"}}, "stream.scenario", "class, domain, task")
    check({**BASE, "stream": {"source": "web"}}, "stream.source", "dir, files, hub, offline")
    check({**BASE, "stream": {"max_train": 0}}, "stream.max_train")
    check({**BASE, "stream": {"source": "dir"}}, "stream.data_dir")
    check(
        {**BASE, "stream": {"tasks": [{"name": "x", "classes": ["sports"]}]}},
        "stream.tasks[0].classes",
        "'sports'",
        "Did you mean 'sport'",
    )
    check({**BASE, "seeds": []}, "seeds")
    check({**BASE, "workers": 0}, "workers")
    check({**BASE, "train": {"epochs": 0}}, "train", "epochs")
    check({**BASE, "train": {"seed": 3}}, "train.seed", "`seeds`")
    check({**BASE, "strategies": {"ewc": {"mode": "sideways"}}}, "strategies.ewc", "separate")
    check({"runs": [{"method": "ia3", "strategies": ["olora"]}]}, "olora", "needs method 'lora'")
    check(
        {"runs": [{"method": "none", "method_options": {"r": 8}}]},
        "full fine-tuning takes no options",
    )
    check({"runs": [{"strategies": ["ewc"]}]}, "runs[0].method is missing")
    check({"runs": [{"name": "a", "method": "lora"}, {"name": "a", "method": "ia3"}]}, "unique")
    check({}, "no runs")


def test_grid_crosses_methods_and_strategies():
    cfg = bc.validate(
        {
            "grid": {"methods": ["lora", "none"], "strategies": [[], ["ewc", "replay"]]},
            "seeds": 2,
            "strategies": {"replay": {"memory": 7}},
        }
    )
    assert [r.name for r in cfg.runs] == ["lora", "lora+ewc+replay", "full", "full+ewc+replay"]
    assert cfg.seeds == [0, 1]
    assert len(cfg.cells()) == 8
    assert dict(cfg.runs[1].strategies)["replay"] == {"memory": 7}
    assert cfg.runs[2].method is None


def test_defaults_merge_into_runs():
    cfg = bc.validate(
        {
            "methods": {"lora": {"r": 4}},
            "train": {"lr": 1e-3, "epochs": 2},
            "runs": [
                {"method": "lora", "method_options": {"lora_alpha": 8}},
                {"method": "none", "train": {"lr": 1e-5}},
            ],
        }
    )
    assert cfg.runs[0].method_options == {"r": 4, "lora_alpha": 8}
    train = cfg.train_config(cfg.runs[1], seed=3, progress=False)
    assert (train.lr, train.epochs, train.seed, train.num_threads) == (1e-5, 2, 3, 1)


def test_overrides_parse_toml_values():
    raw = bc.apply_overrides(
        {"stream": {}}, ["stream.data_dir=/x", "seeds=[1, 2]", "train.lr=1e-3"]
    )
    assert raw == {"stream": {"data_dir": "/x"}, "seeds": [1, 2], "train": {"lr": 1e-3}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        bc.apply_overrides({}, ["nothing"])


@pytest.mark.parametrize("name", bc.shipped_configs())
def test_shipped_configs_validate(name):
    cfg = bc.load(name)
    assert cfg.runs and cfg.cells()


def test_default_config_compares_the_required_runs():
    cfg = bc.load()
    kinds = {(r.method, tuple(n for n, _ in r.strategies)) for r in cfg.runs}
    # The classic baselines, the issue-9 heads and the joint reference (full fine-tuning
    # and TaskAdapters moved to benchmarks/configs/default_more.toml for the time budget).
    for kind in [
        ("lora", ()),
        ("lora", ("ewc",)),
        ("lora", ("replay",)),
        ("lora", ("olora",)),
        ("lora", ("slca",)),
        ("lora", ("ncm",)),
        ("lora", ("ranpac",)),
        ("lora", ("aper",)),
        ("lora", ("joint",)),
    ]:
        assert kind in kinds
    assert cfg.stream.source == "offline" and cfg.model == "minilm"


def test_yaml_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: y\nruns:\n  - method: lora\n    strategies: [ewc]\n")
    cfg = bc.load(str(path))
    assert cfg.runs[0].name == "lora+ewc"
    (tmp_path / "bad.yaml").write_text("name: y\nrun:\n  - method: lora\n")
    with pytest.raises(ConfigError, match="Unknown key run"):
        bc.load(str(tmp_path / "bad.yaml"))


def test_unknown_config_name_lists_shipped():
    with pytest.raises(ConfigError, match="default"):
        bc.load("no_such_config")


def test_wrong_types_name_the_key_and_what_it_must_be():
    check({**BASE, "seeds": "abc"}, "seeds must be an integer or a list of integers, got 'abc'")
    check({**BASE, "workers": True}, "workers must be a positive integer, got True")
    check({**BASE, "keep_checkpoints": "yes"}, "keep_checkpoints must be true or false")
    check({**BASE, "model": "minilm"}, "model must be a table")
    check({**BASE, "stream": {"max_test": 2.5}}, "stream.max_test must be a positive integer")
    check({**BASE, "grid": {"methods": []}}, "grid.methods must be a non-empty list")
    check({"runs": {"method": "lora"}}, "runs must be a list of tables ([[runs]] in TOML)")


def test_smoke_size_merges_the_smoke_table():
    raw = {
        "name": "x",
        "seeds": [3, 4],
        "stream": {"max_train": 100, "seed": 1},
        "train": {"epochs": 3, "lr": 1e-3},
        "runs": [{"method": "lora"}],
    }
    cfg = bc.validate(bc.smoke_size(raw))
    assert (cfg.stream.max_train, cfg.stream.max_test, cfg.stream.seed) == (16, 16, 1)
    assert cfg.train == {"epochs": 1, "lr": 1e-3} and cfg.seeds == [3]
    assert cfg.output_dir == "reports/x-smoke"
    own = bc.validate(bc.smoke_size({**raw, "smoke": {"stream": {"max_train": 4}}}))
    assert (own.stream.max_train, own.stream.max_test, own.train["epochs"]) == (4, None, 3)


BENCH_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "configs")


@pytest.mark.parametrize("name", sorted(os.listdir(BENCH_CONFIGS)))
@pytest.mark.parametrize("smoke", [False, True])
def test_benchmark_configs_validate_at_full_and_smoke_size(name, smoke):
    cfg = bc.load(os.path.join(BENCH_CONFIGS, name), smoke=smoke)
    assert cfg.cells()
    assert (cfg.output_dir.endswith("-smoke") == smoke and len(cfg.seeds) == 1) or not smoke
