#!/usr/bin/env python3
"""PyTorch baselines for speckle's benchmark, measured on the same machine in the same run.

Usage
-----
    python3 scripts/torch_baselines.py [--device cuda|cpu] [--preset gpu|cpu|quick]
                                       [--runs N] [--warmup N] [GROUP ...]

GROUP is any of: matmul, matmul16, sdpa, opu, elementwise, copy (default: all, in that
order). The preset picks the standard shapes (the ones `speckle bench all` uses, see PRESETS
below); without --preset it is "gpu" on --device cuda and "cpu" on --device cpu. Each group's
shapes can be replaced:

    --matmul-sizes 4096,8192           n for matmul (and matmul16, unless --matmul16-sizes)
    --matmul16-sizes 4096,8192         n for matmul16 only
    --linear-shapes 8,16384,4096       M,N,K shapes of x W^T for a few rows (group matmul)
    --sdpa-shapes 8,16,2048,64;4,16,4096,64   B,H,N,D shapes, separated by ';'
    --sdpa-decode-shapes 1,16,1,16384,64      B,H,NQ,NK,D shapes (fewer queries than keys)
    --opu-shapes 1024,4096,16384       batch,d,n_out shapes, separated by ';'
    --elements 67108864                element counts for relu / gelu_tanh (comma list)
    --rows-cols 16384,4096             R,C shapes for softmax / layernorm / sum_rows (';' list)
    --copy-bytes 268435456             buffer sizes for copy, multiples of 4 (comma list)

Requires Python 3.8+ and torch (torch.nn.attention for the sdpa group, torch >= 2.3).

Output contract (JSON Lines on stdout; warnings and errors go to stderr)
-----------------------------------------------------------------------
The first line describes the run:

    {"device": "NVIDIA H200", "torch": "2.5.1", "cuda": "12.4", "preset": "gpu",
     "torch_device": "cuda", "warmup": 3, "runs": 20, "runs_sdpa_opu": 10, "overrides": []}

("cuda" is the CUDA version torch was built with, null for a CPU-only build; "overrides"
lists the shape options given.) Then one line per measurement:

    {"op": "matmul_fp32", "shape": [4096, 4096, 4096], "ms": 2.71, "tflops": 50.7, ...}

"ms" is the median of the timed runs. Compute-bound ops carry "flops" and "tflops";
memory-bound ops carry "bytes" (the minimum bytes read plus written) and "gbps". Extra keys
("dtype", "causal", "runs", "min_ms") may follow. A measurement that cannot run (out of
memory, no backend for that dtype or shape on this device) prints

    {"op": "sdpa_f16_flash", "shape": [1, 4, 1024, 64], "skipped": "<reason>"}

and the script goes on. The pair (op, shape) is the key a comparison script matches on; the
op names and shape layouts below are therefore fixed. The exit status is 0 when at least one
measurement ran, 1 when none could, 2 for bad arguments or an unusable device.

Timing: on CUDA, a pair of CUDA events around each call, after the warm-up calls (default
3 warm-ups and 20 timed runs; 10 timed runs for sdpa and opu unless --runs is given). On the
CPU, time.perf_counter around each call. Inputs are torch.randn with a fixed seed (binary
inputs for opu), never zeros.

Ops (all fp32 unless the name says f16)
---------------------------------------
matmul_fp32       [n, n, n]   a @ b, TF32 off (allow_tf32 False for cuBLAS and cuDNN,
                              float32 matmul precision "highest"). flops 2n^3.
matmul_fp32_tf32  [n, n, n]   the same with TF32 on: a reference only (CUDA only).
matmul_f16        [n, n, n]   f16 a @ b (cuBLAS HGEMM on tensor cores). flops 2n^3.
sdpa_fp32_math, sdpa_fp32_efficient, sdpa_f16_flash   [B, H, N, D]
                              F.scaled_dot_product_attention(q, k, v) with the backend forced
                              by torch.nn.attention.sdpa_kernel (MATH, EFFICIENT_ATTENTION,
                              FLASH_ATTENTION); q, k, v are [B, H, N, D] (speckle's [B, N, H*D]
                              is the same work). flops 4*B*H*N^2*D. Causal runs append
                              "_causal" to the op name and count half the flops.
                  [B, H, NQ, NK, D]
                              the same ops with NQ query rows over NK keys (a decoding step:
                              NQ = 1), without a mask. flops 4*B*H*NQ*NK*D.
opu_fp32          [batch, d, n_out]
                              y = (x @ Rr)^2 + (x @ Ri)^2 with a stored complex matrix
                              R = Rr + i*Ri ([d, n_out] each) and binary x [batch, d]
                              (entries 0 or 1), TF32 off. flops 4*batch*d*n_out (two matmuls).
opu_f16           [batch, d, n_out]
                              the same with x, Rr, Ri in f16 (tensor cores); both products
                              are cast to fp32 before squaring and summing.
relu              [elements]  torch.relu(x). bytes 8*elements.
gelu_tanh         [elements]  F.gelu(x, approximate="tanh"). bytes 8*elements.
softmax           [rows, cols]  torch.softmax(x, dim=-1). bytes 8*rows*cols.
layernorm         [rows, cols]  F.layer_norm over the last axis, no weight or bias, eps 1e-5.
                              bytes 8*rows*cols.
sum_rows          [rows, cols]  x.sum(dim=-1). bytes 4*rows*cols + 4*rows.
copy              [bytes]     dst.copy_(src) between two fp32 buffers of that many bytes on the
                              device. bytes 2*bytes (read plus written).
"""

