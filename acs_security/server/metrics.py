"""Prometheus metrics of one ACS process (prometheus-client, a registry per server).

Nothing global: each :class:`AcsMetrics` owns a ``CollectorRegistry`` (the library's
default registry is process-global state, and tests run several servers in a process).
The server feeds it from hooks that already exist: the CWMP resource's session observer,
wrappers around the connection-request clients and the store (:class:`TimedStore`,
:class:`CountingRequester`), and a collector that reads the job engine at scrape time.
No label carries a device id or anything secret (cardinality and privacy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["AcsMetrics", "TimedStore", "CountingRequester", "CONTENT_TYPE_LATEST", "engine_states"]

#: Session durations: CWMP sessions last from tens of milliseconds to the session timeout.
SESSION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
# Bounded label values: anything else is counted as "other" so a hostile CPE cannot make
# the scrape grow without bound (event codes are free text in an Inform).
_MAX_LABEL = 64


def _label(value: Any) -> str:
    text = str(value)
    return text if 0 < len(text) <= _MAX_LABEL and text.isprintable() else "other"


#: Refusal details (cwmp_resource.py) by prefix -> the reason label; the rest is "other".
_REFUSALS = (("busy: session limit", "capacity"), ("busy: device in a session on node", "device_other_node"),
             ("busy:", "device_busy"), ("auth:", "auth"), ("protocol:", "protocol"), ("inform:", "protocol"),
             ("store:", "store_unavailable"))


def refusal_reason(detail: str) -> str:
    """A bounded label for a refusal's detail (details name devices and nodes)."""
    for prefix, reason in _REFUSALS:
        if detail.startswith(prefix):
            return reason
    return "other"


def _fault_code(fault: Any) -> str:
    if isinstance(fault, Mapping):
        return _label(fault.get("code", "other"))
    if isinstance(fault, (tuple, list)) and fault:
        for part in fault:
            if isinstance(part, int):
                return str(part)
    return _label(fault)


class _EngineCollector:
    """Jobs and tasks by state, read from the engine's live jobs when scraped."""

    def __init__(self, source: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]]) -> None:
        self._source = source

    def collect(self) -> Any:
        jobs, tasks = self._source()
        g = GaugeMetricFamily("acs_jobs", "Jobs known to this node's engine, by state", labels=["state"])
        for state, n in sorted(jobs.items()):
            g.add_metric([state], n)
        yield g
        g = GaugeMetricFamily("acs_tasks", "Per-device tasks of this node's jobs, by state", labels=["state"])
        for state, n in sorted(tasks.items()):
            g.add_metric([state], n)
        yield g


