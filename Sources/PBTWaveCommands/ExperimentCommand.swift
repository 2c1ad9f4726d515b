import ArgumentParser
import Foundation
import PBT
import PBTExperiment
import SeededRNG
import SpeechAudio
import TensorModule
import WaveNetModule

/// `pbtwave experiment`: the paper's comparison on the speech corpus.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Reproduce Li et al.'s WaveNet study: PBT-5x5 vs PBT-5x20 vs random search vs a fixed learning rate.",
        discussion: """
        Every method gets the same compute (training steps summed over its trials), for several seeds. Each \
        method-and-seed is a PBT run in its own folder under --run-dir, so re-running the same command resumes \
        an interrupted experiment. At the end the winner's learned schedule is replayed in one plain training \
        run, and report.html, report.md and the raw numbers (results.json, curves.csv, trials.csv, schedule.csv) \
        are written to --run-dir.

        Presets: quick (tiny model, 2 seeds, a few minutes on 2 cores), paper (compact model, 5 seeds, about \
        two hours on 2 cores), smoke (seconds; for CI).
        """
    )

    @Option(help: "Preset: quick, paper or smoke.") var preset: String = "quick"
    @Option(help: "Where runs, checkpoints and the report go (default runs/experiment-PRESET).") var runDir: String?
    @Option(help: "Override the number of seeds.") var seeds: Int?
    @OptionGroup var corpus: CorpusChoice
    @Option(help: "Progress display: auto, line, plain, none.") var progress: ProgressStyle = .auto

    func validate() throws {
        guard ExperimentPreset.all[preset] != nil else {
            throw ValidationError("unknown --preset '\(preset)'; choose quick, paper or smoke")
        }
        if let seeds, seeds < 1 { throw ValidationError("--seeds must be at least 1") }
    }

    func run() throws {
        var p = ExperimentPreset.all[preset]!
        if let seeds { p.seeds = seeds }
        let directory = URL(fileURLWithPath: runDir ?? "runs/experiment-\(p.name)")
        let stored = WaveNetModelOptions.stored(preset: p.model, batch: p.batch, window: p.window,
                                                evalWindows: p.evalWindows, evalTargets: p.evalTargets)
        let runner = try WaveNetModelOptions(stored: stored, corpus: corpus.corpus).makeRunner()
        let (config, options, train, validator) = (runner.config, runner.options, runner.train, runner.validator)
        let harness = try ExperimentHarness(
            preset: p, directory: directory, runner: runner, model: "wavenet", modelOptions: stored, machine: Self.machine()
        ) { schedule, steps, seed in
            let model = try WaveNet(config: config, seed: seed)
            let trainer = try Trainer(model: model, clips: train, options: options, dataRNG: Xoshiro256(seed: seed).derived(1))
            let losses = try trainer.train(steps: steps) { Float(schedule.value(atStep: $0)) }
            guard losses.last?.isFinite ?? false else { return .nan }
            return validator.nllBits(model)
        }
        print("experiment \(p.name): \(p.methods.count) methods × \(p.seeds) seeds, model \(p.model), \(p.totalSteps) steps per method "
              + "(\(p.trialSteps)-step trials, batch \(p.batch) × \(p.window)), \(p.workers) workers; in \(directory.path)")
        let line = ProgressLine(label: "experiment", interval: 10, style: progress)
        let start = KernelBenchmark.now()
        let budgetPerRun = Double(p.totalSteps / p.trialSteps)
        let results = try harness.run { e in
            let elapsed = KernelBenchmark.now() - start
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
        print("report: \(directory.appendingPathComponent("report.html").path) (also report.md, results.json, curves.csv, trials.csv, schedule.csv)")
    }

    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(BLAS.coreName)"
    }
}
