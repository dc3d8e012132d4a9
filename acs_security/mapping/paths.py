"""Where the data files are, firmware versions, and the vendor path naming convention.

The convention (docs/decisions/0002-vendor-path-convention.md) is the one rule that turns
a phone setting into a ``Device.X_CISCO_...`` path when no seed publishes the path. It is
derived from the one path a seed does publish: the web field "TLS Cipher List" in section
"Security Settings" is ``Device.X_CISCO_SecuritySettings.TLSCipherList`` (seed 000,
"Configure the Cipher List").
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "DATAMODEL_ENV",
    "datamodel_dir",
    "camel_name",
    "conventional_path",
    "parse_firmware",
    "format_firmware",
]

#: Environment variable that names the datamodel/ directory (for non-editable installs).
DATAMODEL_ENV = "ACS_DATAMODEL_DIR"

VENDOR_PREFIX = "X_CISCO_"


def datamodel_dir() -> Path:
    """The directory holding settings.toml, models.toml, ...

    ``$ACS_DATAMODEL_DIR`` when set, else ``datamodel/`` at the root of the source tree
    this package runs from (the editable install the Makefile makes). Does not check that
    the directory exists: :func:`acs_security.mapping.load_catalogue` does, and says what
    to set when it does not.
    """
    env = os.environ.get(DATAMODEL_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "datamodel"


_WORD = re.compile(r"[A-Za-z0-9]+")


def camel_name(label: str) -> str:
    """A web label as a TR-069 name: words joined, first letter of each upper-cased.

    Only letters and digits are kept, because ``.`` separates path segments and TR-106
    names take no spaces or punctuation: "Use Auto Discovery (WPAD)" -> UseAutoDiscoveryWPAD,
    "Enable 802.1X Authentication" -> Enable8021XAuthentication, "TLS Cipher List" ->
    TLSCipherList (the seed-verified name).
    """
    return "".join(w[0].upper() + w[1:] for w in _WORD.findall(label))


def conventional_path(name: str, location: str, per_extension: bool) -> str:
    """The vendor path of a setting by the convention.

    ``location`` is "Voice > tab > section" (or "Voice > tab" when the seed names no
    section). Phone-wide settings: ``Device.X_CISCO_<Section>.<Field>``. Per-extension
    settings live in one table indexed by extension number, because the phone repeats the
    whole Ext(n) tab per extension: ``Device.X_CISCO_Ext.{n}.<Field>``.
    """
    if per_extension:
        return f"Device.{VENDOR_PREFIX}Ext.{{n}}.{camel_name(name)}"
    parts = [p.strip() for p in location.split(">")]
    group = parts[-1] if len(parts) >= 2 else parts[0]
    return f"Device.{VENDOR_PREFIX}{camel_name(group)}.{camel_name(name)}"


# Cisco writes firmware as "12.0(1)", "11.3(7)SR1", and phones report it as e.g.
# "sip88xx.12-0-1MPP-22" or "12.0.1": the first three numbers joined by . - or ( count.
_FIRMWARE = re.compile(r"(\d+)[.\-](\d+)[.\-(](\d+)")


def parse_firmware(text: str) -> tuple[int, int, int] | None:
    """(major, minor, maintenance) of a firmware string, or None when it has none."""
    match = _FIRMWARE.search(text)
    if match is None:
        return None
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def format_firmware(version: tuple[int, int, int]) -> str:
    return f"{version[0]}.{version[1]}({version[2]})"
