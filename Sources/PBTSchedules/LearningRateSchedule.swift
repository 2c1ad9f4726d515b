import Foundation

/// A piecewise-constant learning rate over the model's global step: the one
/// value that a constant `--lr`, a replayed schedule file, PBT's lineage
/// export and the experiment's replay all become, and that the trainer calls
/// with each step.
///
/// ```swift
/// let schedule = try LearningRateSchedule(points: [.init(step: 0, rate: 1e-2), .init(step: 1000, rate: 1e-3)])
/// schedule(999)   // 0.01 (as Float)
/// ```
///
/// In JSON (e.g. in `results.json`) it is the list of change points,
/// `[{"step":0,"lr":0.01},{"step":1000,"lr":0.001}]`.
public struct LearningRateSchedule: Sendable, Hashable {
    /// The hyperparameter name of the learning rate in search spaces and
    /// schedule files.
    public static let hyperparameterName = "lr"

    public struct Point: Sendable, Hashable, Codable {
        public var step: Int
        public var rate: Double

        public init(step: Int, rate: Double) {
            self.step = step
            self.rate = rate
        }

        private enum CodingKeys: String, CodingKey {
            case step
            case rate = "lr"
        }
    }

    /// Change points: the first at step 0, steps increasing.
    public let points: [Point]

    /// Validates: at least one point, the first at step 0, steps increasing,
    /// every rate finite and positive, also once rounded to `Float` (1e-46
    /// would train with a rate of 0).
    public init(points: [Point]) throws(ScheduleFileError) {
        guard let first = points.first else { throw .invalid(line: nil, "a schedule needs at least one point") }
        // Order first: a file whose step 0 comes later is out of order, not missing step 0.
        for (a, b) in zip(points, points.dropFirst()) where b.step <= a.step {
            throw .invalid(line: nil, "steps must increase (\(b.step) follows \(a.step))")
        }
        guard first.step == 0 else { throw .invalid(line: nil, "the first point must be at step 0 (got \(first.step))") }
        for point in points {
            let problem: String? = if !(point.rate > 0) || !point.rate.isFinite { "is not a positive number" }
                else if !Float(point.rate).isFinite { "is above the largest fp32 number (\(Float.greatestFiniteMagnitude))" }
                else if Float(point.rate) == 0 { "is below the smallest fp32 number (\(Float.leastNonzeroMagnitude))" }
                else { nil }
            if let problem { throw .invalid(line: nil, "the learning rate at step \(point.step) (\(point.rate)) \(problem)") }
        }
        self.points = points
    }

    /// The same rate at every step.
    public init(constant rate: Double) throws(ScheduleFileError) {
        try self.init(points: [Point(step: 0, rate: rate)])
    }

    /// The `lr` column of a schedule file.
    public init(_ schedule: HyperparameterSchedule) throws(ScheduleFileError) {
        let name = Self.hyperparameterName
        guard let column = schedule.column(name) else {
            throw .invalid(line: nil, "the file schedules '\(schedule.names.joined(separator: "', '"))', not '\(name)'")
        }
        try self.init(points: column.map { step, value throws(ScheduleFileError) in
            guard let rate = value.number else { throw .invalid(line: nil, "'\(name)' at step \(step) is '\(value)', not a number") }
            return Point(step: step, rate: rate)
        })
    }

    /// Reads the learning rate of a schedule file (CSV or JSON).
    public static func read(from url: URL) throws(ScheduleFileError) -> LearningRateSchedule {
        let file = try HyperparameterSchedule.read(from: url)
        do { return try LearningRateSchedule(file) } catch { throw .inFile(path: url.path, error) }
    }

    /// The rate in force at global step `step` (the last point at or before
    /// it). O(log n).
    public func rate(atStep step: Int) -> Double {
        points[indexInForce(atStep: step, count: points.count) { points[$0].step }].rate
    }

    /// The rate for the optimizer at global step `step`.
    public func callAsFunction(_ step: Int) -> Float { Float(rate(atStep: step)) }

    /// As a one-column schedule file.
    public func file(endStep: Int? = nil, recipe: JSONValue? = nil) throws(ScheduleFileError) -> HyperparameterSchedule {
        try HyperparameterSchedule(names: [Self.hyperparameterName], rows: points.map { .init(step: $0.step, values: [.number($0.rate)]) },
                                    endStep: endStep, recipe: recipe)
    }
}

extension LearningRateSchedule: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(points: try decoder.singleValueContainer().decode([Point].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(points)
    }
}
