"""The OpenAI-compatible HTTP labeller against a local stub server (loopback only) that answers
from a table keyed on the first image, so concurrent requests get deterministic answers."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from robot_rl.rewards.labellers.http import HTTPLabeller, HTTPLabellerConfig, HTTPLabellerError, data_url
from robot_rl.rewards.labellers.images import view_strip
from robot_rl.rewards.labellers.prompts import PromptConfig


class Stub:
    """What the server answers and what it saw."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        """data URL of image a -> answer text (or "logprob:<p1>,<p2>")."""
        self.requests: list[dict] = []
        self.fail_first = 0
        """Answer this many requests with 503 before working."""
        self.status: int | None = None
        """Answer every request with this status."""
        self.delay = 0.0
        self.lock = threading.Lock()


def handler_for(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with stub.lock:
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                failing = stub.fail_first > 0
                stub.fail_first -= 1
            if stub.delay:
                time.sleep(stub.delay)
            if stub.status or failing:
                self._send(stub.status or 503, {"error": "busy"})
                return
            content = body["messages"][0]["content"]
            images = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
            text = " ".join(part["text"] for part in content if part["type"] == "text")
            if images:
                answer = stub.answers[images[0]]
            else:  # the verdict turn of two_stage repeats the analysis from the first turn
                answer = text.split("ANALYSIS<")[1].split(">")[0]
            if body.get("logprobs"):
                p1, p2 = (float(x) for x in answer.removeprefix("logprob:").split(","))
                top = [{"token": " 1", "logprob": math.log(p1)}, {"token": "2", "logprob": math.log(p2)},
                       {"token": "The", "logprob": math.log(0.01)}]
                choice = {"message": {"content": "1"}, "logprobs": {"content": [{"token": "1", "top_logprobs": top}]}}
            elif "Consider two images" in text:
                choice = {"message": {"content": f"ANALYSIS<{answer}>"}}
            else:
                choice = {"message": {"content": answer}}
            self._send(200, {"choices": [choice]})

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def server():
    stub = Stub()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(stub))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield stub, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (n, 2, 6, 6, 3), generator=gen, dtype=torch.uint8)  # two views each
    b = torch.randint(0, 256, (n, 2, 6, 6, 3), generator=gen, dtype=torch.uint8)
    return a, b


def config(url: str, **prompt) -> HTTPLabellerConfig:
    return HTTPLabellerConfig(base_url=url, model="stub-vlm", timeout_s=2.0, retries=2, backoff_s=0.01,
                              max_workers=4, prompt=PromptConfig(**prompt))


ANSWERS = ["2", "Image 1 is closer.", "-1", "I have no idea, here is a poem", "0", "The second image."]
EXPECTED = [1.0, 0.0, math.nan, math.nan, 0.5, 1.0]


def expect(labels: torch.Tensor, expected: list[float]) -> None:
    assert labels.dtype == torch.float32
    assert [None if math.isnan(x) else x for x in labels.tolist()] == [None if math.isnan(x) else x for x in expected]


def test_generate_mode_single_prompt(server) -> None:
    stub, url = server
    a, b = pairs(6)
    stub.answers = {data_url(view_strip(a[i])): ANSWERS[i] for i in range(6)}
    labeller = HTTPLabeller(config(url, style="single"))
    expect(labeller.label(a, b, "touch the ball"), EXPECTED)
    assert labeller.counts.abstain == 1 and labeller.counts.unparsable == 1 and labeller.counts.no_label == 2
    request = stub.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "stub-vlm"
    assert request["body"]["temperature"] == 0.0 and request["auth"] is None
    content = request["body"]["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url", "text", "image_url", "text"]
    assert "touch the ball" in content[-1]["text"]
    from PIL import Image

    url_a = content[1]["image_url"]["url"]
    assert url_a.startswith("data:image/png;base64,")
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(url_a.split(",", 1)[1]))))
    assert sent.shape == (6, 12, 3)  # the two views side by side


def test_two_stage_sends_the_analysis_back(server, monkeypatch) -> None:
    stub, url = server
    a, b = pairs(6)
    stub.answers = {data_url(view_strip(a[i])): ANSWERS[i] for i in range(6)}
    monkeypatch.setenv("STUB_KEY", "secret-for-the-stub")
    labeller = HTTPLabeller(dataclasses.replace(config(url), api_key_env="STUB_KEY"))
    answers = labeller.answer(a, b, "touch the ball")
    expect(torch.tensor([x.label for x in answers]), EXPECTED)
    assert len(stub.requests) == 12  # describe, then verdict, per pair
    verdicts = [r for r in stub.requests if "image_url" not in json.dumps(r["body"])]
    assert len(verdicts) == 6 and all("Based on this analysis" in json.dumps(r["body"]) for r in verdicts)
    assert answers[0].raw.startswith("ANALYSIS<2>") and answers[0].raw.endswith("[verdict] 2")
    assert stub.requests[0]["auth"] == "Bearer secret-for-the-stub"


def test_logprob_mode(server) -> None:
    stub, url = server
    a, b = pairs(3)
    probs = ["logprob:0.2,0.7", "logprob:0.6,0.3", "logprob:0.40,0.41"]
    stub.answers = {data_url(view_strip(a[i])): probs[i] for i in range(3)}
    labeller = HTTPLabeller(config(url, style="single", mode="logprob", tie_margin=0.1))
    expect(labeller.label(a, b, "goal"), [1.0, 0.0, 0.5])
    body = stub.requests[0]["body"]
    assert body["logprobs"] is True and body["max_tokens"] == 1
    assert "Answer 1 for Image 1 or 2 for Image 2" in json.dumps(body)
    stub.answers = {data_url(view_strip(a[i])): "logprob:0.001,0.002" for i in range(3)}
    strict = HTTPLabeller(config(url, style="single", mode="logprob", min_answer_prob=0.05))
    assert torch.isnan(strict.label(a, b, "goal")).all() and strict.counts.unparsable == 3


def test_retries_then_succeeds(server) -> None:
    stub, url = server
    a, b = pairs(1)
    stub.answers = {data_url(view_strip(a[0])): "1"}
    stub.fail_first = 2  # two 503s, then an answer: within retries=2
    labeller = HTTPLabeller(config(url, style="single"))
    expect(labeller.label(a, b, "goal"), [0.0])
    assert len(stub.requests) == 3


def test_failures_give_no_label_and_client_errors_raise(server) -> None:
    stub, url = server
    a, b = pairs(2)
    stub.status = 500
    labeller = HTTPLabeller(config(url, style="single"))
    expect(labeller.label(a, b, "goal"), [math.nan, math.nan])
    assert labeller.counts.failed == 2 and len(stub.requests) == 6  # 1 + 2 retries each

    stub.status, stub.delay = None, 0.5
    stub.answers = {data_url(view_strip(a[i])): "1" for i in range(2)}
    slow = HTTPLabeller(HTTPLabellerConfig(base_url=url, timeout_s=0.1, retries=1, backoff_s=0.01,
                                           prompt=PromptConfig(style="single")))
    expect(slow.label(a, b, "goal"), [math.nan, math.nan])
    assert slow.counts.failed == 2 and "timed out" in slow.answer(a[:1], b[:1], "goal")[0].raw

    stub.delay, stub.status = 0.0, 404
    with pytest.raises(HTTPLabellerError, match="404"):
        HTTPLabeller(config(url, style="single")).label(a, b, "goal")
