import PBTSeededRNG

/// The life of a trial: queued → running → finished | failed. A running trial
/// whose process died goes back to queued and is run again (attempt + 1).
public enum TrialStatus: String, Sendable, Hashable, CaseIterable {
    case queued, running, finished, failed

    public var isTerminal: Bool { self == .finished || self == .failed }
}

/// A row of the trials table: the controller's plan (`spec`) and what
/// happened to it. The plan's fields read as the record's own
/// (`record.generation`, `record.hyperparameters`).
@dynamicMemberLookup
public struct TrialRecord: Sendable, Hashable {
    public var spec: TrialSpec
    public var status: TrialStatus
    /// Set when finished (always finite then); nil otherwise.
    public var evaluation: Double?
    /// Relative to the run directory; set once the file is complete.
    public var checkpointPath: String?
    /// False once garbage collection has released the checkpoint file.
    public var checkpointLive: Bool
    public var workerID: String?
    /// How many times the trial was claimed.
    public var attempt: Int
    public var createdAt: Double
    public var startedAt: Double?
    public var finishedAt: Double?
    public var leaseUntil: Double?
    /// Why it failed (runner error text, or the non-finite evaluation); for
    /// a finished trial, why it was retired (`isRetired`).
    public var failure: String?

    /// A finished trial whose checkpoint could not be read by a child: it
    /// keeps its evaluation but is never a parent or opponent again
    /// (`failure` says why).
    public var isRetired: Bool { status == .finished && failure != nil }

    /// A failed trial whose model diverged (a non-finite evaluation or
    /// objective), as opposed to a crash, a timeout or a broken checkpoint.
    public var diverged: Bool { status == .failed && failure?.hasPrefix(Self.divergedPrefix) == true }

    /// How a divergence's `failure` begins (`PBTCoordinator` writes it).
    public static let divergedPrefix = "diverged: "

    /// A queued trial that no worker has touched.
    public init(spec: TrialSpec, createdAt: Double) {
        self.spec = spec
        status = .queued
        checkpointLive = false
        attempt = 0
        self.createdAt = createdAt
    }

    public subscript<Value>(dynamicMember field: WritableKeyPath<TrialSpec, Value>) -> Value {
        get { spec[keyPath: field] }
        set { spec[keyPath: field] = newValue }
    }

    public subscript<Value>(dynamicMember field: KeyPath<TrialSpec, Value>) -> Value { spec[keyPath: field] }

    /// The decision-relevant part of the row: what a deterministic run must
    /// reproduce bit-exactly (times, workers and attempts excluded; of the
    /// checkpoint path only the file name, as the run's folder is named
    /// after its creation time).
    public var lineageFields: LineageFields {
        LineageFields(spec: spec, hyperparameters: spec.hyperparameters.jsonText, status: status,
                      evaluationBits: evaluation?.bitPattern, checkpointPath: checkpointPath.map { String($0.split(separator: "/").last ?? "") })
    }
}

public struct LineageFields: Sendable, Hashable {
    public var spec: TrialSpec
    /// The hyperparameters as stored (canonical JSON), so values compare bit for bit.
    public var hyperparameters: String
    public var status: TrialStatus
    public var evaluationBits: UInt64?
    /// The checkpoint's file name (`trial-<id>.<attempt>.ckpt`).
    public var checkpointPath: String?
}

/// How a child's parent was chosen.
public enum SelectionKind: String, Sendable, Hashable {
    /// Binary tournament: initiator met opponent (nil: no eligible opponent,
    /// the initiator wins by walkover); the winner is the parent.
    case tournament
    /// Truncation: the initiator was in the bottom fraction and copies a
    /// member of the top fraction (the opponent, who is the winner).
    case exploit
    /// Truncation: the initiator was not in the bottom fraction and goes on
    /// from itself with its own hyperparameters.
    case `continue`
}

