"""The simulated fleet's arguments: which cannot work (pure)."""

from __future__ import annotations

__all__ = ["FleetConfigError", "check_arguments", "endpoint"]


class FleetConfigError(ValueError):
    """A fleet argument that cannot work; the message names it."""


def endpoint(text: str | None, what: str) -> tuple[str, int] | None:
    """``HOST:PORT`` as (host, port); None for None. Raises FleetConfigError naming ``what``."""
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise FleetConfigError(f"{what}: {text!r} is not HOST:PORT")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def check_arguments(*, phones: int, acs_url: str, max_concurrent_sessions: int, inform_interval: float,
                    jitter: float, retry_scale: float, request_timeout: float, cr_password_mode: str,
                    cr_password: str, nat: float, stun_keepalive: int, xmpp: float, serial_prefix: str,
                    serial_start: int) -> None:
    """Raises FleetConfigError for the first argument of SimulatedFleet that cannot work."""
    if phones < 0:
        raise FleetConfigError("phones must not be negative")
    if not acs_url.startswith(("http://", "https://")):
        raise FleetConfigError(f"acs_url {acs_url!r} is not an http:// or https:// URL")
    if max_concurrent_sessions < 1:
        raise FleetConfigError("max_concurrent_sessions must be at least 1")
    if inform_interval < 1:
        raise FleetConfigError("inform_interval must be at least 1 second (TR-181 minimum)")
    if not 0 <= jitter < 1 or retry_scale <= 0 or request_timeout <= 0:
        raise FleetConfigError("jitter must be in [0, 1); retry_scale and request_timeout > 0")
    if cr_password_mode not in ("per-phone", "shared"):
        raise FleetConfigError("cr_password_mode must be 'per-phone' or 'shared'")
    if cr_password_mode == "shared" and not cr_password:
        raise FleetConfigError("cr_password_mode 'shared' needs cr_password")
    if not 0 <= nat <= 1 or stun_keepalive < 1 or not 0 <= xmpp <= 1:
        raise FleetConfigError("nat and xmpp must be rates in [0, 1] and stun_keepalive at least 1 second")
    if not serial_prefix or len(serial_prefix) > 48 or serial_start < 0:
        # DeviceIdStruct SerialNumber is at most 64 characters (cwmp-1-2.xsd).
        raise FleetConfigError("serial_prefix must be 1 to 48 characters and serial_start not negative")
