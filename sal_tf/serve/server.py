"""`serve(settings)`: open the service, index the start-up images if the store is empty, run uvicorn.

uvicorn runs programmatically (`uvicorn.Server`), on `settings.host` (loopback unless told
otherwise; a keyless server refuses any other address unless `--insecure_no_key`, see
`ServeSettings.check`). Memory and time per client are bounded: request bodies by
`RequestGuard` (size, JSON shape), requests in flight by `--max_connections` (503 with
`Retry-After`; uvicorn's own `limit_concurrency`, at `CONNECTION_BACKSTOP` times that, caps idle
connections), the time to send a request by `--request_timeout_s` and its head by MAX_HEAD_BYTES
(`deadline_protocol`).
"""

import logging
import socket
import sys

from sal_tf.serve.settings import is_loopback

CONNECTION_BACKSTOP = 4  # uvicorn's connection cap (plain 503) = this x --max_connections
MAX_HEAD_BYTES = 16 * 1024  # a request's URL and headers, at most (h11's own bound, uvicorn's default protocol)
log = logging.getLogger("sal_tf.serve")


def deadline_protocol(timeout_s):
    """uvicorn's httptools protocol with a deadline: a request's headers and body must be in within `timeout_s`.

    uvicorn bounds neither (`timeout_keep_alive` runs only between requests; a client sending one
    byte a second holds a connection for ever), and the app cannot see a request whose headers are
    still arriving, so the deadline lives here: armed when a connection opens or the next request's
    first bytes arrive, cleared once the client has sent every request it began (from the parser's
    `on_message_begin` to its `on_message_complete`); when it fires, the connection is closed. The
    head of a request (its URL and headers) is bounded at MAX_HEAD_BYTES as h11 bounds it (httptools
    keeps an unfinished header whole, however long): when more than that has arrived and the head
    is still not complete, 400 and the connection closed.

    httptools (llhttp, in C) rather than uvicorn's default h11 (pure Python): with the search itself
    at ~0.3 ms, the server's CPU per search under 8 clients went from 0.84 to 0.77 ms (BUILD.md
    "Gallery store", through `sal-serve`).
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DeadlineHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.deadline, self.receiving = None, False
            self.in_head, self.head_bytes = True, 0  # bytes received while a request's head is incomplete
            self.arm()

        def arm(self):
            self.deadline = self.loop.call_later(timeout_s, self.expire)

        def disarm(self):
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def data_received(self, data):
            if self.deadline is None:
                self.arm()  # the first bytes of the next request on a kept-alive connection
            if self.in_head:
                self.head_bytes += len(data)
            super().data_received(data)
            if self.in_head and self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.send_400_response(f"Request head over {MAX_HEAD_BYTES} bytes.")  # and closes
            elif not self.receiving:
                self.disarm()

        def on_message_begin(self):
            self.receiving = True
            super().on_message_begin()

        def on_headers_complete(self):
            self.in_head = False
            super().on_headers_complete()

        def on_message_complete(self):
            self.receiving, self.in_head, self.head_bytes = False, True, 0
            super().on_message_complete()

        def expire(self):
            self.deadline = None
            if not self.transport.is_closing():
                log.warning(
                    "dropped %s: the request was not sent within %g s (--request_timeout_s)", self.client, timeout_s
                )
                self.transport.close()

        def connection_lost(self, exc):
            self.disarm()
            super().connection_lost(exc)

    return DeadlineHttpToolsProtocol


def listening_socket(host, port):
    """A socket bound to (host, port) and listening (port 0: a free port, read back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP stated: asyncio sets TCP_NODELAY on accepted connections only for such sockets
    # (base_events._set_nodelay); without it every response waited ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ValueError(f"--host/--port: cannot listen on {host}:{port} ({e.strerror}).") from None
    sock.listen(2048)
    return sock


def url_of(host, port):
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def audience(settings):
    """Who may use the API, in words, for the start-up line."""
    if settings.api_key:
        who = "this machine only" if is_loopback(settings.host) else "any host that reaches the port"
        return f"/v1 needs the API key; {who} can connect"
    if is_loopback(settings.host):
        return "no API key: /v1 open to every program on this machine (loopback only, Host checked)"
    return f"--insecure_no_key: /v1 open to anyone who reaches {settings.host} (no key)"


def describe(settings, service, port):
    where = url_of(settings.host, port)
    if settings.host in ("0.0.0.0", "::"):
        where += " (all interfaces)"
    health = service.health()
    return (
        f"sal-serve: {health['count']} items in {health['store']} store, model {health['model']}; "
        f"{audience(settings)}: {where}"
    )


def prepare(settings):
    """The opened service, with the start-up images indexed when the store is empty; its FastAPI app."""
    from sal_tf.serve.app import create_app
    from sal_tf.serve.indexing import index_images
    from sal_tf.serve.service import GalleryService

    service = GalleryService.open(settings)
    try:
        print(f"same_person: {service.calibration_source}", file=sys.stderr)
        if service.recovered:
            print(f"Removed {service.recovered} crop(s) of items the store does not hold.", file=sys.stderr)
        if settings.index_images and service.count() == 0:
            added, skipped = index_images(
                service, settings.index_images, settings.max_embedding_batch, settings.progress
            )
            print(
                f"Indexed {added} image(s) from {settings.index_images}" + (f", skipped {skipped}" if skipped else "")
            )
        return service, create_app(settings, service)
    except BaseException:
        service.close()
        raise


def serve(settings, log_level="warning"):
    """Runs the service until interrupted (SIGINT / SIGTERM: uvicorn finishes requests, then the store closes).

    The socket is bound first (a taken port fails before the model loads); the URL is printed once
    the service is ready.
    """
    import uvicorn

    sock = listening_socket(settings.host, settings.port)
    try:
        service, app = prepare(settings)
        config = uvicorn.Config(
            app,
            log_level=log_level,
            http=deadline_protocol(settings.request_timeout_s),
            limit_concurrency=CONNECTION_BACKSTOP * settings.max_connections,
            timeout_graceful_shutdown=10,
        )
        print(describe(settings, service, sock.getsockname()[1]), flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