/// A row of the selections table: one reproduction decision.
public struct SelectionRecord: Sendable, Hashable {
    public var id: Int
    public var kind: SelectionKind
    /// The initiator's generation; the child is in `generation + 1`.
    public var generation: Int
    public var initiatorID: Int
    public var opponentID: Int?
    public var winnerID: Int
    public var loserID: Int?
    public var childID: Int

    public init(
        id: Int, kind: SelectionKind, generation: Int, initiatorID: Int, opponentID: Int?,
        winnerID: Int, loserID: Int?, childID: Int
    ) {
        self.id = id
        self.kind = kind
        self.generation = generation
        self.initiatorID = initiatorID
        self.opponentID = opponentID
        self.winnerID = winnerID
        self.loserID = loserID
        self.childID = childID
    }
}

/// Everything the controller carries between decisions besides the trials
/// themselves. Lives in the runs row and is updated in the same transaction
/// as the decision, so a resumed run continues the same random stream.
public struct ControllerState: Sendable, Hashable {
    public var rng: Xoshiro256
    /// Trials created so far (refills included) = the last trial id.
    public var trialsCreated: Int
    /// Selections recorded so far = the last selection id.
    public var selectionsMade: Int
    /// Budget mode: the highest generation whose reproduction is done (-1: none).
    public var reproducedThrough: Int
    /// No trial is pending and none will be created.
    public var done: Bool

    public init(rng: Xoshiro256, trialsCreated: Int = 0, selectionsMade: Int = 0, reproducedThrough: Int = -1, done: Bool = false) {
        self.rng = rng
        self.trialsCreated = trialsCreated
        self.selectionsMade = selectionsMade
        self.reproducedThrough = reproducedThrough
        self.done = done
    }

    /// The generator as stored in the runs table: four decimal words.
    public var rngText: String { "\(rng.state.0) \(rng.state.1) \(rng.state.2) \(rng.state.3)" }

    /// The generator from its stored text (`rngText`).
    public static func rng(fromText text: String) throws(PBTStoreError) -> Xoshiro256 {
        let words = text.split(separator: " ").compactMap { UInt64($0) }
        guard words.count == 4, words != [0, 0, 0, 0] else { throw .malformedRecord("controller rng state '\(text)'") }
        return Xoshiro256(state: (words[0], words[1], words[2], words[3]))
    }
}

/// A row of the runs table.
public struct RunRecord: Sendable, Hashable {
    public var id: Int64
    public var name: String
    /// The run's configuration as JSON (`RunConfiguration`).
    public var configJSON: String
    public var seed: UInt64
    public var createdAt: Double
    public var schemaVersion: Int
    public var state: ControllerState

    public init(id: Int64, name: String, configJSON: String, seed: UInt64, createdAt: Double, schemaVersion: Int,
                state: ControllerState) {
        self.id = id
        self.name = name
        self.configJSON = configJSON
        self.seed = seed
        self.createdAt = createdAt
        self.schemaVersion = schemaVersion
        self.state = state
    }
}

/// Counts for a progress line.
public struct RunProgress: Sendable, Hashable {
    public var queued = 0
    public var running = 0
    public var finished = 0
    public var failed = 0
    /// Highest generation that has a finished trial (-1: none yet).
    public var latestGeneration = -1
    /// The best finished trial so far (any generation), not a retired one
    /// (its checkpoint is unusable: it cannot be the run's result).
    public var best: Best?

    public struct Best: Sendable, Hashable {
        public var id: Int
        public var evaluation: Double

        public init(id: Int, evaluation: Double) {
            self.id = id
            self.evaluation = evaluation
        }
    }

    public init() {}

    /// Records `count` trials with stored status `status` (a row of a
    /// `GROUP BY status` count).
    public mutating func setCount(status: String, count: Int) throws(PBTStoreError) {
        switch TrialStatus(rawValue: status) {
        case .queued: queued = count
        case .running: running = count
        case .finished: finished = count
        case .failed: failed = count
        case nil: throw .malformedRecord("trial status '\(status)'")
        }
    }

    public var completed: Int { finished + failed }
}
