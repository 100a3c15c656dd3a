"""`create_app(settings)`: the FastAPI application of the search service (routes in BUILD.md "Search service").

    GET    /healthz                        {"status", "count", "store", "model"}           (open)
    GET    /                               the web page (static HTML + JS, package data)     (open)
    POST   /v1/gallery                     JSON {"items": [...]} or multipart files=...  → {"ids", "count"}
    DELETE /v1/gallery/{id}                200 {"deleted": id} | 404
    GET    /v1/gallery/{id}/image          the stored crop, as uploaded
    POST   /v1/search                      {"image_b64" | "embedding", "k", filters} → {"results", "took_ms"}
    POST   /v1/attention                   {"image_b64"} → PNG of the attention maps (paper Fig. 3)

Ids may hold any character (`/`, `..`): the `{id:path}` converter takes the rest of the path, and
an id is only ever a key (`sal_tf/serve/crops.py`). Handlers that call the model or the store are
plain `def`s, which FastAPI runs in its thread pool; the service does the locking.
"""

import contextlib
import importlib.resources
import secrets

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from sal_tf.serve import errors
from sal_tf.serve.images import decode_base64
from sal_tf.serve.limits import BodyLimit
from sal_tf.serve.schemas import AttentionIn, GalleryAdd, SearchIn
from sal_tf.serve.service import GalleryService, Upload
from sal_tf.serve.uploads import form_uploads

PAGE_HEADERS = {  # the page loads only its own files; crops are shown through blob: URLs
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_folder():
    return str(importlib.resources.files("sal_tf.serve") / "static")


def bearer_check(api_key):
    """A dependency that answers 401 unless `Authorization: Bearer <api_key>` (constant-time compare)."""

    def check(request: Request):
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise errors.Unauthorized("this route needs the header Authorization: Bearer <API key>", "Authorization")

    return check


def create_app(settings, service=None):
    """The FastAPI app over `settings` (`ServeSettings`); `service` defaults to `GalleryService.open(settings)`."""
    service = service or GalleryService.open(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="SAL-TF person search", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    add_open_routes(app, service)
    app.include_router(api_router(service, settings), dependencies=[Depends(bearer_check(settings.api_key))])
    return app


def add_open_routes(app, service):
    folder = static_folder()
    page = (importlib.resources.files("sal_tf.serve") / "static" / "index.html").read_text("utf-8")

    @app.get("/healthz")
    def healthz():
        return service.health()

    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse(page, headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=folder), name="static")


async def gallery_uploads(request, max_items):
    """The `Upload`s of a `POST /v1/gallery`: a JSON body or a multipart form."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await form_uploads(request, max_items)
    try:
        body = GalleryAdd.model_validate(await request.json())
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    except ValueError:
        raise errors.BadInput("body", 'a JSON object {"items": [...]} or a multipart form with files') from None
    if len(body.items) > max_items:
        raise errors.BadInput("items", f"at most {max_items} items per request (--max_items)", len(body.items))
    uploads = []
    for i, item in enumerate(body.items):
        field = f"items[{i}].image_b64"
        data = decode_base64(item.image_b64, field)
        uploads.append(Upload(data, field, item.id, item.camera, item.timestamp, item.path, item.person_id))
    return uploads


def api_router(service, settings):
    router = APIRouter(prefix="/v1")

    @router.post("/gallery")
    async def add(request: Request):
        uploads = await gallery_uploads(request, settings.max_items)
        ids = await run_in_threadpool(service.add, uploads)
        return {"ids": ids, "count": await run_in_threadpool(service.store.count)}

    @router.get("/gallery/{item_id:path}/image")
    def image(item_id: str):
        data, kind = service.crop(item_id)
        return Response(data, media_type=kind, headers={"X-Content-Type-Options": "nosniff"})

    @router.delete("/gallery/{item_id:path}")
    def delete(item_id: str):
        service.delete(item_id)
        return {"deleted": item_id, "count": service.store.count()}

    @router.post("/search")
    def search(body: SearchIn):
        return JSONResponse(service.timed_search(body))  # plain values: no jsonable_encoder pass

    @router.post("/attention")
    def attention(body: AttentionIn):
        return Response(service.attention_png(body.image_b64), media_type="image/png")

    return router
