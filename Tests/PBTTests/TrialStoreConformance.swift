import Dispatch
import Foundation
import PBTSeededRNG
import Synchronization
import Testing

@testable import PBT

/// The `TrialStore` contract, written against the protocol only, so every
/// backend runs the same checks: call `TrialStoreConformance.check` with a
/// factory that returns a fresh, empty store (the PostgreSQL backend of
/// issue 6 adds one `@Test` that calls it with its own factory).
enum TrialStoreConformance {
    static func check(_ makeStore: () throws -> any TrialStore) throws {
        try createAndFindRuns(makeStore())
        try claimsFollowIdOrderAndLeases(makeStore())
        try theOldestOfQueuedAndExpiredIsClaimed(makeStore())
        try claimsBelowAnIdTakeOnlyLowerIds(makeStore())
        try aReleasedClaimIsQueuedAtOnce(makeStore())
        try decisionsCommitOrRollBack(makeStore())
        try recordsRoundTripExactly(makeStore())
        try checkpointQueriesAndProgress(makeStore())
        try concurrentClaimsNeverDuplicate(makeStore())
        try runsAreIsolated(makeStore())
        try retiringKeepsTheFirstReason(makeStore())
        try aMemberKeepsItsCheckpointUntilASuccessorFinishes(makeStore())
    }

