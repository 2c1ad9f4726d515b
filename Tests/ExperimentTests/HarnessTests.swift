import Foundation
import PBTPB2
import PBT
import PBTExperiment
import PBTReport
import PBTSchedules
import PBTExamples
import Synchronization
import Testing

/// The experiment harness driven by the toy runner (a noisy quadratic), so
/// the whole pipeline — methods × seeds as PBT runs, equal compute,
/// whole-set rescoring, replays, report — runs in a second.
@Suite struct HarnessTests {
    static let preset: ExperimentPreset = {
        var preset = ExperimentPreset(
            name: "test", model: "toy", batch: 1, window: 1, evalWindows: 1, evalTargets: 1,
            trialSteps: 5, totalSteps: 200, seeds: 2, workers: 2, lrMin: 1e-3, lrMax: 3e-1, fixedLR: 1e-2)
        preset.wideLRRange = 1e-5...1
        return preset
    }()

    final class Calls: Sendable {
        let replays = Mutex(0)
        /// The checkpoint paths rescored, and whether each existed then.
        let rescored = Mutex<[(String, Bool)]>([])
    }

    func makeHarness(_ directory: URL, calls: Calls, methods: [ExperimentMethod]? = nil,
                     explorers: ExploreStrategies = .builtIn, precision: String? = nil,
                     modelOptions: [String: String] = [:],
                     recipe: @escaping @Sendable (UInt64) throws -> JSONValue? = { _ in nil }) throws -> ExperimentHarness<ToyQuadraticRunner> {
        try ExperimentHarness(
            preset: Self.preset, methods: methods, directory: directory, runner: ToyQuadraticRunner(), model: "toy", modelOptions: modelOptions,
            machine: "test", explorers: explorers, recipe: recipe, recipeFieldsNotCompared: ["corpusDirectory"],
            rescore: { checkpoint in
                let exists = FileManager.default.fileExists(atPath: checkpoint.path)
                calls.rescored.withLock { $0.append((checkpoint.path, exists)) }
                return WholeSetScore(trial: nil, nll: 0.25, samples: 1000)
            },
            replay: { file in
                calls.replays.withLock { $0 += 1 }
                #expect((file.endStep ?? 0) > 0 && file.rows.first?.step == 0)
                return ReplayScore(windows: 0.5, wholeSet: WholeSetScore(trial: nil, nll: 0.26, samples: 1000))
            }, precision: precision)
    }

