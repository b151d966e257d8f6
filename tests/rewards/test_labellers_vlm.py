"""The local VLM labeller, round trip through the real offline loading path: a tiny random
Idefics3 (SmolVLM's architecture) with a tokenizer and processor built here, saved with
``save_pretrained`` and loaded back by ``VLMLabeller``. A random model answers garbage, which
is the point: every answer becomes a label or a counted no-label, never a crash."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from robot_rl.rewards.labellers.prompts import PromptConfig
from robot_rl.rewards.labellers.vlm import VLMLabeller, VLMLabellerConfig

pytestmark = pytest.mark.vlm

# SmolVLM's chat template, shortened: "<|im_start|>User:<image>text<end_of_utterance>\nAssistant:".
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
CORPUS = ("Image 1 Image 2 the goal is better achieved in first second equal can't tell 0 1 2 -1 robot gripper "
          "touches green ball What is shown difference Reply with only one number Answer for User: Assistant:")


def write_tiny_idefics3(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, PreTrainedTokenizerFast
    from transformers.models.idefics3 import Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    special = ["<unk>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
               "<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator([CORPUS] * 5, trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<|im_start|>",
                                        eos_token="<end_of_utterance>", pad_token="<unk>")
    # 32x32 images in 8x8 patches, pixel-shuffled by 2: 4 image tokens per image.
    image_processor = Idefics3ImageProcessorPil(size={"longest_edge": 32}, max_image_size={"longest_edge": 32},
                                                do_image_splitting=False)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=CHAT_TEMPLATE)
    config = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        text_config=dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, vocab_size=len(tokenizer),
                         pad_token_id=tokenizer.pad_token_id),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2)
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_idefics3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_idefics3(tmp_path_factory.mktemp("tiny-idefics3"))


def two_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (2, 1, 24, 24, 3), generator=gen, dtype=torch.uint8)
    b = torch.randint(0, 256, (2, 1, 24, 24, 3), generator=gen, dtype=torch.uint8)
    return a, b


def valid(labels: torch.Tensor) -> bool:
    return all(math.isnan(x) or x in (0.0, 0.5, 1.0) for x in labels.tolist())


@pytest.mark.parametrize("style", ["single", "two_stage"])
@pytest.mark.parametrize("mode", ["generate", "logprob"])
def test_tiny_vlm_round_trip(tiny_idefics3: Path, style: str, mode: str) -> None:
    prompt = PromptConfig(style=style, mode=mode, max_new_tokens=6, describe_max_new_tokens=6)
    labeller = VLMLabeller(VLMLabellerConfig(model_path=str(tiny_idefics3), prompt=prompt, batch_size=2))
    a, b = two_pairs()
    answers = labeller.answer(a, b, "the robot gripper touches the green ball")
    labels = torch.tensor([x.label for x in answers])
    assert labels.shape == (2,) and valid(labels)
    assert labeller.counts.queried == 2
    assert labeller.model_id.startswith(tiny_idefics3.name + ":")
    if mode == "logprob":
        assert all("logP(1)=" in x.raw for x in answers)  # a random model still ranks "1" against "2"
    if style == "two_stage":
        assert all("[verdict]" in x.raw for x in answers)


def test_tiny_vlm_logprob_thresholds_and_batching(tiny_idefics3: Path) -> None:
    a, b = two_pairs()
    base = dict(model_path=str(tiny_idefics3), batch_size=1)
    # A random model puts almost no mass on "1" and "2": no label, counted as unparsable.
    picky = VLMLabeller(VLMLabellerConfig(**base, prompt=PromptConfig(style="single", mode="logprob",
                                                                      min_answer_prob=0.5)))
    assert torch.isnan(picky.label(a, b, "goal")).all() and picky.counts.unparsable == 2
    ties = VLMLabeller(VLMLabellerConfig(**base, prompt=PromptConfig(style="single", mode="logprob", tie_margin=1e9)))
    assert ties.label(a, b, "goal").tolist() == [0.5, 0.5]
    # One pair per call or both at once (left padding): the same decisions.
    one = VLMLabeller(VLMLabellerConfig(**base, prompt=PromptConfig(style="single", mode="logprob")))
    both = VLMLabeller(VLMLabellerConfig(model_path=str(tiny_idefics3), batch_size=2,
                                         prompt=PromptConfig(style="single", mode="logprob")))
    assert one.label(a, b, "goal").tolist() == both.label(a, b, "goal").tolist()


def test_missing_model_folder_says_how_to_supply_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        VLMLabeller(VLMLabellerConfig(model_path=str(tmp_path / "SmolVLM")))
    message = str(error.value)
    assert str(tmp_path / "SmolVLM") in message and "never downloaded" in message
    assert "huggingface-cli download" in message and "save_pretrained" in message and "model_path" in message
