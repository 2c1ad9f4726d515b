#!/usr/bin/env python3
"""The PyTorch WaveNet as a `pbtwave pbt --exec` training program (README.md).

As a trial (the PBT_* variables set by the runner):
    python train_trial.py [--preset compact] [--batch 2] [--window 2048] [--eval-windows 8] [--eval-targets 4096]
loads the weights and Adam state from $PBT_PARENT_DIR/checkpoint.pt (or
initialises from $PBT_SEED), trains $PBT_STEPS steps at learning rate `lr`
(from $PBT_HYPERPARAMETERS), writes $PBT_TRIAL_DIR/checkpoint.pt and
$PBT_TRIAL_DIR/result.json = {"objective": validation NLL in bits/sample}.

Whole-set score of a checkpoint (every validation sample with a full
receptive field; prints one JSON line):
    python train_trial.py --score-whole-set CHECKPOINT

The corpus is $PBTWAVE_CORPUS, else ./corpus (or --corpus).
"""
import argparse
import bisect
import json
import math
import os
import random
import sys
import time
import warnings
import wave

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # torch runs without NumPy; keep the log clean
import torch
import torch.nn as nn
import torch.nn.functional as F

CHECKPOINT = "checkpoint.pt"

# PBTWave's presets (WaveNetConfig.swift): residual R, skip S, head H, stacks of
# dilations 1 … 2^(layers-1). The gate has 2R channels in both.
PRESETS = {
    "tiny": dict(R=16, S=32, H=32, stacks=2, layers=4),
    "small": dict(R=24, S=48, H=48, stacks=2, layers=8),
    "compact": dict(R=32, S=64, H=64, stacks=2, layers=10),
}


# The model: copied from the peer benchmark ../shared/peer/wavenet_torch.py
# (CausalConv and WaveNet with an embedding input, without the benchmark's
# one-hot and fused-matmul variants).
class CausalConv(nn.Conv1d):
    def __init__(self, cin, cout, k, dilation=1):
        super().__init__(cin, cout, k, dilation=dilation)
        self.left = (k - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left, 0)))


class WaveNet(nn.Module):
    def __init__(self, R, S, H, stacks, layers):
        super().__init__()
        self.emb = nn.Embedding(256, R)
        self.inp = CausalConv(R, R, 2)
        self.dilations = [2 ** i for i in range(layers)] * stacks
        self.dil = nn.ModuleList(CausalConv(R, 2 * R, 2, d) for d in self.dilations)
        self.res = nn.ModuleList(nn.Conv1d(R, R, 1) for _ in self.dilations)
        self.skip = nn.ModuleList(nn.Conv1d(R, S, 1) for _ in self.dilations)
        self.h1 = nn.Conv1d(S, H, 1)
        self.h2 = nn.Conv1d(H, 256, 1)

    @property
    def receptive_field(self):
        """Inputs one output sees: itself and receptive_field - 1 before it."""
        return 1 + sum(self.dilations) + 1

    def forward(self, x):  # x: [B, T] mu-law codes; output [B, 256, T], position t predicts x[t + 1]
        h = self.inp(self.emb(x).transpose(1, 2))
        skip = 0
        for dil, res, sk in zip(self.dil, self.res, self.skip):
            a, b = dil(h).chunk(2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)
            skip = skip + sk(z)
            h = h + res(z)
        return self.h2(F.relu(self.h1(F.relu(skip))))


# Mu-law 256, as the peer and PBTWave's MuLaw.swift encode (float32, the same
# order of operations): one code per 16-bit sample value, s / 32768 in [-1, 1).
# Checked equal to MuLaw.encode on all 65,536 values.
def mulaw_table():
    x = torch.arange(-32768, 32768, dtype=torch.float32) / 32768
    y = torch.sign(x) * torch.log1p(255 * torch.abs(x)) / math.log1p(255)
    return ((y + 1) / 2 * 255 + 0.5).long().clamp(0, 255).to(torch.uint8)


class Corpus:
    """The train and validation clips of a PBTWave corpus as uint8 mu-law tensors."""

    def __init__(self, directory):
        if not os.path.exists(os.path.join(directory, "manifest.tsv")):
            raise SystemExit(f"no corpus at {directory} (no manifest.tsv): build it with `bash datasets/build-corpus.sh`, "
                             "or set PBTWAVE_CORPUS / --corpus")
        table = mulaw_table()
        self.train = [self.load(directory, name, table) for name in self.split(directory, "train.txt")]
        self.validation = [self.load(directory, name, table) for name in self.split(directory, "validation.txt")]

    @staticmethod
    def split(directory, list_name):
        with open(os.path.join(directory, list_name)) as file:
            return [line.strip() for line in file if line.strip()]

    @staticmethod
    def load(directory, name, table):
        path = os.path.join(directory, name)
        with wave.open(path) as audio:
            if (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) != (16000, 1, 2):
                raise SystemExit(f"{path}: expected 16 kHz 16-bit mono, found {audio.getframerate()} Hz, "
                                 f"{audio.getnchannels()} channels, {8 * audio.getsampwidth()} bits")
            pcm = torch.frombuffer(bytearray(audio.readframes(audio.getnframes())), dtype=torch.int16)
        if sys.byteorder != "little":
            pcm = pcm.byteswap()
        return table[pcm.long() + 32768]