    /// An experiment folder holding runs made with other settings is
    /// refused, naming the run's folder and what differs.
    @Test func aFolderOfAnExperimentWithOtherSettingsIsRefused() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let methods = try Self.preset.methods(slugs: ["fixed-lr"])
        _ = try makeHarness(directory, calls: Calls(), methods: methods).run()
        let error = #expect(throws: ExperimentError.self) {
            try makeHarness(directory, calls: Calls(), methods: methods, modelOptions: ["precision": "bf16"]).run()
        }
        guard case let .otherSettings(runDirectory, differences)? = error else {
            Issue.record("expected otherSettings, got \(String(describing: error))")
            return
        }
        #expect(runDirectory.hasPrefix(directory.path) && runDirectory != directory.path, "the method's own run folder: \(runDirectory)")
        #expect(differences.map(\.description) == ["model.precision: run has the default, command has bf16"])
    }

    /// Found by a user: resumed on another corpus, an experiment mixed two
    /// validation sets in one report. Its runs' recipes are compared (the
    /// corpus among them; not where the corpus was, nor fields an older run
    /// does not store).
    @Test func aFolderOfAnExperimentOnAnotherCorpusIsRefused() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let methods = try Self.preset.methods(slugs: ["fixed-lr"])
        func recipe(_ digest: String, _ folder: String) -> @Sendable (UInt64) throws -> JSONValue? {
            { _ in .object(["corpus": .object(["digest": .string(digest)]), "corpusDirectory": .string(folder)]) }
        }
        _ = try makeHarness(directory, calls: Calls(), methods: methods, recipe: recipe("a", "/here")).run()
        _ = try makeHarness(directory, calls: Calls(), methods: methods, recipe: recipe("a", "/moved")).run()
        let error = #expect(throws: ExperimentError.self) {
            try makeHarness(directory, calls: Calls(), methods: methods, recipe: recipe("b", "/here")).run()
        }
        guard case let .otherSettings(_, differences)? = error else {
            Issue.record("expected otherSettings, got \(String(describing: error))")
            return
        }
        #expect(differences.map(\.description) == [#"recipe.corpus.digest: run has "a", command has "b""#])
    }

    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(getpid())-\(UInt32.random(in: 0 ... .max))")
    }

    @Test func runsEveryMethodWithEqualComputeRescoresAndResumesWithoutRedoingWork() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let calls = Calls()
        let results = try makeHarness(directory, calls: calls).run()

        #expect(results.runs.count == 4 * 2)
        #expect(Set(results.runs.map(\.method)) == [MethodName.pbt5x5, MethodName.pbt5x20, MethodName.randomSearch, MethodName.fixedLR])
        for run in results.runs {
            #expect(run.trials.reduce(0) { $0 + $1.steps } == Self.preset.totalSteps, "\(run.method) seed \(run.seed) spent other compute")
            #expect(run.trials.map(\.completionIndex).sorted() == Array(0..<run.trials.count))
            let lrs = Set(run.trials.compactMap(\.learningRate))
            switch run.method {
            case MethodName.fixedLR: #expect(lrs == [1e-2])
            case MethodName.randomSearch: #expect(lrs.count <= 2 + run.trials.filter { $0.parent == nil }.count)
            case MethodName.pbt5x20: #expect(run.population == 8)
            default: #expect(run.population == 2)
            }
            // Tournament losers only where a tournament chose the parent.
            if !run.isPBT { #expect(run.trials.allSatisfy { $0.tournamentLoser == nil }) }
            // The whole-set score is of a finished trial of this run whose checkpoint was still there (below).
            let scored = try #require(run.wholeSet)
            let trial = try #require(run.trials.first { $0.id == scored.trial })
            #expect(scored.nll == 0.25 && trial.finiteNLL != nil)
        }
        #expect(calls.rescored.withLock { $0.count } == 8 && calls.rescored.withLock { $0.allSatisfy(\.1) })

        // Every seed of the winning method was replayed, against its own final best.
        let winner = try #require(Winner(results))
        #expect(results.replays.count == 2 && results.replays.allSatisfy { $0.method == winner.method && $0.replayNLL == 0.5 })
        #expect(results.replays.map(\.seed) == [0, 1])
        for replay in results.replays {
            let run = try #require(results.runs.first { $0.method == replay.method && $0.seed == replay.seed })
            #expect(replay.pbtWinnerWholeSet == run.wholeSet && replay.replayWholeSet?.nll == 0.26)
        }
        let slug = Self.preset.availableMethods.first { $0.name == winner.method }!.slug
        for file in ["report.html", "report.md", "results.json", "curves.csv", "trials.csv", "schedule.csv", "schedule.json", "replay.json",
                     "replays/\(slug)-seed0.json", "replays/\(slug)-seed1.json"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path), "\(file) missing")
        }
        let written = try ExperimentResults.read(from: directory.appendingPathComponent("results.json"))
        #expect(written.claims?.map(\.label) == ["(a)", "(b)", "(c)", "(d)"])

        // Running again finds every run complete: same results, no new rescoring or replay, and none announced.
        let messages = Mutex<[String]>([])
        let again = try makeHarness(directory, calls: calls).run { e in if let m = e.message { messages.withLock { $0.append(m) } } }
        #expect(calls.replays.withLock { $0 } == 2 && calls.rescored.withLock { $0.count } == 8)
        #expect(messages.withLock { $0 }.filter { $0.hasPrefix("scoring") || $0.hasPrefix("replaying") }.isEmpty, "\(messages.withLock { $0 })")
        #expect(again.runs.map { $0.trials.map(\.validationNLL) } == results.runs.map { $0.trials.map(\.validationNLL) })
        #expect(again.runs.map(\.wholeSet) == results.runs.map(\.wholeSet))
        // And it keeps when the experiment ran and how long it took (found
        // by a user: the report said "started <now> · 0 s").
        #expect(again.startedAt == results.startedAt && again.wallSeconds == results.wallSeconds)
        let rewritten = try ExperimentResults.read(from: directory.appendingPathComponent("results.json"))
        #expect(rewritten.startedAt == results.startedAt && rewritten.wallSeconds == results.wallSeconds)
    }

    @Test func pb2AndTheWideRangeRunBesidePBTAndGetTheirClaims() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let methods = try Self.preset.methods(slugs: ["pbt-5x5", "pb2-5x5", "pbt-5x5-wide"])
        #expect(methods.map(\.name) == [MethodName.pbt5x5, MethodName.pb2, MethodName.pbtWideRange])
        #expect(methods[1].settings(Self.preset, seed: 0).explore == .pb2)
        #expect(methods[2].settings(Self.preset, seed: 0).searchSpace.parameters[0].mutationBounds == 1e-5...1)

        // Without PB2's implementation the harness refuses the run, saying so.
        #expect(throws: PBTConfigError.exploreUnavailable(.pb2)) { try makeHarness(directory, calls: Calls(), methods: methods).run() }

        let explorers = ExploreStrategies.builtIn.adding(.pb2) { try PB2Explore(settings: $0) }
        let results = try makeHarness(directory, calls: Calls(), methods: methods, explorers: explorers).run()
        #expect(results.runs.count == 3 * 2)
        #expect(results.runs.allSatisfy { $0.totalCompute == Self.preset.totalSteps })
        let labels = try #require(try ExperimentResults.read(from: directory.appendingPathComponent("results.json")).claims).map(\.label)
        #expect(labels == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"])
        // The report's title names the methods that ran.
        let markdown = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(markdown.hasPrefix("# PBT on WaveNet: PBT-5x5 vs PB2-5x5 vs PBT-5x5 wide range\n"))
    }

    @Test func recordsThePrecisionInResultsAndReportAndReadsFilesWithoutIt() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try makeHarness(directory, calls: Calls(), precision: "bf16").run()
        let file = directory.appendingPathComponent("results.json")
        #expect(try ExperimentResults.read(from: file).precision == "bf16")
        let markdown = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(markdown.contains("model toy in bf16"))

        // A results.json written before the precision was recorded still reads, and names the model alone.
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        #expect(json.removeValue(forKey: "precision") != nil)
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        let old = try ExperimentResults.read(from: file)
        #expect(old.precision == nil && old.modelDescription == "toy")
    }

    @Test func rejectsPresetsThatCannotBeFairAndUnknownMethods() {
        var p = Self.preset
        p.totalSteps = 30  // below one PBT-5x20 generation (4 × workers × trial steps = 40)
        #expect(throws: ExperimentError.self) { try p.validate() }
        p = Self.preset
        p.seeds = 0
        #expect(throws: ExperimentError.self) { try p.validate() }
        p = Self.preset
        p.lrMin = 0.5
        #expect(throws: ExperimentError.self) { try p.validate() }
        p = Self.preset
        p.wideLRRange = 1e-2...1
        #expect(throws: ExperimentError.self, "the wide range must contain the prior") { try p.validate() }
        #expect(throws: Never.self) { try ExperimentPreset.quick.validate(); try ExperimentPreset.paper.validate() }

        let unknown = #expect(throws: ExperimentError.self) { try Self.preset.methods(slugs: ["pbt-5x5", "pbt2"]) }
        #expect(unknown?.description == "--methods: unknown method 'pbt2'; choose from pbt-5x5, pbt-5x20, random-search, fixed-lr, pb2-5x5, pbt-5x5-wide")
        #expect(throws: ExperimentError.self) { try Self.preset.methods(slugs: ["pbt-5x5", "pbt-5x5"]) }
        #expect(throws: ExperimentError.self) { try Self.preset.methods(slugs: []) }
    }
}
