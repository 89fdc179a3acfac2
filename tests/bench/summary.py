"""The last table of a `make bench` run: one row per headline figure, each beside its target and
beside the baseline the same run measured, as a ratio, so a figure never stands alone.

A section the run did not produce has no rows. Each section's rows come from the data its
benchmark recorded; nothing here measures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    target: str
    met: bool | None
    baseline: str
    ratio: str


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def _create_rows(data: dict) -> list[Row]:
    phases = data["phases"]
    sequential = phases.get("sequential")
    # The same data-plane work with no control plane: the floor on this machine.
    alone = data.get("data_plane_alone") or {}
    rows = []
    for name, phase in phases.items():
        p99 = phase["latency_ms"]["p99"]
        baseline, ratio = "-", "-"
        if sequential and name != "sequential" and sequential["latency_ms"]["p99"]:
            base = sequential["latency_ms"]["p99"]
            baseline = f"one client: p99 {base:.0f} ms"
            ratio = f"{p99 / base:.1f}x"
        rows.append(
            Row(
                f"create -> ready, {phase['clients']} client(s)",
                f"p99 {p99:.0f} ms",
                f"p99 <= {data['target_p99_ms']:.0f} ms",
                phase["target_met"],
                baseline,
                ratio,
            )
        )
        cpu = phase.get("cpu_ms_per_create")
        target_cpu = data.get("target_cpu_ms_per_create")
        if cpu and target_cpu:
            total = sum(cpu.values())
            floor = sum((alone.get(name) or {}).get("cpu_ms_per_create", {}).values())
            rows.append(
                Row(
                    f"CPU per create, {phase['clients']} client(s)",
                    f"{total:.0f} ms",
                    f"<= {target_cpu:.0f} ms",
                    total <= target_cpu,
                    f"data plane alone: {floor:.0f} ms" if floor else "-",
                    f"{total / floor:.1f}x" if floor else "-",
                )
            )
    for phase in alone.values():
        rows.append(
            Row(
                f"data plane alone, {phase['clients']} client(s)",
                f"p99 {phase['latency_ms']['p99']:.0f} ms, "
                f"{sum(phase['cpu_ms_per_create'].values()):.0f} ms CPU",
                "- (the floor)",
                None,
                f"{phase['creates_per_second']:.1f} creates/s",
                "-",
            )
        )
    return rows


def _list_rows(data: dict) -> list[Row]:
    return [
        Row(
            "cluster list throughput",
            f"{data['api']['per_second']:.0f} req/s",
            f"ratio >= {data['target_ratio']}",
            data["target_met"],
            f"bare view {data['bare']['per_second']:.0f} req/s",
            f"{data['ratio']:.2f}",
        )
    ]


def _rollup_rows(data: dict) -> list[Row]:
    rate = data["rollup_samples_per_second"]["median"]
    bare = data["bare_iteration_samples_per_second"]["median"]
    return [
        Row(
            "metering rollup",
            f"{rate:,.0f} samples/s",
            f">= {data['target_samples_per_second']:,}/s",
            data["target_met"],
            f"bare pass {bare:,.0f} samples/s",
            f"{data['rollup_over_bare_throughput']['median']:.3f}",
        )
    ]


def _month_rows(data: dict) -> list[Row]:
    first, second = data["first"]["seconds"], data["second"]["seconds"]
    return [
        Row(
            "a month of ledger, recomputed over itself",
            f"{second:.1f} s",
            "identical ledger",
            bool(data["identical_after_second"]),
            f"first pass {first:.1f} s",
            f"{second / first:.2f}" if first else "-",
        )
    ]


def _close_rows(data: dict) -> list[Row]:
    return [
        Row(
            "month close",
            f"{data['close_seconds']:.1f} s",
            f"< {data['target_seconds']:.0f} s",
            data["met"],
            f"bare pass {data['baseline_bare_pass_seconds']:.1f} s",
            f"{data['ratio_to_bare_pass']:.2f}",
        )
    ]


def _spend_rows(data: dict) -> list[Row]:
    return [
        Row(
            "spend check, after a metered hour",
            f"{data['warm_check_seconds']:.2f} s",
            f"< {data['target_seconds']:.0f} s",
            data["met"],
            f"cold check {data['baseline_cold_check_seconds']:.2f} s",
            f"{data['ratio_warm_to_cold']:.2f}",
        )
    ]


def _recompute_rows(data: dict) -> list[Row]:
    return [
        Row(
            f"metering recompute, {data['workers']} workers ({data['rows']:,} rows)",
            f"{data['parallel_seconds']:.1f} s",
            f"speedup >= {data['target_speedup']}x, identical ledger",
            data["target_met"] and data["identical"],
            f"serial {data['serial_seconds']:.1f} s",
            f"{data['speedup']:.2f}x",
        )
    ]


def _resync_rows(data: dict) -> list[Row]:
    base = data["baseline"]
    clusters = data["serverless_clusters"] + data["dedicated_clusters"]
    baseline = (
        f"per-cluster reconciles {base['extrapolated_seconds']:.0f} s, "
        f"{base['extrapolated_requests']:,} requests (extrapolated)"
    )
    rows = [
        Row(
            f"resync of {clusters:,} clusters, nothing drifted",
            f"{data['no_drift']['seconds']:.1f} s, {data['no_drift']['requests']} requests",
            f"<= {data['target_seconds']:.0f} s",
            data["no_drift"]["seconds"] <= data["target_seconds"],
            baseline,
            f"{data['ratio_no_drift_to_baseline']:.3f} (requests "
            f"{data['ratio_requests_to_baseline']:.4f})",
        )
    ]
    drift = data["drift"]
    rows.append(
        Row(
            f"resync, {drift['drifted']} objects drifted",
            f"{drift['seconds']:.1f} s, {drift['requests']} requests, {drift['repaired']} repaired",
            f"<= {data['target_seconds']:.0f} s, all repaired",
            drift["seconds"] <= data["target_seconds"] and drift["repaired"] == drift["drifted"],
            f"nothing drifted: {data['no_drift']['requests']} requests",
            f"+{drift['requests'] - data['no_drift']['requests']} requests",
        )
    )
    return rows


def _sustained_rows(data: dict) -> list[Row]:
    load, one = data["load"], data["baseline_one_client"]
    return [
        Row(
            f"reads by {data['clients']} clients for {data['seconds']:.0f} s",
            f"{load['requests']:,} requests, {load['failures']} errors, "
            f"p99 {load['p99_ms']:.0f} ms",
            "0 errors",
            data["errors_target_met"],
            f"one client: p99 {one['p99_ms']:.0f} ms",
            f"{data['p99_ratio_to_one_client']}x",
        ),
        Row(
            "web worker RSS after that load (largest)",
            f"{data['rss_max_mb_after']:.0f} MB",
            f"<= {data['target_rss_mb']:.0f} MB each",
            data["rss_target_met"],
            "before the load",
            f"{data['rss_ratio_after_to_before']}x",
        ),
    ]


SECTION_ROWS: dict[str, Callable[[dict], list[Row]]] = {
    "create_to_ready": _create_rows,
    "cluster_list": _list_rows,
    "sustained_load": _sustained_rows,
    "metering_rollup": _rollup_rows,
    "metering_month": _month_rows,
    "metering_recompute": _recompute_rows,
    "fleet_resync": _resync_rows,
    "month_close": _close_rows,
    "spend_check": _spend_rows,
}


def summary_rows(sections: dict[str, dict]) -> list[Row]:
    rows: list[Row] = []
    for key, rows_of in SECTION_ROWS.items():
        if key in sections:
            rows += rows_of(sections[key])
    return rows


def summary_lines(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    headers = ("figure", "measured", "target", "", "baseline (same run)", "ratio")
    table = [headers] + [
        (r.figure, r.measured, r.target, _verdict(r.met), r.baseline, r.ratio) for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    return ["Summary"] + [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]


def summary_json(rows: list[Row]) -> list[dict]:
    return [asdict(row) for row in rows]
