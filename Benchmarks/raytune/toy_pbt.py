#!/usr/bin/env python3
"""The exec toy's PBT in Ray Tune, for a side-by-side wall time with
`pbtwave pbt --exec` (see README.md): population 5, 100 perturbation
intervals of 5 iterations each (500 exploit/explore decisions). One
iteration is one SGD step of `Tests/ExecToy/toy_quadratic.py`'s noisy
quadratic; the hyperparameters are `lr` and `momentum`.

    python toy_pbt.py [--population 5] [--intervals 100] [--interval 5] [--cpus-per-trial 1]
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time

TOY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "ExecToy")


def train_toy(config):
    """A Ray Tune function trainable: the toy, checkpointed every perturbation interval."""
    sys.path.insert(0, TOY_DIR)  # in the trial's worker process
    import toy_quadratic as toy
    from ray import tune

    position, velocity, step = [toy.START] * toy.DIMENSION, [0.0] * toy.DIMENSION, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:  # exploit: continue from the parent's model and optimizer state
        with checkpoint.as_directory() as directory, open(os.path.join(directory, toy.CHECKPOINT)) as file:
            state = json.load(file)
        position, velocity, step = state["position"], state["velocity"], state["step"]
    rng = random.Random(f"{config['seed']}:{step}")
    while True:
        toy.sgd_step(position, velocity, config["lr"], config["momentum"], rng)
        step += 1
        metrics = {"objective": toy.exact_loss(position), "step": step}
        if step % config["interval"]:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, toy.CHECKPOINT), "w") as file:
                json.dump(dict(step=step, position=position, velocity=velocity), file)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=5)
    parser.add_argument("--intervals", type=int, default=100, help="perturbation intervals per trial")
    parser.add_argument("--interval", type=int, default=5, help="iterations (SGD steps) per perturbation interval")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs Ray may use")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0,
                        help="Ray's resource request per trial (1: Ray's default; 0.4: all 5 run at once on 2 CPUs)")
    parser.add_argument("--no-reuse-actors", dest="reuse_actors", action="store_false",
                        help="Ray's default: a new actor (process) for every exploit (we reuse, as Ray advises for PBT)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=os.path.join(tempfile.gettempdir(), "raytune-toy-pbt"),
                        help="Ray Tune's results and checkpoints (outside the repository)")
    args = parser.parse_args()

    started = time.perf_counter()
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(args.seed)  # Ray's PBT draws its explore decisions from the global generators
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    # The paper-like settings, as `pbtwave pbt` has them: mutate by 0.8 / 1.2
    # or resample from the prior with probability 0.25, clamped to the prior
    # (Ray does not clamp a perturbed value: momentum could pass 1 and diverge).
    bounds = {"lr": (1e-4, 3e-2), "momentum": (0.8, 0.99)}
    space = {"lr": tune.loguniform(*bounds["lr"]), "momentum": tune.uniform(*bounds["momentum"])}

    def clamp(config):
        for name, (low, high) in bounds.items():
            config[name] = min(max(config[name], low), high)
        return config

    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=args.interval, hyperparam_mutations=space,
        quantile_fraction=0.25, resample_probability=0.25, perturbation_factors=(1.2, 0.8), custom_explore_fn=clamp)
    tuner = tune.Tuner(
        tune.with_resources(train_toy, {"cpu": args.cpus_per_trial}),
        param_space=dict(space, seed=tune.randint(0, 2**31), interval=args.interval),
        tune_config=tune.TuneConfig(scheduler=scheduler, metric="objective", mode="min",
                                    num_samples=args.population, reuse_actors=args.reuse_actors),
        run_config=tune.RunConfig(name="toy_pbt", storage_path=args.storage, verbose=0,
                                  stop={"training_iteration": args.intervals * args.interval}))
    ray_started = time.perf_counter()
    results = tuner.fit()
    finished = time.perf_counter()
    best = results.get_best_result(metric="objective", mode="min", scope="last")
    print(json.dumps(dict(
        ray=ray.__version__, population=args.population, intervals=args.intervals, interval=args.interval,
        decisions=args.population * args.intervals, cpus=args.cpus, cpus_per_trial=args.cpus_per_trial,
        reuse_actors=args.reuse_actors,
        errors=len(results.errors), best_objective=best.metrics["objective"],
        best_lr=best.config["lr"], best_momentum=best.config["momentum"],
        fit_seconds=round(finished - ray_started, 1), wall_seconds=round(finished - started, 1))))
    ray.shutdown()


if __name__ == "__main__":
    main()
