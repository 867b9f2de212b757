#!/usr/bin/env python3
"""Smoke tests for scripts/bench_compare.py and the torch-free parts of torch_baselines.py.

    python3 -m unittest scripts/test_bench_compare.py
    python3 scripts/test_bench_compare.py

Standard library only. The test that runs torch_baselines.py itself (on the CPU, quick
preset) runs only where torch can be imported, and is skipped elsewhere.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "bench_compare.py")
BASELINES = os.path.join(HERE, "torch_baselines.py")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_compare = _load("bench_compare", COMPARE)
torch_baselines = _load("torch_baselines", BASELINES)

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def speckle_report(results):
    return {
        "speckle": "0.1.0 (commit abc123)",
        "date": "2026-12-02",
        "preset": "gpu",
        "adapter": {"name": "NVIDIA H200", "backend": "vulkan", "device_type": "discrete",
                    "driver": "NVIDIA", "driver_info": "570.86", "vendor": 4318, "device": 8995},
        "roofline": {"fma_gflops": 41400.0, "copy_gbps": 3975.0, "ridge_flops_per_byte": 10.4},
        "results": results,
        "some_future_key": {"nested": True},
    }


def result(label, ms, op=None, shape=None, target=None, **extra):
    entry = {
        "kernel": label.split()[0], "label": label, "variant": "v1", "shape": shape, "ms": ms,
        "gflops": None, "gbps": None, "roofline_fraction": None, "bound": None,
        "cpu_ms": None, "cpu_baseline": None, "vs_cpu": None, "error": None,
        "timing": "gpu-timestamp",
        "torch": {"op": op, "shape": shape} if op else None,
        "target": target,
    }
    entry.update(extra)
    return entry


RESULTS = [
    # torch 2.75 / speckle 5.5 = 0.50: under the 0.8 target.
    result("matmul f32 n=4096", 5.5, "matmul_fp32", [4096, 4096, 4096], 0.8,
           gflops=24800.0, roofline_fraction=0.6, bound="compute", cpu_ms=800.0,
           cpu_baseline="matrixmultiply sgemm (threaded)", vs_cpu=150.0, error=1.9e-7),
    # torch 3.0 / speckle 2.0 = 1.50: over the 1.0 target.
    result("attention f32 causal", 2.0, "sdpa_fp32_efficient_causal", [8, 16, 2048, 64], 1.0),
    # The torch side is skipped.
    result("matmul f16 n=8192", 4.0, "matmul_f16", [8192, 8192, 8192], 0.5),
    # The torch side is absent (no line with that op and shape).
    result("softmax 16384x4096", 1.0, "softmax", [16384, 4096], 0.8),
    # No target: a ratio but no verdict. torch 1.0 / speckle 4.0 = 0.25.
    result("copy 256 MiB", 4.0, "copy", [268435456], None, gbps=134.0, roofline_fraction=0.034,
           bound="memory"),
    # No PyTorch counterpart at all.
    result("roofline fma", 1.0, gflops=41400.0, roofline_fraction=1.0, bound="compute"),
    # Mostly missing keys, one pipe in the label.
    {"label": "odd | row", "torch": {"op": "relu", "shape": [67108864.0]}},
]

TORCH_LINES = [
    {"device": "NVIDIA H200", "torch": "2.5.1", "cuda": "12.4", "preset": "gpu"},
    {"op": "matmul_fp32", "shape": [4096, 4096, 4096], "ms": 2.75, "tflops": 50.0},
    {"op": "matmul_fp32", "shape": [8192, 8192, 8192], "ms": 99.0, "tflops": 11.1},
    {"op": "sdpa_fp32_efficient_causal", "shape": [8, 16, 2048, 64], "ms": 3.0, "tflops": 1.0},
    # Same op, other shape: must not match the causal row above.
    {"op": "sdpa_fp32_efficient_causal", "shape": [4, 16, 4096, 64], "ms": 77.0},
    {"op": "matmul_f16", "shape": [8192, 8192, 8192], "skipped": "out of memory"},
    {"op": "copy", "shape": [268435456], "ms": 1.0, "bytes": 536870912, "gbps": 536.9},
    # A skipped line after a measured one does not hide the measurement.
    {"op": "relu", "shape": [67108864], "ms": 0.5, "gbps": 1073.7},
    {"op": "relu", "shape": [67108864], "skipped": "later failure"},
]


class Files(object):
    """A temp dir holding a speckle report and a torch JSONL file."""

    def __init__(self, report=None, torch_lines=None, torch_text=None, speckle_text=None):
        self.dir = tempfile.TemporaryDirectory()
        self.speckle = os.path.join(self.dir.name, "speckle.json")
        self.torch = os.path.join(self.dir.name, "torch.jsonl")
        with open(self.speckle, "w", encoding="utf-8") as f:
            f.write(speckle_text if speckle_text is not None
                    else json.dumps(report if report is not None else speckle_report(RESULTS)))
        if torch_text is None:
            torch_text = "".join(json.dumps(line) + "\n" for line in (torch_lines or TORCH_LINES))
        with open(self.torch, "w", encoding="utf-8") as f:
            f.write(torch_text)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dir.cleanup()
        return False


def run_compare(*args):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, COMPARE] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def table_rows(markdown, first_header):
    """The body rows (lists of cells) of the Markdown table whose first header is given."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| " + first_header + " |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in _split_cells(line)]
        rows.append(cells)
    return lines[start], rows


