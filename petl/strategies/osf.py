"""OSF, orthogonal subspace fine-tuning for continual learning (Nayak et al. 2025, "Sculpting
Subspaces"), on peft's `OSFConfig` tuner, with the between-task step peft leaves to the user.

peft's OSF layer splits each target weight by SVD, W = U_h S_h V_h + U_l S_l V_l, freezes the
top-`effective_rank` part (the "high" subspace) and trains U_l, S_l, V_l with their gradients
projected away from U_h and V_h. That protects the pretrained model within one task; for a
stream, the paper and peft's docs say: after a task, fold the update into the weight and
decompose again with a larger preserved rank, so the next task cannot undo the last one.
This strategy does that itself, after every task but the last, in place (same modules and
parameter names, so optimizers, checkpoints and DDP see an ordinary model):

1. merge: W <- W + (U_l' S_l' V_l' - U_l S_l V_l) (peft's delta, in the base weight);
2. grow the frozen set: the residual R = W - U_h U_h^T W outside it is decomposed by SVD
   and its top `rank_step` directions (the ones the finished task used most) join U_h / V_h.
   The frozen set only grows, so every earlier task's directions stay frozen;
   re-decomposing the whole W (peft's own SVD) could drop an old direction whose singular
   value a later task overtook;
3. the remaining directions of R become the next task's trainable U_l, S_l, V_l.

peft projects gradients, but AdamW rescales each coordinate afterwards, which moves U_l
back towards U_h; `after_step` therefore projects the trainable factors themselves, so
U_h^T W and W V_h^T (the frozen part's action) stay fixed to float precision. Earlier tasks
are protected by construction; no replay, no extra parameters per task.

Use with method=OSFConfig(...) (or method="osf" where the registry has it):
`Learner(model, method=OSFConfig(effective_rank=0.5, target_modules="all-linear"),
strategies=[petl.OSF()])`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from petl.errors import ConfigError, IncompatibleModelError, TrainingError
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack

ADAPTER = "default"


def osf_layers(model: nn.Module) -> dict[str, Any]:
    """peft OSF layers (holding the "default" adapter) by module name."""
    return {
        n: m
        for n, m in model.named_modules()
        if hasattr(m, "osf_svd_params") and ADAPTER in getattr(m, "osf_svd_params", {})
    }


def effective_weight(layer: Any) -> torch.Tensor:
    """The weight the layer applies: base weight + peft's delta (trained - initial low part)."""
    base = layer.get_base_layer().weight
    return (base + layer.get_delta_weight(ADAPTER).to(base.dtype)).detach()


def _complement(x: torch.Tensor, basis: torch.Tensor, side: str) -> torch.Tensor:
    """x without its component in the span of `basis` (orthonormal columns for "left",
    orthonormal rows for "right")."""
    if side == "left":
        return x - basis @ (basis.T @ x)
    return x - (x @ basis.T) @ basis


def _install(layer: Any, weight: torch.Tensor, high: tuple, low: tuple) -> None:
    """Sets the layer's base weight, frozen subspace and trainable factors (U, S, V) in
    peft's layout, and re-attaches peft's gradient projection hooks."""
    u_high, v_high = high
    u_low, s_low, v_low = (x.detach().clone().contiguous() for x in low)
    base = layer.get_base_layer()
    with torch.no_grad():
        base.weight.copy_(weight.to(base.weight.dtype))
    layer._detach_hooks()
    layer.merged_adapters.clear()
    layer.effective_rank[ADAPTER] = int(u_high.shape[1])
    layer._osf_U_low_init[ADAPTER] = u_low.clone()
    layer._osf_S_low_init[ADAPTER] = s_low.clone()
    layer._osf_V_low_init[ADAPTER] = v_low.clone()
    # peft stores U_high / V_high only where the complement is not spanned by the low init
    for key, value, needed in (
        ("_osf_U_high", u_high, layer.out_features > layer.in_features),
        ("_osf_V_high", v_high, layer.out_features < layer.in_features),
    ):
        store = getattr(layer, key)
        if needed:
            store[ADAPTER] = value.detach().clone().contiguous()
        elif ADAPTER in store:
            del store[ADAPTER]
    layer.osf_svd_params[ADAPTER] = nn.ParameterDict(
        {"U_low": nn.Parameter(u_low), "S_low": nn.Parameter(s_low), "V_low": nn.Parameter(v_low)}
    )
    layer._attach_hooks(ADAPTER)


def _svd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD in float64: the residual outside the frozen set has many (near-)zero singular
    values, on which LAPACK's float32 divide-and-conquer can fail to converge (seen on
    SmolLM2's q/v after the second task of instr_order2)."""
    if not torch.isfinite(x).all():
        raise TrainingError(
            "OSF: a merged weight holds NaN or inf after the task: training diverged. "
            "Lower the learning rate (OSF's shipped configs use lr 5e-4) or set max_grad_norm."
        )
    u, s, vt = torch.linalg.svd(x.double(), full_matrices=False)
    return u.to(x.dtype), s.to(x.dtype), vt.to(x.dtype)


