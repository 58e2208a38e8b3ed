"""petl's continual-learning strategies and forgetting measurement inside a user's own
`transformers.Trainer` or TRL `SFTTrainer` (TRL is not needed to import this).

    cl = ContinualCallback(stream, strategies=[petl.EWC(lam=100)])
    results = cl.fit(trainer)

See docs/trainer.md."""

from petl.integrations.transformers.callback import ContinualCallback, FeatureRows
from petl.integrations.transformers.view import ClassifierView, TrainerLearner

__all__ = ["ClassifierView", "ContinualCallback", "FeatureRows", "TrainerLearner"]
