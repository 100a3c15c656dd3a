"""How far float32 inference of an ONNX file can go on this CPU: the FMA ceiling against the runtimes.

    nice -n 5 python benchmarks/float32_ceiling.py --onnx=<export>/onnx/paper/1/model.onnx --threads=2

Prints JSON lines (BUILD.md "Deploying the appearance model", the float32 goal):

  * `float32_ceiling_setup`: cores, CPU features, load average, library versions;
  * `fma_peak`: the GFLOP/s of `benchmarks/fma_peak.c` (register-only float32 FMAs on --threads
    threads, built with the system's C compiler; skipped without one) — no float32 convolution can
    beat it;
  * `conv_flops`: the file's convolution GFLOPs per image, counting every kernel tap and only the taps
    that fall inside the input (a runtime may skip the zero padding: the dilated 3×3s of the paper
    preset read 19 % padding), from ONNX shape inference;
  * `runtime`: images/s on --batch random 0..255 images, one line per runtime: ONNX Runtime through this
    repo's `ONNXBackend` (`sal_tf/inference/onnx_backend.py`, its session options), ONNX Runtime without
    its NCHWc layout pass (`onnxruntime_extended`) and without spinning (`onnxruntime_no_spinning`), and,
    where the package is installed, OpenVINO's CPU plugin reading the same file with the float32 precision hint
    (`openvino_f32`; its max |Δ| to ONNX Runtime checks it is float32) and with its default precision
    (`openvino_default`: bfloat16 on a CPU with AVX-512 BF16 — not float32). Each line gives the
    GFLOP/s that rate means and its share of the FMA peak.

OpenVINO is not a dependency of this project: time it from a scratch environment
(`python -m venv /tmp/ov && /tmp/ov/bin/pip install openvino onnxruntime onnx numpy`, then run this
script with that Python from the checkout's root).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.json_lines import JsonLines, cpu_features, load_average, machine_line

PEAK_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fma_peak.c")


def fma_peak(threads):
    """{"gflops", "seconds"} of `fma_peak.c` on `threads` threads, or None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "fma_peak")
        subprocess.run([compiler, "-O2", "-mavx2", "-mfma", "-pthread", PEAK_SOURCE, "-o", binary], check=True)
        return json.loads(subprocess.run([binary, str(threads)], capture_output=True, text=True, check=True).stdout)


def _taps_inside(size_in, size_out, kernel, stride, dilation, pad):
    """Kernel taps (summed over the output positions of one axis) that read the input, not its padding."""
    at = np.arange(size_out)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    return int(((at >= 0) & (at < size_in)).sum())


def conv_flops(path):
    """(all taps, taps inside the input) float32 FLOPs per image of the file's Conv nodes (2 per MAC)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    shapes.update({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output})
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    shapes.update({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input})
    every = inside = 0
    for node in (n for n in model.graph.node if n.op_type == "Conv"):
        (_, _, h_in, w_in), (c_out, c_in, kh, kw) = shapes[node.input[0]], shapes[node.input[1]]
        _, _, h_out, w_out = shapes[node.output[0]]
        attr = {a.name: list(a.ints) or a.s.decode() for a in node.attribute}
        stride, dilation, pads = attr.get("strides", [1, 1]), attr.get("dilations", [1, 1]), attr.get("pads", [0] * 4)
        if attr.get("auto_pad", "NOTSET").startswith("SAME"):  # total padding split, the extra row at the end
            pads = [max((o - 1) * s + (k - 1) * d + 1 - i, 0) // 2 for o, s, k, d, i in
                    zip((h_out, w_out), stride, (kh, kw), dilation, (h_in, w_in))]  # fmt: skip
        every += 2 * c_out * c_in * h_out * w_out * kh * kw
        rows = _taps_inside(h_in, h_out, kh, stride[0], dilation[0], pads[0])
        inside += 2 * c_out * c_in * rows * _taps_inside(w_in, w_out, kw, stride[1], dilation[1], pads[1])
    return every, inside


def timed(fn, reps):
    """Seconds per call of each of `reps` calls, after one warm-up call."""
    fn()
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def ort_variant(path, images, threads, level="ORT_ENABLE_ALL", spinning=True):
    """(callable, output) of ONNX Runtime with another graph `level` — `ORT_ENABLE_EXTENDED` is the rewrites
    less the NCHWc layout pass of `ORT_ENABLE_ALL` (the default, `ONNXBackend`'s), which moves the
    convolutions to MLAS's blocked AVX-512 kernels — or with its pool's threads not spinning between calls."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = threads, 3
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: images}
    return (lambda: session.run(None, feed)), session.run(None, feed)[0]