class _DesiredCollector:
    """acs_desired_devices{assignment, state} from a snapshot of store counts."""

    def __init__(self, source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._source = source

    def collect(self) -> Any:
        g = GaugeMetricFamily("acs_desired_devices", "Devices an enabled assignment selects, by compliance state "
                              "(compliant, drifted, faulted, skipped, overridden, unknown; selected: all of them), "
                              "from the store", labels=["assignment", "state"])
        for (assignment, state), n in sorted(self._source().items()):
            g.add_metric([_label(assignment), _label(state)], n)
        yield g
class _ConnectionCollector:
    """Open connections per listener group, read from the groups' counts when scraped."""

    def __init__(self, groups: Mapping[str, Any]) -> None:
        self._groups = dict(groups)

    def collect(self) -> Any:
        g = GaugeMetricFamily("acs_http_open_connections", "Open connections, by listener group "
                              "(cwmp: plain and TLS together; api)", labels=["group"])
        for name, counts in sorted(self._groups.items()):
            g.add_metric([name], counts.open)
        yield g
class _StoreHealthCollector:
    """The store's outages (store/health.py), read when scraped."""

    def __init__(self, health: Any) -> None:
        self._health = health

    def collect(self) -> Any:
        health = self._health
        outage = health.outage if health.unavailable else None
        g = GaugeMetricFamily("acs_store_unavailable", "1 while the store's database cannot be reached "
                              "(unreachable) or cannot grow (full), else 0", labels=["kind"])
        for kind in ("unreachable", "full"):
            g.add_metric([kind], 1.0 if outage is not None and outage.kind == kind else 0.0)
        yield g
        yield CounterMetricFamily("acs_store_outages", "Store outages begun since the server started",
                                  value=health.outages)
        yield CounterMetricFamily("acs_store_outage_seconds", "Seconds the store was unavailable since "
                                  "the server started (the outage in progress included)",
                                  value=health.seconds_unavailable())


class _StunCollector:
    """The node's STUN server (connreq/stun_service.py), read when scraped: what came in,
    what was refused and why, what was stored, and the UDP connection requests held back."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def collect(self) -> Any:
        service = self._service
        protocol = service.protocol
        requests = CounterMetricFamily(
            "acs_stun_requests", "Datagrams to the STUN server, by outcome (answered; malformed: not a "
            "Binding Request; refused reasons: bad_integrity, unknown_username, integrity_without_login, "
            "busy, lookup_failed)", labels=["outcome"])
        requests.add_metric(["answered"], service.bindings_seen)
        requests.add_metric(["malformed"], protocol.dropped)
        for reason, count in sorted(protocol.refused.items()):
            requests.add_metric([_label(reason)], count)
        yield requests
        yield CounterMetricFamily("acs_stun_binding_changes", "Binding Requests that carried BINDING-CHANGE "
                                  "(TR-111: the phone's NAT mapping changed)", value=service.binding_changes)
        yield CounterMetricFamily("acs_stun_bindings_written", "Phones' public UDP addresses written to the "
                                  "store", value=service.bindings_written)
        yield CounterMetricFamily("acs_stun_write_failures", "Batches of bindings the store refused (the "
                                  "phones' next keep-alives bring them again)", value=service.write_failures)
        drops = service.kernel_drops()
        if drops is not None:
            yield CounterMetricFamily("acs_stun_receive_drops", "Datagrams the kernel dropped at the STUN socket, its "
                                      "receive buffer full (raise net.core.rmem_max: docs/nat.md)", value=drops)
        limited = service.requester.limited if service.requester is not None else 0
        yield CounterMetricFamily("acs_udp_connection_requests_limited", "UDP connection requests not sent: "
                                  "the same address was sent one less than the minimum interval ago",
                                  value=limited)


class _NonceCacheCollector:
    """The HTTP connection-request client's digest nonce cache (connreq/digest_cache.py),
    read when scraped."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    def collect(self) -> Any:
        c = CounterMetricFamily("acs_connection_request_preemptive_digest", "HTTP connection requests sent with "
                                "Authorization at once on the phone's last nonce (RFC 7616 nc), by whether the "
                                "phone accepted it (refused: one more request answers its fresh challenge)",
                                labels=["outcome"])
        c.add_metric(["accepted"], self._cache.accepted)
        c.add_metric(["refused"], self._cache.refused)
        yield c
        yield GaugeMetricFamily("acs_connection_request_nonce_cache_entries", "Phones whose last digest nonce "
                                "is remembered for reuse", value=len(self._cache))


class AcsMetrics:
    """The counters and histograms, plus :meth:`render` for ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Counter("acs_cwmp_sessions", "CWMP sessions ended, by outcome", ["outcome"], registry=r)
        self.informs = Counter("acs_cwmp_informs", "Inform events received, by event code", ["event"], registry=r)
        self.rpcs = Counter("acs_cwmp_rpcs", "RPCs exchanged in CWMP sessions, by method", ["rpc"], registry=r)
        self.faults = Counter("acs_cwmp_cpe_faults", "CPE faults received, by fault code", ["code"], registry=r)
        self.connection_requests = Counter(
            "acs_connection_requests", "Connection requests sent, by method and result",
            ["method", "result"], registry=r)
        self.xmpp_connected = Gauge("acs_xmpp_connected", "1 while this node is logged in to its XMPP server "
                                    "(TR-069 Annex K connection requests)", registry=r)
        self.xmpp_requests = Counter("acs_xmpp_requests", "XMPP connection requests sent, by outcome",
                                     ["outcome"], registry=r)
        self.session_duration = Histogram("acs_cwmp_session_duration_seconds", "CWMP session duration",
                                          buckets=SESSION_BUCKETS, registry=r)
        self.store_latency = Histogram("acs_store_call_seconds", "Store call latency, by method", ["method"],
                                       buckets=STORE_BUCKETS, registry=r)
        self.refusals = Counter(
            "acs_cwmp_refusals", "Sessions refused at their Inform, by reason (device_other_node: the "
            "device is in a session on another node)", ["reason"], registry=r)
        self.api_requests = Counter("acs_nbi_requests", "Northbound requests, by face and HTTP status",
                                    ["face", "status"], registry=r)
        self.file_requests = Counter(
            "acs_file_requests", "Requests to the file endpoint (cfg.xml downloads and uploads), by method "
            "and outcome (served, stored, unchanged, not_found, expired, gone, used, unauthorized, "
            "bad_method, bad_body, error)", ["method", "outcome"], registry=r)
        # Desired state (decision 0009): how sessions judged assigned devices, what they sent,
        # what drift they found; the compliance gauges come from the store (watch_desired).
        self.desired_checks = Counter(
            "acs_desired_checks", "Sessions of devices that assignments select, by check (fast: settled and "
            "remembered, no store read; full)", ["check"], registry=r)
        self.desired_sets = Counter("acs_desired_sets", "SetParameterValues of assignments, by result",
                                    ["result"], registry=r)
        self.desired_drift = Counter("acs_desired_drift", "Drift of controlled settings found, by action "
                                     "(corrected, reported, correction_failed)", ["action"], registry=r)
        self.connections_closed = Counter(
            "acs_http_connections_closed", "Connections the server closed for a timeout, by listener and "
            "reason (header_timeout, body_timeout, idle_timeout)", ["listener", "reason"], registry=r)
        self.connections_refused = Counter(
            "acs_http_connections_refused", "Connections refused, by listener and reason (max_connections, "
            "max_connections_per_ip, proxy_untrusted, proxy_invalid)", ["listener", "reason"], registry=r)
        self.api_refusals = Counter(
            "acs_nbi_refusals", "Northbound requests refused by face (rest, soap) and reason (unauthorized: "
            "no valid token, HTTP 401; forbidden: the token's role may not, HTTP 403 or SOAP Client.Forbidden)",
            ["face", "reason"], registry=r)
        self.http_503 = Counter(
            "acs_cwmp_http_503", "CWMP requests answered 503 + Retry-After, by reason (capacity, "
            "device_busy, device_other_node, store_unavailable)", ["reason"], registry=r)

    def watch_engine(self, source: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]]) -> None:
        """Report jobs and tasks by state from ``source()`` -> (jobs, tasks) at each scrape."""
        self.registry.register(_EngineCollector(source))

    def observe_desired(self, counter: str, label: str) -> None:
        """One event of the assignments' session side: ("check", fast|full), ("set",
        applied|faulted), ("drift", action)."""
        metric = {"check": self.desired_checks, "set": self.desired_sets, "drift": self.desired_drift}.get(counter)
        if metric is not None:
            metric.labels(_label(label)).inc()

    def watch_desired(self, source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Report devices per assignment and compliance state from ``source()`` at each scrape
        (a snapshot the server refreshes from the store, so every node reports the same)."""
        self.registry.register(_DesiredCollector(source))
    def watch_stun(self, service: Any) -> None:
        """Report the node's STUN server (a connreq/stun_service.py StunService) at each scrape."""
        self.registry.register(_StunCollector(service))

    def watch_nonce_cache(self, cache: Any) -> None:
        """Report the connection-request nonce cache's counters when scraped."""
        self.registry.register(_NonceCacheCollector(cache))

    def watch_connections(self, groups: Mapping[str, Any]) -> None:
        """Report the open connections of each listener group (name -> ConnectionCounts)."""
        self.registry.register(_ConnectionCollector(groups))

    def observe_edge(self, event: str, listener: str, reason: str) -> None:
        """A connection closed for a timeout (``event`` "closed") or refused ("refused")."""
        counter = self.connections_closed if event == "closed" else self.connections_refused
        counter.labels(_label(listener), _label(reason)).inc()
    def watch_store(self, health: Any) -> None:
        """Report the store's outages from ``health`` (a store/health.py StoreHealth) at each
        scrape: acs_store_unavailable, acs_store_outages_total, acs_store_outage_seconds_total."""
        self.registry.register(_StoreHealthCollector(health))

    def observe_session(self, entry: Mapping[str, Any]) -> None:
        """One CWMP session as the CWMP resource's observer reports it (device, events, rpcs,
        faults, outcome, duration_ms, and status when it was answered 503). Never raises
        for odd values."""
        self.sessions.labels(_label(entry.get("outcome") or "unknown")).inc()
        if entry.get("outcome") == "refused":
            self.refusals.labels(refusal_reason(str(entry.get("detail") or ""))).inc()
        if entry.get("status") == 503:
            self.http_503.labels(refusal_reason(str(entry.get("detail") or ""))).inc()
        for event in entry.get("events") or ():
            self.informs.labels(_label(event)).inc()
        for rpc in entry.get("rpcs") or ():
            self.rpcs.labels(_label(rpc)).inc()
        for fault in entry.get("faults") or ():
            self.faults.labels(_fault_code(fault)).inc()
        duration = entry.get("duration_ms")
        if isinstance(duration, (int, float)) and duration >= 0:
            self.session_duration.observe(duration / 1000.0)

    def observe_connection_request(self, method: str, result: str) -> None:
        self.connection_requests.labels(_label(method), _label(result)).inc()

    def observe_xmpp_request(self, outcome: str) -> None:
        self.xmpp_requests.labels(_label(outcome)).inc()
        self.connection_requests.labels("xmpp", "sent" if outcome == "ok" else "error").inc()

    def set_xmpp_connected(self, up: bool) -> None:
        self.xmpp_connected.set(1 if up else 0)

    def observe_store_call(self, method: str, seconds: float) -> None:
        self.store_latency.labels(_label(method)).observe(max(0.0, seconds))

    def observe_file_request(self, method: str, outcome: str) -> None:
        self.file_requests.labels(_label(method), _label(outcome)).inc()

    def observe_request(self, face: str, status: int) -> None:
        self.api_requests.labels(_label(face), str(int(status))).inc()

    def observe_refusal(self, face: str, reason: str) -> None:
        """One northbound request refused by authentication or role."""
        self.api_refusals.labels(_label(face), _label(reason)).inc()

    def render(self) -> bytes:
        """The text exposition format (``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)


def engine_states(engine: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(jobs by state, tasks by state) of a FleetEngine's live jobs."""
    jobs: dict[str, int] = {}
    tasks: dict[str, int] = {}
    for job in list(getattr(engine, "jobs", {}).values()):
        jobs[job.state] = jobs.get(job.state, 0) + 1
        for task in list(job.tasks.values()):
            state = getattr(task.state, "value", task.state)
            tasks[state] = tasks.get(state, 0) + 1
    return jobs, tasks