def _split_cells(line):
    # Split on pipes that are not escaped.
    cells, current, i = [], "", 1
    body = line.strip()
    while i < len(body) - 1:
        ch = body[i]
        if ch == "\\" and body[i + 1] == "|":
            current += "\\|"
            i += 2
            continue
        if ch == "|":
            cells.append(current)
            current = ""
        else:
            current += ch
        i += 1
    cells.append(current)
    return cells


class CompareJson(unittest.TestCase):
    def setUp(self):
        with Files() as files:
            code, out, err = run_compare(files.speckle, files.torch, "--json")
        self.assertEqual(code, 0, err)
        self.data = json.loads(out)
        self.rows = {row["label"]: row for row in self.data["comparisons"]}

    def test_ratio_is_torch_over_speckle(self):
        row = self.rows["matmul f32 n=4096"]
        self.assertEqual(row["status"], "measured")
        self.assertAlmostEqual(row["ratio"], 2.75 / 5.5)
        self.assertIs(row["met"], False)
        row = self.rows["attention f32 causal"]
        self.assertAlmostEqual(row["ratio"], 1.5)
        self.assertIs(row["met"], True)

    def test_match_needs_op_and_shape(self):
        self.assertEqual(self.rows["attention f32 causal"]["torch_ms"], 3.0)
        self.assertEqual(self.rows["matmul f32 n=4096"]["torch_ms"], 2.75)

    def test_skipped_and_missing(self):
        skipped = self.rows["matmul f16 n=8192"]
        self.assertEqual(skipped["status"], "skipped")
        self.assertEqual(skipped["skipped"], "out of memory")
        self.assertIsNone(skipped["ratio"])
        self.assertIsNone(skipped["met"])
        missing = self.rows["softmax 16384x4096"]
        self.assertEqual(missing["status"], "missing")
        self.assertIsNone(missing["ratio"])
        self.assertIsNone(missing["met"])

    def test_no_target_gives_ratio_without_verdict(self):
        row = self.rows["copy 256 MiB"]
        self.assertAlmostEqual(row["ratio"], 0.25)
        self.assertIsNone(row["met"])

    def test_measured_beats_later_skip_and_float_shapes_match(self):
        row = self.rows["odd | row"]
        self.assertEqual(row["status"], "measured")
        self.assertEqual(row["torch_ms"], 0.5)
        self.assertIsNone(row["ratio"])  # the speckle side has no ms

    def test_rows_without_counterpart_only_in_results(self):
        self.assertNotIn("roofline fma", self.rows)
        labels = [r["label"] for r in self.data["results"]]
        self.assertEqual(len(labels), len(RESULTS))
        self.assertIn("roofline fma", labels)
        self.assertEqual(self.data["summary"]["no_counterpart"], 1)
        self.assertEqual(self.data["summary"]["met"], 1)
        self.assertEqual(self.data["summary"]["not_met"], 1)

    def test_meta(self):
        self.assertEqual(self.data["speckle"]["commit"], "abc123")
        self.assertEqual(self.data["speckle"]["version"], "0.1.0")
        self.assertEqual(self.data["torch"]["torch"], "2.5.1")


