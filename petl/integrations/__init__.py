"""Bridges from other training frameworks to petl's strategies and metrics.

`petl.integrations.transformers`: petl's continual-learning strategies and forgetting
measurement inside a user's own `transformers.Trainer` (or TRL's `SFTTrainer`)."""
