"""Guardrails: refuse a policy that would cut the phones off their ACS, before any is sent.

Pure: the policy, the ACS's facts (:class:`AcsContext`) and the data model come in; a list
of :class:`Finding` comes out. The only outside knowledge used is the local OpenSSL (stdlib
:mod:`ssl`), which expands cipher strings exactly as the data-model layer already does.

The traps come from the seed documents (``shared/seeds/000_*.txt`` unless said otherwise):
FIPS mode disables TR-069 ("Enable FIPS Mode"); restricted access domains cut the phone off
every server not listed ("Configure Restricted Access Domains"); a TLS minimum version above
the server's highest version ends in a protocol alert ("Control the TLS Minimum Value"); a
cipher list sharing no suite with the server leaves no handshake ("Configure the Cipher
List"). Errors refuse the push unless the operator forces that rule by id; warnings are
reported only. Data-model errors (values the phone itself would refuse) cannot be forced.
See docs/guardrails.md.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from acs_security.mapping import Catalogue, ValidationError, expand_cipher_list, load_catalogue, validate_values
from acs_security.mapping.errors import SECRET_MASK
from acs_security.mapping.records import PER_EXT_ELEMENT_SUFFIX
from acs_security.policy.document import Policy, PolicyError

__all__ = [
    "ERROR",
    "WARNING",
    "TLS_VERSIONS",
    "AcsContext",
    "Finding",
    "GuardrailRule",
    "RULES",
    "FORCEABLE",
    "UnknownRuleError",
    "acs_tls_suites",
    "blocking",
    "check_force",
    "context_from_config",
    "exit_code",
    "lint_document",
    "lint_policy",
    "refused_findings",
]

ERROR = "error"
WARNING = "warning"
#: TLS versions as the phone's settings spell them, oldest first.
TLS_VERSIONS: tuple[str, ...] = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")

FIPS_KEY = "Device.X_CISCO_SecuritySettings.FIPSMode"  # web-only: keyed by its TR-069 path
RAD = "Restricted_Access_Domains"
STUN_ADDRESS = "Device.ManagementServer.STUNServerAddress"  # TR-181, keyed by path (no cfg.xml tag)
STUN_PORT = "Device.ManagementServer.STUNServerPort"
MIN_VERSION_KEYS = ("TLS_Min_Version", "TLS_Client_Min_Version")  # the phone as a TLS client
S000 = "seed 000"


@dataclass(frozen=True, slots=True)
class GuardrailRule:
    """One guardrail: its id (what ``--force`` names), severity and where it comes from."""

    id: str
    severity: str
    title: str
    source: str
    forceable: bool = True


def _rules(*rules: GuardrailRule) -> Mapping[str, GuardrailRule]:
    return MappingProxyType({r.id: r for r in rules})


RULES: Mapping[str, GuardrailRule] = _rules(
    GuardrailRule("fips-mode-over-tr069", ERROR, "FIPS Mode = Yes over TR-069",
                  f"{S000} 'Enable FIPS Mode' (FIPS mode has limitations: TR069 is Disabled; "
                  "HTTP Digest Authentication is Disabled)"),
    GuardrailRule("tr069-disabled", ERROR, "Enable TR-069 = No",
                  "Cisco MPP admin guide, Voice > TR-069 'Enable TR-069'; TR-181 "
                  "Device.ManagementServer.EnableCWMP"),
    GuardrailRule("restricted-domains-exclude-acs", ERROR,
                  "Restricted Access Domains leave out the ACS host",
                  f"{S000} 'Configure Restricted Access Domains' (registration, provisioning, upgrade "
                  "and report that don't use the specified servers can't be performed on the phone)"),
    GuardrailRule("restricted-domains-exclude-provisioning", ERROR,
                  "Restricted Access Domains leave out a provisioning host",
                  f"{S000} 'Configure Restricted Access Domains' (ensure that the servers of Profile "
                  "Rule, Upgrade Rule, Report Rule and Custom CA Rule are included in the list)"),
    GuardrailRule("acs-url-outside-restricted-domains", ERROR,
                  "ACS URL changed to a host outside the Restricted Access Domains",
                  f"{S000} 'Configure Restricted Access Domains'"),
    GuardrailRule("stun-server-outside-restricted-domains", ERROR,
                  "STUN server outside the Restricted Access Domains",
                  f"{S000} 'Configure Restricted Access Domains'; TR-111 part 2 (the phone's STUN client "
                  "keeps its NAT binding with STUNServerAddress)"),
    GuardrailRule("stun-server-not-this-acs", ERROR, "STUN server that is not this ACS's",
                  "TR-111 part 2 / TR-069 Annex G (UDP connection requests come from the STUN server the "
                  "phone keeps its binding with; another server's bindings are unknown to this ACS)"),
    GuardrailRule("tls-min-above-acs-max", ERROR,
                  "TLS minimum version above the ACS's highest version",
                  f"{S000} 'Control the TLS Minimum Value' (client TLS min version above the server's "
                  "highest TLS version: Protocol alert)"),
    GuardrailRule("cipher-list-no-common-suite", ERROR,
                  "TLS Cipher List shares no suite with the ACS's HTTPS endpoint",
                  f"{S000} 'Configure the Cipher List' (the list applies to every TLS application of "
                  "the phone, TR-069 included; blank or invalid: TR-069 uses curl's DEFAULT suites)"),
    GuardrailRule("proxy-manual-without-host", ERROR, "Proxy Mode Manual without a Proxy Host",
                  f"{S000} 'Set Up a Proxy Server' step 3 and 'Parameters for HTTP Proxy Settings' "
                  "(Proxy Host: if you set the Proxy Mode to Manual, you must configure this parameter)"),
    GuardrailRule("datamodel", ERROR, "a value or combination the phone refuses",
                  "the data model (datamodel/settings.toml and rules.toml)", forceable=False),
    GuardrailRule("tls-legacy-version-allowed", WARNING, "TLS 1.0 or 1.1 allowed",
                  f"{S000} 'Control the TLS Minimum Value'; RFC 8996 deprecates TLS 1.0 and 1.1"),
    GuardrailRule("weak-cipher-suites", WARNING, "weak suites in the expanded cipher list",
                  f"{S000} 'Configure the Cipher List' (its example RSA:!aNULL:!eNULL excludes suites "
                  "offering no encryption and no authentication); RFC 7465 (RC4); RFC 9325"),
    GuardrailRule("firewall-disabled", WARNING, "phone firewall disabled",
                  f"{S000} 'Enable the Firewall' (the firewall protects the phone from malicious "
                  "incoming traffic; it is enabled by default)"),
    GuardrailRule("mediasec-over-udp", WARNING, "media security negotiated over SIP on UDP",
                  f"{S000} 'Enable Client-Initiated Mode for Media Plane Security Negotiations' and "
                  "Table 7 (MediaSec Over TLS Only)"),
    GuardrailRule("tls-name-validate-off", WARNING, "TLS Name Validate = No with SIP over TLS",
                  f"{S000} 'Enable Hostname Verification for SIP over TLS'"),
    GuardrailRule("proxy-credentials-cleartext", WARNING, "HTTP proxy credentials over plain HTTP",
                  f"{S000} 'Set Up a Proxy Server' and 'Parameters for HTTP Proxy Settings' (Proxy Host "
                  "takes no scheme: the phone talks to its proxy in plain HTTP)"),
    GuardrailRule("acs-host-unknown", WARNING, "Restricted Access Domains not checked against the ACS",
                  f"{S000} 'Configure Restricted Access Domains'"),
)
#: Rule ids an operator may force (the error rules except the data model's).
FORCEABLE: frozenset[str] = frozenset(r.id for r in RULES.values() if r.severity == ERROR and r.forceable)
# Data-model warnings that a guardrail above states more precisely.
_SUPERSEDED = frozenset({"fips-disables-tr069", "restricted-domains-cover-acs"})


class UnknownRuleError(ValueError):
    """``force`` names a rule that is not a forceable guardrail; ``rules`` lists them."""

    def __init__(self, rules: Collection[str]) -> None:
        self.rules = tuple(sorted(rules))
        super().__init__(f"cannot force {', '.join(self.rules)}: forceable rules are "
                         + ", ".join(sorted(FORCEABLE)))


@dataclass(frozen=True, slots=True)
class AcsContext:
    """What the ACS is, as the phones see it. Unknown facts disable the checks needing them.

    ``acs_host``: host of the URL phones use (config ``public_url``); ``provisioning_hosts``:
    other servers the phones must keep reaching; ``https``: phones reach the ACS over HTTPS;
    ``tls_max_version`` / ``tls_suites``: the highest TLS version and the TLS <= 1.2 suites
    (OpenSSL names) the ACS's HTTPS endpoint accepts.
    """

    acs_host: str | None = None
    provisioning_hosts: tuple[str, ...] = ()
    https: bool = False
    tls_max_version: str = "TLS 1.3"
    tls_suites: frozenset[str] = frozenset()
    #: Where phones reach this ACS's STUN server (config stun_public, else public_url's host
    #: and stun_listen's port); None: no STUN server, or its public address is unknown.
    stun_host: str | None = None
    stun_port: int | None = None

    def __post_init__(self) -> None:
        if self.tls_max_version not in TLS_VERSIONS:
            raise ValueError(f"tls_max_version {self.tls_max_version!r} is not one of {', '.join(TLS_VERSIONS)}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of a policy: rule, severity, setting(s), value (secrets masked), reason
    with its source, and how to fix it."""

    rule: str
    severity: str
    settings: tuple[str, ...]
    value: str | None
    reason: str
    source: str
    fix: str
    forceable: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {"rule": self.rule, "severity": self.severity, "settings": list(self.settings),
               "value": self.value, "reason": self.reason, "source": self.source, "fix": self.fix,
               "forceable": self.forceable}
        out.update(self.extra)
        return out

    def line(self) -> str:
        """One line of text: ``error fips-mode-over-tr069: KEY = 'Yes': reason (source)``."""
        shown = f" = {self.value!r}" if self.value is not None else ""
        return f"{self.severity} {self.rule}: {', '.join(self.settings)}{shown}: {self.reason} ({self.source})"


