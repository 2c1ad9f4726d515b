#!/usr/bin/env python3
"""Checks the toy against the contract by playing the runner's part:
`python3 Tests/ExecToy/test_toy_quadratic.py` (stdlib only, a few seconds)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

TOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toy_quadratic.py")


class Trial:
    """Runs the toy as `pbtwave pbt --exec` would, in a fresh trial directory."""

    def __init__(self, root, hyperparameters, steps=5, start=0, seed=7, parent="", trial_id="1", extra=None):
        self.dir = tempfile.mkdtemp(dir=root)
        self.env = dict(os.environ, PBT_TRIAL_ID=trial_id, PBT_TRIAL_DIR=self.dir, PBT_PARENT_DIR=parent,
                        PBT_START_STEP=str(start), PBT_STEPS=str(steps), PBT_SEED=str(seed),
                        PBT_HYPERPARAMETERS=json.dumps(hyperparameters))
        self.env.update({f"PBT_HP_{name}": str(value) for name, value in hyperparameters.items()})
        self.env.update(extra or {})

    def run(self):
        self.process = subprocess.run([sys.executable, TOY], env=self.env, capture_output=True, text=True, timeout=60)
        return self.process.returncode

    def start(self):
        # A session of its own, as the runner gives each trial a process group.
        self.popen = subprocess.Popen([sys.executable, TOY], env=self.env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def file(self, name):
        with open(os.path.join(self.dir, name)) as file:
            return file.read()

    def result(self):
        return json.loads(self.file("result.json"))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead, just not reaped
    except FileNotFoundError:
        return False


class ToyQuadraticTests(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.TemporaryDirectory()
        self.addCleanup(self.root.cleanup)

    def trial(self, hyperparameters=None, **options):
        return Trial(self.root.name, hyperparameters or {"lr": 0.01, "momentum": 0.9}, **options)

    def test_fresh_trial_reports_objective_and_checkpoint(self):
        trial = self.trial(steps=20)
        self.assertEqual(trial.run(), 0, trial.process.stderr)
        result = trial.result()
        self.assertLess(result["objective"], 0.5 * sum(9 * h for h in [0.5 * 40 ** (i / 7) for i in range(8)]))
        self.assertEqual(result["steps"], 20)
        self.assertEqual(json.loads(trial.file("checkpoint.json"))["step"], 20)

    def test_rerun_is_identical_and_seed_matters(self):
        first, second, other = self.trial(), self.trial(), self.trial(seed=8)
        for trial in (first, second, other):
            self.assertEqual(trial.run(), 0, trial.process.stderr)
        self.assertEqual(first.file("result.json"), second.file("result.json"))
        self.assertEqual(first.file("checkpoint.json"), second.file("checkpoint.json"))
        self.assertNotEqual(first.result()["objective"], other.result()["objective"])

    def test_child_continues_from_parent_checkpoint(self):
        parent = self.trial(steps=50)
        self.assertEqual(parent.run(), 0)
        child = self.trial({"lr": 0.001}, steps=50, start=50, parent=parent.dir)
        fresh = self.trial({"lr": 0.001}, steps=50)
        self.assertEqual(child.run(), 0, child.process.stderr)
        self.assertEqual(fresh.run(), 0)
        self.assertEqual(json.loads(child.file("checkpoint.json"))["step"], 100)
        self.assertLess(child.result()["objective"], fresh.result()["objective"])
        self.assertEqual(json.loads(parent.file("checkpoint.json"))["step"], 50, "the parent is read, never written")

    def test_contract_violations_exit_2_with_a_message(self):
        parent = self.trial()
        parent.run()
        cases = {
            "at step 5": self.trial(start=3, parent=parent.dir),
            "no 'lr'": self.trial({"momentum": 0.9}),
            "disagrees": self.trial(extra={"PBT_HP_lr": "0.5"}),
            "PBT_START_STEP is 4": self.trial(start=4),
            "missing environment variables PBT_SEED": self.trial(extra={"PBT_SEED": ""}),
        }
        del cases["missing environment variables PBT_SEED"].env["PBT_SEED"]
        for message, trial in cases.items():
            self.assertEqual(trial.run(), 2, message)
            self.assertIn(message, trial.process.stderr)

    def test_divergence_reports_a_non_finite_objective(self):
        trial = self.trial({"lr": 1.0}, steps=2000)
        self.assertEqual(trial.run(), 0)
        self.assertRegex(trial.file("result.json"), r'"objective": (NaN|Infinity)')

    def test_failure_modes(self):
        expected = {"exit": 3, "signal": -signal.SIGABRT, "noresult": 0, "badjson": 0, "nan": 0}
        for mode, code in expected.items():
            trial = self.trial(extra={"TOY_FAIL": mode})
            self.assertEqual(trial.run(), code, mode)
            self.assertIn(f"TOY_FAIL={mode}", trial.process.stdout, mode)
            exists = os.path.exists(os.path.join(trial.dir, "result.json"))
            self.assertEqual(exists, mode in ("badjson", "nan"), mode)
            if mode == "badjson":
                self.assertRaises(json.JSONDecodeError, trial.result)
            if mode == "nan":
                self.assertIn('"objective": NaN', trial.file("result.json"))

    def test_failure_only_for_listed_trials(self):
        listed = self.trial(trial_id="3", extra={"TOY_FAIL": "exit", "TOY_FAIL_TRIALS": "2,3"})
        spared = self.trial(trial_id="4", extra={"TOY_FAIL": "exit", "TOY_FAIL_TRIALS": "2,3"})
        self.assertEqual(listed.run(), 3)
        self.assertEqual(spared.run(), 0)

    def test_sleep_and_hang_leave_a_process_group_to_kill(self):
        for mode, stop in (("sleep", signal.SIGTERM), ("hang", signal.SIGKILL)):
            trial = self.trial(extra={"TOY_FAIL": mode})
            trial.start()
            pids = []
            for _ in range(200):
                if os.path.exists(os.path.join(trial.dir, "pids.txt")):
                    pids = trial.file("pids.txt").split()
                if len(pids) == 2:
                    break
                time.sleep(0.05)
            toy, child = map(int, pids)
            self.assertEqual(toy, trial.popen.pid)
            if mode == "hang":  # SIGTERM is ignored: only SIGKILL ends it
                os.killpg(trial.popen.pid, signal.SIGTERM)
                time.sleep(0.3)
                self.assertTrue(alive(toy) and alive(child), mode)
            os.killpg(trial.popen.pid, stop)
            trial.popen.wait(timeout=10)
            for _ in range(100):
                if not alive(child):
                    break
                time.sleep(0.05)
            self.assertFalse(alive(child), f"{mode}: the child {child} outlived its process group's kill")


if __name__ == "__main__":
    unittest.main()
