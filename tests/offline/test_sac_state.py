"""SAC's state round trip: a SAC restored from ``state_dict`` (through a file) acts, values and
learns exactly as the one that saved it; a state of other network sizes is refused unchanged."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from robot_rl.algorithms.replay import FixedNorm, ReplayBuffer, SymmetricSampler
from robot_rl.algorithms.sac import SAC
from robot_rl.configs.offline import NetConfig, SACConfig

NET = NetConfig(hidden=(32, 32), batch_size=16, lr=1e-3)
CFG = SACConfig(ensemble=3, subset=2, layer_norm=True, utd=2)


def buffers(seed: int = 0) -> SymmetricSampler:
    gen = torch.Generator().manual_seed(seed)
    online, demos = ReplayBuffer(6, 2, 100), ReplayBuffer(6, 2, 50)
    for buffer, n in ((online, 80), (demos, 20)):
        buffer.add(torch.randn(n, 6, generator=gen), torch.rand(n, 2, generator=gen) * 2 - 1,
                   torch.randn(n, generator=gen), torch.randn(n, 6, generator=gen), torch.zeros(n))
    return SymmetricSampler(demos, online, 0.5)


def make_sac(seed: int, net: NetConfig = NET, cfg: SACConfig = CFG) -> SAC:
    torch.manual_seed(seed)
    norm = FixedNorm(torch.randn(6) * 0.1, torch.rand(6) + 0.5)
    return SAC(6, 2, net, cfg, norm, torch.Generator().manual_seed(seed))


def through_file(state: dict) -> dict:
    blob = io.BytesIO()
    torch.save(state, blob)
    blob.seek(0)
    return torch.load(blob, weights_only=True)


def test_a_loaded_sac_acts_values_and_updates_exactly_like_the_saved_one() -> None:
    sampler = buffers()
    trained = make_sac(0)
    for _ in range(5):  # moments, targets and the temperature away from their initial values
        trained.update(sampler)
    restored = make_sac(1)  # other initial weights and normaliser
    restored.load_state_dict(through_file(trained.state_dict()))

    obs, action = torch.randn(7, 6), torch.rand(7, 2) * 2 - 1
    torch.testing.assert_close(restored.act(obs, deterministic=True), trained.act(obs, deterministic=True),
                               rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(restored.critic(obs, action), trained.critic(obs, action), rtol=0, atol=0)
        torch.testing.assert_close(restored.critic_target(obs, action), trained.critic_target(obs, action),
                                   rtol=0, atol=0)
    assert restored.log_alpha.item() == trained.log_alpha.item() != 0.0
    assert restored.alpha_opt.param_groups[0]["params"][0] is restored.log_alpha  # restored in place

    # Same generator state: one more update (critics, actor, temperature, targets) is identical.
    restored.generator.set_state(trained.generator.get_state())
    stats_trained, stats_restored = trained.update(sampler), restored.update(sampler)
    assert stats_restored == stats_trained
    assert "exp_avg_sq" in trained.state_dict()["critic_opt"]["state"][0]  # the moments are compared too
    torch.testing.assert_close(restored.state_dict(), trained.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize(("net", "cfg", "named"), [
    (NetConfig(hidden=(64, 64), batch_size=16), CFG, "actor.actor.0.0.weight is [32, 6] where [64, 6] is expected"),
    (NET, SACConfig(ensemble=2, subset=2, layer_norm=True), "critic.nets.2.0.weight is unexpected"),
    (NET, SACConfig(ensemble=3, subset=2, layer_norm=False), "critic.nets.0.2.weight is missing"),
])
def test_a_state_of_other_network_sizes_is_refused_and_changes_nothing(net, cfg, named: str) -> None:
    other = make_sac(1, net, cfg)
    before = copy.deepcopy(other.state_dict())
    with pytest.raises(ValueError, match="the saved networks differ from these: .*" + named.replace("[", r"\[")
                       .replace("]", r"\]")):
        other.load_state_dict(make_sac(0).state_dict())
    torch.testing.assert_close(other.state_dict(), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not a SAC state: actor_opt, alpha_opt, critic_opt missing"):
        other.load_state_dict({k: v for k, v in other.state_dict().items() if not k.endswith("_opt")})
