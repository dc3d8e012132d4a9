"""Prometheus metrics fed the way the CWMP resource's observer feeds them."""

from __future__ import annotations

from acs_security.server.metrics import AcsMetrics, refusal_reason


def test_refusals_are_counted_by_a_bounded_reason():
    metrics = AcsMetrics()
    for detail in ("busy: device in a session on node acs-2", "busy: device in a session on node acs-3",
                   "busy: session limit reached", "busy: device already in a session",
                   "auth: no credentials", "protocol: not a SOAP envelope", "something new"):
        metrics.observe_session({"device": "D", "outcome": "refused", "detail": detail})
    metrics.observe_session({"device": "D", "outcome": "done", "events": ["2 PERIODIC"], "duration_ms": 12})
    text = metrics.render().decode()
    assert 'acs_cwmp_refusals_total{reason="device_other_node"} 2.0' in text
    for reason in ("capacity", "device_busy", "auth", "protocol", "other"):
        assert f'acs_cwmp_refusals_total{{reason="{reason}"}} 1.0' in text
    assert 'acs_cwmp_sessions_total{outcome="refused"} 7.0' in text
    assert "acs-2" not in text  # node names and devices stay out of the labels
    assert refusal_reason("") == "other"


def test_connections_closed_refused_and_open_are_exported():
    from tests.server.test_edge import Echo, get
    from tests.server.wire import Wire

    metrics = AcsMetrics()
    w = Wire(Echo(), header_timeout=5, max_total=2, observe=metrics.observe_edge)
    metrics.watch_connections({"cwmp": w.counts})
    slow = w.connect(port=1)
    served = w.connect(port=2)
    served.send(get())
    w.connect(port=3)  # over the total cap
    assert 'acs_http_open_connections{group="cwmp"} 2.0' in metrics.render().decode()
    w.clock.advance(5)
    slow.lose()
    text = metrics.render().decode()
    assert 'acs_http_connections_closed_total{listener="cwmp",reason="header_timeout"} 1.0' in text
    assert 'acs_http_connections_refused_total{listener="cwmp",reason="max_connections"} 1.0' in text
    assert 'acs_http_open_connections{group="cwmp"} 1.0' in text


def test_nonce_cache_outcomes_are_read_when_scraped():
    from acs_security.connreq.digest_cache import DigestNonceCache, cache_key
    from acs_security.httpauth.digest import DigestChallenge

    metrics = AcsMetrics()
    cache = DigestNonceCache()
    metrics.watch_nonce_cache(cache)
    cache.remember(cache_key("http://192.0.2.1:7547/", "acs"), DigestChallenge("r", "n"), 1, 0.0)
    cache.record_outcome(True)
    cache.record_outcome(True)
    cache.record_outcome(False)
    text = metrics.render().decode()
    assert 'acs_connection_request_preemptive_digest_total{outcome="accepted"} 2.0' in text
    assert 'acs_connection_request_preemptive_digest_total{outcome="refused"} 1.0' in text
    assert "acs_connection_request_nonce_cache_entries 1.0" in text
