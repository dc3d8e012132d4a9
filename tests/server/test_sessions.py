import pytest
from twisted.internet.task import Clock

from acs_security.cwmp.session import Session
from acs_security.server.sessions import CapacityExceeded, SessionContext, SessionRegistry


def make(clock, **kw):
    expired = []
    reg = SessionRegistry(clock, timeout=kw.pop("timeout", 30.0), max_sessions=kw.pop("max_sessions", 2),
                          on_expire=expired.append)
    return reg, expired


def ctx(token, channel=None):
    return SessionContext(token=token, session=Session(), started=0.0, remote="127.0.0.1", channel=channel)


def test_idle_session_expires_after_timeout_and_releases_device():
    clock = Clock()
    reg, expired = make(clock)
    a = ctx("a")
    reg.open(a)
    assert reg.claim_device(a, "dev1")
    clock.advance(29.9)
    assert expired == []
    reg.touch(a)  # a message restarts the idle timer
    clock.advance(29.9)
    assert expired == []
    clock.advance(0.2)
    assert expired == [a] and a.outcome == "timeout"
    assert len(reg) == 0 and "dev1" not in reg.device_ids
    assert clock.getDelayedCalls() == []


def test_second_session_for_same_device_is_refused_until_first_closes():
    reg, _ = make(Clock())
    a, b = ctx("a"), ctx("b")
    reg.open(a)
    reg.open(b)
    assert reg.claim_device(a, "dev1")
    assert not reg.claim_device(b, "dev1")
    reg.close(a, "done")
    assert reg.claim_device(b, "dev1")


def test_capacity_limit_refuses_new_sessions_only():
    clock = Clock()
    reg, _ = make(clock, max_sessions=2)
    a, b, c = ctx("a"), ctx("b"), ctx("c")
    reg.open(a)
    reg.open(b)
    with pytest.raises(CapacityExceeded):
        reg.open(c)
    assert reg.find("a", None) is a  # sessions in progress continue
    reg.close(a, "done")
    reg.open(c)
    assert len(reg) == 2


def test_find_by_channel_for_cpes_that_drop_cookies():
    reg, _ = make(Clock())
    chan = object()
    a = ctx("a", channel=chan)
    reg.open(a)
    assert reg.find(None, chan) is a
    assert reg.find("unknown", chan) is a
    assert reg.drop_channel(chan) is a and a.channel is None
    assert reg.drop_channel(chan) is None
    assert reg.find(None, chan) is None
    assert reg.find("a", None) is a


@pytest.mark.parametrize("keyed_by, cookie_sent, ends", [
    (None, False, True),  # the CPE never received the cookie
    (None, True, False),  # it did, and may come back with it (TR-069 3.4.1)
    ("connection", True, True),  # it does not return cookies
    ("cookie", True, False),
])
def test_which_sessions_end_with_their_connection(keyed_by, cookie_sent, ends):
    a = ctx("a")
    a.keyed_by, a.cookie_sent = keyed_by, cookie_sent
    assert a.ends_with_connection is ends


def test_close_is_idempotent_and_cancels_timer():
    clock = Clock()
    reg, expired = make(clock)
    a = ctx("a")
    reg.open(a)
    assert reg.close(a, "done") is True
    assert reg.close(a, "error") is False
    assert a.outcome == "done"
    clock.advance(100)
    assert expired == []
