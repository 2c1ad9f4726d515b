import ArgumentParser
import Experiment
import Foundation
import PBT
import Report
import TensorModule
import WaveNetModule

/// `pbtwave experiment`: the paper's comparison on the speech corpus.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Reproduce Li et al.'s WaveNet study: PBT-5x5 vs PBT-5x20 vs random search vs a fixed learning rate.",
        discussion: """
            Every method gets the same compute (training steps summed over its trials), for several seeds. Each \
            method-and-seed is a PBT run in its own folder under --run-dir, so re-running the same command resumes an \
            interrupted experiment. At the end the winner's learned schedule is exported (schedule.json, with its recipe) \
            and replayed in one plain training run, and report.html, report.md and the raw numbers (results.json, \
            curves.csv, trials.csv, schedule.csv) are written to --run-dir.

            Presets: quick (tiny model, 2 seeds, about 5 minutes on 2 cores), paper (compact model, 5 seeds, about two \
            hours on 2 cores), smoke (seconds; for CI).
            """)

    @Option(help: "Preset: quick, paper or smoke.") var preset: String = "quick"
    @Option(help: "Where runs, checkpoints and the report go (default runs/experiment-PRESET).") var runDir: String?
    @Option(help: "Override the number of seeds.") var seeds: Int?
    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard ExperimentPreset.all[preset] != nil else { throw ValidationError("unknown --preset '\(preset)'; choose quick, paper or smoke") }
        if let seeds { guard (1...1000).contains(seeds) else { throw ValidationError("--seeds must be at least 1 (and at most 1000)") } }
    }

    func run() throws {
        var p = ExperimentPreset.all[preset]!
        if let seeds { p.seeds = seeds }
        let directory = URL(fileURLWithPath: runDir ?? "runs/experiment-\(p.name)")
        let base = TrainingRecipe(model: WaveNetConfig.presets[p.model]!, training: TrainingOptions(batch: p.batch, window: p.window),
                                  evaluation: EvaluationOptions(windows: p.evalWindows, targets: p.evalTargets), seed: 0)
        let (runner, _) = try RunnerOptions.wavenetRunner(base, corpus: corpus)
        let data = runner.corpus
        let harness = try ExperimentHarness(
            preset: p, directory: directory, runner: runner, model: PBTModel.wavenet.rawValue, modelOptions: RunnerOptions.stored(base),
            machine: Self.machine(),
            recipe: { seed in
                var recipe = runner.recipe
                recipe.seed = seed
                return try recipe.json
            },
            replay: { file in
                // The same replay as `pbtwave train --lr-schedule schedule.json`.
                guard let recipe = try TrainingRecipe(file), let end = file.endStep else { return .nan }
                return try recipe.replay(try LearningRateSchedule(file), until: end, on: data).validationNLL ?? .nan
            })
        print("experiment \(p.name): \(p.methods.count) methods × \(p.seeds) seeds, model \(p.model), \(p.totalSteps) steps per method "
              + "(\(p.trialSteps)-step trials, batch \(p.batch) × \(p.window)), \(p.workers) workers; in \(directory.path)")
        let line = ProgressLine(label: "experiment", style: progress.progress, interval: 10)
        let start = ContinuousClock.now
        let budgetPerRun = Double(p.totalSteps / p.trialSteps)
        let results = try harness.run { e in
            let elapsed = elapsedSeconds(since: start)
            if let message = e.message {
                line.update(message, now: elapsed, force: true)
                return
            }
            guard let pbt = e.pbt else { return }
            let doneRuns = Double(e.runIndex) + Double(pbt.run.completed) / budgetPerRun
            let eta = doneRuns > 0.05 ? elapsed * (Double(e.runCount) - doneRuns) / doneRuns : .nan
            let best = pbt.run.best.map { String(format: "best %.3f bits", $0.evaluation) } ?? "no result yet"
            line.update("run \(e.runIndex + 1)/\(e.runCount) \(e.method) seed \(e.seed): \(pbt.run.completed)/\(pbt.trialBudget) trials, "
                        + "\(best) | total ETA \(ProgressLine.duration(eta))", now: elapsed, force: pbt.isFinal)
        }
        line.finish()
        print(ExperimentReport.summary(results))
        print("report: \(directory.appendingPathComponent("report.html").path) (also report.md, results.json, curves.csv, trials.csv, "
              + "schedule.csv, and schedule.json, which `pbtwave train --lr-schedule` replays)")
    }

    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(BLAS.coreName)"
    }
}
