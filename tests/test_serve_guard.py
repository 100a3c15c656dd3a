"""sal-serve against anonymous, oversized, slow and greedy clients (`sal_tf/serve/guard.py`, `limits.py`, `images.py`, `server.py`).

One server for the module, over real HTTP as `python -m sal_tf.cli.serve` on 127.0.0.1, with an API
key, the default body cap (16 MiB) and image bound, a 3 s request deadline and 3 requests in
flight at most. Memory is read from the server's /proc status (VmRSS, VmHWM).
"""

import io
import json
import socket
import struct
import threading
import time
import urllib.parse
import zlib

import pytest

from tests.serve_support import ServerProcess, b64, call, small_embedding_model

KEY = "guard-key-0b1c"
AUTH = {"Authorization": f"Bearer {KEY}"}
REQUEST_TIMEOUT_S = 3
MAX_CONNECTIONS = 3
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_guard")
    small_embedding_model().save(folder / "small.keras")
    args = [f"--model={folder / 'small.keras'}", f"--store={folder / 'store'}", f"--api_key={KEY}"]
    args += [f"--request_timeout_s={REQUEST_TIMEOUT_S}", f"--max_connections={MAX_CONNECTIONS}"]
    process = ServerProcess(args, str(folder / "server.log"))
    yield process
    process.stop_cleanly()


def memory(server):
    """{"VmRSS": bytes, "VmHWM": bytes} of the server process."""
    with open(f"/proc/{server.pid}/status") as f:
        return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f) if k in ("VmRSS", "VmHWM")}


def address(server):
    parts = urllib.parse.urlsplit(server.url)
    return parts.hostname, parts.port


def head(path, length, headers=()):
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode()


def answer_of(sock):
    """Status code of the answer read from `sock` (its head only), or None when the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_the_start_up_line_says_what_is_open_to_whom(server):
    assert "/v1 needs the API key; this machine only can connect" in server.start_line, server.start_line


def test_an_anonymous_upload_is_refused_from_its_headers_without_holding_its_body(server):
    body = json.dumps({"items": [{"image_b64": "A" * (15 * MIB)}]}).encode()
    seconds = []
    before = memory(server)
    for _ in range(3):
        with socket.create_connection(address(server)) as sock:
            start = time.perf_counter()
            sender = threading.Thread(target=sock.sendall, args=(head("/v1/gallery", len(body)) + body,))
            sender.start()
            status = answer_of(sock)
            seconds.append(time.perf_counter() - start)
            sender.join()
        assert status == 401
    assert sorted(seconds)[1] < 0.1, seconds  # 289 ms when FastAPI read and parsed the body first
    # a client that writes the whole body before reading gets the 401 too, not a reset
    assert call("POST", server.url + "/v1/gallery", body, {"Content-Type": "application/json"}).status == 401
    after = memory(server)
    assert after["VmHWM"] - before["VmRSS"] < 8 * MIB, (before, after)


def huge_png(width=20000, height=20000):
    """A 1-bit grey PNG of width x height (~50 KB; decoded as RGB: 1.2 GB)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_an_image_of_too_many_pixels_is_refused_before_decoding(server):
    image = b64(huge_png())
    count = call("GET", server.url + "/healthz").json()["count"]
    before = memory(server)
    for path, body, field in [
        ("/v1/search", {"image_b64": image}, "image_b64"),
        ("/v1/gallery", {"items": [{"image_b64": image}]}, "items[0].image_b64"),
        ("/v1/attention", {"image_b64": image}, "image_b64"),
    ]:
        reply = call("POST", server.url + path, body, AUTH)
        assert reply.status == 422 and reply.json()["field"] == field, reply
        assert "20000x20000" in reply.json()["error"] and "--max_image_pixels" in reply.json()["error"]
    assert memory(server)["VmHWM"] - before["VmRSS"] < 300 * MIB  # +1.2 GiB a request when decoded
    assert call("GET", server.url + "/healthz").json()["count"] == count