    /// A trial that reproduced is released only once its child, or a refill
    /// of it (of a refill …), finished: until then it is a member of the
    /// population, and if the budget ends first, of the final one (found by a
    /// helper: such a member's checkpoint was deleted, the run's best among them).
    static func aMemberKeepsItsCheckpointUntilASuccessorFinishes(_ store: any TrialStore) throws {
        func refill(_ id: Int, of failed: Int, parent: Int) -> TrialSpec {
            var t = planned(id, generation: 1, parent: parent)
            t.refillOf = failed
            return t
        }
        let trials = [planned(1), planned(2), planned(3, generation: 1, parent: 1), planned(4, generation: 1, parent: 2)]
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: state(4), trials: trials, now: 0)
        func releasable() throws -> [Int] { try store.withDecision(runID: run.id) { tx in try tx.releasableCheckpoints(belowGeneration: 1).map(\.id) } }
        func finish(_ id: Int, _ status: TrialStatus, adding: [TrialSpec] = []) throws {
            try store.withDecision(runID: run.id) { tx in
                try tx.complete(trialID: id, status: status, evaluation: status == .finished ? 0.5 : nil,
                                checkpointPath: status == .finished ? "c/\(id)" : nil, finishedAt: 1, failure: status == .failed ? "x" : nil)
                try tx.insert(adding, createdAt: 1)
            }
        }
        try finish(1, .finished)
        try finish(2, .finished)
        try store.withDecision(runID: run.id) { tx in
            try tx.insert([SelectionRecord(id: 1, kind: .continue, generation: 0, initiatorID: 1, opponentID: nil, winnerID: 1, loserID: nil, childID: 3),
                           SelectionRecord(id: 2, kind: .continue, generation: 0, initiatorID: 2, opponentID: nil, winnerID: 2, loserID: nil, childID: 4)])
        }
        #expect(try releasable().isEmpty, "both children are queued")
        try finish(3, .finished)
        #expect(try releasable() == [1])
        try finish(4, .failed, adding: [refill(5, of: 4, parent: 2)])
        #expect(try releasable() == [1], "trial 2's child failed, its refill is queued")
        try finish(5, .failed, adding: [refill(6, of: 5, parent: 2)])
        #expect(try releasable() == [1], "the refill failed too")
        try finish(6, .finished)
        #expect(try releasable() == [1, 2], "a refill of a refill finished in trial 2's place")
    }

    /// A retired trial keeps its evaluation, loses its live checkpoint, and
    /// records why (the first reason); only finished trials can be retired.
    static func retiringKeepsTheFirstReason(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: state(2), trials: [planned(1), planned(2)], now: 0)
        _ = try store.claim(runID: run.id, workerID: "w", now: 0, leaseUntil: 100)
        try store.withDecision(runID: run.id) { tx in
            try tx.complete(trialID: 1, status: .finished, evaluation: 0.5, checkpointPath: "checkpoints/r/trial-1.1.ckpt",
                            finishedAt: 1, failure: nil)
            try tx.retire(trialID: 1, reason: "retired: first")
            try tx.retire(trialID: 1, reason: "retired: second")
            try tx.retire(trialID: 2, reason: "retired: queued")
        }
        let retired = try #require(try store.trial(runID: run.id, id: 1))
        #expect(retired.isRetired && retired.status == .finished && retired.evaluation == 0.5)
        #expect(!retired.checkpointLive && retired.checkpointPath == "checkpoints/r/trial-1.1.ckpt")
        #expect(retired.failure == "retired: first")
        let queued = try #require(try store.trial(runID: run.id, id: 2))
        #expect(queued.failure == nil && queued.status == .queued)
    }

    static func planned(_ id: Int, generation: Int = 0, parent: Int? = nil, lr: Double = 1e-3) -> TrialSpec {
        TrialSpec(id: id, generation: generation, parentID: parent, hyperparameters: Hyperparameters(["lr": .number(lr)]),
                     startStep: generation * 10, steps: 10, seed: UInt64(id) &* 0x9E37_79B9_7F4A_7C15, operations: "", refillOf: nil)
    }

    static func state(_ created: Int, seed: UInt64 = 1) -> ControllerState {
        ControllerState(rng: Xoshiro256(seed: seed), trialsCreated: created)
    }

    static func createAndFindRuns(_ store: any TrialStore) throws {
        let trials = (1...3).map { planned($0) }
        let run = try store.createRun(name: "r1", configJSON: "{\"a\":1}", seed: .max, state: state(3, seed: 7), trials: trials, now: 100)
        #expect(run.name == "r1")
        #expect(run.seed == .max)
        #expect(run.configJSON == "{\"a\":1}")
        #expect(run.state == state(3, seed: 7))
        #expect(try store.run(named: "r1") == run)
        #expect(try store.run(named: "r2") == nil)
        #expect(throws: PBTStoreError.runExists("r1")) {
            try store.createRun(name: "r1", configJSON: "{}", seed: 0, state: state(0), trials: [], now: 0)
        }
        let stored = try store.trials(runID: run.id)
        #expect(stored == trials.map { TrialRecord(spec: $0, createdAt: 100) })
        #expect(stored.allSatisfy { $0.status == .queued && $0.attempt == 0 && $0.workerID == nil })
        #expect(try store.trial(runID: run.id, id: 2) == stored[1])
        #expect(try store.trial(runID: run.id, id: 9) == nil)
    }

    static func claimsFollowIdOrderAndLeases(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 1, state: state(3), trials: (1...3).map { planned($0) }, now: 0)
        let a = try #require(try store.claim(runID: run.id, workerID: "a", now: 10, leaseUntil: 20))
        #expect(a.id == 1)
        #expect(a.status == .running)
        #expect(a.attempt == 1)
        #expect(a.workerID == "a")
        #expect(a.startedAt == 10)
        #expect(a.leaseUntil == 20)
        #expect(try store.claim(runID: run.id, workerID: "b", now: 11, leaseUntil: 30)?.id == 2)
        #expect(try store.claim(runID: run.id, workerID: "c", now: 12, leaseUntil: 40)?.id == 3)
        #expect(try store.claim(runID: run.id, workerID: "d", now: 15, leaseUntil: 50) == nil, "nothing queued, no lease expired")

        // Trial 1's lease expires: it is handed out again, attempt 2.
        let again = try #require(try store.claim(runID: run.id, workerID: "d", now: 21, leaseUntil: 60))
        #expect(again.id == 1)
        #expect(again.attempt == 2)
        #expect(again.workerID == "d")
        #expect(try store.renewLease(runID: run.id, trialID: 1, attempt: 1, workerID: "a", until: 99) == false, "the old holder lost it")
        #expect(try store.renewLease(runID: run.id, trialID: 1, attempt: 2, workerID: "d", until: 99) == true)
        #expect(try store.claim(runID: run.id, workerID: "e", now: 61, leaseUntil: 70)?.id == 2, "lease renewed to 99, trial 2's expired at 30")

        #expect(try store.requeueRunning(runID: run.id) == 3)
        let requeued = try store.trials(runID: run.id)
        #expect(requeued.allSatisfy { $0.status == .queued && $0.workerID == nil })
        #expect(requeued.map(\.attempt) == [2, 2, 1], "attempts are kept; the next claim adds one")
        #expect(try store.claim(runID: run.id, workerID: "f", now: 80, leaseUntil: 90)?.attempt == 3)
    }

    /// A claim takes the lowest id among queued trials and running ones
    /// whose lease has ended, whichever kind it is (the claim became two
    /// index lookups, one per kind, when one OR read every finished trial).
    static func theOldestOfQueuedAndExpiredIsClaimed(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 1, state: state(4), trials: (1...4).map { planned($0) }, now: 0)
        #expect(try store.claim(runID: run.id, workerID: "a", now: 0, leaseUntil: 20)?.id == 1)
        let b = try #require(try store.claim(runID: run.id, workerID: "b", now: 0, leaseUntil: 100))
        #expect(try store.claim(runID: run.id, workerID: "c", now: 0, leaseUntil: 100)?.id == 3)
        #expect(try store.claim(runID: run.id, workerID: "d", now: 30, leaseUntil: 200)?.id == 1, "expired 1 before queued 4")
        #expect(try store.releaseClaim(runID: run.id, trialID: b.id, attempt: b.attempt, workerID: "b") == true)
        #expect(try store.claim(runID: run.id, workerID: "e", now: 150, leaseUntil: 300)?.id == 2, "queued 2 before expired 3")
        #expect(try store.claim(runID: run.id, workerID: "f", now: 150, leaseUntil: 300)?.id == 3, "expired 3 before queued 4")
        #expect(try store.claim(runID: run.id, workerID: "g", now: 150, leaseUntil: 300)?.id == 4)
        #expect(try store.claim(runID: run.id, workerID: "h", now: 150, leaseUntil: 300) == nil)
    }

    /// A worker that stops gives its trial back: queued at once (not after
    /// the lease), only by its holder and only for the attempt it holds.
    static func aReleasedClaimIsQueuedAtOnce(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 1, state: state(2), trials: (1...2).map { planned($0) }, now: 0)
        let a = try #require(try store.claim(runID: run.id, workerID: "a", now: 0, leaseUntil: 1000))
        #expect(try store.releaseClaim(runID: run.id, trialID: a.id, attempt: a.attempt, workerID: "b") == false, "not b's")
        #expect(try store.releaseClaim(runID: run.id, trialID: a.id, attempt: a.attempt + 1, workerID: "a") == false, "not this attempt")
        #expect(try store.releaseClaim(runID: run.id, trialID: 2, attempt: 0, workerID: "a") == false, "trial 2 is not running")
        #expect(try store.trial(runID: run.id, id: a.id)?.status == .running)
        #expect(try store.releaseClaim(runID: run.id, trialID: a.id, attempt: a.attempt, workerID: "a") == true)
        let released = try #require(try store.trial(runID: run.id, id: a.id))
        #expect(released.status == .queued && released.workerID == nil && released.leaseUntil == nil)
        #expect(try store.releaseClaim(runID: run.id, trialID: a.id, attempt: a.attempt, workerID: "a") == false, "released once")
        let again = try #require(try store.claim(runID: run.id, workerID: "c", now: 1, leaseUntil: 1000))
        #expect(again.id == a.id && again.attempt == 2, "claimable long before the lease (1000) ends; the attempt counts on")
    }

    /// `below` limits a claim to lower ids: queued ones, and running ones
    /// whose lease expired (deterministic mode's take-over of a dead worker's trial).
    static func claimsBelowAnIdTakeOnlyLowerIds(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "b", configJSON: "{}", seed: 1, state: state(4), trials: (1...4).map { planned($0) }, now: 0)
        #expect(try store.claim(runID: run.id, workerID: "a", now: 0, leaseUntil: 10, below: 1) == nil, "no id below 1")
        #expect(try store.claim(runID: run.id, workerID: "a", now: 0, leaseUntil: 10, below: 3)?.id == 1)
        #expect(try store.claim(runID: run.id, workerID: "b", now: 0, leaseUntil: 10, below: 3)?.id == 2)
        #expect(try store.claim(runID: run.id, workerID: "c", now: 1, leaseUntil: 10, below: 3) == nil, "1 and 2 are leased, 3 and 4 too high")
        #expect(try store.claim(runID: run.id, workerID: "d", now: 1, leaseUntil: 10)?.id == 3, "no bound: the next queued")
        let taken = try #require(try store.claim(runID: run.id, workerID: "e", now: 11, leaseUntil: 20, below: 3))
        #expect(taken.id == 1 && taken.attempt == 2, "trial 1's lease expired at 10")
        #expect(try store.claim(runID: run.id, workerID: "f", now: 11, leaseUntil: 20, below: 2) == nil)
    }

    struct Abort: Error {}

    static func decisionsCommitOrRollBack(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 1, state: state(2), trials: [planned(1), planned(2)], now: 0)
        _ = try store.claim(runID: run.id, workerID: "w", now: 1, leaseUntil: 100)
        // A decision that throws leaves no trace.
        #expect(throws: Abort.self) {
            try store.withDecision(runID: run.id) { tx in
                try tx.complete(trialID: 1, status: .finished, evaluation: 0.5, checkpointPath: "checkpoints/x", finishedAt: 2, failure: nil)
                try tx.insert([planned(3, generation: 1, parent: 1)], createdAt: 2)
                try tx.setState(state(3, seed: 9))
                throw Abort()
            }
        }
        #expect(try store.trials(runID: run.id).count == 2)
        #expect(try store.trial(runID: run.id, id: 1)?.status == .running)
        #expect(try store.run(named: "r")?.state == state(2))

        // The same decision, committed.
        let seen = try store.withDecision(runID: run.id) { tx -> Int in
            #expect(try tx.state() == state(2))
            try tx.complete(trialID: 1, status: .finished, evaluation: 0.5, checkpointPath: "checkpoints/x", finishedAt: 2, failure: nil)
            try tx.insert([planned(3, generation: 1, parent: 1)], createdAt: 2)
            try tx.insert([SelectionRecord(id: 1, kind: .tournament, generation: 0, initiatorID: 1, opponentID: nil, winnerID: 1,
                                           loserID: nil, childID: 3)])
            var s = state(3, seed: 9)
            s.selectionsMade = 1
            try tx.setState(s)
            // Reads inside the transaction see its own writes.
            #expect(try tx.trial(id: 1)?.status == .finished)
            return try tx.trials(inGenerations: 0...5).count
        }
        #expect(seen == 3)
        #expect(try store.trials(runID: run.id).count == 3)
        #expect(try store.run(named: "r")?.state.trialsCreated == 3)
        #expect(try store.selections(runID: run.id).map(\.childID) == [3])
    }

    static func recordsRoundTripExactly(_ store: any TrialStore) throws {
        var p = planned(1)
        p.hyperparameters = Hyperparameters(["lr": .number(0.1 + 0.2), "opt": .category("adam"), "m": .number(-1e-300)])
        p.seed = .max
        p.operations = "lr*1.2 0.1->0.12; opt~neighbour sgd->adam; ünïcode \"quoted\""
        p.refillOf = 77
        p.parentID = 5
        p.startStep = 1 << 40
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: state(1), trials: [p], now: 1.5)
        _ = try store.claim(runID: run.id, workerID: "host:1/w0", now: 2.25, leaseUntil: 3.5)
        try store.withDecision(runID: run.id) { tx in
            try tx.complete(trialID: 1, status: .failed, evaluation: nil, checkpointPath: nil, finishedAt: 4.75,
                            failure: "runner error: \"bad\" input\nline two")
        }
        let t = try #require(try store.trial(runID: run.id, id: 1))
        #expect(t.hyperparameters == p.hyperparameters)
        #expect(t.hyperparameters["lr"]?.number?.bitPattern == (0.1 + 0.2).bitPattern)
        #expect(t.seed == .max)
        #expect(t.operations == p.operations)
        #expect(t.refillOf == 77)
        #expect(t.parentID == 5)
        #expect(t.startStep == 1 << 40)
        #expect(t.status == .failed)
        #expect(t.evaluation == nil)
        #expect(t.failure == "runner error: \"bad\" input\nline two")
        #expect(t.createdAt == 1.5)
        #expect(t.startedAt == 2.25)
        #expect(t.finishedAt == 4.75)
        #expect(t.workerID == "host:1/w0")

        let run2 = try store.createRun(name: "r2", configJSON: "{}", seed: 0, state: state(1), trials: [planned(1)], now: 0)
        _ = try store.claim(runID: run2.id, workerID: "w", now: 0, leaseUntil: 1)
        let x = 0.1 + 0.7
        try store.withDecision(runID: run2.id) { tx in
            try tx.complete(trialID: 1, status: .finished, evaluation: x, checkpointPath: "checkpoints/trial-1.1.ckpt", finishedAt: 1, failure: nil)
        }
        let f = try #require(try store.trial(runID: run2.id, id: 1))
        #expect(f.evaluation?.bitPattern == x.bitPattern)
        #expect(f.checkpointPath == "checkpoints/trial-1.1.ckpt")
        #expect(f.checkpointLive)
        #expect(f.leaseUntil == nil)
    }

    static func checkpointQueriesAndProgress(_ store: any TrialStore) throws {
        // Generation 0: trials 1-3; generation 1: trials 4-5.
        let trials = [planned(1), planned(2), planned(3), planned(4, generation: 1, parent: 1), planned(5, generation: 1, parent: 1)]
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: state(5), trials: trials, now: 0)
        for _ in 0..<4 { _ = try store.claim(runID: run.id, workerID: "w", now: 0, leaseUntil: 100) }
        #expect(try store.hasPendingTrial(runID: run.id, before: 1) == false)
        #expect(try store.hasPendingTrial(runID: run.id, before: 3) == true)
        try store.withDecision(runID: run.id) { tx in
            try tx.complete(trialID: 1, status: .finished, evaluation: 0.3, checkpointPath: "c/1", finishedAt: 1, failure: nil)
            try tx.complete(trialID: 2, status: .finished, evaluation: 0.2, checkpointPath: "c/2", finishedAt: 1, failure: nil)
            try tx.complete(trialID: 3, status: .failed, evaluation: nil, checkpointPath: nil, finishedAt: 1, failure: "x")
            try tx.complete(trialID: 4, status: .finished, evaluation: 0.1, checkpointPath: "c/4", finishedAt: 1, failure: nil)
            try tx.insert([SelectionRecord(id: 1, kind: .tournament, generation: 0, initiatorID: 1, opponentID: 2, winnerID: 1,
                                           loserID: 2, childID: 4)])
        }
        #expect(try store.hasPendingTrial(runID: run.id, before: 5) == false)
        #expect(try store.hasPendingTrial(runID: run.id, before: 6) == true)
        try store.withDecision(runID: run.id) { tx in
            let running = try tx.pendingGenerationsAndParents()
            #expect(running.minGeneration == 1, "trial 5 is queued, the rest finished or failed")
            #expect(running.parentIDs == [1])
            #expect(try tx.finishedCount(generation: 0) == 2, "trial 3 failed")
            #expect(try tx.finishedCount(generation: 1) == 1)
            #expect(try tx.finishedCount(generation: 2) == 0)
        }
        try store.withDecision(runID: run.id) { tx in
            #expect(try tx.pendingTrials().map(\.id) == [5])
            #expect(try tx.latestFinishedGeneration() == 1)
            #expect(try tx.trials(inGenerations: 1...1).map(\.id) == [4, 5])
            #expect(try tx.trials(inGenerations: 0...0).map(\.id) == [1, 2, 3])
            // Trial 2 has not reproduced, trial 3 has no checkpoint: only 1 is releasable.
            #expect(try tx.releasableCheckpoints(belowGeneration: 1).map(\.id) == [1])
            #expect(try tx.releasableCheckpoints(belowGeneration: 1).map(\.path) == ["c/1"])
            try tx.releaseCheckpoints([1])
            #expect(try tx.releasableCheckpoints(belowGeneration: 2).isEmpty)
        }
        #expect(try store.trial(runID: run.id, id: 1)?.checkpointLive == false)
        #expect(try store.trial(runID: run.id, id: 1)?.checkpointPath == "c/1", "the path stays in the record")
        let p = try store.progress(runID: run.id)
        #expect(p.finished == 3)
        #expect(p.failed == 1)
        #expect(p.queued == 1)
        #expect(p.running == 0)
        #expect(p.latestGeneration == 1)
        #expect(p.best?.id == 4)
        #expect(p.best?.evaluation == 0.1)
        // A retired trial is no longer the best so far (it cannot be the result).
        try store.withDecision(runID: run.id) { tx in try tx.retire(trialID: 4, reason: "its checkpoint changed") }
        #expect(try store.progress(runID: run.id).best?.id == 2)
        try store.withDecision(runID: run.id) { tx in
            #expect(try tx.finishedCount(generation: 1) == 1, "a retired trial is still finished")
            try tx.complete(trialID: 5, status: .finished, evaluation: 0.5, checkpointPath: "c/5", finishedAt: 2, failure: nil)
            let none = try tx.pendingGenerationsAndParents()
            #expect(none.minGeneration == nil)
            #expect(none.parentIDs.isEmpty)
        }
    }

    static func concurrentClaimsNeverDuplicate(_ store: any TrialStore) throws {
        let run = try store.createRun(name: "r", configJSON: "{}", seed: 0, state: state(300), trials: (1...300).map { planned($0) }, now: 0)
        let claimed = Mutex<[Int]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            do {
                while let t = try store.claim(runID: run.id, workerID: "w\(worker)", now: 0, leaseUntil: 1e9) {
                    claimed.withLock { $0.append(t.id) }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(claimed.withLock { $0 }.sorted() == Array(1...300))
        #expect(try store.trials(runID: run.id).allSatisfy { $0.attempt == 1 && $0.status == .running })
    }

    static func runsAreIsolated(_ store: any TrialStore) throws {
        let a = try store.createRun(name: "a", configJSON: "{}", seed: 0, state: state(2), trials: [planned(1), planned(2)], now: 0)
        let b = try store.createRun(name: "b", configJSON: "{}", seed: 0, state: state(1), trials: [planned(1, lr: 5e-3)], now: 0)
        #expect(a.id != b.id)
        #expect(try store.claim(runID: b.id, workerID: "w", now: 0, leaseUntil: 1)?.hyperparameters["lr"] == .number(5e-3))
        #expect(try store.claim(runID: b.id, workerID: "w", now: 0, leaseUntil: 1) == nil)
        #expect(try store.claim(runID: a.id, workerID: "w", now: 0, leaseUntil: 1)?.id == 1)
        #expect(try store.trials(runID: a.id).count == 2)
        #expect(try store.requeueRunning(runID: b.id) == 1)
        #expect(try store.trial(runID: a.id, id: 1)?.status == .running)
    }
}

@Suite struct SQLiteTrialStoreTests {
    @Test func conformanceOnAFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var n = 0
        try TrialStoreConformance.check {
            n += 1
            return try SQLiteTrialStore(path: dir.url.appendingPathComponent("s\(n).sqlite").path)
        }
    }

    @Test func conformanceInMemory() throws {
        try TrialStoreConformance.check { try SQLiteTrialStore(path: ":memory:") }
    }

    @Test func dataSurvivesReopening() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.url.appendingPathComponent("s.sqlite").path
        do {
            let store = try SQLiteTrialStore(path: path)
            _ = try store.createRun(name: "r", configJSON: "{}", seed: 3, state: TrialStoreConformance.state(2),
                                   trials: [TrialStoreConformance.planned(1), TrialStoreConformance.planned(2)], now: 0)
        }
        let again = try SQLiteTrialStore(path: path)
        let run = try #require(try again.run(named: "r"))
        #expect(try again.trials(runID: run.id).count == 2)
        #expect(try again.runNames() == ["r"])
    }

    @Test func rejectsAFileThatIsNotADatabase() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.url.appendingPathComponent("garbage.sqlite").path
        var rng = Xoshiro256(seed: 1)
        try Data((0..<8192).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).write(to: URL(fileURLWithPath: path))
        #expect {
            try SQLiteTrialStore(path: path)
        } throws: { error in
            guard case PBTStoreError.notAStore(let p, _) = error else { return false }
            return p == path && "\(error)".contains("not a PBTWave trial store")
        }
    }

    /// SQLite's 'unable to open database file' (error 14) in the user's terms.
    @Test func aStoreThatCannotBeOpenedSaysWhy() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let missing = dir.url.appendingPathComponent("missing").path
        #expect(throws: PBTStoreError.cannotOpen(path: missing + "/pbt.sqlite", reason: "the folder \(missing) does not exist")) {
            try SQLiteTrialStore(path: missing + "/pbt.sqlite")
        }
        #expect(throws: PBTStoreError.cannotOpen(path: dir.url.path, reason: "it is a folder")) { try SQLiteTrialStore(path: dir.url.path) }
        // Read only (`lineage --store RUN_DIR`), SQLite said "disk I/O error" (found by a helper); a run directory is named as one.
        #expect(throws: PBTStoreError.cannotOpen(path: dir.url.path, reason: "it is a folder")) { try SQLiteTrialStore(readingOnly: dir.url.path) }
        let store = dir.url.appendingPathComponent(RunDirectory.storeFileName).path
        _ = try SQLiteTrialStore(path: store)
        #expect(throws: PBTStoreError.cannotOpen(path: dir.url.path, reason: "it is a folder (a run directory? its trial store is \(store))")) {
            try SQLiteTrialStore(readingOnly: dir.url.path)
        }
    }

    /// A finished trial always has a finite loss; a damaged store's without
    /// one is refused as such (`lineage` crashed on it, found by a helper).
    @Test func aFinishedTrialWithoutALossIsAMalformedRecord() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let runDir = dir.url.appendingPathComponent("run").path
        let made = try runPBTWave(["pbt", "--model", "toy", "--run-dir", runDir, "--workers", "2", "--generations", "2", "--progress", "none"])
        try #require(made.status == 0, "\(made.stderr)")
        do {
            let c = try SQLiteConnection(path: runDir + "/" + RunDirectory.storeFileName)
            #expect(try c.run("UPDATE trials SET evaluation = NULL WHERE id = 2") == 1)
        }
        let lineage = try runPBTWave(["lineage", runDir, "--tree"])
        #expect(lineage.status == 1 && lineage.stderr.contains("trial 2 is finished but has no loss"), "\(lineage.stderr)")
    }

    @Test func rejectsAnotherApplicationsDatabaseAndNewerSchemas() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let foreign = dir.url.appendingPathComponent("foreign.sqlite").path
        do {
            let c = try SQLiteConnection(path: foreign)
            try c.exec("CREATE TABLE songs (title TEXT)")
        }
        #expect(throws: PBTStoreError.notAStore(path: foreign, reason: "an SQLite database without a schema_version table")) {
            try SQLiteTrialStore(path: foreign)
        }
        let newer = dir.url.appendingPathComponent("newer.sqlite").path
        _ = try SQLiteTrialStore(path: newer)
        do {
            let c = try SQLiteConnection(path: newer)
            try c.exec("UPDATE schema_version SET version = 99")
        }
        #expect(throws: PBTStoreError.schemaVersion(path: newer, found: 99, supported: 1)) { try SQLiteTrialStore(path: newer) }
    }

    @Test func usesWriteAheadLogging() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.url.appendingPathComponent("s.sqlite").path
        _ = try SQLiteTrialStore(path: path)
        let c = try SQLiteConnection(path: path)
        #expect(try c.query("PRAGMA journal_mode") { $0.text(0) } == ["wal"])
    }
}

/// Found when CI's `pbt` process died at start with "SQLite error 5
/// (database is locked) during PRAGMA journal_mode = WAL": a test read the
/// new store while pbt created it. Several openers of one new store at once
/// (a `pbt` and its `worker`s) each get the store.
@Test func manyOpenersOfANewStoreAtOnceAllGetIt() throws {
    let dir = try TemporaryDirectory()
    defer { dir.cleanup() }
    let failures = Locked<[String]>([])
    for round in 0 ..< 40 {
        let path = dir.url.appendingPathComponent("store-\(round).sqlite").path
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for _ in 0 ..< 4 {
            group.enter()
            Thread {
                start.wait()
                do { _ = try SQLiteTrialStore(path: path) } catch { failures.withLock { $0.append("\(error)") } }
                group.leave()
            }.start()
        }
        for _ in 0 ..< 4 { start.signal() }
        group.wait()
    }
    #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 }.prefix(3))")
}
