"""Tiny random CLIP and SigLIP models written as a downloaded model folder is laid out (config,
safetensors weights, tokenizer, preprocessor_config.json), so tests load them through the real
offline path of ``robot_rl.rewards.models``; one torch thread for every reward test; and
rendered panda_reach episodes shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

WORDS = "a the robot arm gripper touches green ball red cube table on is in air".split()
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=24)
VISION = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=2)


def write_tiny_clip(folder: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":  # character-level BPE: no merges needed
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(text_config=dict(TEXT, vocab_size=len(vocab), bos_token_id=0, eos_token_id=1, pad_token_id=1),
                        vision_config=VISION, projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def write_tiny_siglip(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel

    # Real SigLIP repos ship a sentencepiece model; a word-level fast tokenizer needs no extra package.
    vocab = {"</s>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="</s>", eos_token="</s>",
                                        unk_token="<unk>", model_max_length=TEXT["max_position_embeddings"])
    text = dict(TEXT, vocab_size=len(vocab), bos_token_id=None, eos_token_id=0, pad_token_id=0)
    config = SiglipConfig(text_config=text, vision_config=VISION)
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions: extra threads only add overhead, and a lot of it on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


MIXED = ["expert", "noisy", "regressing"] * 3 + ["random"] * 2
"""Qualities of the held-out panda_reach episodes."""


@pytest.fixture(scope="session")
def reach_demos():
    """Five scripted expert panda_reach episodes (30 frames, 64x64 front camera)."""
    episodes = pytest.importorskip("robot_rl_sim.episodes")
    return episodes.make_episodes("panda_reach", ["expert"] * 5, num_steps=30, seed=0, num_envs=5)


@pytest.fixture(scope="session")
def reach_held_out():
    """Held-out panda_reach episodes of :data:`MIXED` qualities."""
    episodes = pytest.importorskip("robot_rl_sim.episodes")
    return episodes.make_episodes("panda_reach", MIXED, num_steps=30, seed=100, num_envs=6)
