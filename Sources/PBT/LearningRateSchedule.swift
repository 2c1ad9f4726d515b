import Foundation

/// A piecewise-constant schedule for one numeric hyperparameter: the file
/// `pbtwave schedule export` writes and `pbtwave train --lr-schedule` reads.
///
/// CSV (header, then one row per change point, first row at step 0):
///
///     step,lr
///     0,0.012
///     400,0.0096
///
/// JSON: `{"hyperparameter":"lr","points":[{"step":0,"value":0.012},{"step":400,"value":0.0096}]}`
///
/// A row means "from this global step on, use this value". Values are
/// written in Swift's shortest round-tripping form, so a schedule survives a
/// write and read bit-exactly. Self-contained (Foundation only) so the
/// trainer can use it, or copy it, without pulling in the PBT machinery.
public struct LearningRateSchedule: Sendable, Hashable {
    public struct Point: Sendable, Hashable, Codable {
        public var step: Int
        public var value: Double
        public init(step: Int, value: Double) {
            self.step = step
            self.value = value
        }
    }

    public var hyperparameter: String
    public var points: [Point]

    /// Validates: a name without ',' or '"', at least one point, the first at
    /// step 0, steps strictly increasing, values finite.
    public init(hyperparameter: String = "lr", points: [Point]) throws(ScheduleFileError) {
        guard !hyperparameter.isEmpty, !hyperparameter.contains(where: { $0 == "," || $0 == "\"" || $0 == "\\" || $0.isNewline }) else {
            throw .invalid(line: nil, "hyperparameter name '\(hyperparameter)' is empty or has ',', '\"' or '\\'")
        }
        guard let first = points.first else { throw .invalid(line: nil, "a schedule needs at least one point") }
        guard first.step == 0 else { throw .invalid(line: nil, "the first point must be at step 0 (got \(first.step))") }
        for (a, b) in zip(points, points.dropFirst()) where b.step <= a.step {
            throw .invalid(line: nil, "steps must increase (\(b.step) follows \(a.step))")
        }
        if let bad = points.first(where: { !$0.value.isFinite }) {
            throw .invalid(line: nil, "value at step \(bad.step) is not finite")
        }
        self.hyperparameter = hyperparameter
        self.points = points
    }

    /// The value in force at global step `step` (the last point at or before it).
    /// O(log n).
    public func value(atStep step: Int) -> Double {
        var lo = 0
        var hi = points.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if points[mid].step <= step { lo = mid } else { hi = mid - 1 }
        }
        return points[lo].value
    }

    // MARK: CSV

    public var csvText: String {
        "step,\(hyperparameter)\n" + points.map { "\($0.step),\($0.value)\n" }.joined()
    }

    public init(csvText: String) throws(ScheduleFileError) {
        let lines = csvText.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let numbered = lines.enumerated().filter { !$0.element.isEmpty }
        guard let header = numbered.first else { throw .invalid(line: nil, "the file is empty") }
        let columns = header.element.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard columns.count == 2, columns[0] == "step", !columns[1].isEmpty else {
            throw .invalid(line: header.offset + 1, "header must be 'step,<name>' (e.g. 'step,lr'), got '\(header.element)'")
        }
        var points: [Point] = []
        for (index, line) in numbered.dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 2, let step = Int(cells[0]), let value = Double(cells[1]) else {
                throw .invalid(line: index + 1, "expected '<integer step>,<number>', got '\(line)'")
            }
            points.append(Point(step: step, value: value))
        }
        try self.init(hyperparameter: columns[1], points: points)
    }

    // MARK: JSON

    public var jsonText: String {
        let body = points.map { "{\"step\":\($0.step),\"value\":\($0.value)}" }.joined(separator: ",")
        return "{\"hyperparameter\":\"\(hyperparameter)\",\"points\":[\(body)]}\n"
    }

    private struct JSONForm: Decodable {
        var hyperparameter: String
        var points: [Point]
    }

    public init(jsonText: String) throws(ScheduleFileError) {
        let form: JSONForm
        do { form = try JSONDecoder().decode(JSONForm.self, from: Data(jsonText.utf8)) } catch {
            throw .invalid(line: nil, "not a schedule JSON object {\"hyperparameter\":…,\"points\":[{\"step\":…,\"value\":…}]}: \(error)")
        }
        try self.init(hyperparameter: form.hyperparameter, points: form.points)
    }

    // MARK: Files

    public enum Format: String, Sendable, CaseIterable {
        case csv, json
    }

    /// Reads a schedule file: JSON if its first non-blank character is '{', CSV otherwise.
    public static func read(from url: URL) throws -> LearningRateSchedule {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ScheduleFileError.unreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        do {
            return text.first(where: { !$0.isWhitespace }) == "{" ? try LearningRateSchedule(jsonText: text) : try LearningRateSchedule(csvText: text)
        } catch {
            throw ScheduleFileError.inFile(path: url.path, error)
        }
    }

    public func text(_ format: Format) -> String { format == .csv ? csvText : jsonText }
}

public indirect enum ScheduleFileError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case invalid(line: Int?, String)
    case unreadable(path: String, reason: String)
    case inFile(path: String, ScheduleFileError)

    public var description: String {
        switch self {
        case .invalid(let line?, let m): return "line \(line): \(m)"
        case .invalid(nil, let m): return m
        case .unreadable(let p, let r): return "cannot read schedule \(p): \(r)"
        case .inFile(let p, let e): return "schedule \(p): \(e)"
        }
    }

    public var errorDescription: String? { description }
}
