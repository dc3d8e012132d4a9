"""One phone's cfg.xml, rendered for that phone. Pure: no I/O.

What goes in the file (docs/files.md):
- the settings a push sends in a file (:class:`~acs_security.policy.plan.FileSetting`,
  already planned for the phone's model and firmware: per-extension settings expanded for
  its line count, settings it lacks left out), or any element -> value mapping;
- with ``full``, also every value the ACS knows for the phone (TR-069 path -> text, from
  its Informs and earlier pushes) that has a cfg.xml element, the phone has and is valid:
  "the whole known configuration". A value the phone's own rules would refuse is left out
  and reported, never written.

Secret settings (passwords) are written only into the file served to the phone
(:attr:`DeviceFile.content`); what an operator sees (:meth:`DeviceFile.preview`) has a
comment in their place, which a phone ignores and which cannot be pushed by mistake.
Elements follow the catalogue's order and its spelling (the seeds' cfg.xml examples).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from acs_security.mapping import Catalogue, load_catalogue, render_cfgxml
from acs_security.mapping.convert import ConversionError, from_tr069_text
from acs_security.mapping.errors import MappingError, UnknownModelError
from acs_security.mapping.validators import validate_value
from acs_security.policy.plan import FileSetting

__all__ = ["DeviceFile", "FILE_NAME", "known_elements", "render_device_file"]

#: The name a phone's file is served under (Cisco MPP phones read cfg.xml).
FILE_NAME = "cfg.xml"


@dataclass(frozen=True, slots=True)
class DeviceFile:
    """A rendered file. ``content`` holds secrets: it goes to the phone and into the store
    encrypted, never into a log or an operator's screen (use :meth:`preview`)."""

    content: bytes = dataclasses.field(repr=False)
    values: Mapping[str, str] = dataclasses.field(repr=False)
    secret_elements: frozenset[str] = frozenset()
    skipped: tuple[tuple[str, str], ...] = ()  # (element or path, why it is not in the file)
    catalogue: Catalogue | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(self.values)

    def preview(self) -> bytes:
        """The file as an operator may see it: each secret element replaced by a comment."""
        cat = self.catalogue or load_catalogue()
        shown = {e: (None if e in self.secret_elements else v) for e, v in self.values.items()}
        lines = render_cfgxml(shown, catalogue=cat).decode("utf-8").split("\n")
        out = []
        for line in lines:
            stripped = line.strip()
            name = stripped[1:].split(" ", 1)[0].split("/", 1)[0].split(">", 1)[0] if stripped.startswith("<") else ""
            if name in self.secret_elements and stripped.endswith("/>"):
                out.append(f"  <!-- {name}: secret, written only in the file served to the phone -->")
            else:
                out.append(line)
        return "\n".join(out).encode("utf-8")


def known_elements(known: Mapping[str, str], *, product_class: str, software_version: str | None,
                   catalogue: Catalogue) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(element -> cfg.xml value, skipped) of the values the ACS knows for a phone (TR-069
    path -> text): only settings with an element that the phone has, valid by its rules.
    Raises UnknownModelError."""
    view = catalogue.view(product_class, software_version)
    out: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for path, text in known.items():
        try:
            setting, n = view.resolve_path(path)
        except MappingError:
            continue  # not a setting of the catalogue (status and standard parameters)
        element = setting.element_for(n) if setting.element is not None else None
        if element is None or not setting.writable:
            continue
        reason = view.missing_reason(setting)
        if reason is None and n is not None and n > view.extension_count:
            reason = f"{product_class} has {view.extension_count} extension(s)"
        if reason is not None:
            skipped.append((element, reason))
            continue
        try:
            value = from_tr069_text(dataclasses.replace(setting, tr069_type=view.xsi_type_of(setting)), text)
            validate_value(setting, value, catalogue=catalogue, extension=n)
        except (ConversionError, MappingError) as exc:
            why = "a value the phone would refuse" if setting.secret else f"the phone would refuse it ({exc})"
            skipped.append((element, why))
            continue
        out[element] = value
    return out, skipped


def render_device_file(
    settings: Iterable[FileSetting] | Mapping[str, str],
    *,
    product_class: str,
    software_version: str | None,
    known: Mapping[str, str] | None = None,
    full: bool = False,
    catalogue: Catalogue | None = None,
) -> DeviceFile:
    """The phone's cfg.xml: ``settings`` (the plan's file settings, or element -> value),
    plus with ``full`` the valid known values the settings do not replace.

    Raises UnknownModelError for an unknown model, InvalidValues when one of ``settings``
    would be refused by the phone (a plan has checked them already).
    """
    cat = catalogue or load_catalogue()
    view = cat.view(product_class, software_version)
    if view.model is None:  # pragma: no cover - view() raises first
        raise UnknownModelError(product_class, list(cat.models))
    chosen: dict[str, str] = {}
    if isinstance(settings, Mapping):
        chosen.update(settings)
    else:
        chosen.update((s.element, s.value) for s in settings)
    values: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    if full and known:
        values, skipped = known_elements(known, product_class=product_class,
                                         software_version=software_version, catalogue=cat)
        skipped = [(e, why) for e, why in skipped if e not in chosen]
    values.update(chosen)
    content = render_cfgxml(values, catalogue=cat)
    secret = frozenset(e for e in values if (found := cat.find(e)) is not None and found[0].secret)
    order = {e: i for i, e in enumerate(_document_order(content))}
    ordered = dict(sorted(values.items(), key=lambda kv: order.get(kv[0], len(order))))
    return DeviceFile(content, ordered, secret, tuple(skipped), cat)


def _document_order(content: bytes) -> list[str]:
    names = []
    for line in content.decode("utf-8").splitlines()[2:-1]:
        stripped = line.strip()
        if stripped.startswith("<") and not stripped.startswith("<!--"):
            names.append(stripped[1:].split(" ", 1)[0].split("/", 1)[0].split(">", 1)[0])
    return names
