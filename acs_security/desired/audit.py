"""Audit verdicts: the values a phone reports against its desired state (pure).

Per controlled setting of a device: ``compliant`` (the value read is the desired one),
``drifted`` (another value, shown unless secret), ``missing`` (the model or firmware lacks
the setting: nothing to read), ``unknown`` (not read: the phone was unreachable, refused
the GetParameterValues, or does not read the value back).

Secrets: TR-181 says a password "returns an empty string" when read, and the phones do; such
a value cannot be compared and is ``unknown`` (write-only). A phone that does report a
secret is compared in constant time and the value is never shown (``********``).
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from acs_security.desired.compiled import Desired, text_key

__all__ = ["VERDICTS", "audit_items", "unknown_items", "summarise", "MASK"]

VERDICTS = ("compliant", "drifted", "missing", "unknown")
MASK = "********"


def _equal(xsi_type: str, read: str, desired: str, secret: bool) -> bool:
    if secret:
        return hmac.compare_digest(read.encode("utf-8"), desired.encode("utf-8"))
    return bool(read == desired or text_key(xsi_type, read) == text_key(xsi_type, desired))


def audit_items(desired: Desired, read: Mapping[str, str] | None, *, only: Iterable[int] | None = None,
                secret: Callable[[str], bool] = lambda path: False,
                setting_of: Callable[[str], str] = lambda path: path,
                why_unknown: str = "not read") -> list[dict[str, Any]]:
    """One item per controlled setting of the device (assignments ``only``, default all):
    assignment, setting, path, verdict, value (masked when secret), desired (masked)."""
    wanted = None if only is None else set(only)
    items: list[dict[str, Any]] = []
    for part in desired.parts:
        a = part.assignment
        if wanted is not None and a.id not in wanted:
            continue
        for key, reason in part.skipped:
            items.append({"assignment": a.name, "assignment_id": a.id, "setting": key, "path": None,
                          "verdict": "missing", "value": None, "desired": None, "detail": reason})
        if part.error is not None:
            items.append({"assignment": a.name, "assignment_id": a.id, "setting": "*", "path": None,
                          "verdict": "unknown", "value": None, "desired": None, "detail": part.error})
        # The settings the assignment sets here, including those a higher priority shadows
        # (the device should then hold the winner's value: that is what is compared).
        for p in part.every:
            want = desired.values.get(p.path, p)
            is_secret = secret(p.path)
            shown_desired = (MASK if want.value else "") if is_secret else want.value
            item = {"assignment": a.name, "assignment_id": a.id, "setting": setting_of(p.path), "path": p.path,
                    "desired": shown_desired, "value": None, "detail": None}
            got = None if read is None else read.get(p.path)
            if got is None:
                item.update(verdict="unknown", detail=why_unknown)
            elif is_secret and got == "" and want.value != "":
                item.update(verdict="unknown", detail="write-only: the phone does not read secrets back (TR-181)")
            elif _equal(want.xsi_type, got, want.value, is_secret):
                item.update(verdict="compliant", value=(MASK if got else "") if is_secret else got)
            else:
                item.update(verdict="drifted", value=(MASK if got else "") if is_secret else got)
            items.append(item)
    return items


def unknown_items(desired: Desired, why: str, *, only: Iterable[int] | None = None,
                  setting_of: Callable[[str], str] = lambda path: path,
                  secret: Callable[[str], bool] = lambda path: False) -> list[dict[str, Any]]:
    """The items of a device nothing could be read from (unreachable, faulted)."""
    return audit_items(desired, None, only=only, secret=secret, setting_of=setting_of, why_unknown=why)


def summarise(rows: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """Counts per (setting, model) and per verdict over ``(device facts, items)`` pairs;
    device facts hold ``product_class`` (and ``software_version``)."""
    per: dict[tuple[str, str, str], Counter[str]] = {}
    totals: Counter[str] = Counter()
    devices: Counter[str] = Counter()
    drifted_values: dict[tuple[str, str, str], Counter[str]] = {}
    for facts, items in rows:
        model = str(facts.get("product_class") or "?")
        worst = "compliant"
        for item in items:
            key = (str(item["assignment"]), str(item["setting"]), model)
            verdict = str(item["verdict"])
            per.setdefault(key, Counter())[verdict] += 1
            totals[verdict] += 1
            if verdict == "drifted":
                drifted_values.setdefault(key, Counter())[str(item.get("value"))] += 1
            worst = _worse(worst, verdict)
        devices[worst if items else "unknown"] += 1
    settings = []
    for (assignment, setting, model), counts in sorted(per.items()):
        n = sum(counts.values())
        settings.append({
            "assignment": assignment, "setting": setting, "product_class": model,
            **{v: counts.get(v, 0) for v in VERDICTS},
            "compliant_ratio": round(counts.get("compliant", 0) / n, 4) if n else None,
            "drifted_values": dict(drifted_values.get((assignment, setting, model), Counter()).most_common(5)),
        })
    return {"totals": {v: totals.get(v, 0) for v in VERDICTS},
            "devices": {v: devices.get(v, 0) for v in VERDICTS}, "settings": settings}


_ORDER = {"compliant": 0, "missing": 0, "unknown": 1, "drifted": 2}


def _worse(a: str, b: str) -> str:
    return a if _ORDER.get(a, 0) >= _ORDER.get(b, 0) else b
