#!/usr/bin/env python3
"""A noisy quadratic trained by SGD with momentum: the toy training program
for `pbtwave pbt --exec` (see README.md next to this file for the contract).

The same problem as PBTWave's compiled toy (`ToyQuadraticRunner`): minimise
L(x) = 1/2 sum_i h_i x_i^2 from x = 3 with Gaussian gradient noise. A large
learning rate makes fast progress but settles at a noise floor; a small one
settles lower but slowly, so the best schedule decays. Stdlib only.

Hyperparameters: `lr` (required), `momentum` (default 0.9).
Knobs for tests, from the environment:
  TOY_FAIL=exit|signal|noresult|badjson|nan|sleep|hang  fail in that way
  TOY_FAIL_TRIALS=3,7   only these trial ids fail (default: every trial)
  TOY_STEP_SECONDS=0.1  sleep this long per step (stands in for real work)
"""
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

DIMENSION = 8
CURVATURES = [0.5 * 40 ** (i / (DIMENSION - 1)) for i in range(DIMENSION)]
START = 3.0
GRADIENT_NOISE = 1.0
CHECKPOINT = "checkpoint.json"


def sgd_step(position, velocity, lr, momentum, rng):
    """One step of SGD with momentum on a noisy gradient, in place."""
    for i, h in enumerate(CURVATURES):
        gradient = h * position[i] + GRADIENT_NOISE * rng.gauss(0.0, 1.0)
        velocity[i] = momentum * velocity[i] + gradient
        position[i] -= lr * velocity[i]


def exact_loss(position):
    """The noise-free loss: the objective (inf or NaN once diverged)."""
    return sum(0.5 * h * x * x for h, x in zip(CURVATURES, position))


def die(message):
    """A contract violation: say what is wrong and exit 2."""
    print(f"toy_quadratic: {message}", file=sys.stderr)
    sys.exit(2)


def read_contract():
    """The trial as the runner describes it in PBT_* variables, checked."""
    env = os.environ
    missing = [name for name in ("PBT_TRIAL_ID", "PBT_TRIAL_DIR", "PBT_PARENT_DIR", "PBT_START_STEP",
                                 "PBT_STEPS", "PBT_SEED", "PBT_HYPERPARAMETERS") if name not in env]
    if missing:
        die(f"missing environment variables {', '.join(missing)}: run me from `pbtwave pbt --exec`")
    try:
        hyperparameters = json.loads(env["PBT_HYPERPARAMETERS"])
        trial = dict(id=env["PBT_TRIAL_ID"], dir=env["PBT_TRIAL_DIR"], parent=env["PBT_PARENT_DIR"],
                     start=int(env["PBT_START_STEP"]), steps=int(env["PBT_STEPS"]), seed=int(env["PBT_SEED"]))
    except ValueError as error:
        die(f"a PBT_* variable is malformed: {error}")
    if not isinstance(hyperparameters, dict):
        die(f"PBT_HYPERPARAMETERS is not a JSON object: {env['PBT_HYPERPARAMETERS']}")
    for name, value in hyperparameters.items():
        given = env.get(f"PBT_HP_{name}")
        if not same_value(given, value):
            die(f"PBT_HP_{name}={given!r} disagrees with PBT_HYPERPARAMETERS {name}={value!r}")
    if "lr" not in hyperparameters:
        die(f"no 'lr' in PBT_HYPERPARAMETERS {hyperparameters}")
    if not os.path.isdir(trial["dir"]):
        die(f"PBT_TRIAL_DIR {trial['dir']} is not a directory")
    return trial, float(hyperparameters["lr"]), float(hyperparameters.get("momentum", 0.9))


def same_value(text, value):
    """Whether a PBT_HP_<NAME> string spells the JSON value (3, 3.0 and 3e0 are all 3)."""
    if text is None:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return text == (value if isinstance(value, str) else json.dumps(value))


