"""Pure parts of the console and its reads: chart geometry, reachability, fault rows, buckets."""

from __future__ import annotations

from types import SimpleNamespace

from acs_security.console.charts import stacked_share, time_chart
from acs_security.overview import OUTCOME_STATES, bucket_size, fault_rows, reachability


def test_a_stacked_bar_splits_its_width_by_share_and_leaves_out_empty_states() -> None:
    segs = stacked_share({"applied": 3, "faulted": 1, "pending": 0}, ("applied", "faulted", "pending"))
    assert [(s.state, s.n, s.x, s.w) for s in segs] == [("applied", 3, 0.0, 75.0), ("faulted", 1, 75.0, 25.0)]
    assert stacked_share({}, ("applied",)) == ()
    assert stacked_share({"applied": -4}, ("applied",)) == ()  # nonsense counts draw nothing


def test_the_time_chart_stacks_each_bucket_under_a_round_axis() -> None:
    rows = [{"start_s": 0, "counts": {"applied": 7, "faulted": 2}}, {"start_s": 10, "counts": {}},
            {"start_s": 20, "counts": {"applied": 3}}]
    chart = time_chart(rows, OUTCOME_STATES, bucket_seconds=10, width=400, height=100)
    assert chart.top == 10  # 9 rounded up to 1, 2 or 5 times a power of ten
    first, empty, third = chart.bars
    assert [s.state for s in first.segments] == ["applied", "faulted"] and empty.segments == ()
    applied, faulted = first.segments
    assert faulted.y + faulted.h == applied.y  # stacked without a gap
    assert round(applied.h + faulted.h, 1) == round((100 - 20 - 8) * 9 / 10, 1)
    assert first.label == "0:00 - 0:10" and third.total == 3
    assert [t[1] for t in chart.ticks] == ["0", "5", "10"]


def test_reachability_names_how_the_acs_can_reach_a_phone() -> None:
    d = SimpleNamespace
    assert reachability(d(connection_request_url="http://a/", udp_connection_request_address=None)) == "HTTP"
    assert reachability(d(connection_request_url=None, udp_connection_request_address="1.2.3.4:5")) == "UDP (NAT)"
    assert reachability(d(connection_request_url="http://a/", udp_connection_request_address="x")) == "HTTP + UDP"
    assert reachability(d(connection_request_url="", udp_connection_request_address=None)) == "periodic Inform only"


def test_fault_rows_give_parameter_code_and_meaning() -> None:
    rows = fault_rows({"faults": [{"name": "Device.X", "code": 9007, "string": "bad value"}], "fault_code": 9003})
    assert rows == [{"parameter": "Device.X", "code": 9007, "meaning": "Invalid parameter value",
                     "string": "bad value"}]
    whole = fault_rows({"faults": [], "fault_code": 9002, "fault_string": None})
    assert whole == [{"parameter": None, "code": 9002, "meaning": "Internal error", "string": ""}]
    assert fault_rows({"faults": None, "fault_code": None}) == []


def test_buckets_are_round_and_about_thirty() -> None:
    assert bucket_size(5) == 1 and bucket_size(30) == 1 and bucket_size(31) == 2
    assert bucket_size(3600) == 120 and bucket_size(86400) == 3600
    assert bucket_size(86400 * 60) == 86400 * 2
