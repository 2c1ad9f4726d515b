import Foundation
import PBTSeededRNG
import Testing

@testable import PBT

@Suite struct LineageTests {
    /// 1 → 3 → 5 (lr 0.01 → 0.01 → 0.002), 2 and 4 side branches.
    let trials: [TrialRecord] = [
        finishedTrial(1, generation: 0, loss: 0.9, lr: 0.01),
        finishedTrial(2, generation: 0, loss: 0.8, lr: 0.02),
        finishedTrial(3, generation: 1, loss: 0.5, lr: 0.01, parent: 1),
        finishedTrial(4, generation: 1, loss: 0.7, lr: 0.03, parent: 2),
        finishedTrial(5, generation: 2, loss: 0.2, lr: 0.002, parent: 3),
        finishedTrial(6, generation: 2, loss: 0.1, lr: 0.002, parent: 4),
    ]

    @Test func ancestryRunsBackToGenerationZero() throws {
        #expect(try Lineage.ancestry(of: 5, in: trials).map(\.id) == [1, 3, 5])
        #expect(throws: LineageError.unknownTrial(42)) { try Lineage.ancestry(of: 42, in: trials) }
        var broken = trials
        broken[2].parentID = 99
        #expect(throws: LineageError.brokenLineage(trial: 3, parent: 99)) { try Lineage.ancestry(of: 5, in: broken) }
        // A damaged store whose parents form a cycle (found by a helper: it named a parent that is there "not in the store").
        broken[2].parentID = 1
        broken[0].parentID = 5
        #expect(throws: LineageError.parentCycle(trial: 5)) { try Lineage.ancestry(of: 5, in: broken) }
        #expect("\(LineageError.parentCycle(trial: 5))" == "trial 5's parents lead back to one of themselves: the trial store is damaged")
    }

    @Test func scheduleHasOneRowPerChange() throws {
        let s = try Lineage.schedule(of: try Lineage.ancestry(of: 5, in: trials))
        #expect(s.names == ["lr"])
        #expect(s.rows.map(\.step) == [0, 20])
        #expect(s.endStep == 30)
        #expect(s.csvText == "step,lr\n0,0.01\n20,0.002\n")
        #expect(try LearningRateSchedule(s).points == [.init(step: 0, rate: 0.01), .init(step: 20, rate: 0.002)])
    }

