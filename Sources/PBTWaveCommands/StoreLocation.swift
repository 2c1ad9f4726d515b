import PBTFileSupport
import ArgumentParser
import Foundation
import PBT
import PBTPostgres
import PBTWaveModel

/// Where a run's trial store lives: `--store sqlite:PATH | postgres://…`.
public enum StoreLocation: ExpressibleByArgument, Sendable, Hashable, CustomStringConvertible {
    /// An SQLite file (one machine; the default is `RUN_DIR/pbt.sqlite`).
    case sqlite(path: String)
    /// A PostgreSQL server (`postgres://` or `postgresql://` URL), for
    /// worker processes on several machines.
    case postgres(url: String)

    public init?(argument: String) {
        if argument.hasPrefix("sqlite:") {
            let path = String(argument.dropFirst("sqlite:".count))
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
        } else if argument.hasPrefix("postgres://") || argument.hasPrefix("postgresql://") {
            self = .postgres(url: argument)
        } else if !argument.isEmpty, !argument.contains("://") {
            // A path alone is an SQLite file (found by a user: `--store run/pbt.sqlite` was "invalid").
            self = .sqlite(path: argument)
        } else {
            return nil
        }
    }

    public static var defaultCompletionKind: CompletionKind { .default }

    /// Why a PostgreSQL URL's user and password cannot be read as meant: an
    /// '@' in them, not percent-encoded (found by a helper: libpq split the
    /// URL at the first '@', so its message showed the password's tail,
    /// which our masking, at the last '@', left out).
    static func check(_ store: StoreLocation?) throws {
        if case .postgres(let url)? = store, let problem = userInfoProblem(url) { throw ValidationError("--store: \(problem)") }
    }

    static func userInfoProblem(_ url: String) -> String? {
        guard let scheme = url.range(of: "://") else { return nil }
        let rest = url[scheme.upperBound...]
        let authority = rest[..<(rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex)]
        guard authority.filter({ $0 == "@" }).count > 1 else { return nil }
        return "the URL has more than one '@' before its host: percent-encode an '@' in the user or password as %40 "
            + "(and ':' as %3A, '/' as %2F), e.g. postgres://USER:p%40ss@HOST/DATABASE"
    }

    /// Whether `description` masks a password (a command printed with it cannot be pasted as it is).
    var masksPassword: Bool {
        if case .postgres(let url) = self { redactedPostgresURL(url) != url } else { false }
    }

    /// For messages: the path, or the URL with its password masked.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url): return redactedPostgresURL(url)
        }
    }

    /// As `description`, an SQLite path made absolute: for a command to
    /// run from another folder (a worker, `lineage`).
    var absoluteDescription: String {
        if case .sqlite(let path) = self { "sqlite:" + URL(fileURLWithPath: path).standardizedFileURL.path } else { description }
    }

    /// The `pbtwave lineage` arguments that read run `runName` here, shell-quoted.
    func lineageArguments(runName: String) -> String {
        ["--store", absoluteDescription, "--run", runName].map(shellQuoted).joined(separator: " ")
    }

    /// How a user reads trial N's log, given the `lineage` arguments that read the run.
    static func trialLogCommand(_ lineageArguments: String) -> String { "pbtwave lineage \(lineageArguments) --trial N" }

    /// The store, for a process that shares it with others (no run-directory
    /// lock is taken; see `StoreOptions.open` for the single-process case).
    /// Opens the store; with `mustExist` (a worker, or reading a run) an
    /// SQLite file that is not there is an error, not a new empty store.
    /// `readingOnly`: an SQLite store is opened for reading (`lineage`, `schedule export`).
    public func open(mustExist: Bool = false, readingOnly: Bool = false) throws -> any TrialStore {
        switch self {
        case .sqlite(let path):
            if mustExist, !FileManager.default.fileExists(atPath: path) {
                throw CommandError("no trial store at \(path): give the --store the run was created with (`pbtwave pbt --store sqlite:PATH …` creates one)")
            }
            return try readingOnly ? SQLiteTrialStore(readingOnly: path) : SQLiteTrialStore(path: path)
        case .postgres(let url):
            // An outage is ridden out by retries: say so, and say when it ends.
            return try PostgresTrialStore(url: url, creatingSchema: !mustExist, notice: { printNote("pbt: \($0)") })
        }
    }
}

