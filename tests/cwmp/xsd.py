"""Validate built envelopes against the BBF CWMP schemas with lxml (XML Schema 1.0).

The schemas import the SOAP envelope and encoding schemas and (1-3, 1-4) include their
predecessors by remote URL. A resolver maps those URLs to the local stand-ins in
``tests/cwmp/schemas/`` and the local copies in ``tests/data/bbf/``; nothing is fetched.

Namespaces: cwmp-1-3.xsd and cwmp-1-4.xsd keep target namespace ``cwmp-1-2``. An envelope in
the ``cwmp-1-3``/``cwmp-1-4`` namespace is validated by rewriting that namespace URI to
``cwmp-1-2`` in its bytes (the URI only appears in the ``xmlns:cwmp`` declaration) and checking
the result against the 1-3 or 1-4 schema. A ``cwmp-1-2`` envelope is checked against 1-2, or
1-4 when it carries a 1.3/1.4 header (SessionTimeout, SupportedCWMPVersions, UseCWMPVersion).
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from acs_security.cwmp.namespaces import CWMP_1_0, CWMP_1_1, CWMP_1_2, CWMP_1_3, CWMP_1_4

HERE = Path(__file__).resolve().parent
BBF = HERE.parent / "data" / "bbf"
_LOCAL = {
    "http://schemas.xmlsoap.org/soap/envelope/": HERE / "schemas" / "soap-envelope.xsd",
    "http://schemas.xmlsoap.org/soap/encoding/": HERE / "schemas" / "soap-encoding.xsd",
    "http://www.broadband-forum.org/cwmp/cwmp-1-2.xsd": BBF / "cwmp-1-2.xsd",
    "http://www.broadband-forum.org/cwmp/cwmp-1-3.xsd": BBF / "cwmp-1-3.xsd",
}
_VERSION_OF = {CWMP_1_0: "1-0", CWMP_1_1: "1-1", CWMP_1_2: "1-2", CWMP_1_3: "1-3",
               CWMP_1_4: "1-4"}
_NEWER_HEADERS = (b"SessionTimeout", b"SupportedCWMPVersions", b"UseCWMPVersion")
_V14_HEADERS = (b"SupportedCWMPVersions", b"UseCWMPVersion")


class _LocalResolver(etree.Resolver):
    # lxml calls resolve(url, pubid, context) and Resolver has resolve_filename: lxml-stubs
    # 0.5 lacks the context argument and the resolve_* helpers.
    def resolve(self, url: str, pubid: str | None, context: object) -> object:  # type: ignore[override]
        path = _LOCAL.get(url)
        if path is not None:
            return self.resolve_filename(str(path), context)  # type: ignore[attr-defined]
        if url.startswith(("http:", "https:", "ftp:")):
            raise AssertionError(f"schema wants {url}, which has no local copy")
        return None


class CwmpSchemas:
    """Loads each cwmp-1-x.xsd once and validates envelopes against the right one."""

    def __init__(self, bbf_dir: Path = BBF) -> None:
        self._bbf = bbf_dir
        self._schemas: dict[str, etree.XMLSchema] = {}

    def schema(self, version: str) -> etree.XMLSchema:
        if version not in self._schemas:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            parser.resolvers.add(_LocalResolver())
            doc = etree.parse(str(self._bbf / f"cwmp-{version}.xsd"), parser)
            self._schemas[version] = etree.XMLSchema(doc)
        return self._schemas[version]

    def schema_version_for(self, data: bytes, namespace: str) -> str:
        version = _VERSION_OF[namespace]
        newer = any(h in data for h in _NEWER_HEADERS)
        if (version == "1-2" and newer) or (version == "1-3" and
                                             any(h in data for h in _V14_HEADERS)):
            return "1-4"
        return version

    def errors(self, data: bytes, namespace: str) -> list[str]:
        """The validation errors of ``data`` (empty when valid)."""
        version = self.schema_version_for(data, namespace)
        if namespace in (CWMP_1_3, CWMP_1_4):
            data = data.replace(namespace.encode(), CWMP_1_2.encode())
        schema = self.schema(version)
        doc = etree.fromstring(data)
        if schema.validate(doc):
            return []
        # An _ErrorLog iterates over its entries (lxml-stubs 0.5 does not say so).
        return [f"cwmp-{version}: line {e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]

    def assert_valid(self, data: bytes, namespace: str) -> None:
        errors = self.errors(data, namespace)
        assert not errors, "\n".join(errors) + "\n" + data.decode("utf-8", "replace")