def grow(
    weight: torch.Tensor, u_high: torch.Tensor, v_high: torch.Tensor, step: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The next task's split of `weight`: the frozen (U_h, V_h) grown by the top `step`
    singular directions of the residual outside it, and the trainable (U_l, S_l, V_l) from
    the residual's next directions, projected exactly outside the grown frozen set."""
    w = weight.float()
    residual = _complement(w, u_high, "left")
    u, s, vt = _svd(residual)
    rank = min(w.shape) - u_high.shape[1]  # trainable directions before growing
    new_u = torch.linalg.qr(_complement(u[:, :step], u_high, "left")).Q
    new_v = torch.linalg.qr(_complement(vt[:step].T, v_high.T, "left")).Q.T
    u_high = torch.cat([u_high, new_u], dim=1)
    v_high = torch.cat([v_high, new_v], dim=0)
    low = slice(step, rank)
    u_low = _complement(u[:, low], u_high, "left")
    v_low = _complement(vt[low], v_high, "right")
    return (u_high, v_high), (u_low, s[low].clone(), v_low)


class OSF(Strategy):
    """Orthogonal subspace fine-tuning across tasks (needs peft's OSF method).

    Args:
        rank_step: How many directions (an int, or a float in (0, 1): a share of each
            weight's smaller dimension) join the frozen set after each task. None: the
            trainable rank left after the first task is shared equally by the tasks, so
            the last task still trains `(min_dim - effective_rank) // T` directions.
    """

    name = "osf"

    def __init__(self, rank_step: int | float | None = None) -> None:
        if rank_step is not None and (
            rank_step <= 0 or (isinstance(rank_step, float) and rank_step >= 1)
        ):
            raise ConfigError(
                f"OSF(rank_step=...) must be a positive int or a float in (0, 1); got {rank_step!r}."
            )
        self.rank_step = rank_step
        self._layers: dict[str, Any] = {}
        self._high: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._steps: dict[str, int] = {}
        self._tasks_done = 0

    #: Strategies that keep copies or importances of the trainable parameters across tasks;
    #: OSF re-splits those parameters in place after each task, so what they kept would
    #: no longer mean the same weights.
    EXCLUSIVE = ("ewc", "si", "mas", "task_adapters", "olora")

    def setup(self, learner: Any) -> None:
        clash = [s.name for s in learner.strategies if getattr(s, "name", None) in self.EXCLUSIVE]
        if clash:
            raise ConfigError(
                f"OSF cannot be combined with {', '.join(clash)}: OSF re-splits the trainable "
                "parameters after every task, so anchors or importances kept for them would "
                "point at other weights. OSF already protects earlier tasks' subspaces; combine "
                "it with replay or LwF instead."
            )
        layers = osf_layers(learner.model)
        if not layers:
            raise IncompatibleModelError(
                f"OSF needs peft's OSF layers, but method={learner.method!r} has none. Use "
                "method=peft.OSFConfig(effective_rank=0.5, target_modules='all-linear') "
                "(or method='osf') with petl.OSF()."
            )
        self._layers = layers
        self._tasks_done = 0
        T = len(learner.stream)
        for name, layer in layers.items():
            weight = layer.get_base_layer().weight
            k = int(layer.effective_rank[ADAPTER])
            u, _, vt = torch.linalg.svd(weight.detach().float(), full_matrices=False)
            self._high[name] = (u[:, :k].contiguous(), vt[:k].contiguous())
            self._steps[name] = self._step(min(weight.shape), k, T)

    def _step(self, min_dim: int, k: int, tasks: int) -> int:
        free = min_dim - k
        if self.rank_step is None:
            step = free // max(tasks, 1)
        elif isinstance(self.rank_step, float):
            step = int(self.rank_step * min_dim)
        else:
            step = int(self.rank_step)
        # at least one direction left to train in the last task
        return max(0, min(step, (free - 1) // max(tasks - 1, 1)))

    def after_step(self, learner: Any) -> None:
        """Projects the trainable factors outside the frozen subspace (AdamW's per-
        coordinate scaling does not keep peft's projected gradients there)."""
        with torch.no_grad():
            for name, layer in self._layers.items():
                u_high, v_high = self._high[name]
                params = layer.osf_svd_params[ADAPTER]
                u, v = params["U_low"], params["V_low"]
                u.copy_(_complement(u.float(), u_high.to(u.device), "left").to(u.dtype))
                v.copy_(_complement(v.float(), v_high.to(v.device), "right").to(v.dtype))

    def after_task(self, learner: Any, t: int) -> None:
        """Merges task t's update and re-splits every layer for task t + 1."""
        self._tasks_done = t + 1
        if t + 1 >= len(learner.stream):
            return  # nothing follows: the model stays as trained
        for name, layer in self._layers.items():
            weight = effective_weight(layer).float()
            u_high, v_high = self._high[name]
            dev = weight.device
            self._high[name], low = grow(weight, u_high.to(dev), v_high.to(dev), self._steps[name])
            _install(layer, weight, self._high[name], low)

    def state_dict(self) -> dict[str, Any]:
        """The frozen subspaces, and the base weights and initial low parts they split
        (a resumed run rebuilds the layers from them; the trainable factors come back
        with the model)."""
        layers = {}
        for name, layer in self._layers.items():
            layers[name] = {
                "weight": layer.get_base_layer().weight.detach(),
                "high": list(self._high[name]),
                "low": [getattr(layer, f"_osf_{k}_low_init")[ADAPTER].detach() for k in "USV"],
            }
        return pack({"tasks_done": self._tasks_done, "layers": layers})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"tasks_done": 0, "layers": {}})
        self._tasks_done = int(saved["tasks_done"])
        for name, part in saved["layers"].items():
            if name not in self._layers:
                raise ConfigError(
                    f"The OSF checkpoint has layer {name!r}, which this model lacks: resume "
                    "with the same model and OSF target modules."
                )
            high = tuple(part["high"])
            self._high[name] = (high[0], high[1])
            _install(self._layers[name], part["weight"], self._high[name], tuple(part["low"]))