/// `--store` and `--run`: which store holds the run, and its name there.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Trial store: sqlite:PATH (or the path alone) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default: RUN_DIR/pbt.sqlite).", valueName: "store"))
    var store: StoreLocation?

    @Option(name: .customLong("run"), help: "Name of the run in the store (a store can hold many runs).")
    var runName: String = RunDirectory.runName

    func validate() throws {
        do { try PBTStoreError.checkRunName(runName) } catch { throw ValidationError("--run: \(error)") }
        try StoreLocation.check(store)
    }

    /// `--lease-seconds` of `pbt` and `worker`: shorter than a few store
    /// round trips, idle workers would take running trials from each other
    /// over and over.
    static func checkLease(_ seconds: Double) throws {
        guard seconds >= 1, seconds.isFinite else { throw ValidationError("--lease-seconds must be a finite number, at least 1 (got \(seconds))") }
    }

    /// A setting's value as a resume mismatch shows it: a runner option left
    /// at its default is stored as absent ("the default"), so name the default.
    static func shown(_ value: String, _ field: String) -> String {
        value == "the default" ? ["model.precision": "fp32"][field] ?? value : value
    }

    /// The SQLite store file given with `--store sqlite:PATH`; nil without one.
    private var storePath: String? {
        if case .sqlite(let path) = store { return URL(fileURLWithPath: path).standardizedFileURL.path }
        return nil
    }

    /// Whether other processes may work on the run (a PostgreSQL store).
    var isShared: Bool { if case .postgres = store { return true } else { return false } }

    func label(runDirectory: URL) -> String {
        store.map { "run '\(runName)' in \($0), checkpoints in \(runDirectory.path)" } ?? runDirectory.path
    }

    /// The model of the run this command names, if its store holds it
    /// (read without locks; nil when there is no such run or store).
    func storedModel(runDirectory: URL) -> String? { storedConfiguration(runDirectory: runDirectory)?.model }

    /// The configuration of the run this command names, if the store holds it.
    func storedConfiguration(runDirectory: URL) -> RunConfiguration? {
        let location = store ?? .sqlite(path: runDirectory.appendingPathComponent(RunDirectory.storeFileName).path)
        // Read only what is there: an empty file is left empty (opening it as a store would write a schema into it).
        if case .sqlite(let path) = location, ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int ?? 0) == 0 { return nil }
        guard let trialStore = try? location.open(mustExist: true), let run = try? trialStore.run(named: runName) else { return nil }
        return try? RunConfiguration(jsonText: run.configJSON)
    }

    /// With `--resume`: refuses a run directory with no store file (a
    /// shared store is asked for the run when it is opened).
    func checkResumable(runDirectory: URL) throws {
        guard !isShared else { return }
        let file = storePath.map(URL.init(fileURLWithPath:)) ?? runDirectory.appendingPathComponent(RunDirectory.storeFileName)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw CommandError("--resume: \(runDirectory.path) holds no PBT run to resume (no \(file.path))")
        }
    }

    /// The `pbtwave lineage` arguments that read this run, shell-quoted:
    /// the run directory for its own store, else the store and the run.
    func lineageArguments(runDirectory: URL) -> String {
        store.map { $0.lineageArguments(runName: runName) } ?? shellQuoted(runDirectory.path)
    }

    /// How a user reads trial N's log (`DriverOptions.trialLogCommand`).
    func trialLogCommand(runDirectory: URL) -> String { StoreLocation.trialLogCommand(lineageArguments(runDirectory: runDirectory)) }

    /// The `pbtwave worker` arguments that join this run, shell-quoted.
    func workerArguments(runDirectory: URL) -> String {
        let location = store ?? .sqlite(path: runDirectory.appendingPathComponent(RunDirectory.storeFileName).path)
        return ["--store", location.absoluteDescription, "--run", runName, "--run-dir", runDirectory.path].map(shellQuoted).joined(separator: " ")
    }

    /// Opens the run, creating it with `configuration` if it does not exist
    /// (unless `resume`). An SQLite store is this process's alone: it takes
    /// the run directory's and the store's locks and re-queues trials a crash
    /// interrupted. A PostgreSQL store is shared: leases re-queue what dead
    /// workers held. Either way the run directory must be this run's, or
    /// new: one that belongs to another run, or to a run the store does not
    /// hold, is refused before anything is created or deleted.
    /// `locks` holds the run directory's and the store's locks (SQLite):
    /// keep it alive while the run is driven.
    /// `derived`: why this command has a settings field it was not given
    /// (`PBTSettingsOptions.derived`), said beside that field's difference.
    func open(runDirectory: URL, configuration: RunConfiguration, resume: Bool, derived: [String: String] = [:])
        throws -> (coordinator: PBTCoordinator, created: Bool, note: String, locks: RunDirectory?) {
        // Settings no run can have are refused before anything is made on disk (a store with no run in it confused `lineage`).
        try configuration.settings.validate()
        _ = try ExploreStrategies.pbtwave.strategy(for: configuration.settings)
        // (`--resume` of a run directory with no store: `checkResumable`, which the command calls first.)
        let directory = isShared ? nil : try RunDirectory(runDirectory, create: true, lock: true, storePath: storePath)
        do { return try open(directory, runDirectory: runDirectory, configuration: configuration, resume: resume, derived: derived) } catch {
            // Refused: a new run directory (and store) it made is taken back.
            directory?.discardIfNew()
            throw error
        }
    }

    private func open(_ directory: RunDirectory?, runDirectory: URL, configuration: RunConfiguration, resume: Bool, derived: [String: String])
        throws -> (coordinator: PBTCoordinator, created: Bool, note: String, locks: RunDirectory?) {
        let trialStore: any TrialStore = try directory?.store ?? store!.open()
        let location = store?.description ?? "sqlite:" + (directory?.storePath ?? "")
        try RunMarker.checkBeforeOpening(trialStore, location: location, name: runName, runDirectory: runDirectory)
        if resume, try trialStore.run(named: runName) == nil {
            throw CommandError("--resume: " + (store.map { "the store \($0)" } ?? runDirectory.path) + " holds no run named '\(runName)' to resume"
                               + ((try? trialStore.runNames()).flatMap { $0.isEmpty ? nil : " (it holds: \($0.prefix(8).joined(separator: ", "))\($0.count > 8 ? ", and \($0.count - 8) more" : ""))" } ?? ""))
        }
        let opened: (coordinator: PBTCoordinator, created: Bool, budget: PBTCoordinator.BudgetAdjustment)
        do {
            opened = try PBTCoordinator.open(store: trialStore, name: runName, configuration: configuration, runDirectory: runDirectory,
                                            adjustingBudget: true, explorers: .pbtwave)
        } catch PBTStoreError.budgetRaisedBeforeTheEnd(_, let done, let budget) {
            let its = (try? trialStore.run(named: runName)).flatMap { $0.flatMap { try? RunConfiguration(jsonText: $0.configJSON) } }
            throw CommandError("""
                \(label(runDirectory: runDirectory)) holds a run that is not complete (\(done) of its \(budget) trials done), \
                and a budget is raised only once a run is: resume it to its end with its own \(its.map { "\($0.settings.budget)" } ?? "budget") first \
                (the same command without \(Self.budgetFlag(configuration.settings.budget))), then give \(configuration.settings.budget) again
                """)
        } catch PBTStoreError.configMismatch(_, let differences) {
            let stored = (try? trialStore.run(named: runName)).flatMap { $0.flatMap { try? RunConfiguration(jsonText: $0.configJSON) } }
            var lines = differences.map {
                "  \(PBTSettingsOptions.flag($0.field)): the run has \(Self.shown($0.stored, $0.field)), this command has \(Self.shown($0.given, $0.field))"
                    + (derived[$0.field].map { " (not given: \($0))" } ?? "")
            }
            if let stored, differences.contains(where: { $0.field == "budget" }) {
                lines.append(configuration.settings.trialBudget < stored.settings.trialBudget
                    ? "  (a budget is never lowered: the run's buys \(stored.settings.trialBudget) trials, this command's \(configuration.settings.trialBudget))"
                    : "  (a complete run's budget can be raised, with every other setting the run's)")
            }
            throw CommandError("""
                \(label(runDirectory: runDirectory)) holds a run created with other settings:
                \(lines.joined(separator: "\n"))
                Re-run with the run's flags to resume it (`pbtwave lineage \(lineageArguments(runDirectory: runDirectory)) --settings` \
                lists them), or choose a new \(isShared ? "--run" : "--run-dir").
                """)
        }
        let note = switch opened.budget {
        case .none: ""
        case let .sameTrials(given, runs, trials): "; \(given) buys the run's \(trials) trials, as its \(runs) does (to raise the budget, give more)"
        case let .raised(raise):
            "; its budget raised from \(raise.from) (\(raise.fromTrials) trials) to \(raise.to) (\(raise.toTrials) trials), "
                + "\(raise.newTrials) new trial\(raise.newTrials == 1 ? "" : "s") queued"
        }
        return try finish((opened.coordinator, opened.created), directory: directory, note: note)
    }

    /// The flag of a budget, for messages.
    static func budgetFlag(_ budget: Budget) -> String {
        if case .generations = budget { "--generations" } else { "--total-steps" }
    }

    private func finish(_ opened: (coordinator: PBTCoordinator, created: Bool), directory: RunDirectory?, note: String)
        throws -> (coordinator: PBTCoordinator, created: Bool, note: String, locks: RunDirectory?) {
        let coordinator = opened.coordinator
        // (`open` has named the run in the directory's marker, for `pbtwave worker`.)
        guard directory != nil else { return (coordinator, opened.created, note, nil) }
        // A `pbtwave worker` on the same SQLite store may still run its trials.
        let recovered = try coordinator.recoverAfterCrash(isAlive: DriverOptions.isLiveLocalWorker) { writeToStandardError("pbtwave: \($0)\n") }
        let stopped = recovered.programsStopped > 0
            ? "; stopped \(recovered.programsStopped) training program(s) a killed pbtwave left running" : ""
        return (coordinator, opened.created, note + (recovered.requeued > 0 ? "; re-queued \(recovered.requeued) interrupted trial(s)" : "") + stopped,
                directory)
    }
}