import argparse
import gc
import itertools
import json
import platform
import statistics
import sys
import time
import warnings

# The standard shapes, one table per preset: the same ones `speckle bench all` runs.
PRESETS = {
    "gpu": {
        "matmul": [4096, 8192],
        "linear": [(8, 16384, 4096)],
        "matmul16": [4096, 8192],
        "sdpa": [(8, 16, 2048, 64), (4, 16, 4096, 64)],
        "sdpa_decode": [(1, 16, 1, 16384, 64), (8, 16, 1, 4096, 64)],
        "opu": [(1024, 4096, 16384), (8, 4096, 16384)],
        "elements": [1 << 26],
        "rows_cols": [(16384, 4096)],
        "copy_bytes": [256 << 20],
    },
    "cpu": {
        "matmul": [1024],
        "linear": [(8, 4096, 1024)],
        "matmul16": [1024],
        "sdpa": [(1, 4, 1024, 64)],
        "sdpa_decode": [(1, 4, 8, 40000, 64)],
        "opu": [(64, 1024, 4096), (8, 1024, 4096)],
        "elements": [1 << 22],
        "rows_cols": [(1024, 4096)],
        "copy_bytes": [32 << 20],
    },
    "quick": {
        "matmul": [64],
        "linear": [(2, 64, 32)],
        "matmul16": [64],
        "sdpa": [(1, 2, 64, 16)],
        "sdpa_decode": [(1, 2, 1, 300, 16)],
        "opu": [(4, 32, 64)],
        "elements": [4096],
        "rows_cols": [(8, 256)],
        "copy_bytes": [65536],
    },
}

GROUPS = ("matmul", "matmul16", "sdpa", "opu", "elementwise", "copy")

DEFAULT_WARMUP = 3
DEFAULT_RUNS = 20
# sdpa and opu take longer per call; this many timed runs unless --runs is given.
DEFAULT_RUNS_SLOW = 10

SEED = 0

# Shape options: (option, preset key, parser, help).
SHAPE_OPTIONS = (
    ("--matmul-sizes", "matmul", "ints", "n for matmul and matmul16, e.g. 4096,8192"),
    ("--matmul16-sizes", "matmul16", "ints", "n for matmul16 only (default: --matmul-sizes)"),
    ("--linear-shapes", "linear", "shapes3", "M,N,K shapes of x W^T (matmul group), ';'"),
    ("--sdpa-shapes", "sdpa", "shapes4", "B,H,N,D shapes separated by ';'"),
    ("--sdpa-decode-shapes", "sdpa_decode", "shapes5", "B,H,NQ,NK,D shapes separated by ';'"),
    ("--opu-shapes", "opu", "shapes3", "batch,d,n_out shapes separated by ';'"),
    ("--elements", "elements", "ints", "element counts for relu and gelu_tanh"),
    ("--rows-cols", "rows_cols", "shapes2", "R,C shapes (softmax, layernorm, sum_rows), ';'"),
    ("--copy-bytes", "copy_bytes", "bytes4", "buffer sizes in bytes for copy (multiples of 4)"),
)