def _finding(rule_id: str, settings: Iterable[str], value: str | None, reason: str, fix: str,
             **extra: Any) -> Finding:
    rule = RULES[rule_id]
    return Finding(rule_id, rule.severity, tuple(settings), value, reason, rule.source, fix,
                   rule.forceable, dict(extra))


# ---------------------------------------------------------------------- ACS facts

def acs_tls_suites(cipher_string: str, certificate_auth: str | None = None) -> frozenset[str]:
    """The TLS <= 1.2 suites an OpenSSL server with ``cipher_string`` can negotiate.

    ``certificate_auth`` ("rsa" or "ecdsa", the key of the server certificate) keeps only
    the suites that certificate can authenticate. DHE suites are left out: the HTTPS
    endpoint configures no Diffie-Hellman parameters, so OpenSSL never picks them.
    Raises ValueError when the string selects nothing.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers(cipher_string)
    except ssl.SSLError:
        raise ValueError(f"cipher string {cipher_string!r} selects no suite with {ssl.OPENSSL_VERSION}") from None
    wanted = {"rsa": "auth-rsa", "ecdsa": "auth-ecdsa"}.get(certificate_auth or "")
    return frozenset(
        c["name"] for c in ctx.get_ciphers()
        if c["protocol"] != "TLSv1.3" and c.get("kea") != "kx-dhe"
        and (wanted is None or c.get("auth") == wanted)
    )


def context_from_config(config: Any, *, certificate_auth: str | None = None) -> AcsContext:
    """The AcsContext of a ServerConfig. Phones use HTTPS when ``public_url`` is https, or,
    without a public URL, whenever an HTTPS listener exists (the cautious guess).
    Raises ValueError when the configured cipher string selects nothing."""
    public_url = getattr(config, "public_url", None)
    if public_url:
        https = urlsplit(public_url).scheme == "https"
        host = (urlsplit(public_url).hostname or "").lower() or None
    else:
        https = getattr(config, "https_listen", None) is not None
        host = None
    suites: frozenset[str] = frozenset()
    if https:
        suites = acs_tls_suites(config.tls_ciphers, certificate_auth)
    stun = getattr(config, "stun_address", None)
    return AcsContext(acs_host=host, provisioning_hosts=tuple(h.lower() for h in config.provisioning_hosts),
                      https=https, tls_max_version=config.tls_max_version, tls_suites=suites,
                      stun_host=stun[0].lower() if stun else None, stun_port=stun[1] if stun else None)


# ---------------------------------------------------------------------- helpers

def _domains(text: str) -> list[str]:
    return [d.strip().lower().rstrip(".") for d in text.split(",") if d.strip()]


def _covers(domains_text: str, host: str) -> bool:
    """The phone's test (seed 000): a host passes when it equals a listed domain or lies
    below one; an empty list restricts nothing."""
    domains = _domains(domains_text)
    host = host.lower().rstrip(".")
    return not domains or any(host == d or host.endswith("." + d) for d in domains)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _show(cat: Catalogue, key: str, value: str) -> str:
    found = cat.find(key)
    return SECRET_MASK if found is not None and found[0].secret and value else value


def _per_extension(policy: Policy, base: str) -> dict[int | None, tuple[str, str]]:
    """Values of a per-extension setting: {extension or None for the template: (key, value)}."""
    out: dict[int | None, tuple[str, str]] = {}
    template = base + PER_EXT_ELEMENT_SUFFIX
    if template in policy.extension_settings:
        out[None] = (template, policy.extension_settings[template])
    prefix = base + "_"
    for key, value in policy.settings.items():
        rest = key[len(prefix):-1]
        if key.startswith(prefix) and key.endswith("_") and rest.isdigit():
            out[int(rest)] = (key, value)
    return out


def _ext_value(policy: Policy, cat: Catalogue, base: str, n: int | None) -> tuple[str | None, str]:
    """(key set by the policy or None, effective value) of ``base`` for extension n."""
    values = _per_extension(policy, base)
    if n in values:
        return values[n]
    if None in values and (n is None or policy.extensions == "all" or n in policy.extensions):
        return values[None]
    return None, cat.setting(base + PER_EXT_ELEMENT_SUFFIX).default


def _weak_categories(names: Iterable[str], flagged: Collection[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in names:
        tests = (("NULL", "NULL" in name), ("anonymous", name.startswith(("ADH", "AECDH")) or "anon" in name.lower()),
                 ("MD5", name.endswith("MD5")), ("RC4", "RC4" in name),
                 ("3DES", "DES-CBC3" in name or "3DES" in name), ("export", name.startswith("EXP")))
        hit = [label for label, ok in tests if ok]
        if not hit and name in flagged:
            hit = ["NULL" if "NULL" in name else "anonymous"]
        for label in hit:
            out.setdefault(label, []).append(name)
    return out


# ---------------------------------------------------------------------- the checks

def _check_lockouts(policy: Policy, ctx: AcsContext, cat: Catalogue) -> list[Finding]:
    s = policy.settings
    found: list[Finding] = []
    if s.get(FIPS_KEY) == "Yes":
        found.append(_finding(
            "fips-mode-over-tr069", [FIPS_KEY], "Yes",
            "FIPS Mode disables TR-069 and HTTP digest authentication: every phone that applies it stops "
            "talking to this ACS and can only be recovered on site or by profile",
            "leave FIPS Mode out of TR-069 policies; enable it by cfg.xml profile or on the phone's web page "
            "for phones not managed over TR-069"))
    if s.get("Enable_TR-069") == "No":
        found.append(_finding(
            "tr069-disabled", ["Enable_TR-069"], "No",
            "the phone's CWMP client turns off: it never informs this ACS again and refuses connection requests",
            "remove Enable_TR-069 from the policy or set it to Yes"))
    proxy_mode = s.get("Proxy_Mode")
    if proxy_mode == "Manual" and not s.get("Proxy_Host", "").strip():
        found.append(_finding(
            "proxy-manual-without-host", ["Proxy_Mode", "Proxy_Host"], "Manual",
            "Proxy Mode Manual needs a Proxy Host; without one the phone's HTTP applications have no way out",
            "set Proxy_Host (and Proxy_Port) in the same policy, or use Proxy Mode Auto or Off"))
    new_acs_url = s.get("ACS_URL", "").strip()
    new_acs_host = (urlsplit(new_acs_url).hostname or "").lower() if new_acs_url else ""
    if RAD in s and _domains(s[RAD]):
        rad = s[RAD]
        if new_acs_host:
            if not _covers(rad, new_acs_host):
                found.append(_finding(
                    "acs-url-outside-restricted-domains", ["ACS_URL", RAD], new_acs_url,
                    f"the new ACS host {new_acs_host!r} is not in Restricted Access Domains {rad!r}: the phones "
                    "would refuse to contact the ACS they are sent to",
                    f"add {new_acs_host} (or a parent domain) to Restricted_Access_Domains"))
        elif ctx.acs_host is None:
            found.append(_finding(
                "acs-host-unknown", [RAD], rad,
                "the server has no public_url, so this ACS's host is unknown and the list cannot be checked "
                "against it; a list without the ACS host locks every phone out",
                "set public_url in the server configuration to the URL the phones use"))
        elif _is_ip(ctx.acs_host):
            found.append(_finding(
                "restricted-domains-exclude-acs", [RAD], rad,
                f"the phones reach this ACS by IP address {ctx.acs_host}, which Restricted Access Domains "
                "(fully qualified domain names only) cannot list: any non-empty list locks them out",
                "give the ACS a DNS name (public_url) and list it, or leave Restricted_Access_Domains out",
                acs_host=ctx.acs_host))
        elif not _covers(rad, ctx.acs_host):
            found.append(_finding(
                "restricted-domains-exclude-acs", [RAD], rad,
                f"the ACS host {ctx.acs_host!r} (public_url) is not in the list: every phone that applies it "
                "stops contacting this ACS",
                f"add {ctx.acs_host} (or a parent domain) to Restricted_Access_Domains", acs_host=ctx.acs_host))
        missing = [h for h in ctx.provisioning_hosts if not _covers(rad, h)]
        if missing:
            found.append(_finding(
                "restricted-domains-exclude-provisioning", [RAD], rad,
                f"provisioning host(s) {', '.join(missing)} (configuration provisioning_hosts) are not in the "
                "list: profile, upgrade and report rules using them stop working",
                "add " + ", ".join(missing) + " (or parent domains) to Restricted_Access_Domains",
                hosts=missing))
    found.extend(_check_stun(policy, ctx))
    found.extend(_check_tls(policy, ctx, cat))
    return found


def _check_stun(policy: Policy, ctx: AcsContext) -> list[Finding]:
    """The STUN server the policy points the phones at (TR-111 part 2): inside the policy's
    Restricted Access Domains, and this ACS's own (docs/nat.md)."""
    s = policy.settings
    address = s.get(STUN_ADDRESS, "").strip().lower().rstrip(".")
    port_text = s.get(STUN_PORT, "").strip()
    found: list[Finding] = []
    rad = s.get(RAD, "")
    if address and _domains(rad) and (_is_ip(address) or not _covers(rad, address)):
        why = ("an IP address, which Restricted Access Domains (fully qualified domain names only) cannot list"
               if _is_ip(address) else f"not in Restricted Access Domains {rad!r}")
        found.append(_finding(
            "stun-server-outside-restricted-domains", [STUN_ADDRESS, RAD], address,
            f"the STUN server {address!r} is {why}: the phones would not keep a binding with it, and phones "
            "behind NAT could be woken only at their periodic Inform",
            f"add {address} (or a parent domain) to Restricted_Access_Domains" if not _is_ip(address)
            else "give the STUN server a DNS name and list it, or leave Restricted_Access_Domains out"))
    if ctx.stun_host is not None and (address or port_text):
        wrong_host = bool(address) and address != ctx.stun_host
        wrong_port = bool(port_text) and port_text != str(ctx.stun_port)
        if wrong_host or wrong_port:
            given = f"{address or '(the ACS URL host)'}:{port_text or '3478'}"
            found.append(_finding(
                "stun-server-not-this-acs", [k for k, bad in ((STUN_ADDRESS, wrong_host), (STUN_PORT, wrong_port))
                                             if bad], given,
                f"{given} is not this ACS's STUN server ({ctx.stun_host}:{ctx.stun_port}): the phones' bindings "
                "would be unknown here, and UDP connection requests would not pass their NATs",
                f"set STUNServerAddress = {ctx.stun_host!r} and STUNServerPort = {ctx.stun_port}, or configure "
                "stun_public if that server is this ACS's"))
    return found


