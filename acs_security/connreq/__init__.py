"""Connection requests (TR-069 section 3.2.2, Annex G / TR-111): message logic.

Pure modules are exported here: :mod:`.udp` (Annex G datagram, phone-side verifier,
``host:port`` parsing), :mod:`.stun` (RFC 5389 / RFC 3489 codec with TR-111 attributes),
:mod:`.methods` (the reach methods and the XMPP sender's contract), :mod:`.xmpp_stanza`
(the Annex K IQ, JIDs, the phone's verdict) and :mod:`.policy` (backoff). The Twisted
edges are imported from their modules: :mod:`.xmpp` (``XmppClient``, Annex K), :mod:`.http_client`
(``HttpConnectionRequester``, ``RetryingConnectionRequester``), :mod:`.udp_client`
(``UdpConnectionRequester``), :mod:`.stun_server` (``StunServerProtocol``, ``LoginCache``)
and :mod:`.stun_service` (the STUN server of ``serve`` and UDP requests from its socket),
so the pure parts import without Twisted.
"""

from acs_security.connreq.policy import BackoffPolicy, parse_retry_after
from acs_security.connreq.stun import (
    StunAttribute,
    StunError,
    StunMessage,
    binding_request,
    binding_response,
    decode_message,
    encode_message,
)
from acs_security.connreq.udp import (
    HostPort,
    UdpAddressError,
    UdpConnectionRequest,
    UdpRejectReason,
    UdpRequestError,
    UdpRequestVerifier,
    UdpVerdict,
    build_udp_connection_request,
    parse_host_port,
    parse_udp_connection_request,
    udp_signature,
)

__all__ = [
    "BackoffPolicy",
    "HostPort",
    "StunAttribute",
    "StunError",
    "StunMessage",
    "UdpAddressError",
    "UdpConnectionRequest",
    "UdpRejectReason",
    "UdpRequestError",
    "UdpRequestVerifier",
    "UdpVerdict",
    "binding_request",
    "binding_response",
    "build_udp_connection_request",
    "decode_message",
    "encode_message",
    "parse_host_port",
    "parse_retry_after",
    "parse_udp_connection_request",
    "udp_signature",
]
