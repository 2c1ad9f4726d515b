import PBTFileSupport
import ArgumentParser
import Foundation
import PBT
import PBTWaveModel

/// `pbtwave lineage RUN_DIR`: a trial's ancestry, or the whole family tree.
public struct LineageCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Print a trial's lineage (default: the best of the final population), or the whole tree.")

    @OptionGroup var source: RunSource

    @Option(parsing: .unconditional, help: "Trial id (default: the best of the final population).")
    public var trial: Int?

    @Flag(help: "Print every trial as a tree of parents and children.")
    public var tree = false

    @Flag(help: "Print how the run was started instead (its settings, model or program, and corpus): a resume with no flags goes on with them, and flags given must agree (but a larger budget, which a complete run goes on to).")
    public var settings = false

    public init() {}

    /// One view at a time: a second was silently ignored.
    public func validate() throws {
        let given = [tree ? "--tree" : nil, settings ? "--settings" : nil, trial != nil ? "--trial" : nil].compactMap { $0 }
        guard given.count <= 1 else { throw ValidationError("give one of --trial, --tree and --settings, not \(given.joined(separator: " and "))") }
    }

    public func run() throws {
        let (trials, selections, configuration) = try source.read()
        if settings {
            for line in Self.settingsLines(configuration) { print(line) }
            return
        }
        let selectionByChild = Dictionary(selections.map { ($0.childID, $0) }, uniquingKeysWith: { a, _ in a })
        // Continuous values with their fraction (1.0), as the program read them and the schedule files write them.
        let real = configuration.settings.searchSpace.realValued
        // Said as `schedule export` says it (a stopped run's best so far looked like its result).
        func noteIfIncomplete(chosen: Int?) {
            if let note = RunSource.incompleteNote(trials, configuration, chosen: chosen, stopped: source.isStopped) { writeToStandardError(note + "\n") }
        }
        if tree {
            noteIfIncomplete(chosen: nil)
            for line in Self.treeLines(trials, selectionByChild, realValued: real) { print(line) }
            return
        }
        let chosen = try source.trial(trial, in: trials, selections)
        if trial == nil { noteIfIncomplete(chosen: chosen.id) }
        for t in try Lineage.ancestry(of: chosen.id, in: trials) { print(Self.describe(t, selectionByChild[t.id], realValued: real)) }
        // A failed trial's whole failure text (a program's, with the last lines of its log).
        if let lines = chosen.failure?.split(separator: "\n").dropFirst(), !lines.isEmpty { print(lines.joined(separator: "\n")) }
    }

    /// The run's settings, a line each, named by the flags that set them.
    static func settingsLines(_ configuration: RunConfiguration) -> [String] {
        // As flags where one sets the field (a user passed "--deterministic false" and "--selection/--truncation-fraction
        // tournament" back, and both were refused); the search space is a file's content, and the perturbation factors no flag's.
        let settings = configuration.settings
        var lines: [String] = settings.fields.compactMap { PBTSettingsOptions.flagText($0.field, $0.value, in: settings) }
        if let exec = try? configuration.recipe?.decoded(as: ExecRecipe.self) {
            lines.append("program: " + ([exec.command.program] + exec.command.arguments).map(shellQuoted).joined(separator: " ")
                         + " (started in \(exec.workingDirectory))" + (exec.trialTimeoutSeconds.map { ", --trial-timeout \($0)" } ?? ""))
        } else if let recipe = try? configuration.recipe?.decoded(as: TrainingRecipe.self) {
            // A WaveNet run: its recipe as the flags that give it (it showed "--preset custom" for a --model-config run).
            lines.append("--model \(configuration.model)")
            if let preset = WaveNetConfig.presets.first(where: { $0.value == recipe.model })?.key {
                lines.append("--preset \(preset)")
            } else {
                lines.append("--model-config FILE holding " + shellQuoted(compactJSON(recipe.model)))
            }
            let training = recipe.training, evaluation = recipe.evaluation
            lines += ["--batch \(training.batch)", "--window \(training.window)", "--context \(training.context)",
                      "--precision \(training.precision.rawValue)", "--eval-windows \(evaluation.windows)", "--eval-targets \(evaluation.targets)"]
            // The corpus it trains on (a resume or a worker must give the same).
            if let corpus = recipe.corpus {
                let what = "\(corpus.trainFiles) train + \(corpus.validationFiles) validation files, digest \(corpus.digest.prefix(12))…"
                lines.append(recipe.corpusDirectory.map { "--corpus \(shellQuoted($0)) (\(what))" } ?? "corpus: \(what) (its folder was not recorded)")
            }
        } else {
            lines.append("--model \(configuration.model)")
            lines += configuration.modelOptions.sorted { $0.key < $1.key }.map { "--\($0.key) \($0.value)" }
        }
        return lines
    }

    /// A failure on one line: its first, and of a program's log only the
    /// last line (it ended "last lines of its log.txt:" with nothing after).
    static func failureLine(_ failure: String) -> String {
        let lines = failure.split(separator: "\n")
        guard var first = lines.first.map(String.init) else { return "?" }
        guard let match = first.firstMatch(of: #/; last lines of its (\S+):$/#) else { return first }
        let file = String(match.1)
        first.removeSubrange(match.range)
        guard let last = lines.dropFirst().last else { return first }
        let text = last.hasPrefix("  | ") ? last.dropFirst(4) : last[...]
        return first + "; its \(file) ends: " + (text.count > 160 ? text.prefix(159) + "…" : text)
    }

    /// The tree of trials, a line each, children under their parent and
    /// indented one step deeper: at most `indentLimit` steps, deeper lines
    /// say their depth instead (a run of 20,000 generations printed 218 MB
    /// of spaces, and its recursion overflowed the stack; found by a helper).
    /// Trials no root reaches (their parents form a cycle: a damaged store)
    /// come last, said so.
    static func treeLines(_ trials: [TrialRecord], _ selectionByChild: [Int: SelectionRecord], realValued: Set<String> = [],
                          indentLimit: Int = 32) -> [String] {
        let children = Dictionary(grouping: trials.filter { $0.parentID != nil }, by: { $0.parentID! })
        var lines: [String] = []
        var reached = Set<Int>()
        var stack: [(trial: TrialRecord, depth: Int)] = trials.filter { $0.parentID == nil }.reversed().map { ($0, 0) }
        while let (t, depth) = stack.popLast() {
            guard reached.insert(t.id).inserted else { continue }
            let indent = String(repeating: "  ", count: min(depth, indentLimit)) + (depth > indentLimit ? "[depth \(depth)] " : "")
            lines.append(indent + describe(t, selectionByChild[t.id], realValued: realValued))
            stack += (children[t.id] ?? []).reversed().map { ($0, depth + 1) }
        }
        let unreached = trials.filter { !reached.contains($0.id) }
        if !unreached.isEmpty {
            lines.append("not reached from generation 0 (their parents lead back to one of themselves: the trial store is damaged): "
                         + unreached.map { "#\($0.id)" }.joined(separator: ", "))
        }
        return lines
    }

    static func describe(_ t: TrialRecord, _ s: SelectionRecord?, realValued: Set<String> = []) -> String {
        var parts = ["#\(t.id) gen \(t.generation)", "steps \(t.startStep)..\(t.endStep)", t.hyperparameters.text(realValued: realValued)]
        switch t.status {
        case .finished where t.isRetired:
            // Its checkpoint could not be read by a child: never a parent again.
            parts.append("loss \(t.evaluation ?? .nan), RETIRED (\(t.failure?.split(separator: "\n").first.map { $0.hasPrefix("retired: ") ? $0.dropFirst(9) : $0 } ?? "?"))")
        case .finished: parts.append("loss \(t.evaluation ?? .nan)")
        case .failed: parts.append("FAILED (\(t.failure.map(Self.failureLine) ?? "?"))")
        default: parts.append(t.status.rawValue)
        }
        if let r = t.refillOf { parts.append("refill of #\(r)") }
        if let s {
            switch s.kind {
            case .tournament: parts.append("won by #\(s.winnerID) (initiator #\(s.initiatorID) vs \(s.opponentID.map { "#\($0)" } ?? "none"))")
            case .exploit: parts.append("#\(s.initiatorID) copied #\(s.winnerID)")
            case .continue: parts.append("continues #\(s.initiatorID)")
            }
        }
        if !t.operations.isEmpty { parts.append(t.operations) }
        return parts.joined(separator: " | ")
    }
}
