"""XMPP connection requests (TR-069 Annex K) through a real Prosody on loopback: how fast
phones log in, and how many connection-request IQs the ACS's client gets answered per second.

    .venv/bin/python -m bench.xmpp [--phones 1000] [--requests 5000] [--in-flight 200]

Prosody (Debian package, acs_security/sim/prosody.py) gets one account per phone (files
written directly) and one for the ACS. The phones are the simulator's XMPP side
(sim/xmpp_phones.py) answering by the Annex K verdict; their "call in" is a no-op here, so
the figure is the XMPP path alone (ACS -> Prosody -> phone -> Prosody -> ACS), not sessions.
Prints figures; never part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from twisted.internet import defer, task

from acs_security.connreq.xmpp import XmppClient, XmppOptions
from acs_security.mapping import load_catalogue
from acs_security.sim.phone import Phone, PhoneEnvironment
from acs_security.sim.prosody import ProsodyProcess, find_prosody
from acs_security.sim.table import ModelTables
from acs_security.sim.xmpp_phones import JABBER_ID, XmppPhones, xmpp_values

DOMAIN = "xmpp.test"


def _phones(count: int, clock: Any) -> list[Phone]:
    catalogue = load_catalogue()
    table = ModelTables(catalogue).get("CP-8851-3PCC", "12.0(1)")
    env = PhoneEnvironment(catalogue, clock.seconds, acs_url="http://127.0.0.1:9/", acs_username="cpe",
                           acs_password="cpe", periodic_interval=3600, cr_secret=b"b" * 32)
    phones = []
    for i in range(count):
        phones.append(Phone(f"BENCH{i:08d}", table, env))
    return phones


async def _run(reactor: Any, args: argparse.Namespace, prosody: ProsodyProcess) -> dict[str, float]:
    phones = _phones(args.phones, reactor)
    side = XmppPhones(reactor, server=prosody.address, seed=1, accept=lambda phone: (200, None),
                      unreachable=lambda phone: False)
    for i, phone in enumerate(phones):
        side.add(phone, 0.0, xmpp_values(i, phone.serial, DOMAIN, (f"acs@{DOMAIN}",)))
    t0 = time.perf_counter()
    for user, password in side.accounts():
        prosody.add_account(user, password)
    accounts_s = time.perf_counter() - t0
    prosody.start()
    acs = XmppClient(reactor, f"acs@{DOMAIN}", "acs-bench", prosody.address,
                     options=XmppOptions(tls_required=False, max_in_flight=args.in_flight, request_timeout=30))
    acs.start()
    t0 = time.perf_counter()
    side.start()
    while len(side.logged_in) < len(phones) or not acs.connected:
        await task.deferLater(reactor, 0.01, lambda: None)
    login_s = time.perf_counter() - t0
    sem = defer.DeferredSemaphore(args.in_flight)
    ok = 0

    async def one(i: int) -> None:
        nonlocal ok
        phone = phones[i % len(phones)]
        result = await sem.run(acs.request, phone.value(JABBER_ID), *phone.cr_credentials())
        ok += result.ok

    t0 = time.perf_counter()
    await defer.gatherResults([defer.Deferred.fromCoroutine(one(i)) for i in range(args.requests)])
    iq_s = time.perf_counter() - t0
    await acs.stop()
    await side.stop()
    return {"accounts_per_s": args.phones / accounts_s, "logins_per_s": args.phones / login_s,
            "login_s": login_s, "iqs_per_s": args.requests / iq_s, "ok": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=200)
    args = parser.parse_args()
    from twisted.internet import pollreactor
    pollreactor.install()  # more sockets than select() takes
    from twisted.internet import reactor

    prosody = ProsodyProcess(find_prosody(), DOMAIN)
    prosody.add_account("acs", "acs-bench")
    out: dict[str, Any] = {}
    done = defer.Deferred.fromCoroutine(_run(reactor, args, prosody)).addCallback(out.update)
    done.addErrback(lambda f: out.setdefault("error", f.getTraceback()))
    done.addBoth(lambda _: reactor.stop())
    try:
        reactor.run()
    finally:
        prosody.close()
    if "error" in out:
        raise SystemExit(out["error"])
    print(f"XMPP via Prosody on loopback, {args.phones} phones: accounts written {out['accounts_per_s']:.0f}/s; "
          f"phones logged in {out['logins_per_s']:.0f}/s ({out['login_s']:.2f} s for all); "
          f"connection-request IQs answered {out['iqs_per_s']:.0f}/s ({out['ok']}/{args.requests} ok, "
          f"{args.in_flight} in flight)")


if __name__ == "__main__":
    main()