# ----------------------------------------------------------------------------------------
# Argument parsing (needs no torch, so --help and bad arguments work without it)


def _positive_int(text):
    text = text.strip().replace("_", "")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("%d is not positive" % value)
    return value


def _int_list(text):
    items = [part for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of integers")
    return [_positive_int(part) for part in items]


def _shape_list(rank, names):
    def parse(text):
        shapes = []
        for spec in (part for part in text.split(";") if part.strip()):
            dims = [d for d in spec.split(",") if d.strip()]
            if len(dims) != rank:
                raise argparse.ArgumentTypeError(
                    "shape %r has %d numbers; expected %d (%s)" % (spec, len(dims), rank, names)
                )
            shapes.append(tuple(_positive_int(d) for d in dims))
        if not shapes:
            raise argparse.ArgumentTypeError("expected at least one %s shape" % names)
        return shapes

    return parse


def _byte_list(text):
    sizes = _int_list(text)
    for size in sizes:
        if size % 4:
            raise argparse.ArgumentTypeError("%d bytes is not a whole number of fp32 values" % size)
    return sizes


_PARSERS = {
    "ints": _int_list,
    "shapes2": _shape_list(2, "R,C"),
    "shapes3": _shape_list(3, "batch,d,n_out"),
    "shapes4": _shape_list(4, "B,H,N,D"),
    "shapes5": _shape_list(5, "B,H,NQ,NK,D"),
    "bytes4": _byte_list,
}


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("%d is negative" % value)
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="torch_baselines.py",
        description="PyTorch baselines for speckle's benchmark, as JSON Lines on stdout.",
        epilog="Groups: %s. See the module docstring for the output contract." % ", ".join(GROUPS),
    )
    parser.add_argument(
        "groups", nargs="*", metavar="GROUP", help="groups to run (default: all): " + ", ".join(GROUPS)
    )
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="default: cuda")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None,
        help="standard shapes (default: gpu on cuda, cpu on cpu)",
    )
    parser.add_argument(
        "--runs", type=_positive_int, default=None,
        help="timed runs per measurement (default %d; %d for sdpa and opu)"
        % (DEFAULT_RUNS, DEFAULT_RUNS_SLOW),
    )
    parser.add_argument(
        "--warmup", type=_non_negative_int, default=DEFAULT_WARMUP,
        help="untimed calls before timing (default %d)" % DEFAULT_WARMUP,
    )
    for option, key, kind, text in SHAPE_OPTIONS:
        parser.add_argument(option, dest=key, type=_PARSERS[kind], default=None, help=text)
    return parser


