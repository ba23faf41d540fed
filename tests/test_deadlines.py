"""An OpenAI-compatible backend against loopback servers that refuse, hang and fail: each call ends within
its deadline, and the message says which of the three happened."""
import socket
import time

import pytest

from helpers import llm

HELLO = [{"role": "user", "content": "hello"}]


def test_a_refused_connection_says_refused():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = llm.OpenAICompatible(f"http://127.0.0.1:{port}/v1", "m", deadline=3, connect_timeout=1, max_retries=2)
    start = time.monotonic()
    with pytest.raises(llm.BackendError, match="refused the connection") as err:
        backend.generate(HELLO)
    assert time.monotonic() - start < 5
    assert "3 tries" in str(err.value)


def test_a_server_that_accepts_and_never_answers_ends_at_the_deadline():
    with socket.socket() as server:  # the kernel accepts connections into the backlog; nobody reads them
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        backend = llm.OpenAICompatible(url, "m", deadline=2, connect_timeout=1)
        start = time.monotonic()
        with pytest.raises(llm.BackendError, match="accepted the connection but sent no answer within 2 s"):
            backend.generate(HELLO)
        assert 1.5 < time.monotonic() - start < 4


def test_a_failing_server_is_retried_within_the_deadline_then_named():
    from test_llm import Scripted

    hits = []

    def body(headers):
        hits.append(time.monotonic())
        return '{"error": {"message": "overloaded"}}'

    with Scripted(500, body) as server:
        backend = llm.OpenAICompatible(server.url, "m", deadline=10, connect_timeout=1, max_retries=2)
        with pytest.raises(llm.BackendError, match=r"answered with HTTP 500 .*\(3 tries,"):
            backend.generate(HELLO)
    assert len(hits) == 3


def test_the_deadline_is_a_setting_that_is_checked():
    with pytest.raises(ValueError, match="deadline"):
        llm.OpenAICompatible("http://127.0.0.1:9/v1", "m", deadline=0)
    assert llm.OpenAICompatible("http://127.0.0.1:9/v1", "m").deadline == llm.DEADLINE_S


def test_a_good_answer_still_comes_back():
    from test_llm import Scripted

    ok = ('{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0, '
          '"finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}], '
          '"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}')
    with Scripted(200, ok) as server:
        assert llm.OpenAICompatible(server.url, "m", deadline=5).generate(HELLO).text == "hi"
