import Foundation
import PBTSchedules

/// The raw numbers as CSV (RFC 4180 quoting; empty cell: no value).
public enum ReportCSV {
    /// curves.csv: `method,seed,clock,x,best_nll`, every point of every
    /// run's best-so-far curve on every clock.
    public static func curves(_ results: ExperimentResults) -> String {
        var csv = "method,seed,clock,x,best_nll\n"
        for group in results.runsByMethod {
            for run in group.runs {
                for clock in Clock.allCases {
                    for point in run.bestCurve(clock).points {
                        csv += [field(run.method), String(run.seed), clock.rawValue, number(point.x), number(point.best)]
                            .joined(separator: ",") + "\n"
                    }
                }
            }
        }
        return csv
    }

    /// trials.csv: one row per trial with its method and seed; one column
    /// per hyperparameter name (sorted); `failed` is 1 when the NLL is
    /// missing or not finite.
    public static func trials(_ results: ExperimentResults) -> String {
        let names = Set(results.runs.flatMap { $0.trials.flatMap(\.hyperparameters.keys) }).sorted()
        var csv = (["method", "seed", "id", "parent", "generation"] + names.map(field)
            + ["start_step", "steps", "end_step", "validation_nll", "failed", "completion_index", "worker", "wall_seconds", "tournament_loser"])
            .joined(separator: ",") + "\n"
        for group in results.runsByMethod {
            for run in group.runs {
                for trial in run.trials.sorted(by: { ($0.completionIndex, $0.id) < ($1.completionIndex, $1.id) }) {
                    var row = [field(run.method), String(run.seed), String(trial.id), trial.parent.map(String.init) ?? "", String(trial.generation)]
                    row += names.map { trial.hyperparameters[$0].map(number) ?? "" }
                    row += [String(trial.startStep), String(trial.steps), String(trial.endStep), trial.validationNLL.map(number) ?? "",
                            trial.finiteNLL == nil ? "1" : "0", String(trial.completionIndex), trial.worker.map(String.init) ?? "",
                            trial.wallSeconds.map(number) ?? "", trial.tournamentLoser.map(String.init) ?? ""]
                    csv += row.joined(separator: ",") + "\n"
                }
            }
        }
        return csv
    }

    /// schedule.csv: `step,lr`, the rate applying from that global step on;
    /// only the header when there is no winner.
    public static func schedule(_ winner: Winner?) -> String {
        (try? winner?.schedule?.file().csvText) ?? "step,\(LearningRateSchedule.hyperparameterName)\n"
    }

    /// Quotes a field containing a comma, quote or line break.
    public static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Integers without a decimal point, other values in their shortest
    /// exact form; "nan", "inf", "-inf" for non-finite values.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return "\(value)"
    }
}
