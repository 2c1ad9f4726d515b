import Foundation
import PBTSchedules
import TestSupport
import Testing

/// Seeded fuzzing of the schedule reader (`HyperparameterSchedule(text:)`,
/// what `pbtwave train --lr-schedule` and `schedule export` read): mutated
/// CSV and JSON schedule files give a schedule or an error, never a crash
/// or a trap. Allocation bound: a parsed schedule has at most one row per
/// line of its text and one value per cell, so it is linear in the input,
/// and the reader refuses files over `maxFileBytes` (16 MiB) unread.
/// 10,000 cases by default; `PBTWAVE_FUZZ_CASES=N` runs N.
@Suite struct ScheduleFuzzTests {
    static let seeds: [String] = [
        "step,lr\n0,0.003\n100,0.001\n250,0.0003\n",
        "step,lr,momentum,optimizer\n0,0.01,0.9,adam\n50,0.005,0.95,sgd\n",
        """
        {"endStep":400,"hyperparameters":["lr"],"points":[{"lr":0.003,"step":0},{"lr":0.001,"step":200}],
         "recipe":{"model":{"classes":256,"dilations":[1,2,4]},"seed":7,"training":{"batch":2,"window":2048}}}
        """,
        """
        {"hyperparameters":["lr","batch"],"points":[{"batch":16,"lr":0.1,"step":0},{"batch":"large","lr":0.05,"step":10}]}
        """,
    ]

    @Test func mutatedSchedulesNeverCrash() throws {
        let cases = Mutator.cases(default: 10_000)
        var mutator = Mutator(seed: 0x5C4E_D01E)
        var parsed = 0
        for i in 0..<cases {
            let seed = Array(Self.seeds[i % Self.seeds.count].utf8)
            let bytes = mutator.mutate(seed)
            let text = String(decoding: bytes, as: UTF8.self)
            guard let schedule = try? HyperparameterSchedule(text: text) else { continue }
            parsed += 1
            // What a reader then does with it must not trap either.
            #expect(schedule.rows.count <= text.count + 1, "case \(i): more rows than the text could hold")
            let again = try HyperparameterSchedule(text: schedule.jsonText)
            #expect(again.rows == schedule.rows, "case \(i): JSON round trip")
            _ = schedule.csvText
            _ = try? LearningRateSchedule(schedule)
            for name in schedule.names { _ = schedule.column(name) }
        }
        // The mutations must leave some inputs valid, or the test only checks the first error.
        #expect(parsed > cases / 50, "only \(parsed) of \(cases) mutated schedules parsed")
    }

    /// Files over the size bound are refused before they are read.
    @Test func oversizedScheduleFilesAreRefusedUnread() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(getpid()).csv")
        defer { try? FileManager.default.removeItem(at: path) }
        _ = FileManager.default.createFile(atPath: path.path, contents: nil)
        let handle = try FileHandle(forWritingTo: path)
        try handle.truncate(atOffset: UInt64(HyperparameterSchedule.maxFileBytes + 1))
        try handle.close()
        #expect {
            try HyperparameterSchedule.read(from: path)
        } throws: { "\($0)".contains("a schedule file has at most") }
    }
}
