"""Reading media that documents point at: a path inside the media folder, an http(s) URL, or
a ``blob://`` reference to the blob store.

This is a server reading on a user's behalf, so both ways are fenced:

- a path is resolved (symlinks and ``..`` included) and must stay inside the media folder
  (``Settings.media_dir``, default ``data_dir/media``);
- a URL's host is resolved and every address it has must be a public one: loopback,
  private, link-local, multicast, reserved and unspecified addresses are refused (IPv4
  inside IPv6 too). Redirects are followed by hand, at most five, and each hop is checked the
  same way. The connection itself goes through a network backend that checks the address it
  connects to, so a name that resolves differently the second time (DNS rebinding) gets
  nowhere either. Environment proxies are not used.

A blob reference (``blob://<path>``, what ``PUT /v1/blobs/<path>`` answers as ``ref``) is
read from the blob store in the namespace of the app the reading job runs in
(:meth:`MediaReader.with_blobs`), so a document can name only its own app's blobs; the path is
checked like any blob path (no ``..``, no leading ``/``). A reader that was given no namespace
refuses blob references.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from taskloom.blobs import Blobs, path_of_ref
from taskloom.errors import Invalid, NotFound, PayloadTooLarge

MAX_REDIRECTS = 5
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class MediaRefused(Invalid):
    """This media reference may not be read."""

    code = "media_refused"


class MediaUnreadable(Invalid):
    """This media reference could not be read."""

    code = "media_unreadable"


def is_public_address(ip: IPAddress) -> bool:
    """True for an address on the public internet; False for loopback, private,
    link-local, multicast, reserved, unspecified, and IPv4 ones hidden in IPv6."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None and not is_public_address(inner):
            return False
        if ip.teredo is not None and not all(is_public_address(a) for a in ip.teredo):
            return False
    return bool(
        ip.is_global
        and not (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
        )
    )


def public_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, when all of them are public; else MediaRefused."""
    host = host.strip("[]")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addrs = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise MediaUnreadable(
                f"cannot resolve host {host!r}: {exc}", code="host_unresolvable"
            ) from exc
        addrs = []
        for info in infos:
            a = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if a not in addrs:
                addrs.append(a)
        if not addrs:
            raise MediaUnreadable(f"host {host!r} has no address", code="host_unresolvable")
    for a in addrs:
        if not is_public_address(a):
            raise MediaRefused(
                f"refused to fetch from {host!r}: it resolves to {a}, which is not a public "
                "address (loopback, private, link-local and reserved networks are off limits)",
                code="url_not_public",
            )
    return [str(a) for a in addrs]


class _PublicOnlyBackend(httpcore.SyncBackend):
    """Connects only to public addresses, whatever the name resolves to at connect time."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        addr = public_addresses(host, port)[0]
        return super().connect_tcp(addr, port, timeout, local_address, socket_options)


