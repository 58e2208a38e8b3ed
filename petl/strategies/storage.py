"""What a rehearsal buffer keeps: storage policies as a small protocol.

A policy gives every example offered to the buffer a priority key (`keys`), then picks
which of all candidates (kept and new) fit the memory (`select`). Keys are part of the
buffer's state, so a policy is a pure function of the run's seed, the task and what was
seen: identical on every process and after a resume.
- `Reservoir`: a random key per example, keep the largest (each example seen so far is
  kept with equal probability: Vitter's reservoir, as "random weight, keep top-k").
- `ClassBalanced`: random keys; the memory is split evenly over the classes seen so far.
- `Herding`: class-balanced, keys from iCaRL's herding order (Rebuffi et al. 2017): per
  class, greedily the examples whose running feature mean best matches the class mean,
  so any prefix of a class's order is a good summary of it and shrinking keeps a prefix.
- `FirstCome`: class-balanced, the earliest examples first (GDumb's greedy sampler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from petl.errors import IncompatibleModelError, unknown_choice

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class Storage(Protocol):
    """A storage policy: priority keys for new examples, then the kept subset."""

    name: str

    def keys(
        self,
        learner: LearnerView | None,  # None: a buffer filled without a learner (tests)
        t: int,
        items: list[tuple[int, int]],
        classes: list[int],
        seed: int,
    ) -> list[float]:
        """Priority of each new example (larger is kept first)."""
        ...

    def select(self, keys: list[float], classes: list[int], memory: int) -> list[int]:
        """Indices of the candidates kept, largest key first."""
        ...


def balanced_quotas(counts: dict[int, int], memory: int) -> dict[int, int]:
    """Splits `memory` slots evenly over classes; a class with fewer examples than its share
    keeps all of them and its unused slots go to the others (shares differ by at most one
    between classes that fill them)."""
    quota: dict[int, int] = {}
    left, open_classes = memory, sorted(counts, key=lambda c: (counts[c], c))
    while open_classes:
        share, extra = divmod(left, len(open_classes))
        c = open_classes[0]
        if counts[c] <= share:  # the smallest class fits: keep it whole, share the rest
            quota[c] = counts[c]
            left -= counts[c]
            open_classes.pop(0)
            continue
        for k, c in enumerate(sorted(open_classes)):
            quota[c] = share + (k < extra)
        break
    return quota


def random_keys(n: int, seed: int, t: int) -> list[float]:
    return np.random.default_rng([seed, t]).random(n).tolist()


class Reservoir:
    name = "reservoir"

    def keys(
        self, learner: LearnerView | None, t: int, items: list, classes: list[int], seed: int
    ) -> list[float]:
        return random_keys(len(items), seed, t)

    def select(self, keys: list[float], classes: list[int], memory: int) -> list[int]:
        return np.argsort(keys, kind="stable")[::-1][:memory].tolist()


class ClassBalanced(Reservoir):
    name = "class_balanced"

    def select(self, keys: list[float], classes: list[int], memory: int) -> list[int]:
        by_class: dict[int, list[int]] = {}
        for i, c in enumerate(classes):
            by_class.setdefault(c, []).append(i)
        quota = balanced_quotas({c: len(idx) for c, idx in by_class.items()}, memory)
        keep: list[int] = []
        for c, idx in by_class.items():
            keep += sorted(idx, key=lambda i: -keys[i])[: quota[c]]
        return sorted(keep, key=lambda i: -keys[i])


class FirstCome(ClassBalanced):
    name = "first_come"

    def keys(
        self, learner: LearnerView | None, t: int, items: list, classes: list[int], seed: int
    ) -> list[float]:
        return [-float(task * 1_000_000 + i) for task, i in items]  # earliest largest


class Herding(ClassBalanced):
    name = "herding"

    def keys(
        self, learner: LearnerView | None, t: int, items: list, classes: list[int], seed: int
    ) -> list[float]:
        assert learner is not None, "herding reads the learner's features"
        feats = features(learner, learner.item_rows(items))
        keys = [0.0] * len(items)
        for c in sorted(set(classes)):
            idx = [i for i, k in enumerate(classes) if k == c]
            for rank, j in enumerate(herding_order(feats[idx])):
                keys[idx[j]] = -float(rank)  # first chosen: largest key
        return keys


def herding_order(feats: torch.Tensor) -> list[int]:
    """iCaRL's herding: repeatedly the example that brings the mean of those chosen so far
    closest to the class mean (ties: the lowest index)."""
    mean, total = feats.mean(0), torch.zeros_like(feats[0])
    order: list[int] = []
    free = torch.ones(len(feats), dtype=torch.bool)
    for k in range(1, len(feats) + 1):
        dist = ((mean - (total + feats) / k) ** 2).sum(-1)
        dist[~free] = float("inf")
        j = int(dist.argmin())
        order.append(j)
        free[j] = False
        total = total + feats[j]
    return order


@torch.no_grad()
def features(learner: LearnerView, rows: list[Any]) -> torch.Tensor:
    """L2-normalised features (the heads' input) of `rows`, on CPU. Every process computes
    all rows in eval mode (no dropout), so every process gets the same values."""
    model = learner.model
    if not hasattr(model, "features"):
        raise IncompatibleModelError(
            f"Herding and nearest-mean prediction need a feature extractor with heads "
            f"(classification or token families); the {learner.family.name!r} family has none."
        )
    was = model.training
    model.eval()
    out = [model.features(b).float().cpu() for b in learner.batches(rows)]
    model.train(was)
    return F.normalize(torch.cat(out), dim=-1) if out else torch.zeros(0)


POLICIES: dict[str, type] = {p.name: p for p in (Reservoir, ClassBalanced, Herding, FirstCome)}


def get_storage(policy: str | Storage) -> Storage:
    """A policy by name (see POLICIES) or an object with `keys` and `select`."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise unknown_choice("Replay policy", policy, POLICIES)
        return POLICIES[policy]()
    if not (hasattr(policy, "keys") and hasattr(policy, "select")):
        raise unknown_choice("Replay policy", repr(policy), POLICIES)
    return policy
