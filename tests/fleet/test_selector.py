import pytest

from acs_security.fleet.selector import SelectorError, parse_selector


def m(sel, pc="CP-8851-3PCC", fw="sip88xx.12-0-1MPP-1", serial="FCH1", tags=(), device_id="d1"):
    return parse_selector(sel).matches(product_class=pc, firmware=fw, serial=serial, tags=tags,
                                       device_id=device_id)


def test_all_matches_everything():
    assert parse_selector("all").everything
    assert m("all", pc="anything", fw=None)


@pytest.mark.parametrize("sel, expected", [
    ("product_class=CP-8851-3PCC", True),
    ("model=cp-8851-3pcc", True),  # product classes compare without case
    ("pc=CP-7841-3PCC,CP-8851-3PCC", True),
    ("pc!=CP-8851-3PCC", False),
    ("firmware=sip88xx.12-*", True),
    ("firmware=sip78xx.*", False),
    ("firmware>=11.3(7)", True),
    ("firmware<12.0(1)", False),
    ("firmware>=12-0-1 and pc=CP-8851-3PCC", True),
    ("serial=FCH9,FCH1", True),
    ("tag=pilot", False),
    ("device=d1", True),
    ("pc=CP-8851-3PCC; serial=OTHER", False),
])
def test_terms(sel, expected):
    assert m(sel) is expected


def test_firmware_range_excludes_unparseable_versions():
    assert m("firmware>=11.3(7)", fw=None) is False
    assert m("firmware>=11.3(7)", fw="custom") is False


def test_tags():
    assert m("tag=pilot", tags=("pilot", "lab"))


@pytest.mark.parametrize("sel, message", [
    ("", "empty selector"),
    ("colour=blue", "unknown key 'colour'"),
    ("pc", "not KEY=VALUE"),
    ("serial=", "no value"),
    ("pc>=CP-8851", "only applies to firmware"),
    ("firmware>=latest", "not a firmware release"),
])
def test_errors(sel, message):
    with pytest.raises(SelectorError, match=message):
        parse_selector(sel)