def _check_tls(policy: Policy, ctx: AcsContext, cat: Catalogue) -> list[Finding]:
    s = policy.settings
    found: list[Finding] = []
    acs_max = TLS_VERSIONS.index(ctx.tls_max_version)
    for key in MIN_VERSION_KEYS:
        value = s.get(key)
        if value not in TLS_VERSIONS:
            continue
        if ctx.https and TLS_VERSIONS.index(value) > acs_max:
            found.append(_finding(
                "tls-min-above-acs-max", [key], value,
                f"the ACS's HTTPS endpoint speaks at most {ctx.tls_max_version}: the handshake ends in a "
                "protocol alert and the phones cannot reach the ACS",
                f"set {key} to {ctx.tls_max_version} or lower, or raise the ACS's tls_max_version"))
        if TLS_VERSIONS.index(value) < TLS_VERSIONS.index("TLS 1.2"):
            found.append(_finding(
                "tls-legacy-version-allowed", [key], value,
                f"{value} lets the phone's TLS clients fall back to a deprecated protocol version",
                f"set {key} to TLS 1.2"))
    cipher = s.get("TLS_Cipher_List")
    if cipher is None:
        return found
    offered: tuple[str, ...] = ()
    expansion = None
    if cipher.strip():
        try:
            expansion = expand_cipher_list(cipher, catalogue=cat)
            offered = expansion.suites
        except ValidationError:
            pass  # the data model reports it; the phone then uses per-application defaults
    if not offered:  # blank or invalid: TR-069 uses curl's DEFAULT suites (seed 000)
        curl = next((d for d in cat.ciphers.defaults if d.application == "curl"), None)
        offered = tuple(x for x in curl.suites if x) if curl is not None else ()
    if ctx.https and ctx.tls_suites and offered and not set(offered) & ctx.tls_suites:
        found.append(_finding(
            "cipher-list-no-common-suite", ["TLS_Cipher_List"], cipher,
            "expanded by OpenSSL the list shares no TLS 1.2 suite with the ACS's HTTPS endpoint: phones that "
            "negotiate TLS 1.2 or lower (firmware without TLS 1.3) fail the handshake and lose the ACS",
            "include a suite the ACS accepts, e.g. " + ", ".join(sorted(ctx.tls_suites)[:3]),
            acs_suites=sorted(ctx.tls_suites)))
    if expansion is not None:
        named = {p for e in expansion.elements if e.operator == "" and e.kind == "suite" for p in e.parts}
        weak = _weak_categories([*expansion.suites, *sorted(named)], expansion.weak)
        if weak:
            found.append(_finding(
                "weak-cipher-suites", ["TLS_Cipher_List"], cipher,
                "the expanded list contains " + "; ".join(f"{k} suites ({', '.join(v[:4])}"
                                                          + (", ..." if len(v) > 4 else "") + ")"
                                                          for k, v in weak.items()),
                "remove them, e.g. append :!aNULL:!eNULL:!MD5:!RC4:!3DES:!EXP (keywords the phone accepts: "
                "!aNULL:!eNULL:!MD5)", weak=weak))
    return found