def test_an_animation_is_embedded_from_its_first_frame(server):
    from PIL import Image

    first = Image.new("RGB", (32, 64), (200, 40, 40))
    frames = [first] + [Image.new("RGB", (32, 64), (0, 30 * i, 200)) for i in range(1, 8)]
    gif, png = io.BytesIO(), io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    Image.open(io.BytesIO(gif.getvalue())).convert("RGB").save(png, "PNG")  # the GIF's first frame
    added = call("POST", server.url + "/v1/gallery", {"items": [{"id": "gif", "image_b64": b64(gif.getvalue())}]}, AUTH)
    assert added.status == 200, added
    hit = call("POST", server.url + "/v1/search", {"image_b64": b64(png.getvalue()), "k": 1}, AUTH).json()["results"][0]
    assert hit["id"] == "gif" and hit["distance"] < 1e-3
    stored = call("GET", server.url + "/v1/gallery/gif/image", headers=AUTH)
    assert stored.body == gif.getvalue() and stored.headers["content-type"] == "image/gif"  # kept as uploaded


def trickle(server, prefix, data):
    """Sends `prefix` at once, then `data` one byte a second: seconds until the server closed the connection (None: never)."""
    start = time.perf_counter()
    with socket.create_connection(address(server)) as sock:
        sock.settimeout(1)
        try:
            sock.sendall(prefix)
            for byte in data:
                sock.sendall(bytes([byte]))
                try:
                    if sock.recv(1024) == b"":
                        return time.perf_counter() - start
                except TimeoutError:  # a second passed: the next byte
                    pass
        except OSError:  # reset by the server
            return time.perf_counter() - start
    return None


def test_a_client_sending_one_byte_a_second_is_dropped(server):
    body = json.dumps({"embedding": [0.5] * 64, "k": 3}).encode()
    request_head = head("/v1/search", len(body), [f"Authorization: Bearer {KEY}"])
    cases = {"headers": (b"", request_head + body), "body": (request_head, body)}
    out = {}
    threads = [threading.Thread(target=lambda c=c: out.update({c: trickle(server, *cases[c])})) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for case in cases:  # 42 s and still open before the deadline
        assert out[case] is not None and REQUEST_TIMEOUT_S - 0.5 < out[case] < REQUEST_TIMEOUT_S + 5, (case, out)
    assert call("GET", server.url + "/healthz").status == 200


def status_then_close(sock):
    """Status of the answer, read once the server has closed the connection (None: closed without one)."""
    sock.settimeout(10)  # a server that keeps it open fails the test here (TimeoutError)
    status = answer_of(sock)
    while status is not None and sock.recv(65536):
        pass
    return status


def test_a_request_head_still_incomplete_past_16_kib_is_refused_and_closed(server):
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from sal_tf.serve.server import MAX_HEAD_BYTES, deadline_protocol

    # httptools (C) parses the requests; uvicorn's protocol for it bounds no head, ours does, as h11 did
    assert issubclass(deadline_protocol(1.0), HttpToolsProtocol)

    below = head("/v1/search", 2, [f"X-Padding: {'a' * (MAX_HEAD_BYTES // 2)}"]) + b"{}"
    with socket.create_connection(address(server)) as sock:
        sock.sendall(below)
        assert answer_of(sock) == 401  # read whole, answered (no key)
    # 1 KiB past the bound and not finished (no blank line): answered 400 and closed, not left to the deadline
    unfinished = b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * (MAX_HEAD_BYTES + 1024)
    with socket.create_connection(address(server)) as sock:
        sock.sendall(unfinished)
        assert status_then_close(sock) == 400
    assert call("GET", server.url + "/healthz").status == 200


def test_past_max_connections_the_answer_is_503_with_retry_after(server):
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):  # requests in flight: their bodies never finish
            sock = socket.create_connection(address(server))
            sock.sendall(head("/v1/search", 100, [f"Authorization: Bearer {KEY}"]) + b'{"k": ')
            held.append(sock)
        time.sleep(0.3)
        busy = call("GET", server.url + "/healthz")
        assert busy.status == 503 and busy.headers["retry-after"] == "1" and "in flight" in busy.json()["error"]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert call("GET", server.url + "/healthz").status == 200
