"""The person-search service: an HTTP API and a web page over a gallery store and a model (`sal-serve`).

    from sal_tf.serve import ServeSettings, create_app
    app = create_app(ServeSettings(model="runs/demo", store="gallery_store"))   # a FastAPI app
    # or, as `sal-serve` does: sal_tf.serve.server.serve(settings)

Modules: `settings` (every default), `app` (routers and routes), `schemas` (request and response
models), `service` (add / delete / search without HTTP), `failures` (its refusals),
`errors` (refusal → HTTP status, the one map), `guard` (host, key, media type and body checks
before any route), `limits` (body size and JSON shape), `embedding` (in-process model or TF
Serving), `images` (header checks and decoding as the serving signature), `uploads` (multipart
forms), `people` (same-person probability, hits by person, journeys, files under `--paths_root`),
`indexing` (start-up indexing), `batching` (concurrent work joined), `inline` (which searches
stay on the event loop), `server` (uvicorn, the request deadline), `static/` (the page). The
crops live beside the store: `sal_tf.gallery.crops`.
"""

from sal_tf.serve.settings import ServeSettings


def create_app(settings, service=None):
    """The FastAPI app of `settings` (see `sal_tf.serve.app.create_app`)."""
    from sal_tf.serve.app import create_app as create

    return create(settings, service)


__all__ = ["ServeSettings", "create_app"]
