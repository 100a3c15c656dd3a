"""Bounds on a request body, applied by `sal_tf.serve.guard.RequestGuard` before any parsing.

* Size: at most `--max_upload_mb`; a declared `Content-Length` over the cap is refused unread, a
  body without one (chunked) is counted as it streams in and refused when it passes the cap, so no
  request holds more than the cap in memory.
* JSON shape: nesting at most `MAX_JSON_DEPTH` deep and at most `MAX_JSON_VALUES` values, counted
  on the raw bytes with numpy (strings masked out, then brackets and commas counted) before
  `json.loads` sees them: Python's parser recurses per level (a 10,000-deep body is a
  RecursionError), and a body of 16 MiB of `0,` is 8 M Python objects. A body with few brackets
  and commas anywhere (a search: 2-3 brackets, an embedding's commas) is within both bounds
  without that scan (`within_bounds_unscanned`).
"""

import re

import numpy as np

from sal_tf.serve.errors import BodyTooLarge
from sal_tf.serve.failures import BadInput

MAX_JSON_DEPTH = 8  # the API's bodies nest 3 deep ({"items": [{...}]})
MAX_JSON_VALUES = 65536  # an embedding of up to ~65 k numbers, or 64 items of a few fields
SCAN_CHUNK = 1 << 20  # bytes scanned at once (bounds the scan's own memory)
_ESCAPE = re.compile(rb"\\.", re.S)  # a backslash and the byte it escapes (inside strings only, in valid JSON)
OTHER_BYTES = bytes(sorted(set(range(256)) - set(b'"[]{},')))  # bytes.translate deletes these
QUOTE, OPEN, CLOSE, COMMA = (np.frombuffer(c, np.uint8) for c in (b'"', b"[{", b"]}", b","))


def too_large(max_bytes, received):
    mib = max_bytes / 1024 / 1024
    return BodyTooLarge(f"body: expected at most {mib:g} MiB (--max_upload_mb); received {received}", "body")


def declared_length(scope):
    """The request's `Content-Length` as an int, or None when absent or not a number."""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def within_bounds_unscanned(body):
    """True when `body` cannot fail `check_json_shape`: its brackets and commas, counted anywhere (strings
    included, so never fewer than the scan counts), allow neither the depth nor the values to pass their bounds."""
    opens = body.count(b"[") + body.count(b"{")
    return opens <= MAX_JSON_DEPTH and 1 + opens + body.count(b",") <= MAX_JSON_VALUES


def check_json_shape(body):
    """Refuses (BadInput naming `body`) JSON nested deeper than MAX_JSON_DEPTH or with more than MAX_JSON_VALUES values.

    A body `within_bounds_unscanned` passes at once; any other is scanned (`scan_json_shape`).
    """
    if not within_bounds_unscanned(body):
        scan_json_shape(body)


def scan_json_shape(body):
    """`check_json_shape`'s scan of the bytes outside strings.

    Escaped bytes are dropped, then every byte but quotes, brackets and commas; then per chunk, a
    bracket or comma is outside a string when an even number of quotes precede it; those give the
    depth (running sum of opens minus closes) and the count (opens and commas).
    """
    data = (_ESCAPE.sub(b"", body) if b"\\" in body else body).translate(None, OTHER_BYTES)
    in_string, depth, deepest, values = 0, 0, 0, 1
    for start in range(0, len(data), SCAN_CHUNK):
        chunk = np.frombuffer(data, np.uint8, min(SCAN_CHUNK, len(data) - start), start)
        quotes = np.flatnonzero(chunk == QUOTE)
        marks = np.flatnonzero(chunk != QUOTE)
        marks = marks[(np.searchsorted(quotes, marks) + in_string) % 2 == 0]  # outside strings
        in_string = (in_string + len(quotes)) % 2
        symbols = chunk[marks]
        steps = np.isin(symbols, OPEN).astype(np.int64) - np.isin(symbols, CLOSE)
        levels = np.cumsum(steps) + depth
        deepest, depth = max(deepest, int(levels.max(initial=depth))), int(levels[-1]) if len(levels) else depth
        values += int(np.count_nonzero(steps > 0)) + int(np.count_nonzero(symbols == COMMA))
        if deepest > MAX_JSON_DEPTH:
            raise BadInput("body", f"JSON nested at most {MAX_JSON_DEPTH} deep", f"more than {MAX_JSON_DEPTH} levels")
        if values > MAX_JSON_VALUES:
            raise BadInput("body", f"JSON of at most {MAX_JSON_VALUES} values", f"more than {MAX_JSON_VALUES}")


async def read_capped(receive, max_bytes):
    """The whole body (bytes), read as it streams; BodyTooLarge past `max_bytes`; None if the client left."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes, f"more than {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def discard_body(receive, max_bytes):
    """Reads what is left of a body and drops it, up to `max_bytes` (memory stays flat; the deadline bounds the time)."""
    size = 0
    while size <= max_bytes:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        size += len(message.get("body", b""))


def capped(receive, max_bytes):
    """`receive` that raises BodyTooLarge once the body passes `max_bytes` (for bodies parsed as they stream)."""
    size = 0

    async def limited():
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > max_bytes:
                raise too_large(max_bytes, f"more than {max_bytes} bytes")
        return message

    return limited
