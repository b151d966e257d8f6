"""Reward-module throughput on the CPU: images/s of every registered reward module.

For each module in ``REWARDS`` (so modules added later are included), image size (84×84,
224×224) and batch size (32, 256), measures images/s of ``module.score`` on random
uint8[B, 1, H, W, 3] images, and prints it next to the raw encoder forward pass
(``get_image_features`` on already preprocessed float32[B, 3, 224, 224]) as a ratio: what
preprocessing, projection and bookkeeping cost on top of the network. Modules whose factory takes
``model`` get the encoder below; modules that cannot score without fitting first are skipped with
a note.

Without ``--model``, a CLIP with openai/clip-vit-base-patch32's vision tower (ViT-B/32, 224 px,
random weights, a small text tower since prompts are embedded once) is written to a temporary
folder and loaded through the same offline path as real weights.

    python benchmarks/reward_throughput.py
    python benchmarks/reward_throughput.py --model /data/clip-vit-base-patch32 --repeats 5 --threads 2
    python benchmarks/reward_throughput.py --tiny --batch-sizes 32   # seconds: checks the script runs

Numbers are medians over ``--repeats`` timed calls after one warm-up call; the load average
is printed before and after, since other processes on the machine skew wall-clock rates.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from robot_rl.rewards.base import load_modules
from robot_rl.rewards.models import load_encoder

GOAL = "the robot gripper touches the green ball"


def write_random_clip(folder: Path, tiny: bool) -> Path:
    """A random-weight CLIP folder; ViT-B/32's vision tower unless ``tiny``."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()  # that its torchvision image processor is missing: only its numbers are used

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch], vocab[ch + "</w>"] = len(vocab), len(vocab) + 1
    text = dict(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(image_size=224, patch_size=32, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12)
    if tiny:
        vision.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)).save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def median_rate(call, items: int, repeats: int) -> float:
    """Median items/s of ``call`` over ``repeats`` timed calls after a warm-up call."""
    call()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


def build(name: str, model: str, batch_size: int):
    """The module ``name`` with the options this benchmark can supply, or a reason it cannot be built."""
    factory = load_modules().get(name)
    params = inspect.signature(factory).parameters
    options = {k: v for k, v in (("model", model), ("batch_size", batch_size)) if k in params}
    try:
        return factory(**options), ""
    except Exception as error:  # a module needing options we cannot guess
        return None, f"cannot build with {sorted(options) or 'no options'}: {type(error).__name__}: {error}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local CLIP/SigLIP folder (default: random ViT-B/32-shaped CLIP)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer random encoder instead of ViT-B/32")
    parser.add_argument("--sizes", type=int, nargs="+", default=[84, 224], help="square image sizes")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(write_random_clip(Path(tmp), args.tiny))
        encoder = load_encoder(model)
        label = args.model or ("random tiny CLIP" if args.tiny else "random CLIP ViT-B/32 (vision tower)")
        print(f"encoder: {label}, {encoder.model_type}, reads {encoder.image_size}; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
        gen = torch.Generator().manual_seed(0)
        names = load_modules().names()
        print(f"{'module':<22} {'size':>9} {'batch':>6} {'images/s':>10} {'x encoder':>10}")
        for batch in args.batch_sizes:
            pixels = encoder.preprocess(torch.randint(0, 256, (batch, *encoder.image_size, 3), dtype=torch.uint8,
                                                      generator=gen))
            raw = median_rate(lambda p=pixels: encoder.image_features(p), batch, args.repeats)
            print(f"{'encoder forward (raw)':<22} {'-':>9} {batch:>6} {raw:>10.1f} {1.0:>10.2f}")
            modules = {name: build(name, model, batch) for name in names}
            for size in args.sizes:
                images = torch.randint(0, 256, (batch, 1, size, size, 3), dtype=torch.uint8, generator=gen)
                rate = median_rate(lambda i=images: encoder.preprocess(i[:, 0]), batch, args.repeats)
                print(f"{'  preprocess only':<22} {f'{size}x{size}':>9} {batch:>6} {rate:>10.1f} {rate / raw:>10.2f}")
                for name, (module, note) in modules.items():
                    if module is not None:
                        try:
                            module.score(images, None, GOAL)
                        except Exception as error:
                            fit = " (it has fit(): fit it first)" if hasattr(module, "fit") else ""
                            module, note = None, f"cannot score{fit}: {type(error).__name__}: {error}"
                            modules[name] = (None, note)
                    if module is None:
                        print(f"{name:<22} {f'{size}x{size}':>9} {batch:>6}   skipped: {note}")
                        continue
                    rate = median_rate(lambda m=module, i=images: m.score(i, None, GOAL), batch, args.repeats)
                    print(f"{name:<22} {f'{size}x{size}':>9} {batch:>6} {rate:>10.1f} {rate / raw:>10.2f}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