class CompareMarkdown(unittest.TestCase):
    def setUp(self):
        with Files() as files:
            code, self.out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 0, err)

    def test_header_lines(self):
        head = self.out.split("| Benchmark |")[0]
        for text in ("NVIDIA H200", "vulkan", "NVIDIA (570.86)", "2026-12-02", "abc123",
                     "41,400 GFLOP/s", "3,975 GB/s", "10.4 flop/byte"):
            self.assertIn(text, head)

    def test_ratio_table(self):
        header, rows = table_rows(self.out, "Benchmark")
        self.assertEqual(
            [c.strip() for c in _split_cells(header)],
            ["Benchmark", "Variant", "speckle ms", "PyTorch op", "PyTorch ms", "Ratio", "Target", "Met"],
        )
        by_label = {row[0]: row for row in rows}
        self.assertEqual(len(rows), 6)
        for row in rows:
            self.assertEqual(len(row), 8, row)
        self.assertEqual(by_label["matmul f32 n=4096"][3], "matmul_fp32 [4096,4096,4096]")
        self.assertEqual(by_label["matmul f32 n=4096"][4:], ["2.75", "0.50x", "\u2265 0.8", "no"])
        self.assertEqual(by_label["attention f32 causal"][5:], ["1.50x", "\u2265 1", "yes"])
        self.assertEqual(by_label["matmul f16 n=8192"][4:], ["skipped: out of memory", "\u2014", "\u2265 0.5", "\u2014"])
        self.assertIn("missing", by_label["softmax 16384x4096"][4])
        self.assertEqual(by_label["copy 256 MiB"][5:], ["0.25x", "\u2014", "\u2014"])
        self.assertIn("odd \\| row", by_label)
        self.assertNotIn("roofline fma", by_label)

    def test_torch_footer_after_table(self):
        after = self.out.split("| Benchmark |")[1]
        self.assertIn("PyTorch: NVIDIA H200, torch 2.5.1, CUDA 12.4", after)

    def test_roofline_table(self):
        _header, rows = table_rows(self.out, "Benchmark | Variant | ms")
        by_label = {row[0]: row for row in rows}
        self.assertEqual(len(rows), len(RESULTS))
        self.assertEqual(by_label["matmul f32 n=4096"],
                         ["matmul f32 n=4096", "v1", "5.50", "24,800", "\u2014", "0.60", "compute", "150.0x"])
        self.assertEqual(by_label["copy 256 MiB"][4:7], ["134", "0.03", "memory"])
        self.assertIn("roofline fma", by_label)


class CompareErrors(unittest.TestCase):
    def test_missing_file(self):
        with Files() as files:
            code, _out, err = run_compare(os.path.join(files.dir.name, "nope.json"), files.torch)
        self.assertEqual(code, 1)
        self.assertIn("nope.json", err)
        self.assertIn("cannot read", err)

    def test_invalid_speckle_json(self):
        with Files(speckle_text="{not json") as files:
            code, _out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 1)
        self.assertIn("speckle.json", err)
        self.assertIn("not valid JSON", err)

    def test_wrong_speckle_shape(self):
        with Files(speckle_text=json.dumps([1, 2, 3])) as files:
            code, _out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 1)
        self.assertIn("results", err)

    def test_swapped_arguments(self):
        with Files() as files:
            code, _out, err = run_compare(files.torch, files.speckle)
        self.assertEqual(code, 1)
        self.assertIn("torch.jsonl", err)

    def test_torch_file_bad_line(self):
        with Files(torch_text='{"device": "x"}\n{"op": "relu", \n') as files:
            code, _out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 1)
        self.assertIn("torch.jsonl: line 2", err)

    def test_torch_file_empty(self):
        with Files(torch_text="") as files:
            code, _out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 1)
        self.assertIn("no JSON objects", err)

    def test_stray_text_lines_are_ignored(self):
        text = "Warning: something on stderr\n" + "".join(json.dumps(x) + "\n" for x in TORCH_LINES)
        with Files(torch_text=text) as files:
            code, out, err = run_compare(files.speckle, files.torch, "--json")
        self.assertEqual(code, 0, err)
        self.assertIn("ignored", err)
        self.assertEqual(json.loads(out)["summary"]["compared"], 3)

    def test_empty_report_and_no_header(self):
        report = {"results": []}
        with Files(report=report, torch_lines=[{"op": "relu", "shape": [4], "ms": 1.0}]) as files:
            code, out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 0, err)
        self.assertIn("No result names a PyTorch counterpart", out)