def _check_hygiene(policy: Policy, cat: Catalogue) -> list[Finding]:
    s = policy.settings
    found: list[Finding] = []
    if s.get("Firewall") == "Disabled":
        found.append(_finding(
            "firewall-disabled", ["Firewall"], "Disabled",
            "the phone accepts incoming traffic on every port instead of only the ones its services need",
            "set Firewall to Enabled (Firewall_Config adds exceptions)"))
    extensions = set(_per_extension(policy, "MediaSec_Request")) | set(_per_extension(policy, "TLS_Name_Validate"))
    for n in sorted(extensions, key=lambda x: -1 if x is None else x):
        transport_key, transport = _ext_value(policy, cat, "SIP_Transport", n)
        media_key, media = _ext_value(policy, cat, "MediaSec_Request", n)
        if media_key is not None and media == "Yes" and transport == "UDP":
            found.append(_finding(
                "mediasec-over-udp", [media_key, transport_key or f"SIP_Transport ({transport}, the default)"],
                "Yes", "media security is negotiated in SIP messages sent over UDP, readable and alterable on "
                "the path, so the negotiation itself is unprotected",
                "set SIP_Transport to TLS and MediaSec_Over_TLS_Only to Yes on the same extension"))
        validate_key, validate = _ext_value(policy, cat, "TLS_Name_Validate", n)
        if validate_key is not None and validate == "No" and transport == "TLS":
            found.append(_finding(
                "tls-name-validate-off", [validate_key, transport_key or "SIP_Transport"], "No",
                "SIP over TLS without host-name verification accepts any certificate: an attacker on the path "
                "can impersonate the SIP proxy",
                "set TLS_Name_Validate to Yes"))
    password = s.get("Proxy_Password", "")
    needs_auth = s.get("Proxy_Server_Requires_Authentication") == "Yes"
    if (needs_auth or password) and s.get("Proxy_Mode") != "Off":
        keys = [k for k in ("Proxy_Server_Requires_Authentication", "Proxy_Username", "Proxy_Password") if k in s]
        found.append(_finding(
            "proxy-credentials-cleartext", keys, _show(cat, "Proxy_Password", password) if password else "Yes",
            "the phone sends its proxy username and password to the HTTP proxy in plain HTTP, readable by "
            "anyone on the path",
            "use a proxy that does not need credentials from the phones (e.g. one restricted by address), or "
            "keep the proxy on a protected network"))
    return found


