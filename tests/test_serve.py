"""goengine serve with the official `openai` client, unchanged, streaming and not."""

import signal
import subprocess

import openai
import pytest

from conftest import ROOT

MODEL = ROOT / "goldens" / "gqa.gguf"  # context 64, random weights: the text is noise, the shapes are not


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "goengine"
    subprocess.run(["go", "build", "-o", str(path), "./cmd/goengine"], cwd=ROOT / "goengine", check=True)
    return path


def start(binary):
    """goengine serve on a free loopback port: (process, base URL)."""
    proc = subprocess.Popen([str(binary), "serve", "--model", str(MODEL), "--addr", "127.0.0.1:0", "--parallel", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "serving gqa on http://127.0.0.1:PORT/v1 (...)"
    assert line.startswith("serving gqa on http://127.0.0.1:"), line + proc.stderr.read()
    return proc, line.split()[3]


@pytest.fixture(scope="module")
def server(binary):
    proc, url = start(binary)
    yield proc, url
    proc.kill()
    proc.wait()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[1], api_key="unused", max_retries=0, timeout=30)


def test_models(client):
    assert [m.id for m in client.models.list()] == ["gqa"]


def test_completion_whole_and_streamed(client):
    args = dict(model="gqa", prompt="the robot", max_tokens=12, temperature=0.8, seed=3)
    whole = client.completions.create(**args)
    choice = whole.choices[0]
    assert whole.object == "text_completion" and choice.finish_reason in ("stop", "length")
    assert whole.usage.prompt_tokens > 1 and 0 < whole.usage.completion_tokens <= 12
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    chunks = list(client.completions.create(**args, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == choice.text
    assert chunks[-1].choices[0].finish_reason == choice.finish_reason


def test_chat_whole_and_streamed(client):
    args = dict(model="gqa", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                max_tokens=10, temperature=0)
    whole = client.chat.completions.create(**args)
    message = whole.choices[0].message
    assert whole.object == "chat.completion" and message.role == "assistant"
    stream = client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_errors_are_openai_errors(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4o", prompt="x")
    with pytest.raises(openai.BadRequestError, match="max_tokens must be between 1 and the context length 64"):
        client.completions.create(model="gqa", prompt="x", max_tokens=-1)
    with pytest.raises(openai.BadRequestError, match="context is 64"):
        client.chat.completions.create(model="gqa", messages=[{"role": "user", "content": "robot " * 100}])
    assert client.completions.create(model="gqa", prompt="x", max_tokens=2).choices  # still serving


def test_sigterm_shuts_down_cleanly(binary):
    proc, url = start(binary)
    openai.OpenAI(base_url=url, api_key="unused").completions.create(model="gqa", prompt="x", max_tokens=2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "stopped" in proc.stderr.read()
