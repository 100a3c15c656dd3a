"""`create_app(settings)`: the FastAPI application of the search service (routes in BUILD.md "Search service").

    GET    /healthz                        {"status", "count", "store", "model"}           (open)
    GET    /                               the web page (static HTML + JS, package data)     (open)
    GET    /openapi.json, /docs            the OpenAPI schema and its Swagger UI page         (open)
    POST   /v1/gallery                     JSON {"items": [...]} or multipart files=...  → {"ids", "count"}
    DELETE /v1/gallery/{id}                200 {"deleted", "count"} | 404
    GET    /v1/gallery/{id}/image          the stored crop, as uploaded
    POST   /v1/search                      {"image_b64" | "embedding", "k", filters, "group_by"}
                                           → {"results", "groups", "took_ms"} (hits with "same_person")
    GET    /v1/journeys/{global_id}        {"global_id", "appearances"} in time order | 404 | 422
    POST   /v1/attention                   {"image_b64"} → PNG of the attention maps (paper Fig. 3)

In FastAPI's own style: module-level routers, the service and the key as dependencies
(`get_service` reads `app.state.service`; `require_key` confirms the raw-ASGI guard checked the
key before the body was read, `sal_tf/serve/guard.py`), a response model on every JSON route.
Handlers turn the request into plain values for `GalleryService` and its answer into the response;
refusals are answered by `sal_tf/serve/errors.py`.

Ids may hold any character (`/`, `..`): the `{id:path}` converter takes the rest of the path, and
an id is only ever a key (`sal_tf/gallery/crops.py`). Handlers that call the model or the store
are plain `def`s, which FastAPI runs in its thread pool, or hand that work to it themselves; the
service does the locking. A search by embedding that the store answers fast stays on the event loop
(`sal_tf/serve/inline.py`): the thread hop would cost more than the search.
"""

import base64
import contextlib
import functools
import hashlib
import importlib.resources
import re
import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from sal_tf.gallery import Item
from sal_tf.serve import errors, guard, people, schemas
from sal_tf.serve.failures import BadInput
from sal_tf.serve.images import decode_base64
from sal_tf.serve.service import GalleryService, Image, Upload
from sal_tf.serve.uploads import FORM_FIELDS, form_uploads

TITLE = "SAL-TF person search"
PAGE_HEADERS = {  # the page loads only its own files; crops are shown through blob: URLs
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SWAGGER_CDN = "https://cdn.jsdelivr.net"  # where FastAPI's /docs page loads Swagger UI from
DOCS_NOTE = (
    '<p style="font-family:sans-serif">This page loads Swagger UI from cdn.jsdelivr.net; without that site, '
    'the API is described by <a href="/openapi.json">/openapi.json</a> and BUILD.md "Search service".</p>'
)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp")
ERRORS = {code: {"model": schemas.ErrorOut} for code in (400, 401, 404, 413, 415, 422, 502, 503)}

bearer = HTTPBearer(auto_error=False, description="--api_key (absent: a keyless loopback server)")
open_routes = APIRouter()


async def get_service(request: Request) -> GalleryService:
    """The app's `GalleryService` (`app.state.service`); `async`, as `require_key`: FastAPI runs a plain `def`
    dependency on a worker thread, a hand-off per request for a dictionary read."""
    return request.app.state.service


async def require_key(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]):
    """The key was checked by `RequestGuard` before the body was read; refuses a request that did not pass it."""
    if not request.scope.get(guard.KEY_CHECKED):
        raise errors.Unauthorized("this route needs the header Authorization: Bearer <API key>", "Authorization")


Service = Annotated[GalleryService, Depends(get_service)]
api = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERRORS)


@open_routes.get("/healthz", response_model=schemas.HealthOut)
def healthz(service: Service):
    return service.health()


@functools.cache
def page_html():
    return (importlib.resources.files("sal_tf.serve") / "static" / "index.html").read_text("utf-8")


@open_routes.get("/", response_class=HTMLResponse, include_in_schema=False)
def index():
    return HTMLResponse(page_html(), headers=PAGE_HEADERS)


@open_routes.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs():
    """FastAPI's Swagger UI page, with a CSP that lets it load its CDN files and its one inline script."""
    html = get_swagger_ui_html(openapi_url="/openapi.json", title=TITLE).body.decode()
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)
    policy = (
        f"default-src 'self'; script-src {SWAGGER_CDN} {hashes}; style-src {SWAGGER_CDN} 'unsafe-inline'; "
        f"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
    )
    html = html.replace('<div id="swagger-ui">', DOCS_NOTE + '<div id="swagger-ui">', 1)
    return HTMLResponse(html, headers={**PAGE_HEADERS, "Content-Security-Policy": policy})


