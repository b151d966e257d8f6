"""A local transformers VLM as the judge (RL-VLM-F style), read from a folder, never downloaded.

    labeller = VLMLabeller(VLMLabellerConfig(model_path="/models/SmolVLM-256M-Instruct"))
    labels = labeller.label(a, b, "the robot gripper touches the green ball")   # float32[B]

Any ``AutoModelForImageTextToText`` model whose processor has a chat template works
(SmolVLM/Idefics3, Qwen2-VL, LLaVA, ...). Each observation's views are put side by side into
one picture; the two observations are shown as "Image 1" and "Image 2". See
:mod:`~robot_rl.rewards.labellers.prompts` for the questions asked and how answers are read.
Pairs are batched ``batch_size`` at a time, with left padding, greedy decoding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from robot_rl.rewards.labellers.base import Answer, LabellerBase
from robot_rl.rewards.labellers.images import view_strip
from robot_rl.rewards.labellers.prompts import (
    PromptConfig,
    decide_from_logprobs,
    first_turn,
    parse_answer,
    summary_turn,
)

MISSING_MODEL = (
    "VLMLabeller: no model at {path} (expected a folder with config.json, the weights and the processor files). "
    "Weights are never downloaded at run time. On a machine with internet, save one, e.g.\n"
    "  huggingface-cli download HuggingFaceTB/SmolVLM-256M-Instruct --local-dir SmolVLM-256M-Instruct\n"
    "or, in Python, AutoModelForImageTextToText.from_pretrained(name).save_pretrained(folder) and "
    "AutoProcessor.from_pretrained(name).save_pretrained(folder); copy the folder to this machine and pass "
    "model_path=<folder>."
)


@dataclass(frozen=True)
class VLMLabellerConfig:
    """Which local model judges, and how."""

    model_path: str = ""
    """Folder holding a ``save_pretrained`` image-text-to-text model and its processor."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """Prompt style (two_stage/single) and answer mode (generate/logprob)."""
    batch_size: int = 4
    """Pairs per model call."""
    device: str = "cpu"
    dtype: str = "auto"
    """Weights dtype: "auto" (as saved), "float32", "bfloat16", "float16"."""


def model_fingerprint(path: Path) -> str:
    """``<folder name>:<hash>`` of config.json and the weight files' names and sizes: names
    the model in cache keys without reading gigabytes of weights."""
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{path.name}:{digest.hexdigest()[:16]}"


class VLMLabeller(LabellerBase):
    """Labels pairs with a local transformers VLM (``local_files_only``)."""

    def __init__(self, config: VLMLabellerConfig) -> None:
        super().__init__()
        path = Path(config.model_path).expanduser()
        if not config.model_path or not (path / "config.json").is_file():
            raise FileNotFoundError(MISSING_MODEL.format(path=path))
        try:
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError("VLMLabeller needs transformers and pillow: pip install 'robot-rl[vlm]'",
                                      name=error.name) from error
        self.config = config
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        dtype = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
        self.model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=dtype)
        self.model.to(config.device).eval()
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"  # generation continues from the last position of every row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model_id = model_fingerprint(path)
        self.prompt = config.prompt.identity()
        self._answer_ids = [self._token_ids(word) for word in config.prompt.answer_tokens]

    def _token_ids(self, word: str) -> list[int]:
        """Ids of the first token of ``word`` with and without a leading space (tokenizers
        differ in which one follows "Assistant:"); log-probabilities are summed over them."""
        tokenizer, ids = self.processor.tokenizer, set()
        for text in (word, " " + word):
            encoded = tokenizer.encode(text, add_special_tokens=False)
            first = tokenizer.decode(encoded[:1]).strip() if encoded else ""
            if first and word.startswith(first):
                ids.add(encoded[0])
        if not ids:
            raise ValueError(f"VLMLabeller: answer token {word!r} has no token of its own in this tokenizer; "
                             "choose other PromptConfig.answer_tokens")
        return sorted(ids)

    # -- model calls ------------------------------------------------------------------------------

    def _inputs(self, turns: list[list[str | int]], images: list[list] | None):
        conversations = [[{"role": "user", "content": [
            {"type": "image"} if isinstance(part, int) else {"type": "text", "text": part} for part in turn
        ]}] for turn in turns]
        texts = [self.processor.apply_chat_template(c, add_generation_prompt=True) for c in conversations]
        kwargs = {"text": texts, "return_tensors": "pt", "padding": True}
        if images is not None:
            kwargs["images"] = images
        return self.processor(**kwargs).to(self.config.device)

    @torch.no_grad()
    def _generate(self, inputs, max_new_tokens: int) -> list[str]:
        tokens = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self.processor.batch_decode(tokens[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    @torch.no_grad()
    def _answer_logprobs(self, inputs) -> torch.Tensor:
        """float32[B, 2]: log P of the two answer tokens as the next token."""
        logp = self.model(**inputs).logits[:, -1].float().log_softmax(-1).cpu()
        return torch.stack([torch.logsumexp(logp[:, ids], dim=1) for ids in self._answer_ids], dim=1)

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        from PIL import Image

        prompt, answers = self.config.prompt, []
        for start in range(0, len(a), self.config.batch_size):
            chunk = range(start, min(start + self.config.batch_size, len(a)))
            images = [[Image.fromarray(view_strip(a[i])), Image.fromarray(view_strip(b[i]))] for i in chunk]
            inputs = self._inputs([first_turn(goal, prompt)] * len(chunk), images)
            analyses = [""] * len(chunk)
            if prompt.style == "two_stage":
                analyses = self._generate(inputs, prompt.describe_max_new_tokens)
                inputs = self._inputs([[summary_turn(text, goal, prompt)] for text in analyses], None)
            if prompt.mode == "logprob":
                verdicts = [decide_from_logprobs(float(first), float(second), prompt)
                            for first, second in self._answer_logprobs(inputs)]
            else:
                verdicts = [parse_answer(text, prompt.scheme) for text in self._generate(inputs, prompt.max_new_tokens)]
            answers += [verdict._replace(raw=f"{analysis}\n[verdict] {verdict.raw}" if analysis else verdict.raw)
                        for analysis, verdict in zip(analyses, verdicts)]
        return answers
