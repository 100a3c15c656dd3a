"""How every refusal is answered: the one map from error class to HTTP status, and JSON `{"error", "field"}`.

Status codes (BUILD.md "Search service"):

* 422 `BadInput`, `InvalidValue` (refused by the store): the request is malformed or a value is wrong (FastAPI's schema errors and the
  service's own checks alike): `field` names it as a path (`items[2].image_b64`), `error` says
  what was expected and what came;
* 400 `HostRefused`: a `Host` header the server does not answer to (DNS rebinding);
* 401 `Unauthorized`: a `/v1` route without the right `Authorization: Bearer <key>`;
* 404 `NotFound`: an unknown gallery id or route;
* 413 `BodyTooLarge`: the body is over `--max_upload_mb` (not read past the cap);
* 415 `UnsupportedMediaType`: a body that is neither `application/json` nor a multipart form;
* 501 `NotSupported`: the model form cannot do it (attention maps of a SavedModel or TF Serving);
* 502 `UpstreamError`: TF Serving answered with an error or could not be reached;
* 503 `Busy`: too many requests in flight (`Retry-After`).

A user's mistake never produces a traceback: it is answered here and not logged. An unexpected
failure is logged (its path escaped: no control bytes reach the log) and answered 500 with a
generic message.
"""

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sal_tf.serve.failures import BadInput, InvalidValue, NotFound, NotSupported, ServiceError, UpstreamError

log = logging.getLogger("sal_tf.serve")
RETRY_AFTER_S = 1  # what a 503 asks the client to wait


class HostRefused(ServiceError):
    """A `Host` header that names no address or name the server answers to."""


class Unauthorized(ServiceError):
    """A `/v1` request without the right API key."""


class BodyTooLarge(ServiceError):
    """A body over `--max_upload_mb`."""


class UnsupportedMediaType(ServiceError):
    """A body neither JSON nor a multipart form (a cross-site `text/plain` POST, say)."""


class Busy(ServiceError):
    """More requests in flight than the server takes (`--max_connections`)."""


STATUS = {  # the one map from a refusal to its HTTP status
    BadInput: 422,
    InvalidValue: 422,
    HostRefused: 400,
    Unauthorized: 401,
    NotFound: 404,
    BodyTooLarge: 413,
    UnsupportedMediaType: 415,
    NotSupported: 501,
    UpstreamError: 502,
    Busy: 503,
}
HEADERS = {Unauthorized: {"WWW-Authenticate": "Bearer"}, Busy: {"Retry-After": str(RETRY_AFTER_S)}}


def status_of(error):
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 500)


def response_of(error):
    """The JSON response of a `ServiceError` (also used by the raw-ASGI guard, before any route)."""
    headers = next((h for kind, h in HEADERS.items() if isinstance(error, kind)), None)
    return JSONResponse(error.body(), status_code=status_of(error), headers=headers)


def field_path(loc):
    """FastAPI's error location ("body", "items", 2, "camera") → "items[2].camera"."""
    path = ""
    for part in loc:
        if part in ("body", "query", "path", "form") and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def validation_message(error):
    """One pydantic error dict → ("items[0].camera", "items[0].camera: expected an integer; received 'x'")."""
    field = field_path(error.get("loc", ()))
    expected = error.get("msg", "a valid value")
    expected = expected[0].lower() + expected[1:] if expected else expected
    if error.get("type") == "missing":
        return field, f"{field}: required field missing"
    if error.get("type") == "json_invalid":
        return "body", "body: expected a JSON object; " + expected
    received = f"; received {_short(error['input'])}" if "input" in error else ""
    return field, f"{field}: {expected}{received}"


async def on_validation_error(request: Request, exc: RequestValidationError):
    errors = exc.errors()
    field, message = validation_message(errors[0]) if errors else ("body", "body: invalid request")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    return JSONResponse({"error": message, "field": field}, status_code=STATUS[BadInput])


async def on_service_error(request: Request, exc: ServiceError):
    return response_of(exc)


async def on_http_error(request: Request, exc: StarletteHTTPException):
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def on_unexpected_error(request: Request, exc: Exception):
    log.exception("unexpected error in %s %s", request.method, ascii(request.url.path))
    return JSONResponse({"error": "internal error (see the server's log)"}, status_code=500)


def install(app):
    """Registers the handlers above on a FastAPI `app`."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)
