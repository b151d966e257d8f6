"""Vision-language encoders (CLIP, SigLIP) read from local files, with batched torch preprocessing.

    encoder = load_encoder("weights/clip-vit-base-patch32")   # a folder, or a repo id in the HF cache
    x = encoder.embed_images(images)                          # uint8[B, H, W, 3] -> float32[B, D], unit norm
    t = encoder.embed_texts(["a robot arm"])                  # -> float32[T, D], unit norm, cached per prompt

Nothing is downloaded: transformers runs with ``local_files_only=True``, and a missing folder or
missing weights raise :class:`ModelWeightsNotFound`, whose message says how to bring weights
onto an offline machine. transformers is imported only when a model is loaded.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

SUPPORTED = ("clip", "siglip")
"""``model_type`` values of the configs this module loads."""
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
EXAMPLE_REPO = "openai/clip-vit-base-patch32"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ModelWeightsNotFound(FileNotFoundError):
    """No usable model at the given path or cache entry; the message says how to supply one offline."""


def _how_to_supply(model: str) -> str:
    name = Path(model).name or "clip-vit-base-patch32"
    return (
        "Models are never downloaded at run time. To supply one offline, either\n"
        f"  - on a machine with internet run `huggingface-cli download {EXAMPLE_REPO} --local-dir {name}` "
        f"(`hf download` in recent huggingface_hub), copy the folder here and pass its path as the model "
        f"(e.g. --rewards.modules.0.options.model /path/to/{name}), or\n"
        "  - set HF_HOME to a Hugging Face cache that already holds the repo and pass its id "
        f"(e.g. {EXAMPLE_REPO})."
    )


def resolve_model_dir(model: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The local folder of ``model``: an existing folder, or the snapshot of a repo id that is
    already in the Hugging Face cache (``cache_dir``, else the one under HF_HOME).

    Raises:
        ModelWeightsNotFound: neither exists, or the folder lacks config or weights.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        folder = path
    else:
        reason = f"no folder {str(path.resolve())!r}"
        folder = None
        if _REPO_ID.match(text):
            from huggingface_hub import constants, snapshot_download

            cache = cache_dir or constants.HF_HUB_CACHE
            try:
                folder = Path(snapshot_download(text, local_files_only=True, cache_dir=cache_dir))
            except Exception as error:  # huggingface_hub's errors differ between versions
                reason += f", and no repo {text!r} in the Hugging Face cache {str(cache)!r} ({type(error).__name__})"
        if folder is None:
            raise ModelWeightsNotFound(f"model {text!r} not found: {reason}.\n{_how_to_supply(text)}")
    if not (folder / "config.json").is_file():
        raise ModelWeightsNotFound(f"model {text!r}: {folder} has no config.json.\n{_how_to_supply(text)}")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ModelWeightsNotFound(
            f"model {text!r}: {folder} has no weights (one of {', '.join(WEIGHT_FILES)}); "
            f"a partial download or a cache holding only the config?\n{_how_to_supply(text)}")
    if not (folder / "preprocessor_config.json").is_file():
        raise ModelWeightsNotFound(
            f"model {text!r}: {folder} has no preprocessor_config.json (image size, mean and std); "
            f"download the whole repo, not only the weights.\n{_how_to_supply(text)}")
    return folder


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' warnings while loading (e.g. that its torchvision image processor
    is unavailable: only the processor's numbers are used here)."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block on ``num_threads`` CPU threads (None: leave torch's setting). The trainer
    keeps torch on one thread for its small networks; a vision transformer wants every core."""
    before = torch.get_num_threads()
    if num_threads is None or num_threads == before:
        yield
        return
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _features(out: Any) -> torch.Tensor:
    # transformers 5 returns a model output whose pooler_output holds the projected features; 4.x a tensor.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class VisionLanguageEncoder:
    """A CLIP or SigLIP model with its tokenizer and the image processor's size, mean and std.

    Preprocessing runs in torch on whole batches: bicubic antialiased resize on uint8 (as the
    processors' PIL bicubic), CLIP's shortest-edge resize + centre crop or SigLIP's plain resize,
    then rescale and normalise in one fused step.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, model_type: str, image_size: tuple[int, int],
                 mean: Sequence[float], std: Sequence[float], shortest_edge: int | None, center_crop: bool,
                 text_length: int, device: torch.device) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_type = model_type
        self.image_size = image_size
        """(H, W) the vision tower reads."""
        self.shortest_edge = shortest_edge
        """Resize so the shorter side has this length (CLIP), else straight to ``image_size`` (SigLIP)."""
        self.center_crop = center_crop
        self.text_length = text_length
        """Prompts are truncated to this many tokens; SigLIP's are also padded to it, as in its
        training (it reads the last token)."""
        self.device = device
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -mean_t / std_t
        self._texts: dict[str, torch.Tensor] = {}

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.projection_dim if self.model_type == "clip"
                   else self.model.config.text_config.hidden_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, H, W, 3] -> float32[B, 3, h, w] at the model's ``image_size``, normalised."""
        x = images.to(self.device).permute(0, 3, 1, 2)
        h, w = self.image_size
        H, W = x.shape[-2:]
        if self.shortest_edge:  # as transformers' get_resize_output_image_size
            short, long = (H, W) if H <= W else (W, H)
            new_long = int(self.shortest_edge * long / short)
            size = (self.shortest_edge, new_long) if H <= W else (new_long, self.shortest_edge)
        else:
            size = (h, w)
        if size != (H, W):
            # uint8 channels-last (the permuted HWC images as they are) with antialias is torch's
            # fast resize path, and it rounds and clamps like PIL does.
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
        if self.center_crop and size != (h, w):
            top, left = (size[0] - h) // 2, (size[1] - w) // 2
            x = x[..., top:top + h, left:left + w]
        # Reorder while still uint8 (4x fewer bytes), then normalise in place.
        return x.contiguous().float().mul_(self._scale).add_(self._shift)

    @torch.no_grad()
    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The raw vision forward pass: float32[B, 3, h, w] -> float32[B, D], not normalised."""
        return _features(self.model.get_image_features(pixel_values=pixels))

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """uint8[B, H, W, 3] -> float32[B, D] unit-norm embeddings, ``batch_size`` images per forward."""
        out = [F.normalize(self.image_features(self.preprocess(chunk)), dim=-1)
               for chunk in images.split(batch_size)]
        return torch.cat(out) if out else torch.zeros(0, self.embed_dim, device=self.device)

    @torch.no_grad()
    def embed_texts(self, prompts: Sequence[str]) -> torch.Tensor:
        """float32[T, D] unit-norm embeddings of ``prompts``; each prompt is encoded once."""
        new = [p for p in dict.fromkeys(prompts) if p not in self._texts]
        if new:
            if self.model_type == "siglip":
                tokens = self.tokenizer(new, padding="max_length", max_length=self.text_length, truncation=True,
                                        return_tensors="pt")
                inputs = {"input_ids": tokens["input_ids"].to(self.device)}  # trained without an attention mask
            else:
                tokens = self.tokenizer(new, padding=True, max_length=self.text_length, truncation=True,
                                        return_tensors="pt")
                inputs = {k: tokens[k].to(self.device) for k in ("input_ids", "attention_mask")}
            embeddings = F.normalize(_features(self.model.get_text_features(**inputs)), dim=-1)
            self._texts.update(zip(new, embeddings))
        return torch.stack([self._texts[p] for p in prompts])


def load_encoder(model: str | Path, device: str | torch.device = "cpu",
                 cache_dir: str | Path | None = None) -> VisionLanguageEncoder:
    """Load a CLIP or SigLIP model (detected from its config's ``model_type``) from local files.

    Args:
        model: a folder holding config.json, weights, tokenizer and preprocessor_config.json (as
            ``huggingface-cli download REPO --local-dir FOLDER`` writes it), or a repo id present in
            the Hugging Face cache.
        cache_dir: the cache to look repo ids up in (default: the one under HF_HOME).

    Raises:
        ModelWeightsNotFound: no such folder or cache entry, or files are missing.
        ValueError: a model type other than CLIP or SigLIP.
    """
    folder = resolve_model_dir(model, cache_dir)
    try:
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"vision-language rewards need {error.name!r}; install it with: "
                                  "pip install 'robot-rl[vlm]'", name=error.name) from error
    device = torch.device(device)
    with _quiet_transformers():
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        if config.model_type not in SUPPORTED:
            raise ValueError(f"model {str(model)!r} is a {config.model_type!r} model; "
                             f"supported: {', '.join(SUPPORTED)}")
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except ImportError as error:  # e.g. SigLIP's sentencepiece tokenizer without the sentencepiece package
            needs = "sentencepiece" if "sentencepiece" in str(error).lower() else getattr(error, "name", None)
            raise ModuleNotFoundError(f"model {str(model)!r}: its tokenizer needs the {needs!r} package; "
                                      f"install it with: pip install {needs}", name=needs) from error
        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        net = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval().requires_grad_(False)
    center_crop = bool(getattr(processor, "do_center_crop", False))
    resize, crop = _size(processor.size), _size(getattr(processor, "crop_size", None))
    final = crop if center_crop else resize
    if final.get("height") and final.get("width"):
        image_size = (int(final["height"]), int(final["width"]))
    else:
        image_size = (int(config.vision_config.image_size),) * 2
    shortest_edge = resize.get("shortest_edge")
    text_length = int(config.text_config.max_position_embeddings)
    return VisionLanguageEncoder(net, tokenizer, config.model_type, image_size, processor.image_mean,
                                 processor.image_std, int(shortest_edge) if shortest_edge else None, center_crop,
                                 text_length, device)


def _size(size: Any) -> dict[str, Any]:
    """An image processor's size (a dict in transformers 4, a SizeDict in 5) as a plain dict."""
    if size is None:
        return {}
    if isinstance(size, dict):
        return dict(size)
    return {k: getattr(size, k) for k in ("height", "width", "shortest_edge") if getattr(size, k, None)}
