import PBTFileSupport
import Foundation

/// The values of one or more hyperparameters over a model's global step,
/// piecewise constant: what PBT learns along a lineage, and the file
/// `pbtwave schedule export` writes and `pbtwave train --lr-schedule` reads.
///
/// A row means "from this global step on, use these values". The first row
/// is at step 0 and steps increase. Values are written in Swift's shortest
/// round-tripping form, so a schedule survives a write and read bit-exactly.
///
/// CSV (for spreadsheets; one column per hyperparameter):
///
///     step,lr
///     0,0.012
///     400,0.0096
///
/// JSON (one key per hyperparameter in each point; `end_step`, where the
/// schedule was learned up to, and `recipe`, how to train with it again, are
/// optional and written by the program that learned it):
///
///     {"end_step":800,"hyperparameters":["lr"],"points":[{"lr":0.012,"step":0},{"lr":0.0096,"step":400}],"recipe":{…}}
public struct HyperparameterSchedule: Sendable {
    public struct Row: Sendable, Hashable {
        public var step: Int
        /// One value per name, in `names` order.
        public var values: [HyperparameterValue]

        public init(step: Int, values: [HyperparameterValue]) {
            self.step = step
            self.values = values
        }
    }

    /// The hyperparameters, in column order.
    public let names: [String]
    public let rows: [Row]
    /// The global step the schedule was learned up to (a lineage's end).
    public var endStep: Int?
    /// How to train with this schedule again, as the program that learned it
    /// wrote it (JSON files only).
    public var recipe: JSONValue?
    /// The continuous hyperparameters (a `uniform` or `log_uniform` prior):
    /// both files write their whole values with a fraction (`1.0`), as every
    /// trial's program read them, so that a replay through the same program
    /// does not hand it an integer where the run gave a float (found by a
    /// helper: a value explore clamped to its bound 1 was exported as `1`).
    /// Set by the program that learned the schedule; a file read back does
    /// not say it (its values are the same numbers either way), and two
    /// schedules that differ only here are equal.
    public var realValued: Set<String> = []

    /// Validates: names that are non-empty letters, digits, `_` or `-`
    /// (not `step`) and distinct; at least one row, the first at step 0,
    /// steps increasing; a value per name in every row; finite numbers;
    /// categories as `HyperparameterValue.isValidCategory` asks; `endStep` at or
    /// after the last row.
    public init(names: [String], rows: [Row], endStep: Int? = nil, recipe: JSONValue? = nil) throws(ScheduleFileError) {
        guard !names.isEmpty else { throw .invalid(line: nil, "a schedule needs at least one hyperparameter") }
        for name in names {
            guard HyperparameterValue.isValidName(name) else {
                throw .invalid(line: nil, "hyperparameter name '\(name)' must be letters, digits, '_' or '-', and not 'step'")
            }
        }
        guard Set(names).count == names.count else { throw .invalid(line: nil, "a hyperparameter is named twice in \(names)") }
        guard let first = rows.first else { throw .invalid(line: nil, "a schedule needs at least one point") }
        // Order first: a file whose step 0 comes later is out of order, not missing step 0.
        for (a, b) in zip(rows, rows.dropFirst()) where b.step <= a.step {
            throw .invalid(line: nil, "steps must increase (\(b.step) follows \(a.step))")
        }
        guard first.step == 0 else { throw .invalid(line: nil, "the first point must be at step 0 (got \(first.step))") }
        for row in rows {
            guard row.values.count == names.count else {
                throw .invalid(line: nil, "the point at step \(row.step) has \(row.values.count) values for \(names.count) hyperparameters")
            }
            for value in row.values {
                switch value {
                case .number(let x) where !x.isFinite:
                    throw .invalid(line: nil, "a value at step \(row.step) is not finite")
                case .category(let c) where !HyperparameterValue.isValidCategory(c):
                    let quoted = Double(c.trimmingCharacters(in: .whitespaces)) != nil
                        ? " (a number in quotes is read as a name: write the number without quotes)" : ""
                    throw .invalid(line: nil, "category '\(c)' at step \(row.step) must be \(HyperparameterValue.categoryRule)\(quoted)")
                default: break
                }
            }
        }
        if let endStep, endStep < rows.last!.step {
            throw .invalid(line: nil, "end step \(endStep) lies before the last point (step \(rows.last!.step))")
        }
        self.names = names
        self.rows = rows
        self.endStep = endStep
        self.recipe = recipe
    }

    /// The row in force at global step `step`: the last at or before it
    /// (the first row for a step before 0). O(log n).
    public func row(atStep step: Int) -> Row {
        rows[indexInForce(atStep: step, count: rows.count) { rows[$0].step }]
    }

