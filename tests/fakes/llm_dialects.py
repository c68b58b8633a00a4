"""Loopback servers that take and refuse requests as three real OpenAI-compatible servers do.

Each dialect is written from the server's own code (read, not copied):

- llama-cpp-python (`python -m llama_cpp.server`; llama_cpp/server/types.py, errors.py, llama_types.py):
  the request is a pydantic model whose `response_format` is a TypedDict with
  `type: Literal["text", "json_object"]` and an optional `schema`, so `json_schema` fails validation.
  Its route handler catches every exception, validation errors included, and answers HTTP 500
  `{"error": {"message": str(error), "type": "internal_server_error", "param": null, "code": null}}`.
  Unknown fields (`max_completion_tokens`) are ignored; `json_object` with a `schema` is constrained
  to it by a grammar; `usage` is always sent; `model` is the GGUF path.
- Ollama `/v1` (openai/openai.go, middleware/openai.go): `json_schema` becomes the format (the
  schema), `json_object` becomes format "json" (JSON, no schema), any other type is ignored; only
  `max_tokens` is read (`max_completion_tokens` is an unknown field, dropped by encoding/json);
  errors are `{"error": {"message", "type": "invalid_request_error"|"not_found_error"|"api_error",
  "param": null, "code": null}}` with the handler's status; `system_fingerprint` "fp_ollama".
- vLLM (entrypoints/openai/engine/protocol.py, chat_completion/protocol.py, renderers/params.py):
  `type` is one of text, json_object, json_schema (a json_schema needs its `json_schema.name`);
  extra fields are allowed and ignored (the `schema` next to json_object); `max_tokens` and
  `max_completion_tokens` are both read; a prompt that does not fit `max_model_len` next to the
  requested output is HTTP 400 `{"error": {"message": "You passed N input tokens and requested M
  output tokens. However, the model's context length is only …", "type": "BadRequestError",
  "param": "input_tokens", "code": 400}}`.

The "model" behind all three writes a grounded bilingual brief of the article it is sent (its own
language copied from the article, the other from a phrasebook of the bundled samples, no numbers),
as JSON when the request asks for JSON and as chatter around a fenced block when it does not.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Callable

from fakes.openai_server import FakeOpenAI, chat
from loopback import Reply, Request

_HAN = re.compile(r"[\u4e00-\u9fff]")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_TITLE_RE = re.compile(r"^Article title: (.*)$", re.M)
_ARTICLE_RE = re.compile(r"<article>\n?(.*?)\n?</article>", re.S)
_SENTENCE_RE = re.compile(r"(.+?[.!?。！？])(?:\s|$)", re.S)

# The other language's title for each bundled sample (bot/samples/feeds), keyed by a word of its headline.
PHRASEBOOK = [
    ("magnet export licences", "中国批准欧洲企业稀土磁体出口许可"),
    ("antimony", "海关查获走私锑"),
    ("Lithium", "锂辉石价格下跌，锂矿企业减产"),
    ("Ofgem", "英国能源监管机构上调电价上限"),
    ("Gallium", "镓对日本出口恢复"),
    ("tariff truce", "美中延长关税休战"),
    ("magnet export permits", "北京批准欧盟企业磁体出口许可"),
    ("surtax", "加拿大对中国钢铝加征附加税"),
    ("Rotterdam", "鹿特丹港集装箱吞吐量创纪录"),
    ("稀土磁体出口许可", "Commerce ministry approves rare-earth magnet export licences for European firms"),
    ("北方稀土", "Northern Rare Earth raises its list prices for NdPr oxide"),
    ("走私锑锭", "Customs seizes smuggled antimony ingots"),
    ("关税休战", "The US extends its tariff truce with China"),
    ("马拉松", "City marathon draws a large field of runners"),
]


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def prompt_tokens(body: dict) -> int:
    return sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in body.get("messages", []))


def _first_sentence(text: str) -> str:
    m = _SENTENCE_RE.match(text.strip())
    return (m.group(1) if m else text.strip()).strip()


def write_brief(body: dict) -> dict:
    """The brief a well-behaved model writes of the article in the request."""
    user = FakeOpenAI.message_text(body, "user")
    title = _TITLE_RE.search(user).group(1).strip()
    text = _ARTICLE_RE.search(user).group(1)
    own = "zh" if _HAN.search(title) else "en"
    other = "en" if own == "zh" else "zh"
    phrase = next((p for key, p in PHRASEBOOK if key in title), "Market news" if other == "en" else "市场动态")
    end = "." if other == "en" else "。"
    return {"relevant": True,
            "title": {own: title.rstrip("。."), other: phrase},
            "summary": {own: _first_sentence(text) or title, other: phrase + end},
            "figures": []}


def _answer(body: dict, as_json: bool, model: str, **extra) -> Reply:
    brief = write_brief(body)
    content = json.dumps(brief, ensure_ascii=False) if as_json else (
        "Here is the brief:\n\n```json\n" + json.dumps(brief, ensure_ascii=False, indent=2) + "\n```")
    reply = chat(content, prompt_tokens=prompt_tokens(body), completion_tokens=estimate_tokens(content),
                 model=model)
    if extra:
        data = json.loads(reply.body)
        data.update(extra)
        reply = Reply.json(data)
    return reply


# --------------------------------------------------------------------------- the three servers

def llama_cpp_python(body: dict) -> Reply:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in ("text", "json_object"):
        errors = [{"type": "literal_error", "loc": ("body", "response_format", "type"),
                   "msg": "Input should be 'text' or 'json_object'", "input": fmt.get("type")}]
        return Reply.json({"error": {"message": str(errors), "type": "internal_server_error",
                                     "param": None, "code": None}}, status=500)
    as_json = isinstance(fmt, dict) and fmt.get("type") == "json_object"
    return _answer(body, as_json, "/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")


def ollama(body: dict) -> Reply:
    if not body.get("messages"):
        return Reply.json({"error": {"message": "[] is too short - 'messages'", "type": "invalid_request_error",
                                     "param": None, "code": None}}, status=400)
    if body.get("model") != OLLAMA_MODEL:
        return Reply.json({"error": {"message": f'model "{body.get("model")}" not found, try pulling it first',
                                     "type": "not_found_error", "param": None, "code": None}}, status=404)
    fmt = body.get("response_format")
    kind = str(fmt.get("type", "")).strip().lower() if isinstance(fmt, dict) else ""
    return _answer(body, kind in ("json_object", "json_schema"), OLLAMA_MODEL, system_fingerprint="fp_ollama")


OLLAMA_MODEL = "qwen2.5-coder:1.5b"
# As started with `--max-model-len 2048`, common for a small model on a small GPU.
VLLM_MAX_MODEL_LEN = 2048


def _vllm_error(message: str, param: str | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "BadRequestError", "param": param, "code": 400}},
                      status=400)


def vllm(body: dict) -> Reply:
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind not in ("text", "json_object", "json_schema", "structural_tag"):
            return _vllm_error(f"1 validation error for ChatCompletionRequest\nresponse_format.type\n  Input should "
                               f"be 'text', 'json_object' or 'json_schema' [type=literal_error, input_value={kind!r}]")
        if kind == "json_schema" and not (fmt.get("json_schema") or {}).get("name"):
            return _vllm_error("1 validation error for ChatCompletionRequest\nresponse_format.json_schema.name\n"
                               "  Field required [type=missing]")
    wanted = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    used = prompt_tokens(body)
    if wanted and used + wanted > VLLM_MAX_MODEL_LEN:
        return _vllm_error(f"You passed {used} input tokens and requested {wanted} output tokens. However, the "
                           f"model's context length is only {VLLM_MAX_MODEL_LEN} tokens, resulting in a maximum "
                           f"input length of {VLLM_MAX_MODEL_LEN - wanted} tokens. Please reduce the length of "
                           "the input prompt.", param="input_tokens")
    as_json = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
    return _answer(body, as_json, "Qwen/Qwen2.5-1.5B-Instruct")


DIALECTS: dict[str, Callable[[dict], Reply]] = {
    "llama-cpp-python": llama_cpp_python,
    "ollama": ollama,
    "vllm": vllm,
}
# The model name each server knows (the client sends it; only Ollama checks it).
MODELS = {"llama-cpp-python": "qwen2.5-coder-1.5b-instruct", "ollama": OLLAMA_MODEL,
          "vllm": "Qwen/Qwen2.5-1.5B-Instruct"}


class DialectServer(FakeOpenAI):
    """A loopback server answering every request as `dialect` does; counts the refusals it sends."""

    def __init__(self, dialect: str) -> None:
        super().__init__()
        self.dialect = dialect
        self._answerer = DIALECTS[dialect]
        self.default = self._serve
        self._refusals: list[tuple[int, dict]] = []
        self._refusals_lock = threading.Lock()

    def _serve(self, req: Request) -> Reply:
        reply = self._answerer(req.json() or {})
        if reply.status >= 400:
            with self._refusals_lock:
                self._refusals.append((reply.status, json.loads(reply.body)))
        return reply

    @property
    def refusals(self) -> list[tuple[int, dict]]:
        with self._refusals_lock:
            return list(self._refusals)
