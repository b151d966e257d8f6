"""Zero-shot reward from a vision-language model: VLM-RM, with optional contrasting negative goals.

    module = REWARDS.get("vlm_zero_shot")(model="weights/clip-vit-base-patch32", baseline="a robot arm")
    out = module.score(images=uint8[B, V, H, W, 3], state=None, goal="the gripper touches the green ball")
    out.reward                                        # float32[B], higher = closer to the goal

VLM-RM (Rocamonde et al., AlignmentResearch/vlmrm): x = unit image embedding, g and b = means of
the unit goal and baseline prompt embeddings, d = g − b,

    P = α·ddᵀ/‖d‖² + (1 − α)·I,        r(x) = 1 − ½‖(x − g)P‖².

α = 0 gives r = x·g + (1 − ‖g‖²)/2, an affine map of the similarity to the goal (the cosine
similarity itself when one goal prompt makes ‖g‖ = 1); α = 1 keeps only the component of
x − g along the goal–baseline direction.

Contrasting goals (VLM-RL, zihaosheng/VLM-RL): with negative prompts (mean embedding n) the
reward is r(x; g) − w·r(x; n), each term VLM-RM with its own direction (g − b, n − b). Sign
convention: **higher = closer to the positive goal and further from the negative one** (α = 0,
single prompts: cos(x, g) − w·cos(x, n) + const). VLM-RL's code computes cos(neg) − cos(pos) and
then clips it to [0, 0.03]; we neither flip nor clip (normalise the term in the reward wrapper).

Multi-view images are embedded view by view and the per-view rewards are averaged: each camera
votes equally, and a view where the goal is hidden lowers the reward rather than vetoing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robot_rl.rewards.base import REWARDS, RewardOutput, check_images
from robot_rl.rewards.models import VisionLanguageEncoder, load_encoder, torch_threads


def projection(direction: torch.Tensor, alpha: float) -> torch.Tensor:
    """P = α·ddᵀ/‖d‖² + (1 − α)·I for d float32[D]; returns float32[D, D]."""
    d = direction / direction.norm()
    eye = torch.eye(d.shape[0], dtype=d.dtype, device=d.device)
    return alpha * torch.outer(d, d) + (1.0 - alpha) * eye


def vlm_rm_reward(x: torch.Tensor, goal: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    """r = 1 − ½‖(x − g)P‖² for x float32[B, D], g float32[D], P float32[D, D]; returns float32[B]."""
    return 1.0 - 0.5 * ((x - goal) @ proj).pow(2).sum(dim=-1)


def _prompts(value: str | Sequence[str] | None) -> tuple[str, ...]:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class _Target:
    goal: torch.Tensor
    """float32[D], mean of the unit prompt embeddings."""
    proj: torch.Tensor
    """float32[D, D]"""


@REWARDS.register("vlm_zero_shot")
class VLMZeroShotReward:
    """VLM-RM reward from a CLIP or SigLIP model on local disk (see the module docstring).

    Args:
        model: folder of a CLIP/SigLIP model, or a repo id in the local Hugging Face cache.
        goal: goal prompt(s); default: the ``goal`` passed to :meth:`score` (the env's goal sentence).
        baseline: prompt(s) describing the scene without the goal being achieved.
        negative_goals: contrasting prompts to move away from (VLM-RL); none by default.
        negative_weight: w in r(x; g) − w·r(x; n).
        alpha: α in [0, 1], how much of x − g outside the goal–baseline direction is ignored.
        batch_size: images per encoder forward pass.
        device: torch device of the encoder; rewards are returned on the images' device.
        num_threads: CPU threads while encoding (None: torch's setting, which the trainer sets to 1).
        encoder: an already loaded encoder to share (``model`` is then ignored).
    """

    uses_images = True
    uses_state = False

    def __init__(self, model: str | None = None, goal: str | Sequence[str] | None = None,
                 baseline: str | Sequence[str] = "a robot", negative_goals: str | Sequence[str] = (),
                 negative_weight: float = 1.0, alpha: float = 0.5, batch_size: int = 64, device: str = "cpu",
                 num_threads: int | None = None, encoder: VisionLanguageEncoder | None = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"vlm_zero_shot: alpha must be in [0, 1], got {alpha}")
        if batch_size < 1:
            raise ValueError(f"vlm_zero_shot: batch_size must be at least 1, got {batch_size}")
        if encoder is None and model is None:
            raise ValueError("vlm_zero_shot: give the model (a local folder or a cached repo id) in options.model")
        self.goal = _prompts(goal)
        self.baseline = _prompts(baseline)
        self.negative_goals = _prompts(negative_goals)
        if not self.baseline:
            raise ValueError("vlm_zero_shot: give at least one baseline prompt")
        self.negative_weight = negative_weight
        self.alpha = alpha
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.encoder = encoder or load_encoder(model, device)
        self._targets: dict[tuple[str, ...], _Target] = {}

    def target(self, prompts: tuple[str, ...]) -> _Target:
        """Goal embedding and projection for ``prompts`` against the baseline (cached)."""
        if prompts not in self._targets:
            g = self.encoder.embed_texts(prompts).mean(dim=0)
            b = self.encoder.embed_texts(self.baseline).mean(dim=0)
            if float((g - b).norm()) < 1e-6:
                raise ValueError(f"vlm_zero_shot: prompts {list(prompts)} and baseline {list(self.baseline)} "
                                 "embed identically; the goal-baseline direction is undefined")
            self._targets[prompts] = _Target(g, projection(g - b, self.alpha))
        return self._targets[prompts]

    def rewards(self, x: torch.Tensor, goal: str) -> torch.Tensor:
        """float32[B] rewards of unit image embeddings ``x`` float32[B, D]."""
        prompts = self.goal or _prompts(goal)
        if not any(p.strip() for p in prompts):
            raise ValueError("vlm_zero_shot: no goal prompt: the env has no goal sentence; set options.goal")
        pos = self.target(prompts)
        r = vlm_rm_reward(x, pos.goal, pos.proj)
        if self.negative_goals:
            neg = self.target(self.negative_goals)
            r = r - self.negative_weight * vlm_rm_reward(x, neg.goal, neg.proj)
        return r

    @torch.no_grad()
    def score(self, images: torch.Tensor | None, state: torch.Tensor | None, goal: str) -> RewardOutput:
        """images uint8[B, V, H, W, 3] -> reward float32[B], the mean over the V views."""
        images = check_images(images, "vlm_zero_shot")
        b, v = images.shape[:2]
        with torch_threads(self.num_threads):
            x = self.encoder.embed_images(images.flatten(0, 1), self.batch_size)
            reward = self.rewards(x, goal).view(b, v).mean(dim=1)
        return RewardOutput(reward=reward.float().to(images.device))
