import Foundation
import PBTSeededRNG
import Testing

@testable import PBT

/// `--space FILE.json`: any hyperparameters, and a clear error for every
/// way a space file can be wrong.
@Suite struct SearchSpaceFileTests {
    static let example = #"""
        {"momentum": {"uniform": [0.8, 0.99]}, "lr": {"log_uniform": [1e-4, 3e-2]},
         "batch": {"choice": [16, 32, 64]}, "optimizer": {"choice": ["sgd", "adam"]}}
        """#

    @Test func aSpaceFileGivesTheSpaceInNameOrder() throws {
        let space = try SearchSpace(specification: Data(Self.example.utf8))
        #expect(space == SearchSpace([
            .choice("batch", [16, 32, 64]), .logUniform("lr", 1e-4, 3e-2), .uniform("momentum", 0.8, 0.99),
            .categorical("optimizer", ["sgd", "adam"]),
        ]))
        // The file form round-trips (it is what an exec run's recipe stores).
        let text = try JSONEncoder().encode(space.specification)
        #expect(try SearchSpace(specification: text) == space)
    }

    static let badFiles: [(String, String)] = [
        ("{", "the search space file is not valid JSON: Unexpected end of file"),
        (#"{"lr": {"uniform": [0.1, 1e400]}}"#, "the search space file is not valid JSON: Number 1e400 is not representable"),
        ("[1, 2]", "the search space must be a JSON object with one key per hyperparameter"),
        ("{}", "the search space names no hyperparameter"),
        (#"{"lr": [1e-4, 3e-2]}"#, "hyperparameter 'lr': must be an object with exactly one of log_uniform, uniform, choice"),
        (#"{"lr": {"loguniform": [1e-4, 3e-2]}}"#, "hyperparameter 'lr': unknown prior 'loguniform'; use one of log_uniform, uniform, choice"),
        (#"{"lr": {"log_uniform": [1e-4, 3e-2], "uniform": [0, 1]}}"#, "hyperparameter 'lr': must be an object with exactly one of"),
        (#"{"lr": {"log_uniform": [1e-4]}}"#, "hyperparameter 'lr': log_uniform needs [min, max], two numbers (got [0.0001])"),
        (#"{"m": {"uniform": ["a", 1]}}"#, "hyperparameter 'm': uniform needs [min, max], two numbers"),
        (#"{"lr": {"log_uniform": [0, 3e-2]}}"#, "hyperparameter 'lr' is log-scaled, so its lower bound must be positive (got 0.0)"),
        (#"{"m": {"uniform": [0.99, 0.8]}}"#, "hyperparameter 'm': bounds must be finite with min ≤ max"),
        (#"{"batch": {"choice": []}}"#, "hyperparameter 'batch': choice needs a non-empty list of numbers or of names"),
        (#"{"batch": {"choice": [16, "32"]}}"#, "hyperparameter 'batch': choice needs all numbers or all names, not a mix"),
        // Found by a helper: a list of switches was called "a mix".
        (#"{"warm": {"choice": [true, false]}}"#,
         #"hyperparameter 'warm': choice takes numbers or names, and true is neither (got [true,false]); for a switch write ["on", "off"] or [1, 0]"#),
        (#"{"opt": {"choice": ["adam", null]}}"#, "hyperparameter 'opt': choice takes numbers or names, and null is neither"),
        (#"{"batch": {"choice": [16, 16]}}"#, "hyperparameter 'batch': the choice 16 is given twice"),
        // Found by a helper: 9007199254740993 reached the program as …992, and two such were "given twice".
        (#"{"x": {"choice": [9007199254740993, 1]}}"#, "hyperparameter 'x': the choice 9007199254740993 is not held exactly"),
        (#"{"x": {"choice": [123456789012345678, 123456789012345679]}}"#, "hyperparameter 'x': the choice 123456789012345678 is not held exactly"),
        (#"{"x": {"choice": [18446744073709551615]}}"#, "hyperparameter 'x': the choice 18446744073709551615 is not held exactly"),
        (#"{"opt": {"choice": ["a,b"]}}"#, "hyperparameter 'opt': the choice 'a,b' cannot be a name"),
        (#"{"bad name": {"uniform": [0, 1]}}"#, "hyperparameter name 'bad name' must be non-empty ASCII letters, digits"),
        // Found by a user: accepted, yet no shell can read PBT_HP_héllo.
        (#"{"héllo": {"uniform": [0, 1]}}"#, "hyperparameter name 'héllo' must be non-empty ASCII letters, digits"),
        (#"{"lr": {"uniform": [0, 1]}, "lr": {"uniform": [5, 6]}}"#, "key 'lr' appears twice in the top-level object"),
        (#"{"step": {"uniform": [0, 1]}}"#, "hyperparameter name 'step' must be"),
        (#"{"lr": {"log_uniform": [1e-4, 3e-2,]}}"#, "the search space file: a comma ends the object or list at lr.log_uniform with nothing after it"),
        // Found by a user: both reached a program as PBT_HP_lr_decay; and a width past the largest Double sampled max only.
        (#"{"lr-decay": {"uniform": [0, 1]}, "lr_decay": {"uniform": [5, 6]}}"#,
         "hyperparameters 'lr-decay' and 'lr_decay' would both reach a program as PBT_HP_lr_decay"),
        (#"{"m": {"uniform": [-1e308, 1e308]}}"#, "hyperparameter 'm': bounds must be finite with min ≤ max, and max − min finite too"),
        // Found in review: 1e-400 was read as 0, and the error then spoke of a bound of 0.0 the file does not hold.
        (#"{"lr": {"log_uniform": [1e-400, 1e-2]}}"#, "the number 1e-400 at lr.log_uniform[0] is too small for a 64-bit float"),
    ]

    @Test(arguments: badFiles)
    func badSpaceFilesNameTheKeyAndTheProblem(text: String, message: String) {
        do {
            let space = try SearchSpace(specification: Data(text.utf8))
            Issue.record("\(text) was accepted as \(space)")
        } catch {
            #expect("\(error)".contains(message), "\(text): \(error)")
        }
    }

    @Test func aMissingFileIsNamed() throws {
        #expect(throws: SearchSpaceFileError.unreadable("/nonexistent/space.json", reason: "no such file or folder")) {
            try SearchSpace(specificationFile: "/nonexistent/space.json")
        }
        #expect(throws: SearchSpaceFileError.unreadable("/tmp", reason: "it is a folder; give a file")) { try SearchSpace(specificationFile: "/tmp") }
        // A pipe (`--space <(…)`) is read, not called missing (found by a helper); /dev/null is an empty file.
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let text = #"{"lr": {"uniform": [0, 1]}}"#
        _ = text.withCString { write(fds[1], $0, strlen($0)) }
        close(fds[1])
        defer { close(fds[0]) }
        #expect(try SearchSpace(specificationFile: "/dev/fd/\(fds[0])").parameters.map(\.name) == ["lr"])
        #expect(try SearchSpace(specificationFile: "/dev/fd/\(fds[0])").parameters.map(\.name) == ["lr"], "read again: what the pipe held")
        // Another pipe at the same descriptor is another file (the full suite reused one: a path-keyed cache gave the old text).
        close(fds[0])
        try #require(pipe(&fds) == 0)
        let other = #"{"momentum": {"uniform": [0, 1]}}"#
        _ = other.withCString { write(fds[1], $0, strlen($0)) }
        close(fds[1])
        #expect(try SearchSpace(specificationFile: "/dev/fd/\(fds[0])").parameters.map(\.name) == ["momentum"])
        // A named pipe is read once and not opened again (a second open waited for a writer for ever).
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("space-\(getpid()).fifo").path
        try #require(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            _ = other.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        writer.start()
        #expect(try SearchSpace(specificationFile: fifo).parameters.map(\.name) == ["momentum"])
        #expect(try SearchSpace(specificationFile: fifo).parameters.map(\.name) == ["momentum"], "again, without a writer")
        #expect(throws: SearchSpaceFileError.self) { try SearchSpace(specificationFile: "/dev/null") }
    }

    /// Numeric choices stay numbers through sampling, explore and the
    /// store's JSON, and move to a neighbour like names do.
    @Test func numericChoicesStayNumbers() throws {
        let space = SearchSpace([.choice("batch", [16, 32, 64])])
        var rng = Xoshiro256(seed: 3)
        for _ in 0..<20 {
            let h = space.sample(using: &rng)
            #expect([16, 32, 64].contains(h["batch"]?.number))
            #expect(try Hyperparameters(jsonText: h.jsonText) == h)
        }
        let policy = MutationPolicy(resampleProbability: 0)
        for _ in 0..<20 {
            let (moved, operations) = explore(Hyperparameters(["batch": .number(16)]), in: space, policy: policy, using: &rng)
            #expect(moved["batch"] == .number(32) || moved["batch"] == .number(16))
            #expect(operations.logText == (moved["batch"] == .number(32) ? "batch~neighbour 16->32" : "batch~neighbour 16->16 (kept: at the end)"),
                    "whole numbers as JSON writes them")
        }
        #expect(space.contains(Hyperparameters(["batch": .number(32)])))
        #expect(!space.contains(Hyperparameters(["batch": .number(33)])))
        #expect(!space.contains(Hyperparameters(["batch": .category("32")])))
    }
}
