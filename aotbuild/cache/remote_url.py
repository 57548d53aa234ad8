"""A remote cache URL taken apart with its credentials removed first, so that no parser or error sees them."""

from __future__ import annotations

import contextlib
import ipaddress
import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteUrl:
    scheme: str  # lower case
    host: str
    port: int | None
    path: str  # without the trailing slash
    user: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"RemoteUrl({self.redacted!r})"

    @property
    def redacted(self) -> str:
        """The only form of the URL that may appear in a message, report or log."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{host}{port}{self.path}"


class BadUrl(ValueError):
    """The URL cannot be parsed; the message quotes only the parts that hold no credentials."""


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user info, user, password), percent-decoded. Everything before the LAST `@` after
    `scheme://` is `user[:password]`: in `http://ci:abc/def@host/` urllib would read host `ci`, port `abc`,
    and its error would quote the password; so a prefix holding an `@` must be written `%40`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url, None, None
    userinfo, _, hostpart = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return (f"{scheme}://{hostpart}", urllib.parse.unquote(user),
            urllib.parse.unquote(password) if colon else None)


def parse(url: str) -> RemoteUrl:
    """The URL's parts; BadUrl (naming scheme and host at most) if it has no host or a bad port."""
    clean, user, password = split_credentials(url.strip())
    try:
        parts = urllib.parse.urlsplit(clean)
        port = parts.port
    except ValueError:
        raise BadUrl(f"cannot parse the remote cache URL {_safe_prefix(clean)}...: expected "
                     "scheme://host[:port]/prefix (a password with '/', '@' or ':' works as it is; "
                     "an '@' in the prefix must be written %40)") from None
    if not parts.hostname:
        raise BadUrl(f"remote cache URL {_safe_prefix(clean)}... has no host")
    return RemoteUrl(parts.scheme.lower(), parts.hostname, port, parts.path.rstrip("/"), user, password)


def _safe_prefix(clean: str) -> str:
    scheme, _, rest = clean.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split(':', 1)[0]}"


def redact(url: str) -> str:
    """The redacted form of any URL string (credentials, query and fragment dropped), for messages."""
    try:
        return parse(url).redacted
    except BadUrl:
        return _safe_prefix(split_credentials(url.strip())[0])


def plain_http_warning(url: RemoteUrl, sends_credentials: bool) -> str | None:
    """Basic auth and bearer tokens travel in clear over http://: anyone on the link can read and reuse them."""
    loopback_names = ("localhost", "localhost.localdomain", "ip6-localhost")
    if not sends_credentials or url.scheme != "http" or url.host.lower() in loopback_names:
        return None
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(url.host).is_loopback:
            return None
    return (f"remote cache {url.redacted}: credentials are sent over plain http:// to a host that is not "
            "loopback, readable by anyone on the link; use https://")
