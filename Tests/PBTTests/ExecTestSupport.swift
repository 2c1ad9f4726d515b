import Foundation
import Testing

@testable import PBT

/// The Python exec toy (`Tests/ExecToy/toy_quadratic.py`) and how to run it.
enum ExecToy {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ExecToy/toy_quadratic.py").path

    /// A real interpreter (not a version manager's shim, which costs a
    /// shell script per start): Debian's, else the first `python3` on PATH.
    static func python() throws -> String {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") { return "/usr/bin/python3" }
        do { return try ExecRunner.resolve("python3", path: ProcessInfo.processInfo.environment["PATH"]) } catch {
            throw TestFailure("the exec tests need python3 (bash .ci/setup installs it): \(error)")
        }
    }

    static func command() throws -> ExecCommand {
        ExecCommand(program: try python(), arguments: [script])
    }

    /// This process's environment with `extra` set (the toy's TOY_* knobs).
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(extra) { $1 }
    }

    static func runner(_ extra: [String: String] = [:], timeout: Duration? = nil, grace: Duration = .seconds(10),
                       failures: Locked<[ExecTrialFailure]>? = nil) throws -> ExecRunner {
        var record: (@Sendable (ExecTrialFailure) -> Void)?
        if let failures {
            record = { failure in failures.withLock { $0.append(failure) } }
        }
        return try ExecRunner(command: try command(), trialTimeout: timeout, killGrace: grace, environment: environment(extra),
                              onFailure: record)
    }

    /// The space the toy tunes.
    static let space = SearchSpace([.logUniform("lr", 1e-4, 3e-2), .uniform("momentum", 0.8, 0.99)])
}

/// Whether process `pid` is gone: no such process, or a zombie waiting for
/// a parent that is not us to reap it (it runs no more).
func processIsGone(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return kill(pid, 0) != 0 }
    // "pid (comm) S …": the state follows the last ')'.
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}

/// Polls `condition` for up to `seconds`.
func eventually(within seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
