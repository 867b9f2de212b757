#!/usr/bin/env python3
"""Speckle against PyTorch: join `speckle bench all --json` with torch_baselines.py's output.

Usage
-----
    python3 scripts/bench_compare.py SPECKLE.json TORCH.jsonl [--json]

SPECKLE.json is the report of `speckle bench all --json`: an object with "speckle" (version
and commit), "date", "preset", "adapter", "roofline" and a "results" list; each result may
name its PyTorch counterpart as "torch": {"op": ..., "shape": [...]} and a target ratio as
"target". TORCH.jsonl is the JSON Lines output of scripts/torch_baselines.py from the same
run: a header line with "device" and "torch", then one line per measurement, keyed by
(op, shape), with "ms" or "skipped".

For each result with a counterpart, ratio = torch_ms / speckle_ms: above 1 speckle is the
faster. "met" says whether the ratio reaches the target (yes / no / "—" without a target or a
ratio). The Markdown output (the default) has a header (adapter, driver, date, commit,
roofline), the ratio table, the PyTorch device line, and a second table with every result's
fraction of the roofline, its bound and its speed against the CPU baseline. --json prints the
same as one JSON object.

Only the standard library is used. Missing keys and nulls are shown as "—"; unknown keys are
ignored. The exit status is 0 on success, 1 when a file cannot be read or is not in the
expected format (the message names the file and the problem), 2 for bad arguments.
"""

import argparse
import json
import math
import re
import sys

DASH = "\u2014"
# Skip reasons longer than this are cut in the Markdown table (--json keeps them whole).
SKIP_WIDTH = 60


class InputError(Exception):
    """A file that cannot be read or is not in the expected format."""


# ----------------------------------------------------------------------------------------
# Small helpers for loosely-typed JSON


