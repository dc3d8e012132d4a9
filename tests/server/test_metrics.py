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
