"""A VLM behind an OpenAI-compatible chat-completions server (vLLM, SGLang, ...) as the judge.

    labeller = HTTPLabeller(HTTPLabellerConfig(base_url="http://gpu-node:8000/v1", model="Qwen2.5-VL-7B"))
    labels = labeller.label(a, b, goal)                 # float32[B]

One request per pair (per turn), ``max_workers`` in flight, both observations sent as base64
PNG data URLs; same prompts and answer reading as the local labeller
(:mod:`~robot_rl.rewards.labellers.prompts`). Logprob mode asks for one token with
``top_logprobs`` and reads the two answer tokens from them. Timeouts, connection errors, 429
and 5xx are retried with exponential backoff; a pair whose query still fails gets no label
(kind ``"failed"``). Other 4xx answers mean a wrong URL, model or request and raise
:class:`HTTPLabellerError`. Standard library only (urllib).
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from robot_rl.rewards.labellers.base import Answer, LabellerBase
from robot_rl.rewards.labellers.images import encode_png, view_strip
from robot_rl.rewards.labellers.prompts import (
    PromptConfig,
    decide_from_logprobs,
    first_turn,
    parse_answer,
    summary_turn,
)


class HTTPLabellerError(RuntimeError):
    """The server refused a request in a way retrying cannot fix (bad URL, model or payload)."""


@dataclass(frozen=True)
class HTTPLabellerConfig:
    """Where the server is and how to ask it."""

    base_url: str = "http://127.0.0.1:8000/v1"
    """Server root; requests go to ``{base_url}/chat/completions``."""
    model: str = ""
    """Model name the server serves (``--served-model-name`` in vLLM)."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    api_key_env: str | None = None
    """Name of an environment variable holding a bearer token, when the server needs one."""
    timeout_s: float = 60.0
    """Seconds to wait for one response."""
    retries: int = 3
    """Extra attempts after a timeout, connection error, 429 or 5xx."""
    backoff_s: float = 1.0
    """Wait before the first retry; doubled after each."""
    max_workers: int = 8
    """Requests in flight at once."""
    temperature: float = 0.0


class HTTPLabeller(LabellerBase):
    """Labels pairs by asking an OpenAI-compatible chat-completions server."""

    def __init__(self, config: HTTPLabellerConfig) -> None:
        super().__init__()
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.model_id = f"http:{config.model}@{config.base_url}"
        self.prompt = config.prompt.identity()

    def _answer(self, a: torch.Tensor, b: torch.Tensor, goal: str) -> list[Answer]:
        pairs = [(data_url(view_strip(a[i])), data_url(view_strip(b[i]))) for i in range(len(a))]
        with ThreadPoolExecutor(max_workers=self.config.max_workers) as pool:
            return list(pool.map(lambda pair: self._judge(pair, goal), pairs))

    def _judge(self, images: tuple[str, str], goal: str) -> Answer:
        prompt = self.config.prompt
        content = [{"type": "image_url", "image_url": {"url": images[part]}} if isinstance(part, int)
                   else {"type": "text", "text": part} for part in first_turn(goal, prompt)]
        analysis = ""
        try:
            if prompt.style == "two_stage":
                analysis = self._text(self._post(content, prompt.describe_max_new_tokens))
                content = [{"type": "text", "text": summary_turn(analysis, goal, prompt)}]
            if prompt.mode == "logprob":
                verdict = decide_from_logprobs(*self._logprobs(self._post(content, 1, logprobs=True)), prompt)
            else:
                verdict = parse_answer(self._text(self._post(content, prompt.max_new_tokens)), prompt.scheme)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            verdict = Answer(math.nan, "failed", f"{type(error).__name__}: {error}")
        return verdict._replace(raw=f"{analysis}\n[verdict] {verdict.raw}") if analysis else verdict

    def _post(self, content: list[dict], max_tokens: int, logprobs: bool = False) -> dict:
        body = {"model": self.config.model, "messages": [{"role": "user", "content": content}],
                "max_tokens": max_tokens, "temperature": self.config.temperature}
        if logprobs:
            body.update(logprobs=True, top_logprobs=20)
        return post_json(self.url, body, self.config)

    @staticmethod
    def _text(response: dict) -> str:
        return response["choices"][0]["message"]["content"] or ""

    def _logprobs(self, response: dict) -> tuple[float, float]:
        """log P of the two answer tokens from the first generated token's ``top_logprobs``
        (summed over spellings with and without a leading space; -inf when absent)."""
        top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        words = self.config.prompt.answer_tokens
        found = [[entry["logprob"] for entry in top if entry["token"].strip() == word] for word in words]
        return tuple(float(torch.tensor(values).logsumexp(0)) if values else -math.inf for values in found)


def data_url(image) -> str:
    """``data:image/png;base64,...`` of a picture uint8[H, W, 3]."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode()


def post_json(url: str, body: dict, config: HTTPLabellerConfig) -> dict:
    """POST ``body`` as JSON to ``url`` and return the JSON answer, with the bearer token, timeout
    and retries of ``config``: timeouts, connection errors, 408, 429 and 5xx are retried with
    exponential backoff (the last error is raised); other 4xx raise :class:`HTTPLabellerError`."""
    headers = {"Content-Type": "application/json"}
    if config.api_key_env and os.environ.get(config.api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[config.api_key_env]}"
    data = json.dumps(body).encode()
    delay = config.backoff_s
    for attempt in range(config.retries + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code not in (408, 429) and error.code < 500:
                detail = error.read().decode(errors="replace")[:500]
                raise HTTPLabellerError(f"{url} answered {error.code}: {detail}") from None
            if attempt == config.retries:
                raise
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if attempt == config.retries:
                raise
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")
