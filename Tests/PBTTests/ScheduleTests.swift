import Foundation
import SeededRNG
import Testing

@testable import PBT

@Suite struct ScheduleFileTests {
    let schedule = try! LearningRateSchedule(points: [.init(step: 0, value: 0.012), .init(step: 400, value: 0.0096), .init(step: 800, value: 1e-05)])

    @Test func csvIsTheDocumentedFormat() {
        #expect(schedule.csvText == "step,lr\n0,0.012\n400,0.0096\n800,1e-05\n")
    }

    @Test func jsonIsTheDocumentedFormat() {
        #expect(schedule.jsonText == """
            {"hyperparameter":"lr","points":[{"step":0,"value":0.012},{"step":400,"value":0.0096},{"step":800,"value":1e-05}]}

            """)
    }

    @Test func bothFormatsRoundTripBitExactly() throws {
        var rng = Xoshiro256(seed: 17)
        for _ in 0..<200 {
            var step = 0
            let points = (0..<Int(1 + rng.uniformIndex(20))).map { _ -> LearningRateSchedule.Point in
                defer { step += 1 + rng.uniformIndex(1000) }
                return .init(step: step, value: Double.exp(-12 * rng.nextUnitDouble()))
            }
            let s = try LearningRateSchedule(points: points)
            let fromCSV = try LearningRateSchedule(csvText: s.csvText)
            let fromJSON = try LearningRateSchedule(jsonText: s.jsonText)
            #expect(fromCSV == s)
            #expect(fromJSON == s)
            #expect(fromJSON.points.map(\.value.bitPattern) == s.points.map(\.value.bitPattern))
        }
    }

    @Test func valueAtStepIsPiecewiseConstant() {
        #expect(schedule.value(atStep: 0) == 0.012)
        #expect(schedule.value(atStep: 399) == 0.012)
        #expect(schedule.value(atStep: 400) == 0.0096)
        #expect(schedule.value(atStep: 799) == 0.0096)
        #expect(schedule.value(atStep: 10_000) == 1e-05)
    }

    @Test func readsFilesOfEitherFormat() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        for format in LearningRateSchedule.Format.allCases {
            let url = dir.url.appendingPathComponent("s.\(format.rawValue)")
            try AtomicFile.write(Data(schedule.text(format).utf8), to: url)
            #expect(try LearningRateSchedule.read(from: url) == schedule)
        }
        // Windows line endings, blank lines and spaces are tolerated.
        let url = dir.url.appendingPathComponent("crlf.csv")
        try Data("step,lr\r\n0, 0.5\r\n\r\n10,0.25\r\n".utf8).write(to: url)
        #expect(try LearningRateSchedule.read(from: url).points == [.init(step: 0, value: 0.5), .init(step: 10, value: 0.25)])
        #expect(throws: ScheduleFileError.self) { try LearningRateSchedule.read(from: dir.url.appendingPathComponent("missing.csv")) }
    }

    @Test(arguments: [
        ("", "the file is empty"),
        ("lr,step\n0,0.1\n", "header must be 'step,<name>'"),
        ("step,lr\n", "at least one point"),
        ("step,lr\n10,0.1\n", "first point must be at step 0"),
        ("step,lr\n0,0.1\n5,0.2\n5,0.3\n", "steps must increase"),
        ("step,lr\n0,abc\n", "line 2: expected '<integer step>,<number>'"),
        ("step,lr\n0,0.1,3\n", "line 2"),
        ("step,lr\n0,nan\n", "not finite"),
    ])
    func badCSVIsRejectedWithAReason(text: String, reason: String) {
        #expect {
            try LearningRateSchedule(csvText: text)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test(arguments: ["", "{}", "[1,2]", "{\"hyperparameter\":\"lr\",\"points\":[]}", "{\"hyperparameter\":\"lr\",\"points\":[{\"step\":3,\"value\":1}]}"])
    func badJSONIsRejected(text: String) {
        #expect(throws: ScheduleFileError.self) { try LearningRateSchedule(jsonText: text) }
    }
}

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
    }

    @Test func scheduleHasOneRowPerChange() throws {
        let s = Lineage.schedule(of: try Lineage.ancestry(of: 5, in: trials))
        #expect(s.names == ["lr"])
        #expect(s.rows.map(\.step) == [0, 20])
        #expect(s.endStep == 30)
        #expect(s.csvText == "step,lr\n0,0.01\n20,0.002\n")
        #expect(s.jsonText == (try LearningRateSchedule(points: [.init(step: 0, value: 0.01), .init(step: 20, value: 0.002)])).jsonText)
    }

    @Test func finalPopulationIsWhatHasNotReproduced() {
        let selections = [1, 2, 3, 4].map {
            SelectionRecord(id: $0, kind: .tournament, generation: 0, initiatorID: $0, opponentID: nil, winnerID: $0, loserID: nil, childID: $0 + 2)
        }
        #expect(Lineage.finalPopulation(trials, selections).map(\.id) == [5, 6])
        #expect(Lineage.bestOfFinalPopulation(trials, selections)?.id == 6)
        // While everything finished has reproduced, the best finished trial.
        #expect(Lineage.bestOfFinalPopulation(Array(trials.prefix(4)), selections)?.id == 3)
    }

    @Test func severalHyperparametersGiveSeveralColumns() throws {
        var a = finishedTrial(1, generation: 0, loss: 1)
        a.hyperparameters = Hyperparameters(["lr": .number(0.1), "opt": .category("sgd")])
        var b = finishedTrial(2, generation: 1, loss: 1, parent: 1)
        b.hyperparameters = Hyperparameters(["lr": .number(0.1), "opt": .category("adam")])
        var c = finishedTrial(3, generation: 2, loss: 1, parent: 2)
        c.hyperparameters = Hyperparameters(["lr": .number(0.05), "opt": .category("adam")])
        let s = Lineage.schedule(of: [a, b, c])
        #expect(s.csvText == "step,lr,opt\n0,0.1,sgd\n10,0.1,adam\n20,0.05,adam\n")
        #expect(s.single("lr")?.points == [.init(step: 0, value: 0.1), .init(step: 20, value: 0.05)])
        #expect(s.single("opt") == nil)
        #expect(s.jsonText == """
            {"schedules":[{"hyperparameter":"lr","points":[{"step":0,"value":0.1},{"step":20,"value":0.05}]},\
            {"hyperparameter":"opt","points":[{"step":0,"value":"sgd"},{"step":10,"value":"adam"}]}]}

            """)
    }
}