def _check_datamodel(policy: Policy, cat: Catalogue) -> list[Finding]:
    found: list[Finding] = []
    for err in validate_values(policy.sample_values(1), catalogue=cat, include_warnings=True):
        if err.rule_id in _SUPERSEDED:
            continue
        rule = "datamodel" if err.severity == ERROR else f"datamodel/{err.rule_id or 'value'}"
        shown = None if err.value is None else (SECRET_MASK if err.secret and err.value else err.value)
        found.append(Finding(rule, err.severity, (err.key,), shown, err.rule,
                             RULES["datamodel"].source, err.allowed or "change the value", False))
    return found


def lint_policy(policy: Policy, *, context: AcsContext, catalogue: Catalogue | None = None) -> list[Finding]:
    """Every guardrail finding of ``policy`` for an ACS described by ``context``: errors
    first, then warnings, each group in rule order. Never raises for policy content."""
    cat = catalogue if catalogue is not None else load_catalogue()
    found = _check_datamodel(policy, cat) + _check_lockouts(policy, context, cat) + _check_hygiene(policy, cat)
    order = {rule_id: i for i, rule_id in enumerate(RULES)}
    return sorted(found, key=lambda f: (f.severity != ERROR, order.get(f.rule.split("/")[0], 0)))


def lint_document(data: bytes, *, source: str, context: AcsContext,
                  catalogue: Catalogue | None = None) -> tuple[Policy | None, list[Finding]]:
    """Parse a policy document (TOML or cfg.xml) and lint it. A document the data model
    refuses gives no Policy and one ``datamodel`` error per problem. Never raises for content."""
    cat = catalogue if catalogue is not None else load_catalogue()
    try:
        from acs_security.policy.document import parse_policy

        policy = parse_policy(data, source=source, catalogue=cat)
    except PolicyError as exc:
        return None, refused_findings(exc, context=context, catalogue=cat)
    return policy, lint_policy(policy, context=context, catalogue=cat)


