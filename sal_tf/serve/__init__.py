"""The person-search service: an HTTP API and a web page over a gallery store and a model (`sal-serve`).

    from sal_tf.serve import ServeSettings, create_app
    app = create_app(ServeSettings(model="runs/demo", store="gallery_store"))   # a FastAPI app
    # or, as `sal-serve` does: sal_tf.serve.server.serve(settings)

Modules: `settings` (every default), `app` (routes), `service` (add / delete / search without
HTTP), `embedding` (in-process model or TF Serving), `images` (decoding as the serving
signature), `crops` (durable crop files), `uploads` (multipart forms), `limits` (body cap),
`errors` (JSON errors), `indexing` (start-up indexing), `server` (uvicorn), `static/` (the page).
"""

from sal_tf.serve.settings import ServeSettings


def create_app(settings, service=None):
    """The FastAPI app of `settings` (see `sal_tf.serve.app.create_app`)."""
    from sal_tf.serve.app import create_app as create

    return create(settings, service)


__all__ = ["ServeSettings", "create_app"]
