"""Real BPE token counting, offline.

tiktoken downloads its BPE files on first use, which fails on a machine without internet. The
bpe-openai package ships o200k_base and cl100k_base byte-identical to tiktoken's, so we place them
in a tiktoken cache directory under the name tiktoken looks for; tiktoken still verifies the
expected SHA-256 of each file, so a wrong file fails loudly instead of miscounting.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tiktoken

_BLOB_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}

# Model families → encoding. Azure deployment names are the customer's own, so callers map a
# deployment to its model first; unknown models fall back to the newest encoding.
_MODEL_PREFIX_ENCODING = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-35-turbo", "cl100k_base"),
    ("gpt-3.5-turbo", "cl100k_base"),
)
DEFAULT_ENCODING = "o200k_base"

# OpenAI's documented chat framing: each message costs 3 tokens of markup, a name one more, and
# every reply is primed with 3 tokens (<|start|>assistant<|message|>).
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING_TOKENS = 3


def _cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "apim-token-costs-tiktoken"


@functools.cache
def _install_offline_files() -> None:
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    data_dir = importlib.resources.files("bpe_openai") / "data"
    for name, url in _BLOB_URLS.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if not target.exists():
            raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(raw)
            tmp.replace(target)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    if name not in _BLOB_URLS:
        raise ValueError(f"unknown encoding {name!r}; expected one of {sorted(_BLOB_URLS)}")
    _install_offline_files()
    return tiktoken.get_encoding(name)


def encoding_name_for_model(model: str) -> str:
    lowered = model.lower()
    for prefix, encoding in _MODEL_PREFIX_ENCODING:
        if lowered.startswith(prefix):
            return encoding
    return DEFAULT_ENCODING


def count_text_tokens(text: str, encoding_name: str = DEFAULT_ENCODING) -> int:
    return len(get_encoding(encoding_name).encode(text, disallowed_special=()))


def _content_text(content: Any) -> str:
    """Message content is a string or a list of parts; only text parts carry tokens we count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return str(content)


def chat_prompt_text(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The token-bearing strings of each message, in order (role, content, name)."""
    parts: list[str] = []
    for message in messages:
        parts.append(str(message.get("role", "")))
        parts.append(_content_text(message.get("content")))
        if message.get("name"):
            parts.append(str(message["name"]))
    return parts


def count_chat_prompt_tokens(
    messages: Iterable[Mapping[str, Any]], encoding_name: str = DEFAULT_ENCODING
) -> int:
    encoding = get_encoding(encoding_name)
    total = _REPLY_PRIMING_TOKENS
    for message in messages:
        total += _TOKENS_PER_MESSAGE
        total += len(encoding.encode(str(message.get("role", "")), disallowed_special=()))
        total += len(encoding.encode(_content_text(message.get("content")), disallowed_special=()))
        if message.get("name"):
            total += _TOKENS_PER_NAME + len(encoding.encode(str(message["name"]), disallowed_special=()))
    return total