def refused_findings(exc: PolicyError, *, context: AcsContext, catalogue: Catalogue | None = None) -> list[Finding]:
    """Every finding of a document the data model refuses, in one answer: a ``datamodel``
    error per problem of the document, then what the guardrails find in its lines that have
    no problem of their own (``exc.partial``), so that fixing the document does not reveal
    a lockout one round later. Never raises for policy content."""
    found = [Finding("datamodel", ERROR, (p.setting,) if p.setting else (), p.value, p.text,
                     RULES["datamodel"].source, "correct the policy document", False) for p in exc.problems]
    if exc.partial is not None:
        # Data-model errors of the partial policy are the document's, listed above already;
        # its data-model warnings and the guardrails' findings are new.
        found += [f for f in lint_policy(exc.partial, context=context, catalogue=catalogue)
                  if f.rule != "datamodel"]
    order = {rule_id: i for i, rule_id in enumerate(RULES)}
    return sorted(found, key=lambda f: (f.severity != ERROR, order.get(f.rule.split("/")[0], 0)))


def check_force(force: Iterable[str]) -> frozenset[str]:
    """The rule ids to force, checked. Raises UnknownRuleError for ids that are not
    forceable guardrails (a typo must not silently force nothing)."""
    wanted = frozenset(force)
    unknown = wanted - FORCEABLE
    if unknown:
        raise UnknownRuleError(unknown)
    return wanted


def blocking(findings: Iterable[Finding], force: Collection[str] = ()) -> list[Finding]:
    """The errors that refuse a push: every error except the forced forceable ones."""
    return [f for f in findings if f.severity == ERROR and not (f.forceable and f.rule in force)]


def exit_code(findings: Iterable[Finding]) -> int:
    """0 clean, 1 warnings only, 2 errors (``acs-security policy lint``)."""
    severities = {f.severity for f in findings}
    return 2 if ERROR in severities else 1 if severities else 0
