"""The H∞ disturber (Long et al., *Learning H-Infinity Locomotion Control*).

A disturber policy reads the simulation-only observation and applies a bounded force dₜ to a
body. It is trained with PPO, in the same rollouts as the actor, on the reward cₜ − η·‖dₜ‖,
where the cost cₜ is the gap between the task's reward terms and their oracle values and
‖dₜ‖ is measured as a fraction of the force bound. The actor maximises its return subject to

    E[Σγᵗcₜ] ≤ η·E[Σγᵗ‖dₜ‖],

enforced by a Lagrange multiplier: a second value head (the cost critic) gives cost
advantages A_c, the actor's advantages become (A_r − λ·A_c) / (1 + λ), and after every
iteration λ ← min(λ_max, max(0, λ + α_λ·(Ĵ(c) − η·Ĵ(‖d‖)))) (projected dual ascent).

The oracle is either fixed (``absolute``: best values of the terms) or the policy's own
undisturbed performance (``relative``): a share of the worlds is never pushed and the means of
their reward terms are the oracle, so cₜ measures what the disturbance costs. With fixed best
values a policy that cannot reach them pays cost without any disturbance, the constraint can
never hold and λ grows without bound; relative costs have zero mean without disturbance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from robot_rl.algorithms.gae import bootstrap_time_outs, gae
from robot_rl.algorithms.networks import RunningNorm, mlp
from robot_rl.algorithms.ppo import PPO
from robot_rl.configs.train import HInfConfig, PPOConfig
from robot_rl.disturbers.common import clip_norm


def oracle_cost(terms: Mapping[str, torch.Tensor], oracle: Mapping[str, float], terminated: torch.Tensor,
                termination_cost: float = 0.0, *, clamp: bool = True,
                termination_rate: float = 0.0) -> torch.Tensor:
    """Per-step cost float[...]: Σ over the oracle's terms of max(0, oracle − term) (of
    oracle − term without ``clamp``), plus ``termination_cost`` · (terminated − termination_rate).
    ``terms`` are the weighted reward terms of ``info["reward_terms"]`` and ``terminated`` is
    bool, all of one shape (float[N] for a step, float[T, N] for a rollout)."""
    missing = sorted(set(oracle) - set(terms))
    if missing:
        raise ValueError(f"robust.hinf.oracle/cost_terms name reward terms {missing} the task does not log; "
                         f"its terms: {', '.join(terms)}")
    cost = torch.zeros_like(terminated, dtype=torch.float32)
    for name, best in oracle.items():
        gap = best - terms[name]
        cost += gap.clamp_min(0.0) if clamp else gap
    return cost + termination_cost * (terminated.float() - termination_rate)


def reference_oracle(terms: Mapping[str, torch.Tensor], terminated: torch.Tensor,
                     reference: int) -> tuple[dict[str, float], float]:
    """The relative oracle measured on the undisturbed worlds 0..reference−1 of a rollout:
    the mean of each term float[T, N] and the termination rate (terminated bool[T, N]) over
    their steps."""
    if reference < 1:
        raise ValueError(f"a relative oracle needs at least one undisturbed world, got {reference}")
    oracle = {name: float(value[:, :reference].mean()) for name, value in terms.items()}
    return oracle, float(terminated[:, :reference].float().mean())


def mean_over_processes(values: list[float], device: torch.device) -> list[float]:
    """The mean of each value over the processes of a torch.distributed run (as is without one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return (total / dist.get_world_size()).tolist()


def discounted_sums(x: torch.Tensor, dones: torch.Tensor, gamma: float) -> float:
    """Ĵ(x): the mean over the episode segments of a rollout of Σ γ^(t − t₀) xₜ, t₀ being the
    segment's first step. x float[T, N]; dones bool[T, N] (the episode ended after step t)."""
    steps = x.shape[0]
    discount = torch.ones_like(x[0])
    total = torch.zeros_like(x[0])
    segments = float(x.shape[1])
    for t in range(steps):
        total += discount * x[t]
        discount = torch.where(dones[t], torch.ones_like(discount), discount * gamma)
        if t < steps - 1:
            segments += float(dones[t].sum())
    return float(total.sum()) / segments


def constraint_violation(costs: torch.Tensor, intensity: torch.Tensor, dones: torch.Tensor, gamma: float,
                         eta: float) -> float:
    """Ĵ(c) − η·Ĵ(‖d‖): positive when the actor concedes more cost than the force allows."""
    return discounted_sums(costs, dones, gamma) - eta * discounted_sums(intensity, dones, gamma)


def update_multiplier(multiplier: float, violation: float, lr: float, max_value: float | None = None) -> float:
    """One step of projected dual ascent: λ ← max(0, λ + lr·violation), at most ``max_value``."""
    multiplier = max(0.0, multiplier + lr * violation)
    return multiplier if max_value is None else min(max_value, multiplier)


class CostCritic(nn.Module):
    """The second value head: expected discounted cost from a critic observation float[B, Q] -> float[B]."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.norm = RunningNorm(obs_dim)
        self.net = mlp(obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(obs)).squeeze(-1)


class HInfDisturber:
    """Disturber policy, cost critic and multiplier λ, stepped by the training loop:
    ``force = act(obs)`` before each env step, ``record(...)`` after it, ``shape(...)`` for the
    actor's advantages, ``update()`` after the actor's update.

    With ``cfg.oracle_mode == "relative"`` worlds 0..reference−1 are never pushed (the
    disturber's own PPO sees only the others) and measure the oracle; ``oracle`` is then
    ignored and ``cfg.cost_terms`` names the terms."""

    def __init__(self, cfg: HInfConfig, algo: PPOConfig, obs_dim: int, num_envs: int, device: torch.device,
                 oracle: Mapping[str, float], generator: torch.Generator) -> None:
        self.cfg, self.gamma, self.lam = cfg, algo.gamma, algo.lam
        self.device = device
        self.relative = cfg.oracle_mode == "relative"
        self.termination_rate = 0.0
        """Termination rate per step subtracted from falls in the cost (relative mode)."""
        self._oracle_measured = False
        if self.relative:
            if not cfg.cost_terms:
                raise ValueError("robust.hinf.cost_terms: name the reward terms the relative cost counts, "
                                 "e.g. [track_lin_vel, track_ang_vel]")
            self.reference = round(cfg.reference_fraction * num_envs)
            if not 1 <= self.reference < num_envs:
                raise ValueError(f"robust.hinf.reference_fraction: {cfg.reference_fraction} of {num_envs} worlds "
                                 f"leaves {self.reference} undisturbed; the relative oracle needs at least one "
                                 "undisturbed and one pushed world (more worlds or another fraction)")
            self.oracle = {name: 0.0 for name in cfg.cost_terms}  # measured from the first rollout on
        else:
            self.reference = 0
            self.oracle = dict(oracle)
        policy_cfg = dataclasses.replace(algo, lr=cfg.lr, actor_hidden=cfg.hidden, critic_hidden=cfg.hidden,
                                         init_noise_std=cfg.init_noise_std, entropy_coef=cfg.entropy_coef)
        self.policy = PPO(policy_cfg, obs_dim, obs_dim, 3, num_envs - self.reference, device, generator)
        self.cost_critic = CostCritic(obs_dim, cfg.hidden).to(device)
        self.cost_optimizer = torch.optim.Adam(self.cost_critic.parameters(), lr=cfg.lr)
        self.generator = generator
        self.multiplier = float(cfg.lambda_init)
        t, n = algo.num_steps, num_envs
        self.num_epochs, self.num_minibatches = algo.num_epochs, algo.num_minibatches
        self._obs = torch.zeros(t, n, obs_dim, device=device)
        self._costs = torch.zeros(t, n, device=device)
        """float[T, N] costs with time-outs bootstrapped by the cost critic (what GAE reads)."""
        self._raw_costs = torch.zeros(t, n, device=device)
        """float[T, N] the per-step costs themselves (the constraint and the logs)."""
        self._cost_values = torch.zeros(t, n, device=device)
        self._intensity = torch.zeros(t, n, device=device)
        self._dones = torch.zeros(t, n, dtype=torch.bool, device=device)
        self._terms = {name: torch.zeros(t, n, device=device) for name in self.oracle} if self.relative else {}
        """float[T, N] per cost term, relative mode only (the oracle is measured from them)."""
        self._terminated = torch.zeros(t, n, dtype=torch.bool, device=device)
        self._step = 0
        self.bound = 0.0
        """The force bound of the current iteration, newtons (0 before ``start_iteration``)."""

    def set_iteration(self, iteration: int) -> None:
        """Set the force bound for the coming rollout (warm-up, then a linear ramp)."""
        cfg = self.cfg
        if iteration < cfg.start_iteration:
            self.bound = 0.0
        else:
            ramp = (iteration - cfg.start_iteration + 1) / cfg.ramp_iterations if cfg.ramp_iterations else 1.0
            self.bound = cfg.max_force * min(1.0, ramp)

    @property
    def active(self) -> bool:
        return self.bound > 0.0

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The disturbance float[N, 3] (newtons, norm at most the bound; zero on the reference
        worlds) for observation float[N, Q]."""
        self._obs[self._step] = obs
        self.cost_critic.norm.update(obs)
        self._cost_values[self._step] = self.cost_critic(obs)
        force = torch.zeros(obs.shape[0], 3, device=self.device)
        if not self.active:
            self._intensity[self._step] = 0.0
            return force
        pushed = obs[self.reference:]
        action = self.policy.act(pushed, pushed)
        force[self.reference:] = clip_norm(self.bound * action.clamp(-1.0, 1.0), self.bound)
        self._intensity[self._step] = torch.linalg.norm(force, dim=1) / self.cfg.max_force
        return force

    @torch.no_grad()
    def record(self, terms: Mapping[str, torch.Tensor], terminated: torch.Tensor, truncated: torch.Tensor,
               final_obs: torch.Tensor) -> torch.Tensor:
        """Store the step's cost (returned, float[N]) and train the disturber on cost − η·intensity."""
        cost = oracle_cost(terms, self.oracle, terminated, self.cfg.termination_cost, clamp=not self.relative,
                           termination_rate=self.termination_rate)
        i, r = self._step, self.reference
        self._raw_costs[i] = cost
        self._costs[i] = bootstrap_time_outs(cost, truncated, self.cost_critic(final_obs), self.gamma) \
            if truncated.any() else cost
        self._dones[i] = terminated | truncated
        self._terminated[i] = terminated
        for name, values in self._terms.items():
            values[i] = terms[name]
        if self.active:
            self.policy.record((cost - self.cfg.eta * self._intensity[i])[r:], terminated[r:], truncated[r:],
                               final_obs[r:])
        self._step += 1
        return cost

    @torch.no_grad()
    def shaper(self, last_obs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The rollout's cost advantages and returns are computed here; returns the map from the
        actor's reward advantages float[T, N] to (A_r − λ·A_c) / (1 + λ)."""
        self._cost_adv, self._cost_returns = gae(self._costs, self._cost_values, self._dones,
                                                 self.cost_critic(last_obs), self.gamma, self.lam)
        lam = self.multiplier
        cost_adv = self._cost_adv
        return lambda advantages: (advantages - lam * cost_adv) / (1.0 + lam)

    @torch.no_grad()
    def deterministic_force(self, obs: torch.Tensor, bound: float | None = None) -> torch.Tensor:
        """The trained disturber's mean force float[N, 3] for obs float[N, Q], at most ``bound``
        newtons (default ``max_force``): the adversary of ``robot-rl robustness-eval``."""
        bound = self.cfg.max_force if bound is None else bound
        return clip_norm(bound * self.policy.model.action_mean(obs).clamp(-1.0, 1.0), bound)

    def update(self, last_obs: torch.Tensor) -> dict[str, float]:
        """Fit the cost critic, update the disturber (when it acted) and λ; returns the metrics."""
        if self._step != self._costs.shape[0]:
            raise RuntimeError(f"the H∞ disturber recorded {self._step} of {self._costs.shape[0]} steps")
        value_loss = self._fit_cost_critic()
        r = self.reference
        costs = self._raw_costs[:, r:]
        oracle_row: dict[str, float] = {}
        if self.relative:
            costs = self._measure_oracle()
            oracle_row = {f"hinf/oracle/{name}": value for name, value in self.oracle.items()}
            oracle_row["hinf/oracle/termination_rate"] = self.termination_rate
        violation = constraint_violation(costs, self._intensity[:, r:], self._dones[:, r:], self.gamma,
                                         self.cfg.eta)
        violation, = mean_over_processes([violation], self.device)  # one λ for all processes
        intensity = float(self._intensity[:, r:].mean())
        row = {"hinf/cost": float(costs.mean()), "hinf/force": intensity * self.cfg.max_force,
               "hinf/intensity": intensity, "hinf/violation": violation,
               "hinf/force_bound": self.bound, "hinf/cost_value_loss": value_loss, **oracle_row}
        row.update({"hinf/disturber_kl": float("nan"), "hinf/disturber_std": float("nan")})
        if self.active:
            self.policy.finish_rollout(last_obs[r:])
            stats = self.policy.update()
            row.update({"hinf/disturber_kl": stats.kl, "hinf/disturber_std": stats.action_std})
            self.multiplier = update_multiplier(self.multiplier, violation, self.cfg.lambda_lr, self.cfg.max_lambda)
        row["hinf/lambda"] = self.multiplier
        self._step = 0
        return row

    def _measure_oracle(self) -> torch.Tensor:
        """Relative mode: this rollout's costs float[T, N − reference] on the pushed worlds,
        against the oracle measured on the reference worlds of this same rollout (all worlds
        while the disturber is off); then the running oracle moves towards that measurement."""
        reference = self.reference if self.active else self._obs.shape[1]
        oracle, rate = reference_oracle(self._terms, self._terminated, reference)
        # Under torchrun every process measures its own reference worlds; all use their mean.
        *means, rate = mean_over_processes([*oracle.values(), rate], self.device)
        oracle = dict(zip(oracle, means))
        r = self.reference
        costs = oracle_cost({name: values[:, r:] for name, values in self._terms.items()}, oracle,
                            self._terminated[:, r:], self.cfg.termination_cost, clamp=False, termination_rate=rate)
        m = self.cfg.oracle_momentum if self._oracle_measured else 0.0
        self.oracle = {name: m * self.oracle[name] + (1.0 - m) * oracle[name] for name in self.oracle}
        self.termination_rate = m * self.termination_rate + (1.0 - m) * rate
        self._oracle_measured = True
        return costs

    def _fit_cost_critic(self) -> float:
        obs, returns = self._obs.flatten(0, 1), self._cost_returns.flatten(0, 1)
        total, count = 0.0, 0
        size = max(1, obs.shape[0] // self.num_minibatches)
        for _ in range(self.num_epochs):
            order = torch.randperm(obs.shape[0], generator=self.generator, device="cpu").to(obs.device)
            for k in range(self.num_minibatches):
                idx = order[k * size:(k + 1) * size]
                loss = (self.cost_critic(obs[idx]) - returns[idx]).pow(2).mean()
                self.cost_optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.cost_critic.parameters(), 1.0)
                self.cost_optimizer.step()
                total, count = total + loss.item(), count + 1
        return total / count

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.model.state_dict(), "policy_optimizer": self.policy.optimizer.state_dict(),
                "policy_lr": self.policy.lr, "cost_critic": self.cost_critic.state_dict(),
                "cost_optimizer": self.cost_optimizer.state_dict(), "multiplier": self.multiplier,
                "oracle": dict(self.oracle), "termination_rate": self.termination_rate,
                "oracle_measured": self._oracle_measured}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.model.load_state_dict(state["policy"])
        self.policy.optimizer.load_state_dict(state["policy_optimizer"])
        self.policy.lr = state["policy_lr"]
        self.cost_critic.load_state_dict(state["cost_critic"])
        self.cost_optimizer.load_state_dict(state["cost_optimizer"])
        self.multiplier = float(state["multiplier"])
        if self.relative and state.get("oracle_measured", False):
            self.oracle = {name: float(state["oracle"][name]) for name in self.oracle}
            self.termination_rate = float(state["termination_rate"])
            self._oracle_measured = True
