"""`RequestGuard`: the raw-ASGI checks every request passes before any route, body read or parsing.

In order, each refusal answered at once in the documented JSON form (`sal_tf/serve/errors.py`):

1. `Host` (Starlette's `TrustedHostMiddleware` rules, `ServeSettings.trusted_hosts`): a page
   on another site that rebinds its DNS name to 127.0.0.1 sends its own name → 400;
2. requests in flight past `--max_connections` → 503 with `Retry-After`;
3. the API key, for `/v1` (constant-time compare) → 401, from the headers alone: the body of an
   anonymous request is never held or parsed (FastAPI reads and parses the body before a route's
   dependencies run, so a dependency cannot do this; `require_key` in `app.py` only confirms this
   check ran);
4. a body on POST / PUT / PATCH must be `application/json` or `multipart/form-data` → 415 (a
   cross-site page may send `text/plain` without a CORS preflight);
5. the body's size (`--max_upload_mb`, 413; a declared length at once) as it streams; a JSON
   body is read whole (it is parsed whole anyway) and its nesting and value count bounded
   (`limits.check_json_shape`, 422) before the route's parser sees it; a multipart body streams
   to the form parser, capped.

After a refusal of 1-4 the rest of the body (up to the cap) is dropped unparsed as it arrives
(`then_drop_body`), so that a client that writes its whole body before reading gets the answer,
not a reset. The time a client may take to send its headers and body is bounded below this, in
the HTTP protocol (`sal_tf/serve/server.py`): the app never sees a request whose headers are not
all in.
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
    """The token of `Authorization: Bearer <token>` (bytes; empty when absent or another scheme)."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else b""
    return b""


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
            try:
                await self.admit(scope)
            except errors.BodyTooLarge as error:  # not worth reading: answered at once
                return await errors.response_of(error)(scope, receive, send)
            except errors.ServiceError as error:
                return await errors.response_of(error)(scope, receive, self.then_drop_body(receive, send))
            try:
                await self.forward(scope, receive, send)
            except errors.ServiceError as error:
                await errors.response_of(error)(scope, receive, send)
        finally:
            self.in_flight -= 1

    def then_drop_body(self, receive, send):
        """`send` that holds back the end of the answer until what the client still sends of its body is dropped.

        The client has the whole answer at once (its Content-Length); a connection closed with body
        bytes unread would be reset, and a client that writes its whole body before reading would
        see the reset, not the answer.
        """

        async def held(message):
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await send({**message, "more_body": True})
                await limits.discard_body(receive, self.max_bytes)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        return held

    async def admit(self, scope):
        """Checks 1-4 of the module docstring and the declared length; nothing of the body is read."""
        await self.hosts(scope, None, _discard)  # calls _host_ok only for an allowed Host
        if not scope.pop("sal_tf.serve.host_ok", False):
            raise errors.HostRefused("Host: expected a name this server answers to (--allowed_hosts)", "Host")
        if self.in_flight > self.max_in_flight:
            raise errors.Busy(f"more than {self.max_in_flight} requests in flight; retry shortly")
        if scope["path"].startswith(API_PREFIX):
            if self.api_key is not None and not secrets.compare_digest(bearer_token(scope), self.api_key):
                raise errors.Unauthorized(
                    "this route needs the header Authorization: Bearer <API key>", "Authorization"
                )
            scope[KEY_CHECKED] = True
        declared = limits.declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise limits.too_large(self.max_bytes, f"{declared} bytes")
        kind = media_type(scope)
        if scope["method"] in BODY_METHODS and kind not in ("application/json", "multipart/form-data"):
            raise errors.UnsupportedMediaType(
                f"Content-Type: expected application/json or multipart/form-data; received {kind or 'none'!r}",
                "Content-Type",
            )

    async def forward(self, scope, receive, send):
        """Step 5: the body capped as it streams; a JSON body read whole and its shape checked first."""
        if scope["method"] not in BODY_METHODS or media_type(scope) == "multipart/form-data":
            return await self.app(scope, limits.capped(receive, self.max_bytes), send)
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
