"""Early checks of a Learner's arguments, so a wrong type fails at construction with a
message naming the fix, instead of training the wrong thing or failing deep in the loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from petl.errors import ConfigError, unknown_choice
from petl.strategies.protocol import HOOKS
from petl.training.config import TrainConfig

# A strategy is any object with at least one hook of the protocol (state_dict is optional);
# anything else would be silently ignored by the loop.
STATE_METHODS = ("state_dict", "load_state_dict")
STRATEGY_HOOKS = tuple(h for h in HOOKS if h not in STATE_METHODS)


def strategies(given: Any) -> list[Any]:
    """The strategy objects to train with (default `[Naive()]`).

    Accepts a list of strategy instances, one instance alone, or names of `petl.STRATEGIES`
    (made with their default settings).

    Raises:
        ConfigError: a class instead of an instance, an unknown name, or an object that is
            not a strategy.
    """
    from petl.strategies import STRATEGIES, Naive

    if given is None:
        return [Naive()]
    if isinstance(given, str | type) or not isinstance(given, list | tuple):
        given = [given]
    out = []
    for item in given:
        if isinstance(item, str):
            if item not in STRATEGIES:
                raise unknown_choice("strategy", item, STRATEGIES)
            item = STRATEGIES[item]()
        elif isinstance(item, type):
            raise ConfigError(
                f"strategies got the class {item.__name__}, not an instance: write "
                f"{item.__name__}() (with its settings, e.g. petl.EWC(lam=100.0))."
            )
        elif not any(callable(getattr(item, h, None)) for h in STRATEGY_HOOKS):
            raise ConfigError(
                f"strategies got {item!r} ({type(item).__name__}), which is not a strategy: a "
                f"strategy has some of the hooks {', '.join(STRATEGY_HOOKS)} (and optionally "
                f"state_dict/load_state_dict). Use one of {', '.join(sorted(STRATEGIES))} "
                "(e.g. petl.EWC()) or subclass petl.Strategy."
            )
        out.append(item)
    return out or [Naive()]


def train_config(given: Any) -> TrainConfig:
    """`given` as a TrainConfig: a TrainConfig, a dict of its settings, or None (defaults)."""
    if given is None:
        return TrainConfig()
    if isinstance(given, TrainConfig):
        return given
    if isinstance(given, Mapping):
        return TrainConfig.from_dict(dict(given))
    raise ConfigError(
        f"config must be a petl.TrainConfig (or a dict of its settings), got "
        f"{type(given).__name__}. Write config=petl.TrainConfig(epochs=3, lr=5e-4)."
    )


def max_length(backbone: Any, config: TrainConfig, rows: list[dict[str, list[Any]]]) -> None:
    """Refuses encoded examples longer than the model's position embeddings (transformers
    would fail on them mid-training with an index error), naming the fix.

    Args:
        backbone: The transformers model (its config gives the positions).
        config: The training settings (their max_length is the suggested fix).
        rows: Per task, per split, the encoded rows (anything with `input_ids`).
    """
    model_config = getattr(backbone, "config", None)
    limit = None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(model_config, key, None)
        if isinstance(value, int) and value > 0:
            limit = value
            break
    if limit is None:
        return
    for task, splits in enumerate(rows):
        for split, encoded in splits.items():
            longest = max((len(getattr(r, "input_ids", None) or ()) for r in encoded), default=0)
            if longest > limit:
                raise ConfigError(
                    f"Task {task} ({split}) has an example of {longest} tokens "
                    f"(TrainConfig.max_length={config.max_length}) but the model has only "
                    f"{limit} positions; set max_length <= {limit}."
                )
