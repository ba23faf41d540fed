"""Q3 with a real model: the local backend, and the OpenAI-compatible backend against
llama-cpp-python's own OpenAI-compatible server on loopback (started and stopped here)."""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import send_json

from helpers import stories

SPEC = stories.StorySpec("a pond", "gentle", 20, 80, ("a frog",))
HELLO = [{"role": "user", "content": "Say hello to a child in five words."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local():
    return stories.LocalLlama(n_ctx=1024)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """llama_cpp.server with the embedded model on 127.0.0.1; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(stories.embedded_gguf()),
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                                 "--model_alias", "smollm2"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class FlakyProxy:
    """A loopback proxy that answers the first ``failures`` requests with ``status``, then forwards."""

    def __init__(self, target: str, failures: int, status: int):
        self.hits, proxy = 0, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                proxy.hits += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.hits <= failures:
                    send_json(self, status, json.dumps({"error": {"message": "simulated failure",
                                                                  "type": "server_error"}}))
                    return
                req = urllib.request.Request(target + self.path.removeprefix("/v1"), data=body,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=120) as r:
                    send_json(self, 200, r.read())

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_local_backend_generates_offline(local):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    gen = local.generate(HELLO, max_tokens=8, temperature=0.0)
    assert gen.text.strip() and 0 < gen.completion_tokens <= 8 and gen.seconds > 0
    assert gen.model.startswith("SmolLM2-135M")


def test_write_story_records_everything(local, tmp_path):
    path = tmp_path / "stories.jsonl"
    story = stories.write_story(local, SPEC, "revise", seed=3, records=path, max_tokens=24, temperature=0.5)
    rec = stories.read_records(path)[-1]
    assert len(story.calls) == 2 and rec["strategy"] == "revise" and rec["seed"] == 3
    assert rec["sampling"] == {"max_tokens": 24, "temperature": 0.5} and rec["spec"]["clues"] == ["a frog"]
    assert "checker found these problems" in rec["calls"][1]["messages"][-1]["content"]
    assert rec["text"] == story.text and rec["report"]["words"] == story.report.words


def test_openai_backend_against_a_real_server(server, tmp_path):
    backend = stories.OpenAICompatible(base_url=server, model="smollm2", api_key="sk-test-secret-123", deadline=60)
    gen = backend.generate(HELLO, max_tokens=8, temperature=0.0)
    assert gen.text.strip() and 0 < gen.completion_tokens <= 8
    path = tmp_path / "stories.jsonl"
    stories.write_story(backend, SPEC, "baseline", records=path, max_tokens=16)
    assert "sk-test-secret" not in path.read_text() and "sk-test-secret" not in repr(backend)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_a_failing_server(server, status):
    proxy = FlakyProxy(server, failures=1, status=status)
    try:
        backend = stories.OpenAICompatible(base_url=proxy.url, model="smollm2", max_retries=2, deadline=60)
        gen = backend.generate(HELLO, max_tokens=4)
        assert gen.text.strip() and proxy.hits == 2  # failed once, retried once
    finally:
        proxy.close()


def test_gives_up_with_a_clear_error(server):
    proxy = FlakyProxy(server, failures=10, status=500)
    try:
        backend = stories.OpenAICompatible(base_url=proxy.url, model="smollm2", max_retries=1, deadline=30)
        with pytest.raises(stories.BackendError, match=r"answered with HTTP 500 .*\(2 tries"):
            backend.generate(HELLO, max_tokens=4)
        assert proxy.hits == 2
    finally:
        proxy.close()


def test_clear_error_when_nothing_listens():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = stories.OpenAICompatible(base_url=url, max_retries=0, deadline=5)
    start = time.monotonic()
    with pytest.raises(stories.BackendError, match=f"the server at {url} refused the connection"):
        backend.generate(HELLO, max_tokens=4)
    assert time.monotonic() - start < 30  # no hang


def test_bad_gguf_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        stories.LocalLlama(tmp_path / "missing.gguf")


def test_local_backend_continues_plain_text(local):
    gen = local.complete("Once upon a time, a little fox", max_tokens=12, temperature=0.0, stop=["\n"])
    assert gen.text.strip() and 0 < gen.completion_tokens <= 12 and "\n" not in gen.text


def test_openai_backend_continues_plain_text(server):
    backend = stories.OpenAICompatible(base_url=server, model="smollm2", deadline=60)
    gen = backend.complete("Once upon a time, a little fox", max_tokens=8, temperature=0.0)
    assert gen.text.strip() and 0 < gen.completion_tokens <= 8
    with pytest.raises(stories.BackendError, match="takes no grammar"):
        backend.complete("Once", grammar="root ::= [a-z]")


def test_word_grammar_holds_the_model_to_word_shapes(local):
    import re

    gen = local.complete("Story: The Glued Words\n\nOnceuponatime-a-fox-and-a-", max_tokens=40, temperature=1.0,
                         seed=1, grammar=stories.WORD_GRAMMAR)
    assert gen.completion_tokens > 5
    assert re.fullmatch(r'( "?[A-Za-z][a-z]{0,11}(\'[a-z]{1,2})?("|[,.!?]"?)?)+', gen.text), gen.text


def test_q3_cli_writes_each_variant_and_resume_adds_only_the_missing(tmp_path):
    out = tmp_path / "q3.json"
    cmd = [sys.executable, "-m", "helpers", "q3", "--profile", "smoke", "--n", "1", "--out", str(out), "--resume"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.run(cmd + ["--variants", "baseline"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    text = json.loads(out.read_text())["stories"]["baseline"][0]["text"]
    second = subprocess.run(cmd + ["--variants", "baseline,continuation"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert second.returncode == 0 and "resume: kept baseline" in second.stdout, second.stderr[-2000:]
    saved = json.loads(out.read_text())
    assert list(saved["stories"]) == ["baseline", "continuation"] and saved["n"] == 1
    assert saved["stories"]["baseline"][0]["text"] == text and len(saved["rows"]) == 2  # kept, not rewritten
    bad = subprocess.run(cmd[:6] + ["--n", "2", "--out", str(out), "--resume"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert bad.returncode == 2 and "field 'n' is 1 there and 2 in this run" in bad.stderr