def window_starts(clips, length):
    """Cumulative counts of windows of `length` per clip (clips shorter give none)."""
    counts, total = [], 0
    for clip in clips:
        total += max(0, len(clip) - length + 1)
        counts.append(total)
    return counts


def window_at(clips, cumulative, index, length):
    """Window number `index`, numbering the valid windows clip by clip (as ClipSet does)."""
    clip = bisect.bisect_right(cumulative, index)
    start = index - (cumulative[clip - 1] if clip else 0)
    return clips[clip][start:start + length].long()


def evenly_spaced_windows(clips, length, count):
    """ClipSet.evenlySpacedWindows: window i is number floor((2i + 1) N / (2 count)) of the N valid ones."""
    cumulative = window_starts(clips, length)
    total = cumulative[-1]
    if total == 0:
        raise SystemExit(f"no validation clip holds {length} samples: lower --eval-targets")
    return torch.stack([window_at(clips, cumulative, (2 * i + 1) * total // (2 * count), length) for i in range(count)])


@torch.no_grad()
def nll_bits_on_windows(model, windows):
    """PBTWave's Validator: the last `length - receptive_field` codes of each window,
    each predicted from its full receptive field; mean NLL in bits/sample."""
    context = model.receptive_field - 1
    nats, count = 0.0, 0
    for window in windows:  # one window per forward pass
        logits = model(window[None, :-1])[:, :, context:]
        targets = window[None, context + 1:]
        nats += F.cross_entropy(logits, targets, reduction="sum").item()
        count += targets.numel()
    return nats / count / math.log(2)


@torch.no_grad()
def score_whole_set(model, clips, chunk=65536):
    """Mean NLL in bits over every sample with a full receptive field, and their count.

    For a clip of n codes and receptive field RF the scored targets are
    codes[j] for j in RF ..< n, each predicted from codes[j - RF ..< j]; a
    clip of RF codes or fewer scores nothing. Long clips go in chunks of
    `chunk` targets, each with its own RF - 1 codes of context (same numbers,
    bounded memory).
    """
    rf = model.receptive_field
    nats, count = 0.0, 0
    for clip in clips:
        codes = clip.long()
        for first in range(rf, len(codes), chunk):  # targets first ..< last
            last = min(first + chunk, len(codes))
            inputs = codes[first - rf:last - 1]      # output k predicts codes[first - rf + k + 1]
            logits = model(inputs[None])[:, :, rf - 1:]
            nats += F.cross_entropy(logits, codes[None, first:last], reduction="sum").item()
            count += last - first
    return nats / count / math.log(2), count


def contract():
    """The trial, from the PBT_* variables (see README.md)."""
    names = ["PBT_TRIAL_ID", "PBT_TRIAL_DIR", "PBT_PARENT_DIR", "PBT_START_STEP", "PBT_STEPS", "PBT_SEED", "PBT_HYPERPARAMETERS"]
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run me from `pbtwave pbt --exec`, or use --score-whole-set")
    env = os.environ
    try:
        hyperparameters = json.loads(env["PBT_HYPERPARAMETERS"])
        if not isinstance(hyperparameters, dict) or set(hyperparameters) != {"lr"}:
            raise SystemExit(f"this program tunes exactly one hyperparameter, 'lr'; got {env['PBT_HYPERPARAMETERS']}")
        trial = dict(id=env["PBT_TRIAL_ID"], dir=env["PBT_TRIAL_DIR"], parent=env["PBT_PARENT_DIR"], lr=float(hyperparameters["lr"]),
                     start=int(env["PBT_START_STEP"]), steps=int(env["PBT_STEPS"]), seed=int(env["PBT_SEED"]))
    except (ValueError, TypeError) as error:
        raise SystemExit(f"a PBT_* variable is malformed: {error}")
    if not (trial["lr"] > 0 and math.isfinite(trial["lr"])):
        raise SystemExit(f"lr must be a positive number, got {trial['lr']}")
    return trial


def write_atomically(path, save):
    """save(temporary path), then rename: a killed trial never leaves half a file."""
    temporary = path + ".tmp"
    save(temporary)
    os.replace(temporary, path)


def write_json(path, value):
    def save(temporary):
        with open(temporary, "w") as file:
            json.dump(value, file)  # a NaN objective comes out as bare NaN, as Python writes it
    write_atomically(path, save)


def run_trial(args, trial, corpus):
    preset = PRESETS[args.preset]
    torch.manual_seed(trial["seed"])
    model = WaveNet(**preset)
    optimizer = torch.optim.Adam(model.parameters(), lr=trial["lr"])
    if trial["parent"]:
        state = torch.load(os.path.join(trial["parent"], CHECKPOINT), weights_only=True)
        if state["preset"] != preset:
            raise SystemExit(f"parent checkpoint in {trial['parent']} is a different model ({state['preset']}) than --preset {args.preset}")
        if state["step"] != trial["start"]:
            raise SystemExit(f"parent checkpoint in {trial['parent']} is at step {state['step']}, PBT_START_STEP is {trial['start']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = trial["lr"]  # the parent's Adam moments, this trial's learning rate
    elif trial["start"] != 0:
        raise SystemExit(f"fresh trial (empty PBT_PARENT_DIR) but PBT_START_STEP is {trial['start']}")

    # Windows of `window` targets (+1 code), uniform over all windows of all
    # training clips, every position a target (zero padding before it, as the
    # peer and `pbtwave train`'s default --context 0).
    length = args.window + 1
    cumulative = window_starts(corpus.train, length)
    rng = random.Random(f"{trial['seed']}:{trial['start']}")
    began, losses = time.perf_counter(), []
    for _ in range(trial["steps"]):
        batch = torch.stack([window_at(corpus.train, cumulative, rng.randrange(cumulative[-1]), length)
                             for _ in range(args.batch)])
        loss = F.cross_entropy(model(batch[:, :-1]), batch[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item() / math.log(2))
        if not math.isfinite(losses[-1]):  # diverged: report it, leave no checkpoint to inherit
            print(f"trial {trial['id']}: diverged at step {trial['start'] + len(losses)} (lr {trial['lr']:.3g})")
            write_json(os.path.join(trial["dir"], "result.json"), dict(objective=math.nan, steps=len(losses)))
            return
    trained = time.perf_counter() - began
    step = trial["start"] + trial["steps"]
    windows = evenly_spaced_windows(corpus.validation, model.receptive_field + args.eval_targets, args.eval_windows)
    nll = nll_bits_on_windows(model, windows)
    write_atomically(os.path.join(trial["dir"], CHECKPOINT), lambda path: torch.save(
        dict(preset=preset, step=step, model=model.state_dict(), optimizer=optimizer.state_dict()), path))
    metrics = dict(step=step, lr=trial["lr"])
    if losses:
        metrics["train_bits"] = sum(losses[-10:]) / len(losses[-10:])  # the last steps' mean training loss
    write_json(os.path.join(trial["dir"], "result.json"), dict(objective=nll, steps=trial["steps"], metrics=metrics))
    print(f"trial {trial['id']}: steps {trial['start']}..{step} at lr {trial['lr']:.3g}, "
          f"train {metrics.get('train_bits', math.nan):.4f} bits, {trial['steps'] * args.batch * args.window / max(trained, 1e-9):.0f} samples/s; "
          f"validation NLL {nll:.4f} bits/sample ({args.eval_windows} windows × {args.eval_targets})")


def score_checkpoint(path, corpus):
    state = torch.load(path, weights_only=True)
    model = WaveNet(**state["preset"])
    model.load_state_dict(state["model"])
    began = time.perf_counter()
    nll, count = score_whole_set(model, corpus.validation)
    print(json.dumps(dict(checkpoint=path, step=state["step"], nll_bits=nll, count=count,
                          seconds=round(time.perf_counter() - began, 1))))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="compact", help="model size (default: the peer's compact)")
    parser.add_argument("--batch", type=int, default=2, help="windows per step")
    parser.add_argument("--window", type=int, default=2048, help="scored samples per training window")
    parser.add_argument("--eval-windows", type=int, default=8, help="validation windows (fixed, evenly spaced)")
    parser.add_argument("--eval-targets", type=int, default=4096, help="scored samples per validation window")
    parser.add_argument("--corpus", default=os.environ.get("PBTWAVE_CORPUS") or "corpus")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: PBT's workers are the parallelism)")
    parser.add_argument("--score-whole-set", metavar="CHECKPOINT", help="print the whole-validation-set NLL of CHECKPOINT and exit")
    args = parser.parse_args()
    if min(args.batch, args.window, args.eval_windows, args.eval_targets, args.threads) < 1:
        parser.error("--batch, --window, --eval-windows, --eval-targets and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    if args.score_whole_set:
        score_checkpoint(args.score_whole_set, Corpus(args.corpus))
    else:
        trial = contract()  # before the corpus: a bad call fails at once
        run_trial(args, trial, Corpus(args.corpus))


if __name__ == "__main__":
    main()
