import Foundation
import Synchronization

/// A status line on standard error: rewritten in place on a terminal, or a
/// plain line every few seconds when standard error is a file or a pipe (so
/// logs stay readable). Safe to call from worker threads.
final class ProgressLine: Sendable {
    enum Style { case line, plain, none }
    let style: Style
    let label: String
    let interval: Double
    private struct State { var lastPlain = -Double.infinity; var open = false }
    private let state = Mutex(State())

    init(label: String, quiet: Bool = false, interval: Double = 5, style forced: ProgressStyle = .auto) {
        self.label = label
        self.interval = interval
        switch forced {
        case .none: style = .none
        case .line: style = .line
        case .plain: style = .plain
        case .auto: style = quiet ? .none : (isatty(STDERR_FILENO) != 0 ? .line : .plain)
        }
    }

    /// Shows `text`; `now` is seconds since the start (for the plain interval).
    func update(_ text: String, now: Double, force: Bool = false) {
        state.withLock { s in
            switch style {
            case .none: return
            case .line:
                FileHandle.standardError.write(Data("\r\u{1B}[2K\(label): \(text)".utf8))
                s.open = true
            case .plain:
                guard force || now - s.lastPlain >= interval else { return }
                s.lastPlain = now
                FileHandle.standardError.write(Data("\(label): \(text)\n".utf8))
            }
        }
    }

    /// Ends the in-place line (so the next output starts on a fresh line).
    func finish() {
        state.withLock { s in
            if s.open { FileHandle.standardError.write(Data("\n".utf8)); s.open = false }
        }
    }

    /// "m:ss" or "h:mm:ss".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let t = Int(seconds.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