def parse_args(argv=None):
    """Parse the command line; returns (args, shapes) where shapes is the resolved table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(
            "unknown group %s (choose from %s)" % (", ".join(map(repr, unknown)), ", ".join(GROUPS))
        )
    # Keep the canonical order and drop repeats.
    args.groups = [g for g in GROUPS if g in args.groups] if args.groups else list(GROUPS)
    if args.preset is None:
        args.preset = "gpu" if args.device == "cuda" else "cpu"
    shapes = {key: list(values) for key, values in PRESETS[args.preset].items()}
    args.overrides = []
    for option, key, _kind, _text in SHAPE_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            shapes[key] = value
            args.overrides.append(option)
    if args.matmul is not None and args.matmul16 is None:
        shapes["matmul16"] = args.matmul
    return args, shapes


# ----------------------------------------------------------------------------------------
# Measurement


def _sig(value, digits=5):
    """Round to a few significant digits for readable JSON."""
    return float("%.*g" % (digits, value))


class Case(object):
    """One measurement: an op name, its contract shape and a factory for the timed call.

    make() allocates the inputs and returns the zero-argument callable to time; it is called
    only when the case runs, so at most one case's tensors are alive at a time. mode is an
    optional factory for a context manager entered around make() and the timing (a forced
    SDPA backend, TF32 on). skip, when set, is the reason the case cannot run here.
    """

    def __init__(self, op, shape, make, flops=None, nbytes=None, slow=False, mode=None,
                 skip=None, extra=None):
        self.op = op
        self.shape = [int(d) for d in shape]
        self.make = make
        self.flops = flops
        self.nbytes = nbytes
        self.slow = slow
        self.mode = mode
        self.skip = skip
        self.extra = extra or {}


class _NullMode(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Bench(object):
    def __init__(self, torch, device, warmup, runs):
        self.torch = torch
        self.device = device
        self.warmup = warmup
        self.runs = runs
        self.measured = 0
        self.skipped = 0

    # -- timing

    def time_ms(self, fn, runs):
        torch = self.torch
        if self.device == "cuda":
            for _ in range(self.warmup):
                fn()
            torch.cuda.synchronize()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            times = []
            for _ in range(runs):
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
        else:
            for _ in range(self.warmup):
                fn()
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times), min(times)

    # -- output

    @staticmethod
    def emit(record):
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    def emit_skip(self, case, reason):
        self.skipped += 1
        self.emit({"op": case.op, "shape": case.shape, "skipped": reason})

    def release(self):
        gc.collect()
        if self.device == "cuda":
            self.torch.cuda.empty_cache()

    def run(self, case):
        if case.skip:
            self.emit_skip(case, case.skip)
            return
        runs = self.runs or (DEFAULT_RUNS_SLOW if case.slow else DEFAULT_RUNS)
        # Warnings are recorded, not printed: a backend that declines a shape explains why
        # in a warning, which then goes into the skip reason. A run that succeeds drops them.
        caught = []
        failure = None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                mode = case.mode() if case.mode else _NullMode()
                with mode:
                    ms, min_ms = self.time_ms(case.make(), runs)
        except Exception as exc:  # out of memory, no kernel for this dtype or shape, ...
            failure = _reason(exc, caught)
        # Outside the except block, so the traceback (and the tensors its frames hold) is gone.
        self.release()
        if failure is not None:
            self.emit_skip(case, failure)
            return
        record = {"op": case.op, "shape": case.shape, "ms": _sig(ms)}
        if case.flops is not None:
            record["flops"] = int(case.flops)
            record["tflops"] = _sig(case.flops / ms / 1e9)
        if case.nbytes is not None:
            record["bytes"] = int(case.nbytes)
            record["gbps"] = _sig(case.nbytes / ms / 1e6)
        record.update(case.extra)
        record["runs"] = runs
        record["min_ms"] = _sig(min_ms)
        self.measured += 1
        self.emit(record)


def _reason(exc, caught):
    """A one-line skip reason: the exception, plus what the backends warned about."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    lowered = first.lower()
    oom = ("out of memory", "can't allocate memory", "cannot allocate memory")
    prefix = "out of memory: " if isinstance(exc, MemoryError) or any(t in lowered for t in oom) else ""
    notes = []
    for w in caught or ():
        message = " ".join(str(w.message).split())
        if message and message not in notes and "numpy" not in message.lower():
            notes.append(message)
    reason = "%s%s: %s" % (prefix, type(exc).__name__, first)
    if notes:
        reason += " (" + "; ".join(notes) + ")"
    return reason[:500]


# ----------------------------------------------------------------------------------------
# The groups: each yields its Cases in order.


