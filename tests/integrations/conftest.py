"""Fixtures of the Trainer integration tests: one torch thread. The helpers of tests/cl and
tests/families (tiny models, tokenizers, streams) are imported as `tests.cl.cl_data`,
`tests.families.family_data`."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
