"""Devices and reported parameters, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from acs_security.store import (
    InvalidArgument,
    Store,
    StoreClosed,
    UnknownDevice,
    make_device_id,
    open_store,
)
from acs_security.store import schema as t
from tests.store.conftest import CISCO_CLASS, CISCO_OUI, T0, FakeClock, inform

TLS = ("Device.Services.VoiceService.1.X_CISCO_TLSCipherList", "ECDHE-RSA-AES256-GCM-SHA384", "xsd:string")
FW = ("Device.X_CISCO_Firewall.Enable", "true", "xsd:boolean")


def _id(serial: str) -> str:
    return make_device_id(CISCO_OUI, CISCO_CLASS, serial)


def test_new_device_is_stored_with_everything_the_inform_said(store: Store) -> None:
    store.record_informs([inform("FCH1", params=(TLS, FW), events=("0 BOOTSTRAP", "1 BOOT"), bootstrap=True)])
    device = store.get_device(_id("FCH1"))
    assert device is not None
    assert device.device_id == "00562B-CP%2D8841%2D3PCC-FCH1"
    assert (device.oui, device.product_class, device.serial_number) == (CISCO_OUI, CISCO_CLASS, "FCH1")
    assert device.manufacturer == "Cisco Systems, Inc."
    assert device.software_version == "12.0.1"
    assert device.connection_request_url == "http://192.0.2.10:7547/cr"
    assert device.udp_connection_request_address is None
    assert device.parameter_key == ""
    assert device.events == ("0 BOOTSTRAP", "1 BOOT")
    assert device.first_seen == device.last_inform == T0
    assert device.first_seen.tzinfo is not None
    assert device.remote_address == "192.0.2.10"
    assert device.tags == ()
    assert store.device_parameters(_id("FCH1")) == {TLS[0]: TLS[1:], FW[0]: FW[1:]}


def test_unknown_device_is_none_and_has_no_parameters(store: Store) -> None:
    assert store.get_device(_id("nope")) is None
    assert store.device_parameters(_id("nope")) == {}


def test_known_device_keeps_first_seen_and_moves_last_inform(store: Store) -> None:
    store.record_informs([inform("FCH1", params=(TLS, FW))])
    later = T0 + timedelta(hours=1)
    store.record_informs([inform(
        "FCH1", at=later, software_version="12.0.2", events=("6 CONNECTION REQUEST",),
        params=((FW[0], "false", "xsd:boolean"), ("Device.DeviceInfo.UpTime", "60", "xsd:unsignedInt")),
        connection_request_url=None, remote_address="198.51.100.7", parameter_key="job-17",
    )])
    device = store.get_device(_id("FCH1"))
    assert device is not None
    assert device.first_seen == T0
    assert device.last_inform == later
    assert device.software_version == "12.0.2"
    assert device.events == ("6 CONNECTION REQUEST",)
    assert device.remote_address == "198.51.100.7"
    assert device.parameter_key == "job-17"
    # Not carried by this inform (None): the known value stays.
    assert device.connection_request_url == "http://192.0.2.10:7547/cr"
    assert store.device_parameters(_id("FCH1")) == {
        TLS[0]: TLS[1:],  # not reported again: still known
        FW[0]: ("false", "xsd:boolean"),
        "Device.DeviceInfo.UpTime": ("60", "xsd:unsignedInt"),
    }
    assert store.count_devices() == 1


def _updated_at(store: Store, device_id: str, name: str) -> object:
    p = t.device_parameters.c
    with store.engine.connect() as conn:
        return conn.execute(sa.select(p.updated_at).where(p.device_id == device_id, p.name == name)).scalar_one()


def test_updated_at_moves_only_when_the_value_changes(store: Store) -> None:
    store.record_informs([inform("FCH1", params=(TLS, FW))])
    later = T0 + timedelta(minutes=5)
    store.record_informs([inform("FCH1", at=later, params=(TLS, (FW[0], "false", FW[2])))])
    assert _updated_at(store, _id("FCH1"), TLS[0]) == T0
    assert _updated_at(store, _id("FCH1"), FW[0]) == later


def test_bootstrap_forgets_every_known_parameter(store: Store, clock: FakeClock) -> None:
    store.record_informs([inform("FCH1", params=(TLS, FW))])
    store.set_device_parameters(_id("FCH1"),
                                [("Device.ManagementServer.PeriodicInformInterval", "300", "xsd:unsignedInt")])
    uptime = ("Device.DeviceInfo.UpTime", "5", "xsd:unsignedInt")
    store.record_informs([inform("FCH1", at=T0 + timedelta(days=1), events=("0 BOOTSTRAP",), bootstrap=True,
                                 params=(uptime,))])
    assert store.device_parameters(_id("FCH1")) == {uptime[0]: uptime[1:]}
    device = store.get_device(_id("FCH1"))
    assert device is not None and device.first_seen == T0  # the device is the same; its values are not


def test_bootstrap_in_a_batch_applies_in_order(store: Store) -> None:
    a, b, c = (("Device.A", "1", "xsd:int"), ("Device.B", "2", "xsd:int"), ("Device.C", "3", "xsd:int"))
    store.record_informs([inform("FCH1", params=(a,))])
    store.record_informs([
        inform("FCH1", params=(b,)),
        inform("FCH1", params=(c,), bootstrap=True),
        inform("FCH1", params=(a,)),
    ])
    assert store.device_parameters(_id("FCH1")) == {"Device.C": ("3", "xsd:int"), "Device.A": ("1", "xsd:int")}


def test_same_device_twice_in_a_batch_last_record_wins(store: Store) -> None:
    store.record_informs([
        inform("FCH1", software_version="1", params=(("Device.X", "a", "xsd:string"),)),
        inform("FCH1", at=T0 + timedelta(seconds=30), software_version="2", params=(("Device.X", "b", "xsd:string"),)),
    ])
    device = store.get_device(_id("FCH1"))
    assert device is not None
    assert (device.software_version, device.first_seen, device.last_inform) == ("2", T0, T0 + timedelta(seconds=30))
    assert store.device_parameters(_id("FCH1")) == {"Device.X": ("b", "xsd:string")}


def test_a_bad_element_in_a_batch_stores_nothing(store: Store) -> None:
    with pytest.raises(InvalidArgument, match="InformRecord"):
        store.record_informs([inform("FCH1"), "FCH2"])  # type: ignore[list-item]
    assert store.count_devices() == 0


def test_empty_batch_is_a_no_op(store: Store) -> None:
    store.record_informs([])
    assert store.count_devices() == 0


def test_batch_of_1000_informs_in_one_call(store: Store) -> None:
    records = [
        inform(f"FCH{i:05d}", product_class="CP-8841-3PCC" if i % 2 else "CP-7841-3PCC",
               params=tuple((f"Device.X_CISCO.Setting{j}", f"{i}-{j}", "xsd:string") for j in range(10)))
        for i in range(1000)
    ]
    started = time.perf_counter()
    store.record_informs(records)
    elapsed = time.perf_counter() - started
    assert store.count_devices() == 1000
    assert store.count_devices(product_class="CP-7841-3PCC") == 500
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.device_parameters)).scalar_one() == 10_000
    last = make_device_id(CISCO_OUI, "CP-8841-3PCC", "FCH00999")
    assert store.device_parameters(last)["Device.X_CISCO.Setting7"] == ("999-7", "xsd:string")
    # Generous bound for a shared CI machine; measured ~0.1 s on SQLite here.
    assert elapsed < 5.0, f"1,000 informs took {elapsed:.2f} s"


def _fleet(store: Store) -> None:
    records = []
    for i in range(12):
        records.append(inform(
            f"S{i:02d}",
            product_class="CP-8841-3PCC" if i < 8 else "CP-6871-3PCC",
            software_version="12.0.1" if i % 2 == 0 else "11.3.7",
        ))
    store.record_informs(records)


def _serials(devices: list) -> list[str]:  # type: ignore[type-arg]
    return [d.serial_number for d in devices]


def test_list_and_count_filters(store: Store) -> None:
    _fleet(store)
    store.set_tags(make_device_id(CISCO_OUI, "CP-8841-3PCC", "S01"), ["lab", "pilot"])
    store.set_tags(make_device_id(CISCO_OUI, "CP-6871-3PCC", "S09"), ["pilot"])
    assert store.count_devices() == 12
    assert _serials(store.list_devices(product_class="CP-6871-3PCC")) == ["S08", "S09", "S10", "S11"]
    assert store.count_devices(product_class="CP-6871-3PCC") == 4
    assert store.count_devices(software_version="11.3.7") == 6
    assert sorted(_serials(store.list_devices(serial_numbers=["S03", "S10", "absent"]))) == ["S03", "S10"]
    assert store.count_devices(serial_numbers=[]) == 0
    assert store.list_devices(serial_numbers=[]) == []
    assert sorted(_serials(store.list_devices(tag="pilot"))) == ["S01", "S09"]
    assert store.count_devices(tag="lab") == 1
    assert store.count_devices(tag="none") == 0
    both = store.list_devices(product_class="CP-8841-3PCC", software_version="11.3.7", tag="pilot")
    assert _serials(both) == ["S01"]
    assert both[0].tags == ("lab", "pilot")


def test_list_pages_in_device_id_order(store: Store) -> None:
    _fleet(store)
    everything = store.list_devices(limit=100)
    ids = [d.device_id for d in everything]
    assert ids == sorted(ids) and len(ids) == 12
    pages = [store.list_devices(limit=5, offset=o) for o in (0, 5, 10, 15)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    assert [d.device_id for p in pages for d in p] == ids


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"serial_numbers": "S01"}, "not one string"),
        ({"tag": ""}, "tag must not be empty"),
    ],
)
def test_list_refuses_bad_arguments(store: Store, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.list_devices(**kwargs)  # type: ignore[arg-type]


def test_set_tags_replaces_and_deduplicates(store: Store) -> None:
    store.record_informs([inform("FCH1")])
    store.set_tags(_id("FCH1"), ["b", "a", "b"])
    assert store.get_device(_id("FCH1")).tags == ("a", "b")  # type: ignore[union-attr]
    store.set_tags(_id("FCH1"), ["c"])
    assert store.get_device(_id("FCH1")).tags == ("c",)  # type: ignore[union-attr]
    store.set_tags(_id("FCH1"), [])
    assert store.get_device(_id("FCH1")).tags == ()  # type: ignore[union-attr]


def test_writes_for_an_unknown_device_are_refused(store: Store) -> None:
    with pytest.raises(UnknownDevice, match="FCH404"):
        store.set_tags(_id("FCH404"), ["x"])
    with pytest.raises(UnknownDevice):
        store.set_device_parameters(_id("FCH404"), [FW])
    with pytest.raises(UnknownDevice):
        store.record_transfer_complete(_id("FCH404"), "k", 0, "", None, None)
    assert store.count_devices() == 0


def test_set_device_parameters_records_what_the_acs_learnt(store: Store, clock: FakeClock) -> None:
    store.record_informs([inform("FCH1", params=(FW,))])
    clock.advance(90)
    store.set_device_parameters(_id("FCH1"), [(FW[0], "false", "xsd:boolean"), TLS])
    assert store.device_parameters(_id("FCH1")) == {FW[0]: ("false", "xsd:boolean"), TLS[0]: TLS[1:]}
    assert _updated_at(store, _id("FCH1"), FW[0]) == clock.now
    with pytest.raises(InvalidArgument, match=r"\(name, value, type\)"):
        store.set_device_parameters(_id("FCH1"), [(FW[0], "true")])  # type: ignore[list-item]
    assert store.device_parameters(_id("FCH1"))[FW[0]] == ("false", "xsd:boolean")


def test_transfer_complete_records(store: Store) -> None:
    store.record_informs([inform("FCH1")])
    store.record_transfer_complete(_id("FCH1"), "fw-12.0.2", 0, "", T0, T0 + timedelta(minutes=3))
    unknown = datetime(1, 1, 1, tzinfo=UTC)  # TR-069's "unknown time"
    store.record_transfer_complete(_id("FCH1"), "cfg-1", 9010, "Download failure", unknown, None)
    done = store.list_transfer_completes(_id("FCH1"))
    assert [(x.command_key, x.fault_code, x.fault_string) for x in done] == [
        ("fw-12.0.2", 0, ""), ("cfg-1", 9010, "Download failure")]
    assert done[0].complete_time == T0 + timedelta(minutes=3)
    assert done[1].start_time is None
    with pytest.raises(InvalidArgument, match="fault_code"):
        store.record_transfer_complete(_id("FCH1"), "k", -1, "", None, None)
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        store.record_transfer_complete(_id("FCH1"), "k", 0, "", T0.replace(tzinfo=None), None)
    assert len(store.list_transfer_completes(_id("FCH1"))) == 2


def test_a_closed_store_refuses_calls(store: Store) -> None:
    store.close()
    with pytest.raises(StoreClosed, match="closed"):
        store.count_devices()
    store.close()  # idempotent


def test_concurrent_writers_on_one_database_both_succeed(store_url: str, store: Store) -> None:
    # Two Store objects = two connection pools, as two ACS processes would have.
    # SQLite: BEGIN IMMEDIATE + busy timeout make the second writer wait.
    other = open_store(store_url)
    errors: list[BaseException] = []

    def writer(s: Store, prefix: str) -> None:
        try:
            for batch in range(15):
                s.record_informs([inform(f"{prefix}{batch:02d}{i:02d}", params=(FW,)) for i in range(10)])
                s.set_tags(_id(f"{prefix}{batch:02d}00"), [prefix])
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, p)) for s, p in ((store, "A"), (other, "B"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    other.close()
    assert errors == []
    assert store.count_devices() == 300
    assert store.count_devices(tag="A") == store.count_devices(tag="B") == 15