def public_only_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections go only to public addresses."""
    transport = httpx.HTTPTransport(trust_env=False, retries=0)
    # httpx has no public way to pass httpcore a network backend: swap its pool for one
    # built the same way (proxy-free, default TLS verification) with the guarded backend
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_PublicOnlyBackend(),
        retries=0,
    )
    return transport


class MediaReader:
    """Reads a media reference (a path in ``media_dir``, an http(s) URL, or a ``blob://``
    reference in the namespace given by :meth:`with_blobs`) as bytes."""

    def __init__(
        self,
        media_dir: Path,
        *,
        max_bytes: int = 32 * 1024 * 1024,
        timeout: float = 20.0,
        transport: httpx.BaseTransport | None = None,
        blobs: Blobs | None = None,
    ) -> None:
        self.media_dir = Path(media_dir).resolve()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._transport = transport
        self.blobs = blobs

    def with_blobs(self, blobs: Blobs | None) -> MediaReader:
        """This reader, reading ``blob://`` references from ``blobs`` (one app's namespace:
        ``services.blobs.app(app_id)``)."""
        return MediaReader(
            self.media_dir,
            max_bytes=self.max_bytes,
            timeout=self.timeout,
            transport=self._transport,
            blobs=blobs,
        )

    def read(self, ref: Any) -> bytes:
        if not isinstance(ref, str) or not ref.strip():
            raise MediaUnreadable("an image reference is a non-empty string", code="bad_media_ref")
        ref = ref.strip()
        scheme = urlsplit(ref).scheme.lower()
        if scheme in ("http", "https"):
            return self.read_url(ref)
        if scheme == "file":
            return self.read_path(unquote(urlsplit(ref).path))
        if scheme == "blob":
            return self.read_blob(ref)
        if len(scheme) > 1:  # "c:" would be a Windows drive, not a scheme
            raise MediaRefused(
                f"unsupported scheme {scheme!r}: give an http(s) URL or a path inside the "
                "media folder",
                code="unsupported_scheme",
            )
        return self.read_path(ref)

    # -- paths ---------------------------------------------------------------------------

    def resolve_path(self, ref: str) -> Path:
        """The file ``ref`` names, relative to the media folder (or absolute inside it);
        MediaRefused when it is outside, after following links and ``..``."""
        raw = Path(ref)
        target = (raw if raw.is_absolute() else self.media_dir / raw).resolve()
        if not target.is_relative_to(self.media_dir):
            raise MediaRefused(
                f"path {ref!r} is outside the media folder {self.media_dir}",
                code="path_outside_media_dir",
            )
        return target

    def read_path(self, ref: str) -> bytes:
        path = self.resolve_path(ref)
        if not path.is_file():
            raise MediaUnreadable(f"no file at {ref!r} in the media folder", code="media_not_found")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise MediaUnreadable(
                f"{ref!r} is {size} bytes; the limit is {self.max_bytes}", code="media_too_large"
            )
        return path.read_bytes()

    # -- blobs ---------------------------------------------------------------------------

    def read_blob(self, ref: str) -> bytes:
        """The blob a ``blob://<path>`` reference names, in this reader's namespace."""
        if self.blobs is None:
            raise MediaRefused(
                "blob references are not readable here: no blob store namespace was given",
                code="blob_refs_unsupported",
            )
        try:
            path = path_of_ref(ref)
        except Invalid as exc:
            raise MediaRefused(
                f"invalid blob reference {ref!r}: {exc.message}", code="invalid_blob_ref"
            ) from exc
        try:
            info = self.blobs.info(path)
            if info.size > self.max_bytes:
                raise PayloadTooLarge()
            return self.blobs.read(path, max_bytes=self.max_bytes)
        except NotFound as exc:
            raise MediaUnreadable(f"no blob at {ref!r}", code="blob_not_found") from exc
        except PayloadTooLarge as exc:
            raise MediaUnreadable(
                f"{ref!r} is over the limit of {self.max_bytes} bytes", code="media_too_large"
            ) from exc
        except Invalid as exc:  # a link planted in the blob folder that leads outside
            raise MediaRefused(
                f"invalid blob reference {ref!r}: {exc.message}", code="invalid_blob_ref"
            ) from exc

    # -- URLs ----------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise MediaRefused(f"refused to follow {url!r}: not http(s)", code="url_refused")
        if not parts.hostname:
            raise MediaRefused(f"refused {url!r}: no host", code="url_refused")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError as exc:
            raise MediaRefused(f"refused {url!r}: bad port", code="url_refused") from exc
        public_addresses(parts.hostname, port)

    def read_url(self, url: str) -> bytes:
        transport = self._transport or public_only_transport()
        with httpx.Client(
            transport=transport, timeout=self.timeout, follow_redirects=False, trust_env=False
        ) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                self.check_url(url)
                try:
                    with client.stream("GET", url) as resp:
                        if resp.is_redirect and "location" in resp.headers:
                            url = str(resp.url.join(resp.headers["location"]))
                            continue
                        if resp.status_code != 200:
                            raise MediaUnreadable(
                                f"GET {url} answered {resp.status_code}", code="media_fetch_failed"
                            )
                        return self._body(resp, url)
                except httpx.HTTPError as exc:
                    raise MediaUnreadable(
                        f"GET {url} failed: {exc}", code="media_fetch_failed"
                    ) from exc
        raise MediaUnreadable(f"more than {MAX_REDIRECTS} redirects", code="too_many_redirects")

    def _body(self, resp: httpx.Response, url: str) -> bytes:
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise MediaUnreadable(
                f"{url} is {declared} bytes; the limit is {self.max_bytes}",
                code="media_too_large",
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise MediaUnreadable(
                    f"{url} is over the limit of {self.max_bytes} bytes", code="media_too_large"
                )
            chunks.append(chunk)
        return b"".join(chunks)