async def gallery_uploads(request):
    """(the `Upload`s of a `POST /v1/gallery`, the name of their list): a JSON body or a multipart form."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await form_uploads(request), "files"
    try:
        body = schemas.GalleryAdd.model_validate(await request.json())
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    except ValueError:
        raise BadInput("body", 'a JSON object {"items": [...]} or a multipart form with files') from None
    uploads = []
    for i, item in enumerate(body.items):
        field = f"items[{i}].image_b64"
        data = decode_base64(item.image_b64, field)
        uploads.append(Upload(data, field, Item(item.id, item.camera, item.timestamp, item.path, item.person_id)))
    return uploads, "items"


GALLERY_BODY = {  # the two forms of POST /v1/gallery (the handler reads the body itself)
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/GalleryAdd"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    **{f: {"type": "string"} for f in FORM_FIELDS if f != "files"},
                },
            }
        },
    },
}


@api.post("/gallery", response_model=schemas.AddOut, openapi_extra={"requestBody": GALLERY_BODY})
async def add(request: Request, service: Service):
    uploads, collection = await gallery_uploads(request)
    ids = await run_in_threadpool(service.add, uploads, collection)
    return {"ids": ids, "count": await run_in_threadpool(service.count)}


@api.get(
    "/gallery/{item_id:path}/image",
    response_class=Response,
    responses={200: {"content": {kind: {} for kind in IMAGE_TYPES}, "description": "The crop as uploaded."}},
)
def image(item_id: str, service: Service):
    data, kind = service.crop(item_id)
    return Response(data, media_type=kind, headers={"X-Content-Type-Options": "nosniff"})


@api.delete("/gallery/{item_id:path}", response_model=schemas.DeleteOut)
def delete(item_id: str, service: Service):
    service.delete(item_id)
    return {"deleted": item_id, "count": service.count()}


def query_image(image_b64):
    return None if image_b64 is None else Image(decode_base64(image_b64, "image_b64"), "image_b64")


@api.post("/search", response_model=schemas.SearchOut)
async def search(body: schemas.SearchIn, service: Service):
    """On the event loop when the store answers this search fast (`GalleryService.searches_inline`), else on a worker thread."""
    if service.searches_inline(body.image_b64, body.exclude_camera, body.cameras, body.time_range):
        return search_answer(body, service, inline=True)
    return await run_in_threadpool(search_answer, body, service)


def search_answer(body, service, inline=False):
    start = time.perf_counter()
    filters = (body.exclude_camera, body.cameras, body.time_range)
    if inline:
        hits = service.search_inline(body.k, body.embedding, *filters)
    else:
        hits = service.search(body.k, query_image(body.image_b64), body.embedding, *filters)
    results = [service.hit_json(h) for h in hits]
    groups = people.group_by_person(results) if body.group_by == "person_id" else None
    return {"results": results, "groups": groups, "took_ms": (time.perf_counter() - start) * 1000.0}


@api.get("/journeys/{global_id}", response_model=schemas.JourneyOut)
def journey(global_id: int, service: Service):
    """A person's appearances (sal-mtmc: one per tracklet, `person_id` = its global id) across cameras, in time order."""
    items = service.journey(global_id)
    return {"global_id": global_id, "appearances": [people.appearance_json(item) for item in items]}


@api.post(
    "/attention",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The image and its attention maps."},
        501: {"model": schemas.ErrorOut, "description": "The model has no attention maps."},
    },
)
def attention(body: schemas.AttentionIn, service: Service):
    return Response(service.attention_png(query_image(body.image_b64)), media_type="image/png")


def openapi_schema(app):
    """FastAPI's schema, with the models that only `POST /v1/gallery`'s hand-read body names."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        gallery = schemas.GalleryAdd.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update({"GalleryAdd": gallery, **gallery.pop("$defs", {})})
        app.openapi_schema = schema
    return app.openapi_schema


def static_folder():
    return str(importlib.resources.files("sal_tf.serve") / "static")


def create_app(settings, service=None):
    """The FastAPI app over `settings` (`ServeSettings`); `service` defaults to `GalleryService.open(settings)`."""
    service = service or GalleryService.open(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        app.state.service.close()

    app = FastAPI(
        title=TITLE,
        description="Person re-identification search over a gallery (BUILD.md, 'Search service').",
        lifespan=lifespan,
        docs_url=None,  # served by `docs` above, with its own CSP
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.service = service
    app.openapi = lambda: openapi_schema(app)
    errors.install(app)
    app.add_middleware(guard.RequestGuard, settings=settings)
    if settings.cors_origins:  # outside the guard: a preflight carries no key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(open_routes)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=static_folder()), name="static")
    return app