class TimedStore:
    """A DeferredStore whose ``call`` is timed; everything else passes through."""

    def __init__(self, inner: Any, metrics: AcsMetrics, seconds: Callable[[], float]) -> None:
        self._inner = inner
        self._metrics = metrics
        self._seconds = seconds

    def call(self, method_name: str, *args: Any, **kwargs: Any) -> Any:
        started = self._seconds()
        d = self._inner.call(method_name, *args, **kwargs)

        def done(result: Any) -> Any:
            self._metrics.observe_store_call(method_name, self._seconds() - started)
            return result

        return d.addBoth(done)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingRequester:
    """A connection-request client (HTTP ``request`` or UDP ``send``) whose outcomes are
    counted by method ("http" / "udp") and result."""

    def __init__(self, inner: Any, metrics: AcsMetrics, method: str) -> None:
        self._inner = inner
        self._metrics = metrics
        self._method = method

    def _count(self, result: Any) -> Any:
        if hasattr(result, "kind"):
            outcome = getattr(result.kind, "value", str(result.kind))
        elif hasattr(result, "ok"):
            outcome = "sent" if result.ok else "error"
        else:
            outcome = "error"  # a Failure
        self._metrics.observe_connection_request(self._method, str(outcome))
        return result

    def request(self, url: str, username: str, password: str) -> Any:
        return self._inner.request(url, username, password).addBoth(self._count)

    def send(self, address: str, username: str, password: str) -> Any:
        return self._inner.send(address, username, password).addBoth(self._count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
