"""The service's errors and how they are answered: JSON `{"error": "...", "field": "..."}`.

Status codes (BUILD.md "Search service"):

* 422: the request is malformed or a value is wrong (schema errors from FastAPI's validation and
  the service's own checks alike): `field` names it as a path (`items[2].image_b64`), `error` says
  what was expected and what came;
* 413: the body is over `--max_upload_mb` (not read);
* 401: a `/v1` route without the right `Authorization: Bearer <key>`;
* 404: an unknown gallery id or route;
* 501: the model form cannot do it (attention maps of a SavedModel or of a TF Serving model);
* 502: TF Serving answered with an error or could not be reached.

A user's mistake never produces a traceback; an unexpected failure is logged and answered 500
with a generic message.
"""

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("sal_tf.serve")


class ServiceError(Exception):
    """An error answered with `status` and `{"error": message, "field": field}`."""

    status = 500

    def __init__(self, message, field=None, status=None):
        super().__init__(message)
        self.message, self.field = message, field
        if status is not None:
            self.status = status

    def body(self):
        return {"error": self.message, **({"field": self.field} if self.field else {})}


class BadInput(ServiceError):
    """A wrong value in the request: 422 naming the field."""

    status = 422

    def __init__(self, field, expected, received=None):
        got = "" if received is None else f"; received {received}"
        super().__init__(f"{field}: expected {expected}{got}", field)


class NotFound(ServiceError):
    status = 404


class Unauthorized(ServiceError):
    status = 401


class NotSupported(ServiceError):
    status = 501


class UpstreamError(ServiceError):
    status = 502


class BodyTooLarge(ServiceError):
    status = 413


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
    """One pydantic error dict → "items[0].camera: expected an integer; received 'x'"."""
    field = field_path(error.get("loc", ()))
    expected = error.get("msg", "a valid value")
    expected = expected[0].lower() + expected[1:] if expected else expected
    if error.get("type") == "missing":
        return field, f"{field}: required field missing"
    if error.get("type") == "json_invalid":
        return "body", "body: expected a JSON object; " + expected
    received = f"; received {_short(error['input'])}" if "input" in error and error.get("type") != "missing" else ""
    return field, f"{field}: {expected}{received}"


async def on_validation_error(request: Request, exc: RequestValidationError):
    errors = exc.errors()
    field, message = validation_message(errors[0]) if errors else ("body", "body: invalid request")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    return JSONResponse({"error": message, "field": field}, status_code=422)


async def on_service_error(request: Request, exc: ServiceError):
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def on_http_error(request: Request, exc: StarletteHTTPException):
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def on_unexpected_error(request: Request, exc: Exception):
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal error (see the server's log)"}, status_code=500)


def install(app):
    """Registers the handlers above on a FastAPI `app`."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)