    /// The value of hyperparameter `name` in force at global step `step`,
    /// or nil if the schedule has no such column: how a program replays
    /// any hyperparameter of an exported schedule.
    public func value(of name: String, atStep step: Int) -> HyperparameterValue? {
        names.firstIndex(of: name).map { row(atStep: step).values[$0] }
    }

    /// The change points of one hyperparameter (rows where its value
    /// differs from the row before), or nil if there is no such column.
    public func column(_ name: String) -> [(step: Int, value: HyperparameterValue)]? {
        guard let index = names.firstIndex(of: name) else { return nil }
        var points: [(step: Int, value: HyperparameterValue)] = []
        for row in rows where points.last?.value != row.values[index] {
            points.append((row.step, row.values[index]))
        }
        return points
    }

    // MARK: CSV

    public var csvText: String {
        let real = names.map(realValued.contains)
        return "step," + names.joined(separator: ",") + "\n"
            + rows.map { "\($0.step)," + zip($0.values, real).map { $0.text(real: $1) }.joined(separator: ",") + "\n" }.joined()
    }

    /// Parses `step,<name>…` and one row per change point; a cell that reads
    /// as a number is a number, anything else a category.
    public init(csvText: String) throws(ScheduleFileError) {
        let lines = csvText.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .enumerated().map { ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespaces)) }
            .filter { !$0.1.isEmpty }
        func cells(_ line: String) -> [String] {
            line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        guard let (headerLine, header) = lines.first else { throw .invalid(line: nil, "the file is empty") }
        let columns = cells(header)
        guard columns.count >= 2, columns[0] == "step" else {
            throw .invalid(line: headerLine, "header must be 'step,<name>' or 'step,<name>,<name>…' (e.g. 'step,lr'), got '\(header)'")
        }
        var rows: [Row] = []
        for (number, line) in lines.dropFirst() {
            let fields = cells(line)
            guard fields.count == columns.count, let step = Int(fields[0]) else {
                throw .invalid(line: number, "expected '<integer step>' and \(columns.count - 1) value(s), got '\(line)'")
            }
            // A non-zero number a Double holds only as 0 (1e-400) is refused, as in JSON (found by the re-check helper).
            if let tiny = fields.dropFirst().first(where: JSONStrictnessProblem.readsAsZero) {
                throw .invalid(line: number, "\(JSONStrictnessProblem(.underflow(tiny), path: ""))")
            }
            rows.append(Row(step: step, values: fields.dropFirst().map { Double($0).map(HyperparameterValue.number) ?? .category($0) }))
        }
        try self.init(names: Array(columns.dropFirst()), rows: rows)
    }

    // MARK: JSON and files

    public var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.userInfo[Self.marksRealValues] = true
        // Encoding cannot fail: every number is finite (checked in init).
        let text = String(decoding: try! encoder.encode(self), as: UTF8.self)
        // The marked values (see encode(to:)) become numbers again, with their
        // fraction: in the points only, before the recipe, which may hold any
        // string (a category holds no control character and no '"').
        let end = text.range(of: "\"recipe\":")?.lowerBound ?? text.endIndex
        return String(text[..<end].replacing(/"\\u0001([^"\\]*)\\u0001"/) { String($0.output.1) }) + text[end...] + "\n"
    }

    /// Asks `encode(to:)` to write each value of `realValued` as a marked
    /// string holding its JSON text (JSONEncoder writes 1.0 as 1); `jsonText` unmarks them.
    static let marksRealValues = CodingUserInfoKey(rawValue: "PBTSchedules.marksRealValues")!

    public init(jsonText: String) throws(ScheduleFileError) {
        if let problem = JSONStrictnessProblem.first(in: Data(jsonText.utf8)) { throw .invalid(line: nil, "\(problem)") }
        do {
            self = try JSONDecoder().decode(HyperparameterSchedule.self, from: Data(jsonText.utf8))
        } catch let error as ScheduleFileError {
            throw error
        } catch {
            throw .invalid(line: nil, "not a schedule JSON object {\"hyperparameters\":[…],\"points\":[{\"step\":0,…}]}: "
                           + DecodingErrorText.sentence(for: error, data: Data(jsonText.utf8)))
        }
    }

    public enum Format: String, Sendable, CaseIterable {
        case csv, json
    }

    public func text(_ format: Format) -> String { format == .csv ? csvText : jsonText }

    /// Reads a schedule file: JSON if its first non-blank character is `{` or `[`, CSV otherwise.
    /// Files larger than `maxFileBytes` are refused before they are read.
    public static func read(from url: URL) throws(ScheduleFileError) -> HyperparameterSchedule {
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? nil
        if let size, size > maxFileBytes {
            throw .unreadable(path: url.path, reason: "it has \(size) bytes; a schedule file has at most \(maxFileBytes)")
        }
        let data: Data
        do throws(SmallFile.Failure) { data = try SmallFile.read(url.path, limit: maxFileBytes) } catch {
            throw .unreadable(path: url.path, reason: error.reason)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .unreadable(path: url.path, reason: "it is not UTF-8 text") }
        do {
            return try HyperparameterSchedule(text: text)
        } catch {
            throw .inFile(path: url.path, error)
        }
    }

    /// A schedule file's text: JSON if its first non-blank character is `{`
    /// (or `[`, which no CSV header starts with: a JSON error then says what is wrong), CSV otherwise.
    public init(text: String) throws(ScheduleFileError) {
        self = ["{", "["].contains(text.first(where: { !$0.isWhitespace })) ? try HyperparameterSchedule(jsonText: text)
            : try HyperparameterSchedule(csvText: text)
    }

    /// The largest schedule file `read` accepts (16 MiB: some hundred
    /// thousand change points), so reading one allocates a bounded amount.
    public static let maxFileBytes = 16 << 20

    /// Writes the schedule atomically (a reader never sees half a file).
    public func write(to url: URL, format: Format) throws {
        try AtomicFile.write(Data(text(format).utf8), to: url)
    }
}