def _set_fp32_matmul(torch, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


class _Tf32On(object):
    """TF32 on inside the block; back to full fp32 ("highest") after it."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        _set_fp32_matmul(self.torch, True)
        return self

    def __exit__(self, *exc):
        _set_fp32_matmul(self.torch, False)
        return False


def _randn(torch, device, *shape, **kw):
    return torch.randn(*shape, device=device, dtype=kw.get("dtype", torch.float32))


def matmul_cases(torch, device, sizes):
    for n in sizes:
        flops = 2 * n ** 3

        def make(n=n):
            a, b = _randn(torch, device, n, n), _randn(torch, device, n, n)
            return lambda: a @ b

        yield Case("matmul_fp32", [n, n, n], make, flops=flops, extra={"dtype": "float32"})
        yield Case(
            "matmul_fp32_tf32", [n, n, n], make, flops=flops,
            mode=lambda: _Tf32On(torch), extra={"dtype": "float32", "tf32": True},
            skip=None if device == "cuda" else "TF32 applies to CUDA devices only",
        )


def linear_cases(torch, device, shapes):
    # x [M, K] times W^T for W [N, K]: a projection of a few vectors, bound by W's bytes
    # (speckle's row "matmul f32 MxNxK B transposed").
    for M, N, K in shapes:
        def make(M=M, N=N, K=K):
            x, w = _randn(torch, device, M, K), _randn(torch, device, N, K)
            return lambda: torch.nn.functional.linear(x, w)

        yield Case(
            "linear_fp32", [M, N, K], make, flops=2 * M * N * K,
            nbytes=4 * (M * K + N * K + M * N), extra={"dtype": "float32"},
        )


def matmul16_cases(torch, device, sizes):
    for n in sizes:
        def make(n=n):
            a = _randn(torch, device, n, n, dtype=torch.float16)
            b = _randn(torch, device, n, n, dtype=torch.float16)
            return lambda: a @ b

        yield Case("matmul_f16", [n, n, n], make, flops=2 * n ** 3, extra={"dtype": "float16"})


def sdpa_cases(torch, device, shapes, decode_shapes=()):
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        SDPBackend = sdpa_kernel = None
    import torch.nn.functional as F

    variants = (
        ("sdpa_fp32_math", torch.float32, "MATH"),
        ("sdpa_fp32_efficient", torch.float32, "EFFICIENT_ATTENTION"),
        ("sdpa_f16_flash", torch.float16, "FLASH_ATTENTION"),
    )
    for (B, H, N, D) in shapes:
        for causal in (False, True):
            flops = 4 * B * H * N * N * D // (2 if causal else 1)
            for name, dtype, backend in variants:
                op = name + ("_causal" if causal else "")
                if sdpa_kernel is None:
                    yield Case(op, [B, H, N, D], None,
                               skip="torch.nn.attention.sdpa_kernel needs torch >= 2.3")
                    continue

                def make(B=B, H=H, N=N, D=D, dtype=dtype, causal=causal):
                    q, k, v = (_randn(torch, device, B, H, N, D, dtype=dtype) for _ in range(3))
                    return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)

                yield Case(
                    op, [B, H, N, D], make, flops=flops, slow=True,
                    mode=lambda backend=backend: sdpa_kernel(getattr(SDPBackend, backend)),
                    extra={"dtype": str(dtype).replace("torch.", ""), "causal": causal,
                           "backend": backend.lower()},
                )
    for (B, H, NQ, NK, D) in decode_shapes:
        for name, dtype, backend in variants:
            if sdpa_kernel is None:
                yield Case(name, [B, H, NQ, NK, D], None,
                           skip="torch.nn.attention.sdpa_kernel needs torch >= 2.3")
                continue

            def make(B=B, H=H, NQ=NQ, NK=NK, D=D, dtype=dtype):
                q = _randn(torch, device, B, H, NQ, D, dtype=dtype)
                k, v = (_randn(torch, device, B, H, NK, D, dtype=dtype) for _ in range(2))
                return lambda: F.scaled_dot_product_attention(q, k, v)

            yield Case(
                name, [B, H, NQ, NK, D], make, flops=4 * B * H * NQ * NK * D, slow=True,
                mode=lambda backend=backend: sdpa_kernel(getattr(SDPBackend, backend)),
                extra={"dtype": str(dtype).replace("torch.", ""), "causal": False,
                       "backend": backend.lower()},
            )


def opu_cases(torch, device, shapes):
    for (batch, d, n_out) in shapes:
        flops = 4 * batch * d * n_out

        def make32(batch=batch, d=d, n_out=n_out):
            x = (torch.rand(batch, d, device=device) < 0.5).to(torch.float32)
            rr, ri = _randn(torch, device, d, n_out), _randn(torch, device, d, n_out)

            def project():
                p = x @ rr
                q = x @ ri
                return p * p + q * q

            return project

        def make16(batch=batch, d=d, n_out=n_out):
            x = (torch.rand(batch, d, device=device) < 0.5).to(torch.float16)
            rr = _randn(torch, device, d, n_out, dtype=torch.float16)
            ri = _randn(torch, device, d, n_out, dtype=torch.float16)

            def project():
                p = (x @ rr).float()
                q = (x @ ri).float()
                return p * p + q * q

            return project

        shape = [batch, d, n_out]
        yield Case("opu_fp32", shape, make32, flops=flops, slow=True, extra={"dtype": "float32"})
        yield Case("opu_f16", shape, make16, flops=flops, slow=True, extra={"dtype": "float16"})


def elementwise_cases(torch, device, elements, rows_cols):
    import torch.nn.functional as F

    flat_ops = (
        ("relu", lambda x: torch.relu(x)),
        ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    )
    for n in elements:
        for op, f in flat_ops:
            def make(n=n, f=f):
                x = _randn(torch, device, n)
                return lambda: f(x)

            yield Case(op, [n], make, nbytes=8 * n, extra={"dtype": "float32"})

    for (rows, cols) in rows_cols:
        row_ops = (
            ("softmax", lambda x: torch.softmax(x, dim=-1), 8 * rows * cols),
            ("layernorm", lambda x, c=cols: F.layer_norm(x, (c,), eps=1e-5), 8 * rows * cols),
            ("sum_rows", lambda x: x.sum(dim=-1), 4 * rows * cols + 4 * rows),
        )
        for op, f, nbytes in row_ops:
            def make(rows=rows, cols=cols, f=f):
                x = _randn(torch, device, rows, cols)
                return lambda: f(x)

            yield Case(op, [rows, cols], make, nbytes=nbytes, extra={"dtype": "float32"})


def copy_cases(torch, device, sizes):
    for size in sizes:
        def make(size=size):
            src = _randn(torch, device, size // 4)
            dst = torch.empty_like(src)
            return lambda: dst.copy_(src)

        yield Case("copy", [size], make, nbytes=2 * size, extra={"dtype": "float32"})


def cases_for(group, torch, device, shapes):
    if group == "matmul":
        return itertools.chain(
            matmul_cases(torch, device, shapes["matmul"]),
            linear_cases(torch, device, shapes["linear"]),
        )
    if group == "matmul16":
        return matmul16_cases(torch, device, shapes["matmul16"])
    if group == "sdpa":
        return sdpa_cases(torch, device, shapes["sdpa"], shapes["sdpa_decode"])
    if group == "opu":
        return opu_cases(torch, device, shapes["opu"])
    if group == "elementwise":
        return elementwise_cases(torch, device, shapes["elements"], shapes["rows_cols"])
    if group == "copy":
        return copy_cases(torch, device, shapes["copy_bytes"])
    raise ValueError(group)


# ----------------------------------------------------------------------------------------


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def main(argv=None):
    args, shapes = parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        sys.stderr.write("torch_baselines.py: cannot import torch (%s); install PyTorch first\n" % exc)
        return 2

    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.stderr.write(
                "torch_baselines.py: CUDA is not available (torch %s, built for CUDA %s); "
                "use --device cpu to measure on the CPU\n" % (torch.__version__, torch.version.cuda)
            )
            return 2
        name = torch.cuda.get_device_name(0)
    else:
        name = "%s (%d threads)" % (_cpu_name(), torch.get_num_threads())

    torch.manual_seed(SEED)
    _set_fp32_matmul(torch, False)
    bench = Bench(torch, args.device, args.warmup, args.runs)
    bench.emit({
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "preset": args.preset,
        "torch_device": args.device,
        "warmup": args.warmup,
        "runs": args.runs if args.runs is not None else DEFAULT_RUNS,
        "runs_sdpa_opu": args.runs if args.runs is not None else DEFAULT_RUNS_SLOW,
        "overrides": args.overrides,
    })
    for group in args.groups:
        for case in cases_for(group, torch, args.device, shapes):
            bench.run(case)

    if bench.measured == 0:
        sys.stderr.write("torch_baselines.py: nothing could be measured (%d skipped)\n" % bench.skipped)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
