"""A remote cache URL taken apart with its credentials removed first, so that no parser ever sees them and no
error can quote them.

`http://ci:abc/def@host/` is not a valid URL (the `/` in the password ends the authority), and
`urllib.parse` reads it as host `ci`, port `abc`: its error then quotes the password. So everything before
the LAST `@` of the part after `scheme://` is taken as `user[:password]` before anything is parsed; a cache
prefix that holds an `@` must be written `%40`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


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
    """(the URL without user info, user, password), user and password percent-decoded."""
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


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_warning(url: RemoteUrl, sends_credentials: bool) -> str | None:
    """Basic auth and bearer tokens travel in clear over http://: anyone on the link can read and reuse them."""
    if not sends_credentials or url.scheme != "http" or is_loopback(url.host):
        return None
    return (f"remote cache {url.redacted}: credentials are sent over plain http:// to a host that is not "
            "loopback, readable by anyone on the link; use https://")