    /// The export carries the run's replay recipe and refuses a trial that
    /// did not finish.
    @Test func exportCarriesTheRecipe() throws {
        let recipe = JSONValue.object(["seed": .unsigned(UInt64.max), "model": .string("tiny")])
        let configuration = RunConfiguration(settings: testSettings(population: 2, workers: 2), model: "toy", recipe: recipe)
        let file = try Lineage.export(trial: 5, of: trials, configuration: configuration)
        #expect(file.recipe == recipe)
        #expect(try HyperparameterSchedule(jsonText: file.jsonText) == file, "the recipe survives JSON, 64-bit seed included")
        var running = trials
        running[4].status = .running
        #expect(throws: LineageError.notFinished(trial: 5, status: .running)) {
            try Lineage.export(trial: 5, of: running, configuration: configuration)
        }
    }

    /// A continuous value explore clamped to a whole bound is exported as
    /// the program read it, `1.0`; a numeric choice stays whole (found by a
    /// helper: the files had `1`, and a replay handed the program an integer).
    @Test func exportWritesContinuousValuesWithTheirFraction() throws {
        var a = finishedTrial(1, generation: 0, loss: 1)
        a.hyperparameters = Hyperparameters(["drop": .number(0.25), "batch": .number(32), "opt": .category("sgd")])
        var b = finishedTrial(2, generation: 1, loss: 0.5, parent: 1)
        b.hyperparameters = Hyperparameters(["drop": .number(1), "batch": .number(64), "opt": .category("sgd")])
        var settings = testSettings(population: 2, workers: 2)
        settings.searchSpace = SearchSpace([.uniform("drop", 0, 1), .choice("batch", [32, 64]), .categorical("opt", ["sgd", "adam"])])
        let configuration = RunConfiguration(settings: settings, model: "toy", recipe: .object(["note": .string("\u{1}1\u{1}")]))
        let file = try Lineage.export(trial: 2, of: [a, b], configuration: configuration)
        #expect(file.realValued == ["drop"])
        #expect(file.csvText == "step,batch,drop,opt\n0,32,0.25,sgd\n10,64,1.0,sgd\n")
        #expect(file.jsonText == #"""
            {"end_step":20,"hyperparameters":["batch","drop","opt"],"points":[{"batch":32,"drop":0.25,"opt":"sgd","step":0},\#
            {"batch":64,"drop":1.0,"opt":"sgd","step":10}],"recipe":{"note":"\u00011\u0001"}}

            """#, "the recipe's strings are left as they are")
        let back = try HyperparameterSchedule(jsonText: file.jsonText)
        #expect(back == file)
        #expect(back.rows[1].values[1] == .number(1))
        #expect(b.hyperparameters.text(realValued: file.realValued) == "batch=64 drop=1.0 opt=sgd")
        #expect(b.hyperparameters.description == "batch=64 drop=1 opt=sgd")
    }

    @Test func finalPopulationIsWhatHasNotReproduced() {
        let selections = [1, 2, 3, 4].map {
            SelectionRecord(id: $0, kind: .tournament, generation: 0, initiatorID: $0, opponentID: nil, winnerID: $0, loserID: nil, childID: $0 + 2)
        }
        #expect(Lineage.finalPopulation(trials, selections).map(\.id) == [5, 6])
        #expect(Lineage.bestOfFinalPopulation(trials, selections)?.id == 6)
        // While the children run, their initiators hold the slots.
        #expect(Lineage.finalPopulation(Array(trials.prefix(4)), selections).map(\.id) == [3, 4])
        #expect(Lineage.bestOfFinalPopulation(Array(trials.prefix(4)), selections)?.id == 3)
    }

    /// A child that failed with nothing in its place (the budget ran out on
    /// failures) leaves its initiator in the final population; a finished
    /// refill of the child takes the slot, as the child would have.
    @Test func aFailedChildLeavesItsInitiatorInTheFinalPopulation() {
        let selections = [3, 4].map {
            SelectionRecord(id: $0, kind: .tournament, generation: 1, initiatorID: $0, opponentID: nil, winnerID: $0, loserID: nil, childID: $0 + 2)
        }
        var failedChild = trials
        failedChild[4].status = .failed
        failedChild[4].evaluation = nil
        #expect(Lineage.finalPopulation(failedChild, selections).map(\.id) == [1, 2, 3, 6])
        #expect(Lineage.bestOfFinalPopulation(failedChild, selections)?.id == 6)
        var refilled = failedChild
        refilled.append(finishedTrial(7, generation: 2, loss: 0.05, lr: 0.003, parent: 3))
        refilled[6].refillOf = 5
        #expect(Lineage.finalPopulation(refilled, selections).map(\.id) == [1, 2, 6, 7])
        #expect(Lineage.bestOfFinalPopulation(refilled, selections)?.id == 7)
    }

    /// A retired trial (its checkpoint changed since it scored) is the
    /// result only when the final population holds no live trial: a user
    /// saw a retired trial reported best beside a live one.
    @Test func aRetiredTrialIsTheResultOnlyWhenNoLiveOneIsLeft() {
        let selections = [1, 2, 3, 4].map {
            SelectionRecord(id: $0, kind: .tournament, generation: 0, initiatorID: $0, opponentID: nil, winnerID: $0, loserID: nil, childID: $0 + 2)
        }
        #expect(Lineage.bestOfFinalPopulation(trials, selections)?.id == 6)
        var retired = trials
        retired[5].failure = "retired: its checkpoint changed while a trial that started from it ran (x)"
        #expect(retired[5].isRetired)
        #expect(Lineage.bestOfFinalPopulation(retired, selections)?.id == 5, "the live trial of the final population")
        retired[4].failure = "retired: its checkpoint is missing"
        #expect(Lineage.bestOfFinalPopulation(retired, selections)?.id == 6, "no live one left: the best retired one")
    }

    @Test func severalHyperparametersGiveSeveralColumns() throws {
        var a = finishedTrial(1, generation: 0, loss: 1)
        a.hyperparameters = Hyperparameters(["lr": .number(0.1), "opt": .category("sgd")])
        var b = finishedTrial(2, generation: 1, loss: 1, parent: 1)
        b.hyperparameters = Hyperparameters(["lr": .number(0.1), "opt": .category("adam")])
        var c = finishedTrial(3, generation: 2, loss: 1, parent: 2)
        c.hyperparameters = Hyperparameters(["lr": .number(0.05), "opt": .category("adam")])
        let s = try Lineage.schedule(of: [a, b, c])
        #expect(s.csvText == "step,lr,opt\n0,0.1,sgd\n10,0.1,adam\n20,0.05,adam\n")
        #expect(try LearningRateSchedule(s).points == [.init(step: 0, rate: 0.1), .init(step: 20, rate: 0.05)])
        #expect(s.column("opt")?.map(\.value) == [.category("sgd"), .category("adam")])
        #expect(s.jsonText == """
            {"end_step":30,"hyperparameters":["lr","opt"],"points":[{"lr":0.1,"opt":"sgd","step":0},\
            {"lr":0.1,"opt":"adam","step":10},{"lr":0.05,"opt":"adam","step":20}]}

            """)
    }
}