extension HyperparameterSchedule: Hashable {
    /// The same points, end and recipe (`realValued` only says how to write them).
    public static func == (a: Self, b: Self) -> Bool {
        a.names == b.names && a.rows == b.rows && a.endStep == b.endStep && a.recipe == b.recipe
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(names)
        hasher.combine(rows)
        hasher.combine(endStep)
        hasher.combine(recipe)
    }
}

extension HyperparameterSchedule: Codable {
    private enum CodingKeys: String, CodingKey {
        case hyperparameters, points, recipe
        case endStep = "end_step"
    }

    private struct PointKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        // A field the schedule does not have (a typo, or a column the points hold but
        // "hyperparameters" leaves out) would be dropped unseen: refused by name, as a recipe's are.
        let known = ["hyperparameters", "points", "recipe", "end_step"]
        let unknown = try decoder.container(keyedBy: PointKey.self).allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw ScheduleFileError.invalid(line: nil, "unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); "
                                            + "a schedule JSON object has \(known.joined(separator: ", "))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let names = try c.decode([String].self, forKey: .hyperparameters)
        var points = try c.nestedUnkeyedContainer(forKey: .points)
        var rows: [Row] = []
        while !points.isAtEnd {
            let point = try points.nestedContainer(keyedBy: PointKey.self)
            let extra = point.allKeys.map(\.stringValue).filter { $0 != "step" && !names.contains($0) }.sorted()
            if !extra.isEmpty {
                throw ScheduleFileError.invalid(line: nil, "point \(rows.count + 1) has \(extra.joined(separator: ", ")), which \"hyperparameters\" "
                                                + "does not list (it lists \(names.joined(separator: ", "))): add \(extra.count == 1 ? "it" : "them") there, or drop \(extra.count == 1 ? "it" : "them")")
            }
            let step = try point.decode(Int.self, forKey: PointKey(stringValue: "step"))
            rows.append(Row(step: step, values: try names.map { try point.decode(HyperparameterValue.self, forKey: PointKey(stringValue: $0)) }))
        }
        try self.init(names: names, rows: rows, endStep: try c.decodeIfPresent(Int.self, forKey: .endStep),
                      recipe: try c.decodeIfPresent(JSONValue.self, forKey: .recipe))
    }

    public func encode(to encoder: any Encoder) throws {
        let marking = encoder.userInfo[Self.marksRealValues] as? Bool == true
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(names, forKey: .hyperparameters)
        var points = c.nestedUnkeyedContainer(forKey: .points)
        for row in rows {
            var point = points.nestedContainer(keyedBy: PointKey.self)
            try point.encode(row.step, forKey: PointKey(stringValue: "step"))
            for (name, value) in zip(names, row.values) {
                if marking, realValued.contains(name), case .number = value {
                    try point.encode("\u{1}" + value.jsonText(real: true) + "\u{1}", forKey: PointKey(stringValue: name))
                } else {
                    try point.encode(value, forKey: PointKey(stringValue: name))
                }
            }
        }
        try c.encodeIfPresent(endStep, forKey: .endStep)
        try c.encodeIfPresent(recipe, forKey: .recipe)
    }
}

/// A schedule file that cannot be used, with the line where that is known.
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

/// Of `count` change points at increasing steps (`stepOf(i)`, the first at
/// 0), the index of the one in force at `step`: the last at or before it (0
/// for a step before the first). O(log n).
func indexInForce(atStep step: Int, count: Int, _ stepOf: (Int) -> Int) -> Int {
    var lo = 0
    var hi = count - 1
    while lo < hi {
        let mid = (lo + hi + 1) / 2
        if stepOf(mid) <= step { lo = mid } else { hi = mid - 1 }
    }
    return lo
}
