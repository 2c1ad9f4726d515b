#!/usr/bin/env python3
"""Where a training step's time goes, product by product, and how fast each
product runs *inside* the step (not alone, as the C harness times them).

    python3 Benchmarks/ab/instep.py [--seconds S] [--layers L] [--kernel K] PBTWAVE [--R N --S N --H N ...]

Runs `PBTWAVE bench train --no-peak --rounds 1 --seconds S ARGS` under
`perf record -g -e cpu-clock` (needs perf; works without a PMU), puts every
sample to the kernel the model called (the outermost CPBTWaveKernels function below
the Swift frames) and to the model's pass that called it (forward, head,
backward), and turns each product's share of the step into GFLOP/s with its
multiply-accumulates per sample:

  gated forward            L·K·R·2D
  residual and skip        (L−1)·D·R + L·D·S + K·R·R (the input convolution's)
  gated backward product   (L−1)·R·D + L·S·D
  input gradients          L·K·R·2D (+ the input convolution's, K·R·R)
  weight gradients         the forward's layer MACs (their bias sums included)
  head forward / input gradients / weight gradients   S·H + H·classes each

R, D, S, H come from the bench's own line ("(R17 D17 S34 H34)"); L (layers,
default 20) and K (kernel size, default 2) from the flags, as compact's.
The shares count only samples inside the training steps, less those in
page faults (the workspace's first touch, in the first step); the
samples/s under perf are a few per cent below a run without it. "The
rest" (the embedding, the ReLUs' backward, Adam, the threads' waits,
Swift) is listed by its largest leaf functions.
"""
import argparse
import collections
import re
import subprocess
import sys
import tempfile

PASSES = (("C8backward_", "backward"), ("C7forward_", "forward"), ("C4head_", "head"))
ENTRY = re.compile(r"^(?:routed_)?(conv_forward|conv_gated_forward|conv_backward_input|conv_backward_weight|gated_backward_product|"
                   r"softmax_xent|column_sums)\w*_(avx512bf16|avx512_256|avx512|avx2|generic)$")


def category(entry, where):
    """The product a sample's outermost kernel and pass make, or None (the rest)."""
    if entry is None:
        return None
    name = ENTRY.match(entry).group(1)
    if name == "softmax_xent":
        return "softmax"
    if where == "head":
        return {"conv_forward": "head forward", "conv_backward_input": "head input gradients",
                "conv_backward_weight": "head weight gradients", "column_sums": "head weight gradients"}.get(name)
    if where == "forward":
        return {"conv_gated_forward": "gated forward", "conv_forward": "residual and skip"}.get(name)
    if where == "backward":
        return {"conv_backward_input": "input gradients", "gated_backward_product": "gated backward product",
                "conv_backward_weight": "weight gradients", "column_sums": "weight gradients"}.get(name)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--kernel", type=int, default=2)
    ap.add_argument("pbtwave")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    with tempfile.NamedTemporaryFile(suffix=".data") as data:
        run = subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-o", data.name, a.pbtwave, "bench", "train",
                              "--no-peak", "--rounds", "1", "--seconds", str(a.seconds)] + a.args,
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"instep.py: the run failed:\n{run.stderr}{run.stdout}")
        ours = next((l for l in run.stdout.splitlines() if l.startswith("ours:")), None)
        m = ours and re.search(r"\(R(\d+) D(\d+) S(\d+) H(\d+)\).*median (\d+) samples/s", ours)
        if not m:
            sys.exit(f"instep.py: no 'ours:' line with its shape and samples/s in:\n{run.stdout}")
        R, D, S, H, rate = (int(x) for x in m.groups())
        script = subprocess.run(["perf", "script", "-i", data.name, "-F", "ip,sym"], capture_output=True, text=True).stdout
    shares, rest, n, faults = collections.Counter(), collections.Counter(), 0, 0
    for block in script.split("\n\n"):
        frames = [f.split(None, 1)[1] if len(f.split(None, 1)) > 1 else "?" for f in block.strip().splitlines()]
        if not frames or not any("trainStep" in f for f in frames):
            continue  # outside the training steps (start-up, the peak probe, the report)
        if any("page_fault" in f for f in frames):
            faults += 1  # the workspace's first touch, in the first step: left out
            continue
        n += 1
        entry, where = None, None
        for f in frames:
            f = re.sub(r"\+0x[0-9a-f]+$", "", f.strip())
            if ENTRY.match(f):
                entry = f  # the outermost kernel: keep climbing
            elif f.startswith("$s") and entry is not None:
                # The first model pass above the kernel (past wrappers such as Kernels.convForward).
                where = next((w for key, w in PASSES if key in f), None)
                if where is not None:
                    break
        cat = category(entry, where)
        shares[cat or "the rest"] += 1
        if cat is None:
            rest[re.sub(r"\+0x[0-9a-f]+$", "", frames[0].strip())[:48]] += 1
    L, K, V = a.layers, a.kernel, 256
    layer = L * K * R * 2 * D + (L - 1) * D * R + L * D * S + K * R * R
    head = S * H + H * V
    macs = {"gated forward": L * K * R * 2 * D, "residual and skip": (L - 1) * D * R + L * D * S + K * R * R,
            "input gradients": L * K * R * 2 * D + K * R * R, "gated backward product": (L - 1) * R * D + L * S * D,
            "weight gradients": layer, "head forward": head, "head input gradients": head, "head weight gradients": head}
    step = 1.0 / rate
    print(f"R{R} D{D} S{S} H{H}, {L} layers, kernel {K}: {rate} samples/s under perf ({step * 1e6:.2f} µs a sample), "
          f"{n} samples in the steps ({faults} more in page faults, left out)")
    for cat, k in shares.most_common():
        share = k / n
        line = f"  {cat:24s} {100 * share:5.1f} %  {share * step * 1e6:6.3f} µs a sample"
        if cat in macs:
            line += f"  {2 * macs[cat] / (share * step) / 1e9:6.1f} GFLOP/s"
        print(line)
    print("  the rest, its largest: " + ", ".join(f"{sym} {100 * k / n:.1f} %" for sym, k in rest.most_common(5)))


if __name__ == "__main__":
    main()
