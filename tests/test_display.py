"""Identifiers as people read them: escaped when unsafe, named by serial and model."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from acs_security.commands._output import fault_text, outcome_table, progress_line, watch_job
from acs_security.display import device_label, device_labels, printable
from acs_security.store.records import make_device_id


@pytest.mark.parametrize(("raw", "shown"), [
    ("FCH1234ABCD", "FCH1234ABCD"),
    ("Téléphone 電話", "Téléphone 電話"),                       # letters of any script stay
    ("FCH\u202e4321", "FCH\\u202e4321"),                          # right-to-left override
    ("A\x1b[31mB", "A\\x1b[31mB"),                                # terminal escape sequence
    ("line1\rline2\n", "line1\\x0dline2\\x0a"),                  # overwrite / new line
    ("tab\there", "tab\\x09here"),
    ("nul\x00", "nul\\x00"),
    ("c1\x85", "c1\\x85"),                                       # C1 next line
    ("zw\u200bj", "zw\\u200bj"),                                   # zero-width space
    ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),                     # bidi isolates
    ("pua\ue000", "pua\\ue000"),
    ("back\\x41", "back\\\\x41"),                                  # a backslash cannot forge an escape
    (None, ""),
    (42, "42"),
])
def test_printable_escapes_what_could_act_on_a_terminal_or_mislead(raw, shown) -> None:
    assert printable(raw) == shown


def test_printable_output_never_holds_a_control_or_format_character() -> None:
    import unicodedata

    every = "".join(chr(c) for c in range(0, 0x3000)) + "\U0001f600\U000e0001"
    out = printable(every)
    assert not [ch for ch in out if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")]


def test_devices_are_named_by_serial_and_model_with_the_oui_only_where_two_read_alike() -> None:
    rows = [
        {"device_id": make_device_id("00000C", "CP-8851-3PCC", "SIM001")},
        {"device_id": make_device_id("00562B", "CP-8851-3PCC", "SIM001")},  # same label, other OUI
        {"device_id": make_device_id("00000C", "CP-6821-3PCC", "SIM002")},
        {"serial_number": "FCH9\u202e", "product_class": "CP-7841-3PCC", "oui": "00000C"},
    ]
    assert device_labels(rows) == [
        "SIM001 CP-8851-3PCC OUI 00000C",
        "SIM001 CP-8851-3PCC OUI 00562B",
        "SIM002 CP-6821-3PCC",
        "FCH9\\u202e CP-7841-3PCC",
    ]
    assert device_label("S-1", "") == "S-1"


def test_outcome_table_cuts_nothing_and_reads_no_markup_from_phones() -> None:
    rows = [{
        "device_id": make_device_id("00000C", "CP-6821-3PCC", "SIM00000042"),
        "state": "faulted", "fault_code": 9003,
        "faults": [{"name": f"Device.X_CISCO_SecuritySettings.{n}", "code": 9007}
                   for n in ("TLSClientMinVersion", "Firewall", "FirewallOptions", "TLSCipherList")],
        "detail": "[bold red]not markup[/]",
    }]
    def render(width: int) -> str:
        out = io.StringIO()
        Console(file=out, width=width, force_terminal=False).print(outcome_table(rows, title="not applied"))
        return out.getvalue()

    narrow = render(60)  # a pipe's or a small terminal's width: folded, never cut
    assert "SIM00000042 CP-6821-3PCC" in narrow
    assert "…" not in narrow and "CP%2D" not in narrow
    wide = render(400)
    assert "[bold red]not markup[/]" in wide  # shown as text, not read as rich markup
    assert ("9003 Invalid arguments; 9007 Invalid parameter value: TLSClientMinVersion, Firewall, "
            "FirewallOptions, TLSCipherList") in wide


def test_fault_text_gives_meanings_and_groups_parameters_by_code() -> None:
    row = {"fault_code": 9003, "faults": [{"name": "Device.A.B", "code": 9007}, {"name": "Device.A.C", "code": 9007},
                                          {"name": "Device.A.D", "code": 9008}]}
    assert fault_text(row) == ("9003 Invalid arguments; 9007 Invalid parameter value: B, C; "
                               "9008 Attempt to set a non-writable parameter: D")
    assert fault_text({"fault_code": None}) == ""


def _summaries(n_running: int) -> list[dict]:
    base = {"id": 7, "name": "hardening", "total": 10, "rate_per_s": 2.5, "reason": None}
    out = []
    for i in range(n_running):
        out.append({**base, "state": "running", "done": i, "eta_s": 4.0,
                    "counts": {"applied": i, "pending": 10 - i}})
    out.append({**base, "state": "completed", "done": 10, "eta_s": None, "counts": {"applied": 9, "faulted": 1}})
    return out


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_watch_job_without_a_terminal_prints_a_plain_line_every_few_seconds_and_the_end() -> None:
    feed = iter(_summaries(30))
    clock, out = _Clock(), io.StringIO()  # StringIO is not a terminal
    final = watch_job(lambda: next(feed), interval=0.5, line_every=5.0, out=out, sleep=clock.sleep, now=clock.now)
    lines = out.getvalue().splitlines()
    assert final["state"] == "completed"
    # 30 polls 0.5 s apart: a line at 0 s, 5 s, 10 s, then the final one.
    assert len(lines) == 4
    assert lines[0] == "job 7 hardening running 0/10 pending=10 2.5/s about 4.0s left"
    assert lines[-1] == "job 7 hardening completed 10/10 applied=9 faulted=1 2.5/s"
    assert "\x1b" not in out.getvalue()  # no terminal codes in a pipe


def test_watch_job_json_mode_prints_json_lines_ending_with_the_final_summary() -> None:
    feed = iter(_summaries(12))
    clock, out = _Clock(), io.StringIO()
    watch_job(lambda: next(feed), mode="json", interval=0.5, line_every=5.0, out=out,
              sleep=clock.sleep, now=clock.now)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["progress", "progress", "final"]
    assert events[-1]["counts"] == {"applied": 9, "faulted": 1}


def test_progress_line_escapes_the_job_name_and_reason() -> None:
    s = {"id": 1, "name": "evil\x1b[2J", "state": "halted", "total": 3, "done": 1, "counts": {"faulted": 1},
         "reason": "wave 0: 1 faulted\u202e"}
    assert progress_line(s) == "job 1 evil\\x1b[2J halted 1/3 faulted=1 (wave 0: 1 faulted\\u202e)"


def test_a_stalled_job_repeats_its_line_only_every_ten_intervals() -> None:
    base = {"id": 2, "name": "p", "total": 5, "done": 4, "state": "running", "counts": {"applied": 4, "pending": 1}}
    feed = iter([dict(base) for _ in range(200)] + [{**base, "state": "completed", "done": 5,
                                                      "counts": {"applied": 5}}])
    clock, out = _Clock(), io.StringIO()
    watch_job(lambda: next(feed), interval=0.5, line_every=5.0, out=out, sleep=clock.sleep, now=clock.now)
    lines = out.getvalue().splitlines()
    # 100 s waiting for the last phone's periodic Inform: lines at 0 and 50 s (not every 5 s),
    # then the end at 100 s.
    assert len(lines) == 3 and lines[0] == lines[1]
    assert lines[-1].startswith("job 2 p completed 5/5")


def test_log_lines_name_a_device_id_by_its_label() -> None:
    from acs_security.display import label_of

    assert label_of(make_device_id("00000C", "CP-8851-3PCC", "FCH1\u202e")) == "FCH1\\u202e CP-8851-3PCC"
    assert label_of("not an id\x1b") == "not an id\\x1b"
    assert label_of(None) == "-"