def _number(value):
    """value as a finite float, or None (for null, strings, booleans, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _dict(value):
    return value if isinstance(value, dict) else {}


def shape_key(shape):
    """A hashable shape: a tuple of ints (4096.0 counts as 4096), or None if not a shape."""
    if not isinstance(shape, (list, tuple)):
        return None
    dims = []
    for dim in shape:
        number = _number(dim)
        if number is None or number != int(number):
            return None
        dims.append(int(number))
    return tuple(dims)


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]" if shape is not None else "[?]"


# ----------------------------------------------------------------------------------------
# Loading


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("%s: cannot read: %s" % (path, exc))


def load_speckle(path):
    text = _read(path)
    try:
        report = json.loads(text)
    except ValueError as exc:
        hint = ""
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines[:2]):
            hint = " (it looks like JSON Lines: is this the PyTorch file? the speckle report comes first)"
        raise InputError("%s: not valid JSON: %s%s" % (path, exc, hint))
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        what = "an object without a \"results\" list" if isinstance(report, dict) else "a JSON %s" % type(report).__name__
        raise InputError(
            "%s: not a speckle benchmark report (expected the object printed by "
            "`speckle bench all --json`, with a \"results\" list; found %s)" % (path, what)
        )
    results = []
    for index, entry in enumerate(report["results"]):
        if isinstance(entry, dict):
            results.append(entry)
        else:
            sys.stderr.write("bench_compare: %s: results[%d] is not an object; ignored\n" % (path, index))
    report = dict(report)
    report["results"] = results
    return report


def load_torch(path):
    """Returns (header, index): the first header line and {(op, shape): record}."""
    text = _read(path)
    header = None
    index = {}
    objects = 0
    ignored = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if line.startswith("{"):
                raise InputError("%s: line %d: not valid JSON" % (path, number))
            ignored += 1  # a stray non-JSON line (stderr mixed in); not a measurement
            continue
        if not isinstance(record, dict):
            ignored += 1
            continue
        objects += 1
        if isinstance(record.get("results"), list) and "op" not in record:
            raise InputError(
                "%s: line %d is a speckle report, not PyTorch JSON Lines "
                "(arguments: SPECKLE.json TORCH.jsonl)" % (path, number)
            )
        if "op" not in record:
            if header is None and "device" in record:
                header = record
            continue
        key = (_text(record.get("op")), shape_key(record.get("shape")))
        previous = index.get(key)
        # A measured line beats a skipped one; otherwise the later line wins.
        if previous is not None and _is_measured(previous) and not _is_measured(record):
            continue
        index[key] = record
    if objects == 0:
        raise InputError("%s: no JSON objects found (expected the output of torch_baselines.py)" % path)
    if ignored:
        sys.stderr.write("bench_compare: %s: %d line(s) that are not JSON objects ignored\n" % (path, ignored))
    return header or {}, index


def _is_measured(record):
    return "skipped" not in record and _number(record.get("ms")) is not None


# ----------------------------------------------------------------------------------------
# Joining


def compare(report, torch_header, torch_index):
    """The rows of both tables, as plain dicts (the --json output)."""
    comparisons = []
    results = []
    for entry in report["results"]:
        label = _text(entry.get("label")) or _text(entry.get("kernel")) or "?"
        variant = _text(entry.get("variant"))
        ms = _number(entry.get("ms"))
        results.append({
            "label": label,
            "variant": variant,
            "kernel": _text(entry.get("kernel")),
            "shape": entry.get("shape"),
            "ms": ms,
            "gflops": _number(entry.get("gflops")),
            "gbps": _number(entry.get("gbps")),
            "roofline_fraction": _number(entry.get("roofline_fraction")),
            "bound": _text(entry.get("bound")),
            "cpu_ms": _number(entry.get("cpu_ms")),
            "cpu_baseline": _text(entry.get("cpu_baseline")),
            "vs_cpu": _number(entry.get("vs_cpu")),
            "error": _number(entry.get("error")),
            "timing": _text(entry.get("timing")),
        })

        ref = entry.get("torch")
        if not isinstance(ref, dict):
            continue  # no PyTorch counterpart
        op = _text(ref.get("op"))
        shape = shape_key(ref.get("shape"))
        target = _number(entry.get("target"))
        row = {
            "label": label,
            "variant": variant,
            "kernel": _text(entry.get("kernel")),
            "speckle_ms": ms,
            "torch_op": op,
            "torch_shape": list(shape) if shape is not None else ref.get("shape"),
            "torch_ms": None,
            "status": "missing",
            "skipped": None,
            "ratio": None,
            "target": target,
            "met": None,
        }
        record = torch_index.get((op, shape))
        if record is None:
            pass
        elif "skipped" in record:
            row["status"] = "skipped"
            row["skipped"] = _text(record.get("skipped")) or "skipped"
        elif _number(record.get("ms")) is None:
            row["status"] = "no time"
        else:
            row["status"] = "measured"
            row["torch_ms"] = _number(record.get("ms"))
            if ms is not None and ms > 0 and row["torch_ms"] > 0:
                row["ratio"] = row["torch_ms"] / ms
        if row["ratio"] is not None and target is not None:
            row["met"] = row["ratio"] >= target
        comparisons.append(row)

    meta = _meta(report)
    return {
        "speckle": meta,
        "torch": {
            "device": _text(torch_header.get("device")),
            "torch": _text(torch_header.get("torch")),
            "cuda": _text(torch_header.get("cuda")),
            "preset": _text(torch_header.get("preset")),
        },
        "comparisons": comparisons,
        "results": results,
        "summary": {
            "compared": sum(1 for r in comparisons if r["ratio"] is not None),
            "with_target": sum(1 for r in comparisons if r["met"] is not None),
            "met": sum(1 for r in comparisons if r["met"] is True),
            "not_met": sum(1 for r in comparisons if r["met"] is False),
            "no_counterpart": len(results) - len(comparisons),
        },
    }


def _meta(report):
    version_line = _text(report.get("speckle"))
    version = commit = None
    if version_line:
        match = re.search(r"\bcommit\s+([0-9A-Za-z._-]+)", version_line)
        commit = match.group(1) if match else None
        version = version_line.split("(")[0].strip() or None
    adapter = _dict(report.get("adapter"))
    roofline = _dict(report.get("roofline"))
    return {
        "version": version,
        "commit": commit,
        "version_line": version_line,
        "date": _text(report.get("date")),
        "preset": _text(report.get("preset")),
        "adapter": {
            "name": _text(adapter.get("name")),
            "backend": _text(adapter.get("backend")),
            "device_type": _text(adapter.get("device_type")),
            "driver": _text(adapter.get("driver")),
            "driver_info": _text(adapter.get("driver_info")),
        },
        "roofline": {
            "fma_gflops": _number(roofline.get("fma_gflops")),
            "copy_gbps": _number(roofline.get("copy_gbps")),
            "ridge_flops_per_byte": _number(roofline.get("ridge_flops_per_byte")),
        },
    }


# ----------------------------------------------------------------------------------------
# Markdown


def _three_digits(value):
    """Three significant digits, trailing zeros kept (0.400, 5.50, 12.0); one decimal from 100."""
    if abs(value) >= 100:
        return "%.1f" % value
    return ("%#.3g" % value).rstrip(".")


def fmt_ms(value):
    return DASH if value is None else _three_digits(value)


def fmt_rate(value):
    if value is None:
        return DASH
    if value >= 100:
        return "{:,.0f}".format(value)
    return "%.3g" % value


def fmt_ratio(value):
    return DASH if value is None else "%.2fx" % value


def fmt_speedup(value):
    return DASH if value is None else _three_digits(value) + "x"


def fmt_plain(value):
    return DASH if value is None else "%g" % value


def _cell(text):
    text = DASH if text is None or text == "" else str(text)
    return " ".join(text.replace("|", "\\|").split())


def markdown_table(headers, rows, align=None):
    align = align or ["l"] * len(headers)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def _torch_ms_cell(row):
    if row["status"] == "measured":
        return fmt_ms(row["torch_ms"])
    if row["status"] == "skipped":
        reason = row["skipped"]
        if len(reason) > SKIP_WIDTH:
            reason = reason[:SKIP_WIDTH - 1].rstrip() + "\u2026"
        return "skipped: " + reason
    if row["status"] == "no time":
        return "no time in PyTorch file"
    return "missing from PyTorch file"


def render_markdown(data):
    meta = data["speckle"]
    adapter = meta["adapter"]
    roof = meta["roofline"]
    out = []
    out.append("## speckle vs PyTorch" + (" (%s)" % meta["date"] if meta["date"] else ""))
    out.append("")
    kind = ", ".join(x for x in (adapter["backend"], adapter["device_type"]) if x)
    out.append("- Adapter: %s%s" % (adapter["name"] or DASH, " (%s)" % kind if kind else ""))
    driver = adapter["driver"] or adapter["driver_info"]
    if adapter["driver"] and adapter["driver_info"]:
        driver = "%s (%s)" % (adapter["driver"], adapter["driver_info"])
    out.append("- Driver: %s" % (driver or DASH))
    out.append("- Date: %s" % (meta["date"] or DASH))
    if meta["version"] or meta["commit"]:
        out.append("- speckle: %s, commit %s" % (meta["version"] or DASH, meta["commit"] or DASH))
    else:
        out.append("- speckle: %s" % (meta["version_line"] or DASH))
    out.append("- Preset: %s" % (meta["preset"] or DASH))
    out.append(
        "- Roofline: peak FMA %s GFLOP/s, copy %s GB/s, ridge %s flop/byte"
        % (fmt_rate(roof["fma_gflops"]), fmt_rate(roof["copy_gbps"]), fmt_plain(roof["ridge_flops_per_byte"]))
    )
    out.append("")

    rows = []
    for r in data["comparisons"]:
        op = "%s %s" % (r["torch_op"] or "?", _shape_text(shape_key(r["torch_shape"])))
        target = "\u2265 %s" % fmt_plain(r["target"]) if r["target"] is not None else DASH
        met = DASH if r["met"] is None else ("yes" if r["met"] else "no")
        rows.append([r["label"], r["variant"], fmt_ms(r["speckle_ms"]), op, _torch_ms_cell(r),
                     fmt_ratio(r["ratio"]), target, met])
    if rows:
        out.append(markdown_table(
            ["Benchmark", "Variant", "speckle ms", "PyTorch op", "PyTorch ms", "Ratio", "Target", "Met"],
            rows, ["l", "l", "r", "l", "r", "r", "l", "c"],
        ))
    else:
        out.append("No result names a PyTorch counterpart.")
    out.append("")
    s = data["summary"]
    out.append(
        "Ratio = PyTorch ms / speckle ms (above 1: speckle is faster). %d compared; targets met %d of %d; "
        "%d result(s) without a PyTorch counterpart." % (s["compared"], s["met"], s["with_target"], s["no_counterpart"])
    )
    t = data["torch"]
    torch_line = "PyTorch: %s, torch %s" % (t["device"] or DASH, t["torch"] or DASH)
    if t["cuda"]:
        torch_line += ", CUDA %s" % t["cuda"]
    if t["preset"]:
        torch_line += ", preset %s" % t["preset"]
    out.append("")
    out.append(torch_line)
    if t["preset"] and meta["preset"] and t["preset"] != meta["preset"]:
        out.append("")
        out.append("Warning: the PyTorch preset (%s) differs from speckle's (%s)." % (t["preset"], meta["preset"]))

    out.append("")
    out.append("### Roofline")
    out.append("")
    roof_rows = []
    for r in data["results"]:
        fraction = DASH if r["roofline_fraction"] is None else "%.2f" % r["roofline_fraction"]
        roof_rows.append([r["label"], r["variant"], fmt_ms(r["ms"]), fmt_rate(r["gflops"]), fmt_rate(r["gbps"]),
                          fraction, r["bound"], fmt_speedup(r["vs_cpu"])])
    if roof_rows:
        out.append(markdown_table(
            ["Benchmark", "Variant", "ms", "GFLOP/s", "GB/s", "Fraction of roofline", "Bound", "vs CPU"],
            roof_rows, ["l", "l", "r", "r", "r", "r", "l", "r"],
        ))
    else:
        out.append("The report has no results.")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench_compare.py",
        description="Ratio table of speckle's benchmark report against PyTorch baselines of the same run.",
    )
    parser.add_argument("speckle", metavar="SPECKLE.json", help="output of `speckle bench all --json`")
    parser.add_argument("torch", metavar="TORCH.jsonl", help="output of scripts/torch_baselines.py")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    args = parser.parse_args(argv)
    try:
        report = load_speckle(args.speckle)
        header, index = load_torch(args.torch)
    except InputError as exc:
        sys.stderr.write("bench_compare: %s\n" % exc)
        return 1
    data = compare(report, header, index)
    if args.json:
        _write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        _write(render_markdown(data))
    return 0


def _write(text):
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:  # a terminal that cannot show the dash and the sign
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
