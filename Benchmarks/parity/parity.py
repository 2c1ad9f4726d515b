#!/usr/bin/env python3
"""Parity: the PyTorch WaveNet and `pbtwave train`, same recipe, scored on the
whole validation set (every sample with a full receptive field).

Recipe: compact model, Adam, constant lr 1e-3, batch 1 × 8192, zero-padded
windows (every position a target), seeds 0 and 1; scores at 500, 1,000 and
3,000 steps. Each side trains one run per seed and checkpoints at every
milestone; a killed run resumes where it stopped (finished pieces are kept in
--work). Prints a Markdown table and writes --work/parity.json.

    python3 Benchmarks/parity/parity.py [--seeds 0 1] [--milestones 500 1000 3000] [--only pytorch|pbtwave]

The PyTorch side is Benchmarks/pytorch-wavenet/train_trial.py, driven through
the `pbtwave pbt --exec` contract (one trial per milestone, each the child of
the previous) and scored with its --score-whole-set. The pbtwave side runs
`pbtwave train … --checkpoint CKPT --resume` up to each milestone and scores a
copy with `pbtwave evaluate COPY --all`.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN_TRIAL = os.path.join(REPO, "Benchmarks", "pytorch-wavenet", "train_trial.py")
PRESET, LR, BATCH, WINDOW = "compact", 1e-3, 1, 8192


def run(command, env=None):
    """Runs a command, echoing it; returns stdout, exits with its stderr on failure."""
    print("$", " ".join(command), flush=True)
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        sys.exit(f"failed ({process.returncode}): {' '.join(command)}\n{process.stdout[-2000:]}{process.stderr[-2000:]}")
    return process.stdout


def cached(path, compute):
    """The text in `path`, else compute() written there (a re-run does not score a checkpoint twice)."""
    if os.path.exists(path):
        with open(path) as file:
            return file.read()
    text = compute()
    with open(path + ".tmp", "w") as file:
        file.write(text)
    os.replace(path + ".tmp", path)
    return text


def pytorch_side(args, seed):
    """Trains through the exec contract up to each milestone; yields (step, bits, count, seconds)."""
    parent, start = "", 0
    for milestone in args.milestones:
        trial_dir = os.path.join(args.work, f"pytorch-seed{seed}", f"step{milestone}")
        began = time.perf_counter()
        if not os.path.exists(os.path.join(trial_dir, "result.json")):
            shutil.rmtree(trial_dir, ignore_errors=True)  # an unfinished trial starts again in an empty directory
            os.makedirs(trial_dir)
            env = dict(os.environ, PBT_TRIAL_ID=f"seed{seed}-{milestone}", PBT_TRIAL_DIR=trial_dir, PBT_PARENT_DIR=parent,
                       PBT_START_STEP=str(start), PBT_STEPS=str(milestone - start), PBT_SEED=str(seed),
                       PBT_HYPERPARAMETERS=json.dumps({"lr": LR}), PBT_HP_lr=str(LR))
            print(run([args.python, TRAIN_TRIAL, "--preset", PRESET, "--batch", str(BATCH), "--window", str(WINDOW),
                       "--corpus", args.corpus, "--threads", str(args.threads)], env=env).strip())
        trained = time.perf_counter() - began
        score = json.loads(cached(os.path.join(trial_dir, "whole-set.json"), lambda: run(
            [args.python, TRAIN_TRIAL, "--corpus", args.corpus, "--threads", str(args.threads),
             "--score-whole-set", os.path.join(trial_dir, "checkpoint.pt")])))
        yield milestone, score["nll_bits"], score["count"], trained
        parent, start = trial_dir, milestone


def pbtwave_side(args, seed):
    """`pbtwave train` up to each milestone, then `pbtwave evaluate --all`; yields (step, bits, count, seconds)."""
    directory = os.path.join(args.work, f"pbtwave-seed{seed}")
    os.makedirs(directory, exist_ok=True)
    checkpoint = os.path.join(directory, "train.pbtckpt")
    for milestone in args.milestones:
        copy = os.path.join(directory, f"step{milestone}.pbtckpt")
        began = time.perf_counter()
        if not os.path.exists(copy):
            # --resume continues the checkpoint of the previous milestone; the first milestone starts it.
            resume = ["--resume"] if os.path.exists(checkpoint) else []
            run([args.pbtwave, "train", "--preset", PRESET, "--lr", str(LR), "--batch", str(BATCH), "--window", str(WINDOW),
                 "--seed", str(seed), "--steps", str(milestone), "--threads", str(args.threads), "--corpus", args.corpus,
                 "--checkpoint", checkpoint, *resume, "--eval-every", "0", "--quiet"])
            shutil.copyfile(checkpoint, copy + ".tmp")
            os.replace(copy + ".tmp", copy)
        trained = time.perf_counter() - began
        output = cached(copy + ".whole-set.txt", lambda: run(
            [args.pbtwave, "evaluate", copy, "--all", "--corpus", args.corpus, "--threads", str(args.threads)]))
        yield (milestone, *parse_evaluate(output), trained)


def parse_evaluate(output):
    """(bits, count) from `pbtwave evaluate --all`'s line, e.g. `… validation NLL 4.0812 bits/sample over 2,102,648 samples …`;
    count is None when the line does not say it."""
    nll = re.search(r"NLL\s+([0-9.]+)\s*bits", output)
    if not nll:
        sys.exit(f"cannot find 'NLL <number> bits' in pbtwave evaluate's output:\n{output}")
    count = re.search(r"([0-9][0-9,]*)\s+(?:scored\s+)?samples", output[nll.end():])
    return float(nll.group(1)), int(count.group(1).replace(",", "")) if count else None


def table(rows, milestones):
    """Markdown: per milestone and seed, both NLLs and their difference."""
    lines = ["| steps | seed | PyTorch (bits) | pbtwave (bits) | pbtwave − PyTorch |", "|---:|---:|---:|---:|---:|"]
    for milestone in milestones:
        pairs = []
        for seed in sorted({row["seed"] for row in rows}):
            cell = {row["side"]: row for row in rows if row["step"] == milestone and row["seed"] == seed}
            torch_bits, ours = (cell[side]["bits"] if side in cell else None for side in ("pytorch", "pbtwave"))
            if torch_bits is not None and ours is not None:
                pairs.append((torch_bits, ours))
            lines.append(f"| {milestone} | {seed} | {format_bits(torch_bits)} | {format_bits(ours)} | {format_diff(torch_bits, ours)} |")
        if len(pairs) > 1:
            mean_torch, mean_ours = (sum(p[i] for p in pairs) / len(pairs) for i in (0, 1))
            lines.append(f"| {milestone} | mean | {format_bits(mean_torch)} | {format_bits(mean_ours)} | "
                         f"{format_diff(mean_torch, mean_ours)} |")
    return "\n".join(lines)


def format_bits(bits):
    return "—" if bits is None else f"{bits:.4f}"


def format_diff(torch_bits, ours):
    return "—" if torch_bits is None or ours is None else f"{ours - torch_bits:+.4f} ({100 * (ours - torch_bits) / torch_bits:+.2f} %)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--milestones", type=int, nargs="+", default=[500, 1000, 3000], help="steps at which both are scored")
    parser.add_argument("--only", choices=["pytorch", "pbtwave"], help="run one side only")
    parser.add_argument("--work", default=os.path.join(REPO, "runs", "parity"), help="checkpoints and parity.json (gitignored)")
    parser.add_argument("--corpus", default=os.environ.get("PBTWAVE_CORPUS") or os.path.join(REPO, "corpus"))
    parser.add_argument("--python", default=os.environ.get("TORCHENV", "/work/scratch/torchenv") + "/bin/python",
                        help="a python with torch (default: $TORCHENV/bin/python, see Benchmarks/pytorch-wavenet/setup.sh)")
    parser.add_argument("--pbtwave", default=shutil.which("pbtwave") or os.path.join(REPO, ".build", "release", "pbtwave"),
                        help="the pbtwave binary (default: on PATH, else .build/release/pbtwave)")
    parser.add_argument("--threads", type=int, default=1, help="threads for each side (1: the same single core)")
    args = parser.parse_args()
    milestones = sorted(set(args.milestones))
    if milestones[0] < 1:
        parser.error("--milestones must be positive step counts")
    args.milestones = milestones
    sides = {"pytorch": pytorch_side, "pbtwave": pbtwave_side}
    if args.only:
        sides = {args.only: sides[args.only]}
    if "pytorch" in sides and not os.path.exists(args.python):
        parser.error(f"no python at {args.python}: run Benchmarks/pytorch-wavenet/setup.sh or pass --python")
    if "pbtwave" in sides and not os.path.exists(args.pbtwave):
        parser.error(f"no pbtwave at {args.pbtwave}: `swift build -c release` or pass --pbtwave")
    os.makedirs(args.work, exist_ok=True)

    rows = []
    for seed in args.seeds:
        for side, train in sides.items():
            for step, bits, count, seconds in train(args, seed):
                rows.append(dict(side=side, seed=seed, step=step, bits=bits, count=count, train_seconds=round(seconds, 1)))
                print(f"{side} seed {seed} step {step}: {bits:.4f} bits/sample over {count} samples", flush=True)
    with open(os.path.join(args.work, "parity.json"), "w") as file:
        json.dump(dict(recipe=dict(preset=PRESET, lr=LR, batch=BATCH, window=WINDOW), rows=rows), file, indent=1)
    counts = {row["count"] for row in rows if row["count"] is not None}
    if len(counts) > 1:
        print(f"warning: the sides scored different numbers of samples: {sorted(counts)}")
    print(table(rows, milestones))


if __name__ == "__main__":
    main()