def load_state(trial):
    """The parent's (position, velocity), checked to be at PBT_START_STEP, or the start for a fresh trial."""
    if not trial["parent"]:
        if trial["start"] != 0:
            die(f"fresh trial (empty PBT_PARENT_DIR) but PBT_START_STEP is {trial['start']}")
        return [START] * DIMENSION, [0.0] * DIMENSION
    path = os.path.join(trial["parent"], CHECKPOINT)
    try:
        with open(path) as file:
            state = json.load(file)
    except (OSError, ValueError) as error:
        die(f"cannot read the parent checkpoint {path}: {error}")
    if state["step"] != trial["start"]:
        die(f"parent checkpoint {path} is at step {state['step']}, PBT_START_STEP is {trial['start']}")
    return state["position"], state["velocity"]


def write_json(directory, name, value):
    """Writes atomically, so a killed program never leaves half a file."""
    temporary = os.path.join(directory, f".{name}.tmp")
    with open(temporary, "w") as file:
        json.dump(value, file)  # NaN and inf come out as bare NaN / Infinity, as Python writes them
    os.replace(temporary, os.path.join(directory, name))


def fail_early(mode, trial_dir):
    """Failures that happen instead of training."""
    print(f"toy_quadratic: failing on purpose (TOY_FAIL={mode})", flush=True)
    if mode == "exit":
        sys.exit(3)
    if mode == "signal":
        os.kill(os.getpid(), signal.SIGABRT)
    if mode in ("sleep", "hang"):
        # A child in the same process group, so a runner that kills only its
        # own child leaves it behind. `hang` ignores SIGTERM; the child
        # inherits that (ignored signals stay ignored across exec).
        if mode == "hang":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1e6)"])
        # Written whole, then renamed: a reader never sees a partial file.
        path = os.path.join(trial_dir, "pids.txt")
        with open(path + ".part", "w") as file:
            file.write(f"{os.getpid()}\n{child.pid}\n")
        os.replace(path + ".part", path)
        while True:
            time.sleep(3600)


def main():
    trial, lr, momentum = read_contract()
    fail = os.environ.get("TOY_FAIL", "")
    only = os.environ.get("TOY_FAIL_TRIALS", "")
    if fail and only and trial["id"] not in only.split(","):
        fail = ""
    if fail not in ("", "exit", "signal", "noresult", "badjson", "nan", "sleep", "hang"):
        die(f"unknown TOY_FAIL={fail}; use exit, signal, noresult, badjson, nan, sleep or hang")
    if fail in ("exit", "signal", "sleep", "hang"):
        fail_early(fail, trial["dir"])

    position, velocity = load_state(trial)
    rng = random.Random(f"{trial['seed']}:{trial['start']}")  # the noise depends only on seed and start step
    step_seconds = float(os.environ.get("TOY_STEP_SECONDS", "0"))
    for _ in range(trial["steps"]):
        sgd_step(position, velocity, lr, momentum, rng)
        if step_seconds > 0:
            time.sleep(step_seconds)
    step = trial["start"] + trial["steps"]
    loss = exact_loss(position)
    write_json(trial["dir"], CHECKPOINT, dict(step=step, position=position, velocity=velocity))

    if fail == "noresult":
        print("toy_quadratic: writing no result.json (TOY_FAIL=noresult)")
        return
    if fail == "badjson":
        print("toy_quadratic: writing a broken result.json (TOY_FAIL=badjson)")
        with open(os.path.join(trial["dir"], "result.json"), "w") as file:
            file.write('{"objective": ')
        return
    if fail == "nan":
        print("toy_quadratic: reporting a NaN objective (TOY_FAIL=nan)")
        loss = math.nan
    print(f"trial {trial['id']}: steps {trial['start']}..{step}, lr {lr:.3g}, momentum {momentum:.3g}, loss {loss:.6g}")
    write_json(trial["dir"], "result.json", dict(objective=loss, steps=trial["steps"],
                                                 metrics=dict(lr=lr, momentum=momentum, step=step)))


if __name__ == "__main__":
    main()
