"""The one reachability probe: a single TCP connect to a URL's host, with a short timeout, so
an offline machine (or a Space without outbound access) learns it in about a second instead
of waiting out a library's retries. Used before the Hub (weights) and before downloading the
sample images (examples)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse


def connect_error(url: str, timeout: float) -> str | None:
    """None when a TCP connection to the URL's host and port opens within `timeout` seconds,
    else why it did not."""
    parsed = urlparse(url)
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
        return None
    except (OSError, ValueError) as e:
        return str(e) or type(e).__name__
