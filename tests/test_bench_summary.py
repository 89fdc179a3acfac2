"""The summary table `make bench` ends with: each figure beside its target and its same-run
baseline, from the data the benchmarks recorded (hand-written here)."""

from tests.bench.summary import summary_lines, summary_rows

CREATES = {
    "target_p99_ms": 1000.0,
    "target_cpu_ms_per_create": 35.0,
    "phases": {
        "sequential": {
            "clients": 1,
            "latency_ms": {"p99": 125.0},
            "target_met": True,
            "cpu_ms_per_create": {"web": 20.0, "postgresql": 10.0},
        },
        "concurrent": {
            "clients": 20,
            "latency_ms": {"p99": 1500.0},
            "target_met": False,
            "cpu_ms_per_create": {"web": 30.0, "postgresql": 10.0},
        },
    },
}


def test_create_rows_compare_concurrent_with_one_client_and_cpu_with_target():
    rows = summary_rows({"create_to_ready": CREATES})
    by_figure = {row.figure: row for row in rows}
    concurrent = by_figure["create -> ready, 20 client(s)"]
    assert (concurrent.measured, concurrent.met) == ("p99 1500 ms", False)
    assert (concurrent.baseline, concurrent.ratio) == ("one client: p99 125 ms", "12.0x")
    assert by_figure["CPU per create, 1 client(s)"].met is True
    assert by_figure["CPU per create, 20 client(s)"].measured == "40 ms"
    assert by_figure["CPU per create, 20 client(s)"].met is False


def test_create_cpu_is_read_against_the_data_plane_alone():
    with_floor = {
        **CREATES,
        "data_plane_alone": {
            "concurrent": {
                "clients": 20,
                "latency_ms": {"p99": 400.0},
                "creates_per_second": 31.25,
                "cpu_ms_per_create": {"kube-apiserver": 12.0, "etcd": 4.0},
            },
        },
    }
    by_figure = {row.figure: row for row in summary_rows({"create_to_ready": with_floor})}
    cpu = by_figure["CPU per create, 20 client(s)"]
    assert (cpu.baseline, cpu.ratio) == ("data plane alone: 16 ms", "2.5x")
    assert by_figure["CPU per create, 1 client(s)"].baseline == "-"
    floor = by_figure["data plane alone, 20 client(s)"]
    assert (floor.measured, floor.met, floor.baseline) == (
        "p99 400 ms, 16 ms CPU",
        None,
        "31.2 creates/s",
    )


def test_table_lists_only_sections_the_run_produced():
    assert summary_lines(summary_rows({})) == []
    spend = {
        "warm_check_seconds": 4.72,
        "target_seconds": 5.0,
        "met": True,
        "baseline_cold_check_seconds": 7.62,
        "ratio_warm_to_cold": 0.62,
    }
    lines = summary_lines(summary_rows({"spend_check": spend}))
    assert lines[0] == "Summary"
    assert len(lines) == 3
    cells = lines[2].split()
    assert "4.72" in cells
    assert "MET" in cells
    assert "7.62" in cells
