import Foundation
import PBT

/// How `pbtwave pbt` shows progress.
public enum ProgressStyle: String, CaseIterable, Sendable {
    /// `line` on a terminal, `plain` otherwise.
    case auto
    /// One line rewritten in place (needs a terminal).
    case line
    /// A new line every few seconds, for logs and pipes.
    case plain
    case none
}

/// Renders `PBTProgress` to standard error. Called by the driver, never
/// concurrently.
final class PBTProgressLine: Sendable {
    private let style: ProgressStyle
    private struct State {
        var lastPlain = -Double.infinity
        var lastGeneration = -2
        var wroteLine = false
    }
    private let state = SendableBox(State())
    static let plainInterval = 5.0

    init(style: ProgressStyle) {
        if style == .auto {
            self.style = isatty(STDERR_FILENO) != 0 ? .line : .plain
        } else {
            self.style = style
        }
    }

    /// `--progress none`: the driver need not even gather progress.
    var isOff: Bool { style == .none }

    func update(_ p: PBTProgress) {
        guard style != .none else { return }
        let text = Self.text(p)
        state.mutate { s in
            switch style {
            case .line:
                FileHandle.standardError.write(Data("\r\u{1B}[2K\(text)\(p.isFinal ? "\n" : "")".utf8))
                s.wroteLine = !p.isFinal
            default:
                guard p.isFinal || p.elapsedSeconds - s.lastPlain >= Self.plainInterval || p.run.latestGeneration != s.lastGeneration
                else { return }
                s.lastPlain = p.elapsedSeconds
                s.lastGeneration = p.run.latestGeneration
                FileHandle.standardError.write(Data("pbt: \(text)\n".utf8))
            }
        }
    }

    static func text(_ p: PBTProgress) -> String {
        var parts = [
            "gen \(max(p.run.latestGeneration, 0))",
            "running \(p.run.running)",
            "\(p.run.completed)/\(p.trialBudget) trials" + (p.run.failed > 0 ? " (\(p.run.failed) failed)" : ""),
        ]
        if let best = p.run.best { parts.append("best so far \(String(format: "%.6g", best.evaluation)) (#\(best.id))") }
        if p.elapsedSeconds > 0, p.completedThisSession > 0 {
            parts.append(String(format: "%.1f trials/s", Double(p.completedThisSession) / p.elapsedSeconds))
        }
        if p.isFinal {
            parts.append("\(ProgressLine.duration(p.elapsedSeconds)) elapsed")
        } else if let eta = p.etaSeconds {
            parts.append("ETA \(ProgressLine.duration(eta))")
        }
        return parts.joined(separator: " | ")
    }
}

/// A value behind a lock, for the few mutable bits of command state.
final class SendableBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func mutate<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