class BaselineArguments(unittest.TestCase):
    """torch_baselines.py parses its arguments before importing torch."""

    def test_defaults(self):
        args, shapes = torch_baselines.parse_args([])
        self.assertEqual(args.device, "cuda")
        self.assertEqual(args.preset, "gpu")
        self.assertEqual(args.groups, list(torch_baselines.GROUPS))
        self.assertEqual(shapes["matmul"], [4096, 8192])
        self.assertEqual(shapes["linear"], [(8, 16384, 4096)])
        self.assertEqual(shapes["copy_bytes"], [268435456])
        self.assertEqual(shapes["elements"], [67108864])
        args, shapes = torch_baselines.parse_args(["--device", "cpu"])
        self.assertEqual(args.preset, "cpu")
        self.assertEqual(shapes["sdpa"], [(1, 4, 1024, 64)])
        self.assertEqual(shapes["sdpa_decode"], [(1, 4, 8, 40000, 64)])

    def test_overrides(self):
        args, shapes = torch_baselines.parse_args([
            "--preset", "quick", "--matmul-sizes", "128,256", "--sdpa-shapes", "8,16,2048,64;4,16,4096,64",
            "--opu-shapes", "1024,4096,16384", "--rows-cols", "2,3", "--copy-bytes", "1024", "copy", "matmul",
            "--sdpa-decode-shapes", "1,16,1,16384,64;8,16,1,4096,64", "--linear-shapes", "4,100,64;1,8,4",
        ])
        self.assertEqual(args.groups, ["matmul", "copy"])
        self.assertEqual(shapes["matmul"], [128, 256])
        self.assertEqual(shapes["matmul16"], [128, 256])
        self.assertEqual(shapes["sdpa"], [(8, 16, 2048, 64), (4, 16, 4096, 64)])
        self.assertEqual(shapes["sdpa_decode"], [(1, 16, 1, 16384, 64), (8, 16, 1, 4096, 64)])
        self.assertEqual(shapes["opu"], [(1024, 4096, 16384)])
        self.assertEqual(shapes["linear"], [(4, 100, 64), (1, 8, 4)])
        self.assertEqual(shapes["rows_cols"], [(2, 3)])
        self.assertEqual(shapes["elements"], [4096])
        self.assertIn("--matmul-sizes", args.overrides)

    def test_bad_arguments_exit_2(self):
        for argv in (["nosuchgroup"], ["--sdpa-shapes", "1,2,3"], ["--copy-bytes", "10"],
                     ["--sdpa-decode-shapes", "1,2,3,4"], ["--linear-shapes", "8,16"],
                     ["--matmul-sizes", "0"], ["--runs", "x"], ["--device", "tpu"]):
            proc = subprocess.run([sys.executable, BASELINES] + argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
            self.assertEqual(proc.returncode, 2, argv)
            self.assertIn(b"error", proc.stderr, argv)
            self.assertEqual(proc.stdout, b"", argv)


class DecodeCases(unittest.TestCase):
    """The SDPA cases of the decoding shapes, built without torch: stand-in modules give the
    case generator the names it imports, and no case is run."""

    def test_decode_shapes_yield_the_three_backends_with_their_flops(self):
        import types
        names = ["torch", "torch.nn", "torch.nn.functional", "torch.nn.attention"]
        saved = {name: sys.modules.get(name) for name in names}
        stand_ins = {name: types.ModuleType(name) for name in names}
        stand_ins["torch"].float32 = "torch.float32"
        stand_ins["torch"].float16 = "torch.float16"
        stand_ins["torch"].nn = stand_ins["torch.nn"]
        stand_ins["torch.nn"].functional = stand_ins["torch.nn.functional"]
        stand_ins["torch.nn"].attention = stand_ins["torch.nn.attention"]
        stand_ins["torch.nn.attention"].SDPBackend = object()
        stand_ins["torch.nn.attention"].sdpa_kernel = lambda backend: None
        try:
            sys.modules.update(stand_ins)
            cases = list(torch_baselines.sdpa_cases(
                stand_ins["torch"], "cpu", [], [(1, 16, 1, 16384, 64), (8, 16, 2, 4096, 64)]))
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        self.assertEqual([c.op for c in cases], ["sdpa_fp32_math", "sdpa_fp32_efficient",
                                                 "sdpa_f16_flash"] * 2)
        self.assertEqual([c.shape for c in cases],
                         [[1, 16, 1, 16384, 64]] * 3 + [[8, 16, 2, 4096, 64]] * 3)
        self.assertEqual([c.flops for c in cases],
                         [4 * 16 * 16384 * 64] * 3 + [4 * 8 * 16 * 2 * 4096 * 64] * 3)
        for c in cases:
            self.assertIsNone(c.skip)
            self.assertFalse(c.extra["causal"])


@unittest.skipUnless(HAVE_TORCH, "torch is not importable here")
class BaselinesOnCpu(unittest.TestCase):
    """Runs torch_baselines.py --device cpu --preset quick and feeds its output to bench_compare."""

    CONTRACT = [
        "matmul_fp32", "matmul_fp32_tf32", "matmul_f16",
        "sdpa_fp32_math", "sdpa_fp32_efficient", "sdpa_f16_flash",
        "sdpa_fp32_math_causal", "sdpa_fp32_efficient_causal", "sdpa_f16_flash_causal",
        "opu_fp32", "opu_f16", "relu", "gelu_tanh", "softmax", "layernorm", "sum_rows", "copy",
    ]

    @classmethod
    def setUpClass(cls):
        proc = subprocess.run([sys.executable, BASELINES, "--device", "cpu", "--preset", "quick",
                               "--runs", "3", "--warmup", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cls.returncode = proc.returncode
        cls.stderr = proc.stderr.decode("utf-8", "replace")
        cls.text = proc.stdout.decode("utf-8")
        cls.lines = [json.loads(line) for line in cls.text.splitlines()]

    def test_exit_and_header(self):
        self.assertEqual(self.returncode, 0, self.stderr)
        header = self.lines[0]
        for key in ("device", "torch", "cuda", "preset"):
            self.assertIn(key, header)
        self.assertEqual(header["preset"], "quick")

    def test_every_contract_op_once(self):
        # The decoding shapes ([B, H, NQ, NK, D]) repeat the three non-causal SDPA ops.
        square = [line for line in self.lines[1:] if len(line["shape"]) != 5]
        decode = [line for line in self.lines[1:] if len(line["shape"]) == 5]
        self.assertEqual(sorted(line["op"] for line in square), sorted(self.CONTRACT))
        self.assertEqual(sorted(line["op"] for line in decode),
                         ["sdpa_f16_flash", "sdpa_fp32_efficient", "sdpa_fp32_math"])
        for line in decode:
            self.assertEqual(line["shape"], [1, 2, 1, 300, 16])
        shapes = {line["op"]: line["shape"] for line in square}
        self.assertEqual(shapes["matmul_fp32"], [64, 64, 64])
        self.assertEqual(shapes["sdpa_fp32_math_causal"], [1, 2, 64, 16])
        self.assertEqual(shapes["opu_fp32"], [4, 32, 64])
        self.assertEqual(shapes["relu"], [4096])
        self.assertEqual(shapes["softmax"], [8, 256])
        self.assertEqual(shapes["copy"], [65536])

    def test_records(self):
        for line in self.lines[1:]:
            if "skipped" in line:
                self.assertIsInstance(line["skipped"], str)
                continue
            self.assertGreater(line["ms"], 0)
            if line["op"] in ("relu", "gelu_tanh", "softmax", "layernorm", "sum_rows", "copy"):
                self.assertGreater(line["gbps"], 0)
            else:
                self.assertGreater(line["tflops"], 0)
        by_op = {line["op"]: line for line in self.lines[1:]}
        # fp32 paths must run on the CPU.
        for op in ("matmul_fp32", "sdpa_fp32_math", "opu_fp32", "relu", "copy"):
            self.assertIn("ms", by_op[op], by_op[op])
        self.assertEqual(by_op["copy"]["bytes"], 2 * 65536)
        self.assertEqual(by_op["sum_rows"]["bytes"], 4 * 8 * 256 + 4 * 8)
        self.assertEqual(by_op["sdpa_fp32_math_causal"]["flops"], 4 * 2 * 64 * 64 * 16 // 2)

    def test_pipes_into_compare(self):
        results = [result("matmul quick", 0.5, "matmul_fp32", [64, 64, 64], 0.8),
                   result("relu quick", 0.5, "relu", [4096], 0.8),
                   result("tf32 quick", 0.5, "matmul_fp32_tf32", [64, 64, 64], None)]
        with Files(report=speckle_report(results), torch_text=self.text) as files:
            code, out, err = run_compare(files.speckle, files.torch)
        self.assertEqual(code, 0, err)
        _header, rows = table_rows(out, "Benchmark")
        by_label = {row[0]: row for row in rows}
        self.assertTrue(by_label["matmul quick"][5].endswith("x"))
        self.assertTrue(by_label["tf32 quick"][4].startswith("skipped"))


if __name__ == "__main__":
    unittest.main()
