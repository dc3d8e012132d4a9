"""bench/pinning.py (figure 6's layout: a core per node, the shared processes on the rest) and
bench/affinity.py on a fake /proc tree (no process is moved here; `bench.cluster --pin` does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.affinity import PostgresPin, children, parse_stat, read_cores, threads_allowed
from bench.pinning import PinningRefused, choose_cpus, describe_layout, format_cpus, parse_cpus, plan_layout
from bench.report import pinning_note


# -- the layout -------------------------------------------------------------------------------
def test_two_nodes_on_four_cpus_get_a_core_each_and_share_the_rest() -> None:
    assert plan_layout({0, 1, 2, 3}, 2) == {"node1": {0}, "node2": {1}, "shared": {2, 3}}


def test_the_one_node_run_of_the_comparison_uses_the_same_layout() -> None:
    # The comparison plans once for its largest count: node 1 and the shared CPUs are the
    # same in both runs, node 2's core idles in the one-node run.
    two = plan_layout(range(8), 2)
    assert two["node1"] == {0} and two["shared"] == set(range(2, 8))


def test_one_node_fits_two_cpus() -> None:
    assert plan_layout({0, 1}, 1) == {"node1": {0}, "shared": {1}}


def test_two_nodes_on_two_cpus_is_refused_with_the_counts() -> None:
    with pytest.raises(PinningRefused) as err:
        plan_layout({0, 1}, 2)
    assert str(err.value) == (
        "pinning 2 nodes needs 3 CPUs on separate cores (a core each and one for the simulator, "
        "PostgreSQL and the balancer); this machine lets us use 2 (CPUs 0-1)")


def test_hyperthread_siblings_of_a_node_core_stay_idle() -> None:
    # CPUs 0/4, 1/5, 2/6, 3/7 are the two threads of cores 0-3 (the usual Linux numbering).
    cores = {cpu: (0, cpu % 4) for cpu in range(8)}
    assert plan_layout(range(8), 2, cores) == {
        "node1": {0}, "node2": {1}, "shared": {2, 3, 6, 7}, "idle": {4, 5}}


def test_two_nodes_on_two_hyperthreaded_cores_is_refused() -> None:
    with pytest.raises(PinningRefused, match=r"needs 3 CPUs on separate cores .* use 4 on 2 core\(s\)"):
        plan_layout({0, 1, 2, 3}, 2, {0: (0, 0), 2: (0, 0), 1: (0, 1), 3: (0, 1)})


def test_the_layout_does_not_depend_on_the_order_the_cpus_come_in() -> None:
    assert plan_layout([7, 3, 5, 1], 2) == {"node1": {1}, "node2": {3}, "shared": {5, 7}}


def test_describe_names_every_role() -> None:
    text = describe_layout(plan_layout(range(4), 2))
    assert text == ("node1 on CPU 0, node2 on CPU 1, shared (the simulator, PostgreSQL and the "
                    "balancer) on CPU 2-3")


# -- --cpus -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "cpus"), [
    ("0-3", {0, 1, 2, 3}), ("0,2,4-5", {0, 2, 4, 5}), (" 1 , 3 ", {1, 3}), ("2-2", {2}),
])
def test_cpu_lists_parse(text: str, cpus: set[int]) -> None:
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize(("text", "message"), [
    ("", "--cpus is empty"),
    ("0-", "'0-' is not a CPU number or a range"),
    ("a", "'a' is not a CPU number"),
    ("-1", "'-1' is not a CPU number"),
    ("0,,1", "'' is not a CPU number"),
    ("3-1", "the range '3-1' ends below its start"),
])
def test_bad_cpu_lists_say_which_part(text: str, message: str) -> None:
    with pytest.raises(PinningRefused, match=message):
        parse_cpus(text)


def test_cpus_outside_the_allowed_set_are_refused() -> None:
    with pytest.raises(PinningRefused, match=r"CPU\(s\) 2-3 are not ones this process may use \(allowed: 0-1\)"):
        choose_cpus({0, 1}, "0-3")
    assert choose_cpus({0, 1, 2}, "1-2") == {1, 2}
    assert choose_cpus({0, 1}, None) == {0, 1}


def test_format_is_taskset_syntax() -> None:
    assert format_cpus({0, 1, 2, 3, 6, 8, 9}) == "0-3,6,8-9"
    assert format_cpus(parse_cpus("5,0-2")) == "0-2,5"


# -- /proc ------------------------------------------------------------------------------------
def _stat(pid: int, comm: str, ppid: int, start: int) -> str:
    # Fields 3..22 of proc(5): state, ppid, then 17 others, starttime.
    return f"{pid} ({comm}) S {ppid} " + " ".join(["0"] * 17) + f" {start} 0 0\n"


def _fake_proc(root: Path, procs: dict[int, tuple[str, int, int, str]]) -> Path:
    for pid, (comm, ppid, start, allowed) in procs.items():
        d = root / str(pid)
        (d / "task" / str(pid)).mkdir(parents=True)
        (d / "stat").write_text(_stat(pid, comm, ppid, start))
        status = f"Name:\t{comm}\nCpus_allowed:\t3\nCpus_allowed_list:\t{allowed}\n"
        (d / "status").write_text(status)
        (d / "task" / str(pid) / "status").write_text(status)
    (root / "self").mkdir()
    return root


def test_stat_fields_are_counted_from_the_last_parenthesis() -> None:
    assert parse_stat(_stat(42, "a (b) c", 7, 12345)) == ("a (b) c", 7, 12345)
    with pytest.raises(ValueError):
        parse_stat("garbage")


def test_real_proc_of_this_process_is_read() -> None:
    import os

    mine = threads_allowed(os.getpid())
    assert sum(mine.values()) >= 1
    assert set().union(*(parse_cpus(k) for k in mine)) <= os.sched_getaffinity(0)


def test_sysfs_topology_is_read_and_missing_cpus_left_out(tmp_path: Path) -> None:
    for cpu, core in ((0, 0), (1, 0)):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")
    assert read_cores(frozenset({0, 1, 2}), tmp_path) == {0: (0, 0), 1: (0, 0)}


class _Kernel:
    """sched_{get,set}affinity on a dict; refuses the PIDs in ``refuse``."""

    def __init__(self, masks: dict[int, set[int]], refuse: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.masks = masks
        self.refuse = refuse

    def get(self, pid: int) -> set[int]:
        return set(self.masks[pid])

    def set(self, pid: int, cpus: frozenset[int]) -> None:
        if pid in self.refuse:
            raise PermissionError(1, "Operation not permitted")
        if pid not in self.masks:
            raise ProcessLookupError(3, "No such process")
        self.masks[pid] = set(cpus)


def test_postgres_is_pinned_and_put_back(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {100: ("postgres", 1, 10, "0-1"), 101: ("postgres", 100, 11, "0-1"),
                                 102: ("postgres", 100, 12, "0-1"), 200: ("python", 1, 13, "0-1")})
    kernel = _Kernel({100: {0, 1}, 101: {0, 1}, 102: {0, 1}, 200: {0, 1}})
    pg = PostgresPin(102, frozenset({1}), proc=proc, get=kernel.get, set_=kernel.set)
    assert pg.postmaster == 100 and children(100, proc) == [101, 102]
    assert pg.pin() == ("PostgreSQL pinned: the postmaster (PID 100) and its 2 processes on CPU 1; "
                        "restored after the run")
    assert kernel.masks == {100: {1}, 101: {1}, 102: {1}, 200: {0, 1}}
    # During the run a backend forks (it inherits CPU 1) and one exits.
    (proc / "102" / "stat").unlink()
    kernel.masks[103] = {1}
    (proc / "103").mkdir()
    (proc / "103" / "stat").write_text(_stat(103, "postgres", 100, 20))
    assert pg.restore() == "PostgreSQL: 3 processes back on their CPUs"
    assert kernel.masks == {100: {0, 1}, 101: {0, 1}, 102: {1}, 103: {0, 1}, 200: {0, 1}}


def test_a_refused_postgres_is_said_and_left_as_it_was(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {100: ("postgres", 1, 10, "0-1"), 101: ("postgres", 100, 11, "0-1"),
                                 102: ("postgres", 100, 12, "0-1")})
    kernel = _Kernel({100: {0, 1}, 101: {0, 1}, 102: {0, 1}}, refuse={102})
    pg = PostgresPin(101, frozenset({1}), proc=proc, get=kernel.get, set_=kernel.set)
    line = pg.pin()
    assert line.startswith("PostgreSQL not pinned: permission refused to move PID 102 (Operation not permitted)")
    assert not pg.pinned
    assert kernel.masks == {100: {0, 1}, 101: {0, 1}, 102: {0, 1}}  # the ones moved are back


def test_a_backend_that_is_not_local_is_not_pinned(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {55: ("bash", 1, 10, "0-1")})
    kernel = _Kernel({55: {0, 1}})
    for backend in (55, 999):
        pg = PostgresPin(backend, frozenset({1}), proc=proc, get=kernel.get, set_=kernel.set)
        assert pg.pin() == (f"PostgreSQL not pinned: its backend (PID {backend}) is not a postgres process "
                            "of this machine (a server elsewhere or in another PID namespace)")
    assert kernel.masks == {55: {0, 1}}


# -- the report -------------------------------------------------------------------------------
def test_the_report_prints_the_refusal_the_layout_and_what_was_seen() -> None:
    assert "not pinned" in pinning_note({"cluster_pinning": {"requested": False}})
    refused = pinning_note({"cluster_pinning": {"requested": True, "refused": "pinning 2 nodes needs 3 CPUs"}})
    assert refused == "6 cluster: not pinned, not measured: pinning 2 nodes needs 3 CPUs"
    note = pinning_note({
        "cluster_pinning": {"requested": True, "described": "node1 on CPU 0, shared (...) on CPU 1"},
        "cluster_pinning_1node": {"postgres": "PostgreSQL pinned: ...",
                                  "observed": {"acs1": {"0": 9}, "postgres": {"1": 12}}}})
    assert note == ("6 cluster pinned: node1 on CPU 0, shared (...) on CPU 1; 1node: PostgreSQL pinned: ...; "
                    "1node, CPUs allowed during the push: acs1 0 x9, postgres 1 x12")
