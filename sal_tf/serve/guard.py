"""`RequestGuard`: the raw-ASGI checks every request passes before any route, body read or parsing.

In order, each refusal answered at once in the documented JSON form (`sal_tf/serve/errors.py`):

1. `Host` (Starlette's `TrustedHostMiddleware` rules, `ServeSettings.trusted_hosts`): a page
   on another site that rebinds its DNS name to 127.0.0.1 sends its own name → 400;
2. requests in flight past `--max_connections` → 503 with `Retry-After`;
3. the API key, for `/v1` (constant-time compare) → 401, before a byte of the body is read: an
   anonymous 16 MiB upload costs the headers only (FastAPI reads and parses the body before a
   route's dependencies run, so a dependency cannot do this; `require_key` in `app.py` only
   confirms this check ran);
4. a body on POST / PUT / PATCH must be `application/json` or `multipart/form-data` → 415 (a
   cross-site page may send `text/plain` without a CORS preflight);
5. the body's size (`--max_upload_mb`, 413) as it streams; a JSON body is read whole (it is
   parsed whole anyway) and its nesting and value count bounded (`limits.check_json_shape`, 422)
   before the route's parser sees it; a multipart body streams to the form parser, capped.

The time a client may take to send its headers and body is bounded below this, in the HTTP
protocol (`sal_tf/serve/server.py`): the app never sees a request whose headers are not all in.
"""

import secrets

from starlette.middleware.trustedhost import TrustedHostMiddleware

from sal_tf.serve import errors, limits

KEY_CHECKED = "sal_tf.serve.key_checked"  # scope key: set once the guard passed a /v1 request
API_PREFIX = "/v1/"
BODY_METHODS = ("POST", "PUT", "PATCH")


async def _host_ok(scope, receive, send):
    scope["sal_tf.serve.host_ok"] = True


async def _discard(message):  # TrustedHostMiddleware's own 400 (plain text) is replaced by ours
    pass


def media_type(scope):
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return ""


def bearer_token(scope):
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class RequestGuard:
    """ASGI middleware over the FastAPI app (see the module docstring); `settings` is a `ServeSettings`."""

    def __init__(self, app, settings):
        self.app = app
        self.api_key = settings.api_key.encode() if settings.api_key else None
        self.max_bytes = settings.max_body_bytes
        self.max_in_flight = int(settings.max_connections)
        self.in_flight = 0
        self.hosts = TrustedHostMiddleware(_host_ok, allowed_hosts=settings.trusted_hosts(), www_redirect=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.in_flight += 1
        try:
            await self.host_check(scope)
            await self.guarded(scope, receive, send)
        except errors.ServiceError as error:
            await errors.response_of(error)(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def host_check(self, scope):
        await self.hosts(scope, None, _discard)  # calls _host_ok only for an allowed Host
        if not scope.pop("sal_tf.serve.host_ok", False):
            raise errors.HostRefused("Host: expected a name this server answers to (--allowed_hosts)", "Host")

    def key_check(self, scope):
        if not scope["path"].startswith(API_PREFIX):
            return
        if self.api_key is not None:
            token = bearer_token(scope)
            if token is None or not secrets.compare_digest(token, self.api_key):
                raise errors.Unauthorized(
                    "this route needs the header Authorization: Bearer <API key>", "Authorization"
                )
        scope[KEY_CHECKED] = True

    async def guarded(self, scope, receive, send):
        if self.in_flight > self.max_in_flight:
            raise errors.Busy(f"more than {self.max_in_flight} requests in flight; retry shortly")
        self.key_check(scope)
        declared = limits.declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise limits.too_large(self.max_bytes, f"{declared} bytes")
        kind = media_type(scope)
        if scope["method"] not in BODY_METHODS or kind == "multipart/form-data":
            return await self.app(scope, limits.capped(receive, self.max_bytes), send)
        if kind != "application/json":
            raise errors.UnsupportedMediaType(
                f"Content-Type: expected application/json or multipart/form-data; received {kind or 'none'!r}",
                "Content-Type",
            )
        body = await limits.read_capped(receive, self.max_bytes)
        if body is None:  # the client left
            return
        limits.check_json_shape(body)
        await self.app(scope, replay(body, receive), send)


def replay(body, receive):
    """A `receive` that gives `body` as one message, then waits on the real one (for the disconnect)."""
    sent = False

    async def again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
