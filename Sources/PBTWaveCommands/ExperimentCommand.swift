import ArgumentParser
import PBTExperiment
import PBTFileSupport
import Foundation
import Synchronization
import PBT
import PBTReport
import PBTWaveTensor
import PBTWaveModel
import PBTWaveRunner

/// `pbtwave experiment`: the paper's comparison on the speech corpus.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Reproduce Li et al.'s WaveNet study: PBT-5x5 vs PBT-5x20 vs random search vs a fixed learning rate.",
        discussion: """
            Every method gets the same compute (training steps summed over its trials), for several seeds. Each \
            method-and-seed is a PBT run in its own folder under --run-dir, so re-running the same command resumes an \
            interrupted experiment (on the same corpus: another is refused). Each run's final best model (the best of its \
            final population) is scored on the whole validation set. The winning method is the one whose runs hold the best \
            PBT trial on the fixed validation windows; the final best schedule of each of its seeds is replayed in one plain \
            training run, and that of the seed holding the best trial is exported as schedule.json, with its recipe (what \
            `pbtwave train --lr-schedule` replays; replay.json and replays/ hold the replays' scores). schedule.csv is the \
            lineage of the best trial itself, which can be an earlier trial than the final best. The claims are decided by \
            stated tests on those numbers; report.html, report.md and the raw numbers (results.json, curves.csv, \
            trials.csv, schedule.csv) are written to --run-dir.

            Presets: quick (tiny model, 4 seeds, about 5 minutes on 2 cores), paper (compact model, 10 seeds, about 1.5 \
            hours on 2 cores), smoke (seconds; for CI). Methods (--methods, comma-separated): pbt-5x5, pbt-5x20, \
            random-search, fixed-lr (the paper's four, the default), and beyond the paper pb2-5x5 (PB2's GP-bandit \
            explore) and pbt-5x5-wide (mutation within [1e-6, 1e-1], wider than the prior).
            """)

    @Option(help: "Preset: quick, paper or smoke.") var preset: String = "quick"
    @Option(help: "Where runs, checkpoints and the report go (default runs/experiment-PRESET).", transform: nonEmptyPath) var runDir: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seeds per method (default: the preset's: "
        + ExperimentPreset.all.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.seeds)" }.joined(separator: ", ") + ").")) var seeds: Int?
    @Option(help: "Methods to compare, comma-separated (default: pbt-5x5,pbt-5x20,random-search,fixed-lr).")
    var methods: String?
    @Option(help: "Operands of the products: fp32 (default) or bf16 (bf16 operands, fp32 accumulation); replays keep it.")
    var precision: String = "fp32"
    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard ExperimentPreset.all[preset] != nil else { throw ValidationError("unknown --preset '\(preset)'; choose quick, paper or smoke") }
        if let seeds { guard (1...1000).contains(seeds) else { throw ValidationError("--seeds must be at least 1 (and at most 1000)") } }
        if let methods {
            // An empty item ("a,,b", a trailing comma) is a typo, not nothing.
            if methods.split(separator: ",", omittingEmptySubsequences: false).contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                throw ValidationError("--methods '\(methods)' has an empty item: give method names separated by single commas")
            }
            do { _ = try ExperimentPreset.quick.methods(slugs: Self.slugs(methods)) } catch { throw ValidationError("\(error)") }
        }
        do { _ = try Precision(parsing: precision) } catch { throw ValidationError("--precision: \(error)") }
    }

    static func slugs(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func run() throws {
        var p = ExperimentPreset.all[preset]!
        if let seeds { p.seeds = seeds }
        let directory = URL(fileURLWithPath: runDir ?? "runs/experiment-\(p.name)")
        if PathKind(of: directory.path) == .file {
            throw CommandError("--run-dir \(directory.path) is a file, not a folder: give a folder for the experiment (it is created if missing)")
        }
        // A single PBT run's folder is not an experiment's: its runs would be nested inside it.
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(RunMarker.fileName).path) {
            throw CommandError("--run-dir \(directory.path) is the folder of a single PBT run (it holds \(RunMarker.fileName)), not of an "
                               + "experiment: give the experiment a folder of its own")
        }
        // Files named as the report's, in a folder that holds no experiment's runs, are someone else's (found by a
        // helper: a folder of notes lost its report.md, results.json and trials.csv without a word).
        let reportNames = ["report.html", "report.md", "results.json", "curves.csv", "trials.csv", "schedule.csv", "schedule.json"]
        let foreign = reportNames.filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        if !foreign.isEmpty, !RunDirectory.runFolders(in: directory).contains(where: { $0.contains("-seed") }) {
            throw CommandError("--run-dir \(directory.path) holds \(foreign.joined(separator: ", ")) but no experiment's runs: the report would "
                               + "overwrite \(foreign.count == 1 ? "it" : "them"); give the experiment a folder of its own, or move \(foreign.count == 1 ? "it" : "them") aside")
        }
        let base = TrainingRecipe(model: WaveNetConfig.presets[p.model]!, training: TrainingOptions(batch: p.batch, window: p.window,
                                                                                                           precision: try Precision(parsing: precision)),
                                  evaluation: EvaluationOptions(windows: p.evalWindows, targets: p.evalTargets), seed: 0)
        let fixed = WindowSetting.fixed(by: "the \(p.name) preset")
        let (runner, _) = try RunnerOptions.wavenetRunner(base, corpus: corpus, windows: (fixed, fixed))
        let chosen = try methods.map { try p.methods(slugs: Self.slugs($0)) } ?? p.methods
        // One command at a time on an experiment's folder, for the whole of it (runs, replays, the report); taken once
        // the corpus and flags are known good (found by a helper: a mistyped --corpus left a folder holding a lock file).
        let folderLock = try RunDirectory.lockFolder(directory)
        defer { withExtendedLifetime(folderLock) {} }
        let harness = try ExperimentHarness(
            preset: p, methods: chosen, directory: directory, runner: runner, model: PBTModel.wavenet.rawValue,
            modelOptions: RunnerOptions.stored(base), machine: Self.machine(), explorers: .pbtwave,
            recipe: { seed in
                var recipe = runner.recipe
                recipe.seed = seed
                return try recipe.json
            }, recipeFieldsNotCompared: TrainingRecipe.fieldsNotCompared,
            rescore: try Self.wholeSetScorer(runner, threads: ProcessInfo.processInfo.activeProcessorCount),
            replay: try Self.replayer(runner), precision: base.training.precision.rawValue)
        print("experiment \(p.name): \(chosen.count) method\(chosen.count == 1 ? "" : "s") × \(p.seeds) seed\(p.seeds == 1 ? "" : "s"), model \(p.model) in \(base.training.precision), \(p.totalSteps) steps per method "
              + "(\(p.trialSteps)-step trials, batch \(p.batch) × \(p.window)), \(p.workers) workers; in \(directory.path)")
        // A resumed experiment says so (found by a helper: its header was a fresh start's).
        let begun = (0..<p.seeds).flatMap { seed in chosen.map { "\($0.slug)-seed\(seed)" } }
            .filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).appendingPathComponent(RunDirectory.storeFileName).path) }
        if !begun.isEmpty {
            print("resuming: \(begun.count) of \(p.seeds * chosen.count) runs were begun before; each goes on where it stopped, and finished runs, "
                  + "scores and replays are kept")
        }
        let line = ProgressLine(label: "experiment", style: progress.progress, interval: 10)
        let start = ContinuousClock.now
        let budgetPerRun = Double(p.totalSteps / p.trialSteps)
        // Trials completed in this session, by run: a resumed experiment's
        // rate is this session's, not one that counts earlier sessions' trials.
        let session = Mutex<[Int: Int]>([:])
        let report: @Sendable (ExperimentProgress) -> Void = { e in
            let elapsed = elapsedSeconds(since: start)
            if let message = e.message {
                line.update(message, now: elapsed, force: true)
                return
            }
            guard let pbt = e.pbt else { return }
            let doneRuns = Double(e.runIndex) + Double(pbt.run.completed) / budgetPerRun
            let doneHere = session.withLock { done in
                done[e.runIndex] = pbt.completedThisSession
                return Double(done.values.reduce(0, +)) / budgetPerRun
            }
            let eta = doneHere > 0.05 ? elapsed * (Double(e.runCount) - doneRuns) / doneHere : .nan
            let best = pbt.run.best.map { String(format: "best %.3f bits", $0.evaluation) } ?? "no result yet"
            line.update("run \(e.runIndex + 1)/\(e.runCount) \(e.method) seed \(e.seed): \(pbt.run.completed)/\(pbt.trialBudget) trials, "
                        + "\(best) | total ETA \(ProgressLine.duration(eta))", now: elapsed, force: pbt.isFinal)
        }
        // Interrupted, the experiment resumes where it was when re-run: say so.
        let interrupted = StopOnSignals { signal, _ in
            line.finish()
            let text = "experiment: \(signalName(signal)): stopped; run the same command again to resume "
                + "(finished runs, scores and replays are kept)\n"
            writeToStandardError(text)
            // _exit, not exit: exit's handlers (OpenSSL's among them) would tear down
            // what the training threads still use (found by a helper: a crash in 2 of 6 stops).
            StopOnSignals.exitNow(signal)
        }
        defer { interrupted.cancel() }
        let results: ExperimentResults
        do { results = try harness.run(progress: report) } catch ExperimentError.otherSettings(let runDirectory, let differences) {
            // In the flags' terms, as `pbt` says it.
            throw CommandError("\(runDirectory) holds a run of an earlier experiment with other settings (another --preset, --precision, corpus or build; "
                + differences.map { "\(PBTSettingsOptions.flag($0.field)): the run has \($0.stored), this command has \($0.given)" }.joined(separator: "; ")
                + "): re-run with that experiment's flags to resume it, or give a new --run-dir")
        }
        line.finish()
        print(ExperimentReport.summary(results))
        let learned = Winner(results) != nil
        print("report: \(directory.appendingPathComponent("report.html").path) (also report.md, results.json, curves.csv, trials.csv"
              + (learned ? ", schedule.csv, and schedule.json, which `pbtwave train --lr-schedule` replays)"
                 : "; no PBT method ran, so no learned schedule was exported)"))
        if let earlier = Self.earlierExperimentsFiles(in: directory, ran: Set((0..<p.seeds).flatMap { seed in chosen.map { "\($0.slug)-seed\(seed)" } }),
                                                      learned: learned) {
            printNote("note: \(directory.path) also holds \(earlier) of an earlier experiment there, which this report does not cover; "
                  + "give each experiment its own --run-dir to keep them apart")
        }
    }

    /// What an earlier experiment in `directory` left that this one did not
    /// write: run folders of methods or seeds it did not run, and (with no
    /// learned schedule now) an earlier schedule and replay. Nil when none.
    static func earlierExperimentsFiles(in directory: URL, ran: Set<String>, learned: Bool) -> String? {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        let runs = names.filter { name in
            !ran.contains(name) && name.firstMatch(of: #/-seed\d+$/#) != nil
                && fm.fileExists(atPath: directory.appendingPathComponent(name).appendingPathComponent(RunDirectory.storeFileName).path)
        }
        var files = learned ? [] : ["schedule.csv", "schedule.json", "replay.json"].filter(names.contains)
        // Replays of seeds this experiment did not run (found by a helper: kept in replays/ without a word).
        let replays = ((try? fm.contentsOfDirectory(atPath: directory.appendingPathComponent("replays").path)) ?? []).sorted()
        files += replays.filter { $0.hasSuffix(".json") && !ran.contains(String($0.dropLast(5))) }.map { "replays/" + $0 }
        guard !runs.isEmpty || !files.isEmpty else { return nil }
        return (runs + files).joined(separator: ", ")
    }

    /// Scores a trial's checkpoint on the whole validation set with `threads` copies of the model.
    static func wholeSetScorer(_ runner: WaveNetRunner, threads: Int) throws -> @Sendable (CheckpointRef) throws -> WholeSetScore {
        let evaluator = try WholeSetEvaluator(clips: runner.corpus.validation, config: runner.recipe.model)
        return { checkpoint in
            let score = try evaluator.score(try WaveNet.load(from: checkpoint.path).model, threads: threads)
            return WholeSetScore(trial: nil, nll: score.nllBits, samples: score.count)
        }
    }

    /// The same replay as `pbtwave train --lr-schedule schedule.json`, then
    /// the whole-set score of the replayed model (one thread: replays run in parallel).
    static func replayer(_ runner: WaveNetRunner) throws -> @Sendable (HyperparameterSchedule) throws -> ReplayScore {
        let data = runner.corpus
        let evaluator = try WholeSetEvaluator(clips: data.validation, config: runner.recipe.model)
        return { file in
            guard let recipe = try TrainingRecipe(file), let end = file.endStep else { return ReplayScore(windows: .nan) }
            var trained: WaveNet?
            let summary = try recipe.replay(try LearningRateSchedule(file), until: end, on: data, started: { trained = $0 })
            guard let model = trained, let nll = summary.validationNLL, !summary.diverged else { return ReplayScore(windows: .nan) }
            let score = try evaluator.score(model)
            return ReplayScore(windows: nll, wholeSet: WholeSetScore(trial: nil, nll: score.nllBits, samples: score.count))
        }
    }

    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(BLAS.coreName)"
    }
}
