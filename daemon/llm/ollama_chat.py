"""Ollama's `/api/chat`, streamed over httpcore (the connection pool beneath httpx), for the model calls of runs.

The official client builds each request through pydantic and httpx's client layers (URL merging,
cookies, auth, redirects, text decoding) and parses each streamed line into a pydantic model: about
0.9 ms of CPU per call on the overhead scenario's instant stand-in, the same request over httpcore
about 0.45 ms (issue 17; a run makes one such call). What those layers did for this request is kept:
- the body is the JSON the client sends (its messages without empty fields, `tools: []`, no None);
- the headers are the client's own (User-Agent, Authorization, OLLAMA_API_KEY), without compression;
- the timeouts are the same four numbers httpx hands httpcore: `read` is the silence allowed
  between two reads of the stream, so a slow but steady answer is never cut off;
- a redirect, and every call while a proxy is set in the environment, go through the official
  client as before (it follows redirects and honours HTTP(S)_PROXY, ALL_PROXY, NO_PROXY);
- errors are the client's: httpcore's exceptions become httpx's, a refusal `ollama.ResponseError`
  with the status and text, an error line in the stream `ollama.ResponseError` with status -1.
Listings, `show`, `ps` and pulls stay with the official client: they are rare.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.request import getproxies

import httpcore
import httpx
import ollama

# httpcore's exceptions as httpx raises them, as the official client would: httpx's own mapping, so the two
# cannot drift apart (it is the function httpx's transport wraps every request in).
from httpx._transports.default import map_httpcore_exceptions as _httpx_errors


class Redirected(Exception):
    """The server answered the chat with a redirect: the official client follows it."""


class DirectChat:
    """Streams `/api/chat` answers as dicts; the official `client` where it must do it itself."""

    def __init__(self, client: ollama.Client, timeout: httpx.Timeout, tls: ssl.SSLContext) -> None:
        self.client = client
        inner: httpx.Client = client._client  # the client's httpx.Client (ollama < 0.7): its base URL and headers
        url = inner.base_url.join("api/chat")
        self._url = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        headers = [(k, v) for k, v in inner.headers.raw if k.lower() not in (b"accept-encoding", b"host")]
        self._headers = [(b"Host", url.netloc), *headers, (b"Accept-Encoding", b"identity")]  # nothing to decompress
        self._timeouts = {"connect": timeout.connect, "read": timeout.read, "write": timeout.write,
                          "pool": timeout.pool}  # fmt: skip
        limits = httpx.Limits()  # httpx's defaults, as the official client has them
        proxied = any(getproxies().get(scheme) for scheme in ("http", "https", "all"))
        self._pool = None if proxied else httpcore.ConnectionPool(
            ssl_context=tls, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        )  # fmt: skip

    def parts(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The streamed parts of the answer to `request` (the official client's `chat` arguments)."""
        if self._pool is None:
            return self._official(request)
        try:
            return self._direct(self._pool, request)
        except Redirected:
            return self._official(request)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def _direct(self, pool: httpcore.ConnectionPool, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        data = json.dumps(body(request), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        headers = [*self._headers, (b"Content-Length", str(len(data)).encode())]
        timeout = {"timeout": self._timeouts}
        with _httpx_errors():
            response = pool.handle_request(httpcore.Request("POST", self._url, headers=headers, content=data,
                                                            extensions=timeout))  # fmt: skip
        if 300 <= response.status < 400:
            response.close()
            raise Redirected
        return _lines(response)

    def _official(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for part in self.client.chat(**request, stream=True):
            yield part.model_dump(exclude_none=True)


def body(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON the official client sends for `chat(**request, stream=True)`."""
    sent = {key: value for key, value in request.items() if value is not None and key != "messages"}
    # The client drops a message's empty fields (an empty answer quoted in a re-ask has no content).
    sent["messages"] = [{key: value for key, value in m.items() if value} for m in request.get("messages") or ()]
    return {**sent, "tools": [], "stream": True}


def _lines(response: httpcore.Response) -> Iterator[dict[str, Any]]:
    """Each line of the streamed answer as a dict; the response is closed however the reading ends."""
    try:
        with _httpx_errors():
            chunks = response.iter_stream()
            if response.status >= 400:  # the client's ResponseError: the status and the body as text
                raise ollama.ResponseError(b"".join(chunks).decode("utf-8", "replace"), response.status)
            rest = b""
            for chunk in chunks:
                *lines, rest = (rest + chunk).split(b"\n")
                yield from (_part(line) for line in lines if line.strip())
            if rest.strip():
                yield _part(rest)
    finally:
        response.close()


def _part(line: bytes) -> dict[str, Any]:
    part = json.loads(line)  # a line that is not JSON: ValueError, as from the client
    if not isinstance(part, dict):
        raise ValueError("a streamed line is not a JSON object")
    if error := part.get("error"):
        raise ollama.ResponseError(error)
    return part
