"""HTTP client connection pools that do not log every connection.

twisted.web's pool builds one client factory per connection, and a factory logs "Starting
factory" and "Stopping factory" at info level: a connection request costs two connections
(the digest challenge, then the authenticated request), so a 100,000-phone push wrote
400,000 such lines. The factory's ``noisy`` switch turns them off; what a connection request
did is logged by the requester (connreq/http_client.py) and counted in /metrics.
"""

from __future__ import annotations

from typing import Any

from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory

__all__ = ["QuietConnectionPool"]


class _QuietClientFactory(_HTTP11ClientFactory):
    noisy = False


class QuietConnectionPool(HTTPConnectionPool):
    """An HTTPConnectionPool whose connections are not logged."""

    _factory: Any = _QuietClientFactory