def openvino_runs(path, images, threads):
    """{name: (callable, output)} of OpenVINO's CPU plugin on `path` with the float32 hint and its default."""
    import openvino as ov

    core, runs = ov.Core(), {}
    for name, hint in (("openvino_f32", {"INFERENCE_PRECISION_HINT": "f32"}), ("openvino_default", {})):
        model = core.read_model(path)
        model.reshape([len(images), *images.shape[1:]])
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", **hint}
        request = core.compile_model(model, "CPU", config).create_infer_request()
        runs[name] = (lambda r=request: r.infer({0: images}), request.infer({0: images})[0].copy())
    return runs, ov.__version__


def runtime_lines(args, flops, peak):
    """One `runtime` line per runtime (ONNX Runtime first: the reference of the others' max |Δ|)."""
    from sal_tf.inference.onnx_backend import ONNXBackend

    backend = ONNXBackend(args.onnx, threads=args.threads)
    images = np.random.default_rng(0).uniform(0, 255, (args.batch, *backend.image_size, 3)).astype(np.float32)
    reference = backend.embed_array(images)
    runs = {"onnxruntime": ((lambda: backend.embed_array(images)), reference)}
    runs["onnxruntime_extended"] = ort_variant(args.onnx, images, args.threads, level="ORT_ENABLE_EXTENDED")
    runs["onnxruntime_no_spinning"] = ort_variant(args.onnx, images, args.threads, spinning=False)
    try:
        more, ov_version = openvino_runs(args.onnx, images, args.threads)
        runs.update(more)
    except ImportError:
        ov_version = None
    for name, (fn, output) in runs.items():
        rates = [args.batch / s for s in timed(fn, args.reps)]
        line = {"benchmark": "runtime", "runtime": name, "threads": args.threads, "batch": args.batch,
                "images_per_s": [round(r, 2) for r in rates], "median_images_per_s": round(float(np.median(rates)), 2),
                "max_abs_vs_onnxruntime": float(np.abs(output - reference).max()),
                "gflops_inside": round(float(np.median(rates)) * flops[1] / 1e9, 1), "load_average": load_average()}  # fmt: skip
        if name.startswith("openvino"):
            line["openvino"] = ov_version
        if peak:
            line["share_of_fma_peak"] = round(line["gflops_inside"] / peak["gflops"], 3)
        yield line


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", required=True, help="An .onnx file of `python -m export --onnx`.")
    parser.add_argument("--threads", type=int, default=2, help="Threads of the FMA loop and of each runtime.")
    parser.add_argument("--batch", type=int, default=16, help="Images per call.")
    parser.add_argument("--reps", type=int, default=4, help="Timed calls per runtime (after a warm-up call).")
    parser.add_argument("--output", help="Also write the lines to this file.")
    args = parser.parse_args()
    if not os.path.isfile(args.onnx):
        parser.error(f"--onnx {args.onnx!r}: no such file.")
    out = JsonLines(args.output)
    out.emit(machine_line("float32_ceiling_setup", ("numpy", "onnxruntime"), cpu_features=cpu_features()))
    peak = fma_peak(args.threads)
    out.emit({"benchmark": "fma_peak", **(peak or {"skipped": "no C compiler"}), "load_average": load_average()})
    flops = conv_flops(args.onnx)
    out.emit({"benchmark": "conv_flops", "onnx": os.path.abspath(args.onnx), "gflops_every_tap": round(flops[0] / 1e9, 2),
              "gflops_inside_input": round(flops[1] / 1e9, 2)})  # fmt: skip
    for line in runtime_lines(args, flops, peak):
        out.emit(line)
    out.save()


if __name__ == "__main__":
    main()
