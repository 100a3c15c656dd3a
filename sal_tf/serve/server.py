"""`serve(settings)`: open the service, index the start-up images if the store is empty, run uvicorn.

uvicorn runs programmatically (`uvicorn.Server`), on `settings.host` (loopback unless told
otherwise); the request bodies are capped by `BodyLimit` and the open connections by
`limit_concurrency`, so memory stays bounded under load.
"""

import socket
import sys

MAX_CONNECTIONS = 64  # open connections before uvicorn answers 503


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


def describe(settings, service, port):
    where = url_of(settings.host, port)
    if settings.host in ("0.0.0.0", "::"):
        where += " (all interfaces)"
    health = service.health()
    auth = "API key required on /v1" if settings.api_key else "no API key (loopback use)"
    return f"sal-serve: {health['count']} items in {health['store']} store, model {health['model']}, {auth}: {where}"


def prepare(settings):
    """The opened service, with the start-up images indexed when the store is empty; its FastAPI app."""
    from sal_tf.serve.app import create_app
    from sal_tf.serve.indexing import index_images
    from sal_tf.serve.service import GalleryService

    service = GalleryService.open(settings)
    try:
        if service.recovered:
            print(f"Removed {service.recovered} crop(s) of adds or deletes a crash interrupted.", file=sys.stderr)
        if settings.index_images and service.store.count() == 0:
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
            app, log_level=log_level, limit_concurrency=MAX_CONNECTIONS, timeout_graceful_shutdown=10
        )
        print(describe(settings, service, sock.getsockname()[1]), flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
