"""Offline loading of CLIP and SigLIP through ``robot_rl.rewards.models`` and its batched preprocessing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robot_rl.rewards.models import ModelWeightsNotFound, load_encoder, resolve_model_dir

pytestmark = pytest.mark.vlm


@pytest.mark.parametrize(("kind", "model_type", "dim"), [("tiny_clip", "clip", 16), ("tiny_siglip", "siglip", 32)])
def test_round_trip_matches_the_transformers_model(kind: str, model_type: str, dim: int,
                                                   request: pytest.FixtureRequest) -> None:
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    folder: Path = request.getfixturevalue(kind)
    encoder = load_encoder(folder)
    assert encoder.model_type == model_type and encoder.image_size == (32, 32) and encoder.embed_dim == dim

    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = encoder.embed_images(images, batch_size=2)
    assert x.shape == (3, dim) and x.dtype == torch.float32
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(3))

    # The same numbers as the reference pipeline: transformers' own processor and model.
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    pixels = processor(images=list(images.numpy()), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model.get_image_features(pixel_values=pixels)
        reference = F.normalize(getattr(out, "pooler_output", out), dim=-1)
    torch.testing.assert_close(x, reference, atol=1e-5, rtol=1e-5)  # 32x32 input: no resize, exact

    prompts = ["the green ball", "a robot arm"]
    t = encoder.embed_texts(prompts)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    padding = "max_length" if model_type == "siglip" else True
    tokens = tokenizer(prompts, padding=padding, max_length=24, truncation=True, return_tensors="pt")
    if model_type == "siglip":
        tokens = {"input_ids": tokens["input_ids"]}
    with torch.no_grad():
        out = model.get_text_features(**tokens)
        torch.testing.assert_close(t, F.normalize(getattr(out, "pooler_output", out), dim=-1), atol=1e-5, rtol=1e-5)


def test_text_embeddings_are_cached_per_prompt(tiny_clip: Path) -> None:
    encoder = load_encoder(tiny_clip)
    calls = []
    forward = encoder.model.get_text_features
    encoder.model.get_text_features = lambda **kw: calls.append(kw["input_ids"].shape[0]) or forward(**kw)
    first = encoder.embed_texts(["a robot arm", "the green ball", "a robot arm"])
    again = encoder.embed_texts(["the green ball", "a red cube"])
    assert calls == [2, 1]  # each distinct prompt once
    torch.testing.assert_close(first[0], first[2])
    torch.testing.assert_close(first[1], again[0])


def test_preprocessing_is_close_to_the_pil_processor_when_resizing(tiny_clip: Path) -> None:
    from transformers import AutoImageProcessor

    encoder = load_encoder(tiny_clip)
    processor = AutoImageProcessor.from_pretrained(tiny_clip, local_files_only=True)
    # smooth images (rendered scenes are mostly smooth) of another size and aspect: 84x100 -> 32x38 -> crop 32x32
    yy, xx = np.meshgrid(np.linspace(0, 1, 84), np.linspace(0, 1, 100), indexing="ij")
    image = np.stack([yy, xx, (yy + xx) / 2], axis=-1)
    images = torch.from_numpy((np.stack([image, 1 - image]) * 255).round().astype(np.uint8))
    ours = encoder.preprocess(images)
    reference = processor(images=list(images.numpy()), return_tensors="pt")["pixel_values"]
    assert ours.shape == reference.shape == (2, 3, 32, 32)
    # one uint8 step is 1/(255·std) ≈ 0.015 after normalisation
    assert float((ours - reference).abs().max()) < 0.05


def test_missing_folder_says_how_to_supply_weights_offline(tmp_path: Path) -> None:
    with pytest.raises(ModelWeightsNotFound) as error:
        load_encoder(tmp_path / "clip-vit-base-patch32")
    message = str(error.value)
    assert f"no folder '{tmp_path / 'clip-vit-base-patch32'}'" in message
    assert "never downloaded" in message
    assert "huggingface-cli download openai/clip-vit-base-patch32 --local-dir clip-vit-base-patch32" in message
    assert "HF_HOME" in message


def test_folder_without_weights_is_reported(tiny_clip: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(tiny_clip, partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(ModelWeightsNotFound, match="has no weights"):
        load_encoder(partial)
    (partial / "config.json").unlink()
    with pytest.raises(ModelWeightsNotFound, match="has no config.json"):
        load_encoder(partial)


def test_repo_id_resolves_from_the_hugging_face_cache(tiny_siglip: Path, tmp_path: Path) -> None:
    # The layout huggingface_hub writes: hub/models--ORG--NAME/{refs/main, snapshots/<commit>/...}
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-siglip"
    shutil.copytree(tiny_siglip, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert resolve_model_dir("acme/tiny-siglip", cache_dir=tmp_path / "hub") == repo / "snapshots" / commit
    assert load_encoder("acme/tiny-siglip", cache_dir=tmp_path / "hub").model_type == "siglip"
    with pytest.raises(ModelWeightsNotFound, match="no repo 'acme/other' in the Hugging Face cache"):
        resolve_model_dir("acme/other", cache_dir=tmp_path / "hub")


def test_unsupported_model_type(tiny_clip: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_clip, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ValueError, match="is a 'bert' model; supported: clip, siglip"):
        load_encoder(other)


def test_a_tokenizer_needing_a_missing_package_names_it(tiny_siglip: Path, monkeypatch) -> None:
    import transformers

    def missing(*args, **kwargs):
        raise ImportError("SiglipTokenizer requires the SentencePiece library but it was not found")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", missing)
    with pytest.raises(ModuleNotFoundError, match="needs the 'sentencepiece' package; install it with: pip install"):
        load_encoder(tiny_siglip)
