import Foundation
import PBT
import Synchronization

/// How a command shows progress.
public enum ProgressStyle: String, CaseIterable, Sendable {
    /// `line` on a terminal, `plain` otherwise.
    case auto
    /// One line rewritten in place (needs a terminal).
    case line
    /// A new line every few seconds, for logs and pipes.
    case plain
    case none
}

/// A status line on standard error: rewritten in place on a terminal, or a
/// plain line every few seconds when standard error is a file or a pipe (so
/// logs stay readable). Safe to call from worker threads.
final class ProgressLine: Sendable {
    let style: ProgressStyle
    let label: String
    let interval: Double
    private struct State { var lastPlain = -Double.infinity; var open = false; var lastGeneration = -2 }
    private let state = Mutex(State())

    init(label: String, style: ProgressStyle = .auto, quiet: Bool = false, interval: Double = 5) {
        self.label = label
        self.interval = interval
        if quiet {
            self.style = .none
        } else if style == .auto {
            self.style = isatty(STDERR_FILENO) != 0 ? .line : .plain
        } else {
            self.style = style
        }
    }

    /// `--progress none`: callers need not even gather progress.
    var isOff: Bool { style == .none }

    /// Shows `text`; `now` is seconds since the start (for the plain
    /// interval); `force` prints a plain line even within the interval.
    func update(_ text: String, now: Double, force: Bool = false) {
        state.withLock { s in
            switch style {
            case .none, .auto: return
            case .line:
                writeToStandardError("\r\u{1B}[2K\(label): \(text)")
                s.open = true
            case .plain:
                guard force || now - s.lastPlain >= interval else { return }
                s.lastPlain = now
                writeToStandardError("\(label): \(text)\n")
            }
        }
    }

    /// Whether a new generation prints a plain line now: at most one a second.
    static func generationLineDue(changed: Bool, now: Double, lastLine: Double) -> Bool { changed && now - lastLine >= 1 }

    /// Shows `text` on lines of its own on standard error, whatever the
    /// style (even `none`): for what must not be missed, such as a failed trial.
    /// An in-place line is cleared first and redrawn by the next update.
    func message(_ text: String) {
        state.withLock { s in
            writeToStandardError((s.open ? "\r\u{1B}[2K" : "") + text + "\n")
            s.open = false
        }
    }

    /// Ends the in-place line (so the next output starts on a fresh line).
    func finish() {
        state.withLock { s in
            if s.open { writeToStandardError("\n"); s.open = false }
        }
    }

    /// A PBT driver's progress: a plain line also whenever a new generation
    /// finishes its first trial, at most one a second (found by a helper:
    /// quick trials printed four lines a second, 14,400 an hour).
    func update(_ p: PBTProgress) {
        let newGeneration = state.withLock { s in
            defer { s.lastGeneration = p.run.latestGeneration }
            return Self.generationLineDue(changed: p.run.latestGeneration != s.lastGeneration, now: p.elapsedSeconds, lastLine: s.lastPlain)
        }
        update(Self.text(p), now: p.elapsedSeconds, force: p.isFinal || newGeneration)
        if p.isFinal { finish() }
    }

    static func text(_ p: PBTProgress) -> String {
        var parts = [
            "gen \(max(p.run.latestGeneration, 0))",
            "running \(p.run.running)",
            "\(p.run.completed)/\(p.trialBudget) trials" + (p.run.failed > 0 ? " (\(p.run.failed) failed)" : ""),
        ]
        if let best = p.run.best { parts.append("lowest loss so far \(String(format: "%.6g", best.evaluation)) (#\(best.id))") }
        if p.elapsedSeconds > 0, p.completedThisSession > 0 {
            parts.append(String(format: "%.1f trials/s", Double(p.completedThisSession) / p.elapsedSeconds))
        }
        if p.isFinal {
            parts.append("\(duration(p.elapsedSeconds)) elapsed")
        } else if let eta = p.etaSeconds {
            parts.append("ETA \(duration(eta))")
        }
        return parts.joined(separator: " | ")
    }

    /// "m:ss" or "h:mm:ss".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let t = Int(seconds.rounded())
        return t >= 3600 ? String(format: "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60) : String(format: "%ld:%02ld", t / 60, t % 60)
    }
}

/// Seconds since `start` on the monotonic clock, for progress lines.
func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    start.duration(to: .now) / .seconds(1)
}

/// Prints a note or a warning (`text`, one or more lines) on standard error:
/// standard output keeps the command's results, so a note never lands in a
/// file the output is redirected to, and is seen even then.
func printNote(_ text: String) {
    writeToStandardError(text + "\n")
}

/// Writes `text` to standard error, ignoring failure: a reader that went
/// away (`2>&1 | head`; SIGPIPE is ignored) must not stop the command, and
/// `FileHandle.write(_:)` traps on EPIPE.
func writeToStandardError(_ text: String) {
    try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
}
