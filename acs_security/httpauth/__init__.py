"""HTTP authentication, both sides, without I/O: Digest (RFC 7616) and Basic (RFC 7617).

The ACS checks phones posting CWMP and answers phones' connection-request challenges;
the simulated phones check the ACS's connection requests. One implementation serves all
three. The Twisted resource lives in :mod:`acs_security.httpauth.twisted_resource` and is
not imported here, so the pure modules import without Twisted.
"""

from acs_security.httpauth.basic import (
    BasicCredentials,
    BasicVerifier,
    basic_allowed,
    basic_authorization,
    basic_challenge,
    credentials_match,
    parse_basic,
)
from acs_security.httpauth.digest import (
    ALGORITHMS,
    DigestChallenge,
    DigestCredentials,
    DigestVerifier,
    UnsupportedDigestError,
    compute_response,
    digest_authorization,
    parse_digest_challenge,
    parse_digest_credentials,
    select_digest_challenge,
)
from acs_security.httpauth.headers import (
    AuthHeaderError,
    AuthParams,
    parse_authorization,
    parse_challenges,
)
from acs_security.httpauth.nonces import NonceCodec, NonceCountTracker, NonceUse, ReplayVerdict
from acs_security.httpauth.result import AuthFailure, AuthResult

__all__ = [
    "ALGORITHMS",
    "AuthFailure",
    "AuthHeaderError",
    "AuthParams",
    "AuthResult",
    "BasicCredentials",
    "BasicVerifier",
    "DigestChallenge",
    "DigestCredentials",
    "DigestVerifier",
    "NonceCodec",
    "NonceCountTracker",
    "NonceUse",
    "ReplayVerdict",
    "UnsupportedDigestError",
    "basic_allowed",
    "basic_authorization",
    "basic_challenge",
    "compute_response",
    "credentials_match",
    "digest_authorization",
    "parse_authorization",
    "parse_basic",
    "parse_challenges",
    "parse_digest_challenge",
    "parse_digest_credentials",
    "select_digest_challenge",
]
