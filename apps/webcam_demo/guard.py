"""Who may drive the demo server: the page it serves, and nobody else.

The server shows a camera and loads models on request, so it must not obey whatever a browser is made to send
it. A page from another site can POST to ``127.0.0.1`` (a form or a no-cors ``fetch`` with a ``text/plain``
body needs no CORS preflight), and a DNS-rebinding site can even make its own name resolve to this machine.
Hence these rules:

- every request names the served address in ``Host`` (the address the connection arrived on, ``localhost``
  on loopback, this machine's own names when remote access was allowed): a rebinding site's name is refused;
- a state-changing POST carries ``Content-Type: application/json`` (which a foreign page cannot send without
  a preflight this server never grants), an ``Origin``, when the browser sends one, equal to the served
  address, and a body of at most ``MAX_BODY`` bytes holding one JSON object whose fields have the declared
  types (unknown fields are refused, not ignored).

Refusals are ``Refused`` errors: a status code and a one-line reason, answered as ``{"error": reason}``.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

import visionkit

MAX_BODY = 4096  # a control message is a few dozen bytes


class Refused(Exception):
    """A request the server will not act on: the HTTP status and the reason the client is told."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``; a hostname other than localhost is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> str | None:
    """Refuse a non-loopback ``--host`` unless ``--allow-remote`` was given; returns the warning to print then."""
    if is_loopback(host):
        return None
    shown = host or "all interfaces"
    if not allow_remote:
        raise visionkit.OptionError(f"--host {shown} is not a loopback address: the camera and its controls would "
                                    "be open to the network; add --allow-remote to serve it anyway")
    return (f"serving on {shown}: anyone who can reach this machine can watch the camera and switch "
            "its task and model")


class Guard:
    """The rules above for a server bound to ``bind_host``."""

    def __init__(self, bind_host: str):
        # Names other than the connection's own address are accepted only where they cannot be an attacker's:
        # localhost on loopback, this machine's host names when it serves the network on purpose.
        self.own_names = frozenset() if is_loopback(bind_host) else \
            frozenset(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n and not is_loopback(n))

    def check_host(self, headers: Mapping[str, str], server: tuple[str, int] | None) -> None:
        """``Host`` must be the address and port this connection was served on."""
        if not self._is_served(urlsplit("//" + headers.get("host", "")), server):
            raise Refused(403, f"Host {headers.get('host', '(none)')!r} is not the address this demo serves")

    def check_origin(self, headers: Mapping[str, str], server: tuple[str, int] | None) -> None:
        """A browser's ``Origin`` must be this server's own page (non-browser clients send none)."""
        origin = headers.get("origin")
        if origin is None:
            return
        url = urlsplit(origin)
        if url.scheme != "http" or not self._is_served(url, server):
            raise Refused(403, f"requests from {origin!r} are not accepted: only the demo's own page controls it")

    def _is_served(self, url: SplitResult, server: tuple[str, int] | None) -> bool:
        if server is None:
            return False
        address, port = server
        names = {address.lower()} | ({"localhost"} if is_loopback(address) else set()) | self.own_names
        try:
            url_port = url.port or 80
        except ValueError:  # a port that is not a number
            return False
        return url.hostname in names and url_port == port


def check_content_type(headers: Mapping[str, str]) -> None:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Refused(415, f"Content-Type must be application/json, not {media_type or '(none)'!r}")


async def read_object(headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """The request body as a JSON object, reading at most ``MAX_BODY`` bytes of it."""
    too_big = Refused(413, f"request body over {MAX_BODY} bytes")
    declared = headers.get("content-length", "0")
    if not declared.isdigit():
        raise Refused(400, f"Content-Length {declared!r} is not a number")
    if int(declared) > MAX_BODY:
        raise too_big
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY:
            raise too_big
    try:
        value = json.loads(bytes(body))
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, or nesting deeper than the parser goes
        raise Refused(400, f"body is not valid JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    if not isinstance(value, dict):
        raise Refused(400, f"body must be a JSON object, not {type(value).__name__}")
    return value


JSON_TYPES = {bool: "true or false", int: "an integer", str: "a string"}


def check_fields(body: Mapping[str, Any], fields: Mapping[str, type]) -> None:
    """Every field is declared and has its declared type exactly (``true`` is not an integer, ``1`` not a bool)."""
    for name, value in body.items():
        if name not in fields:
            expected = ", ".join(fields) or "no fields"
            raise Refused(400, f"unknown field {name!r}: expected {expected}")
        if type(value) is not fields[name]:
            raise Refused(400, f"{name!r} must be {JSON_TYPES[fields[name]]}, not {json.dumps(value)[:60]}")
