import Foundation

/// How values map to positions along an axis.
public enum AxisScale: Sendable, Hashable {
    case linear
    /// Base-10 logarithmic; values must be positive (others are drawn at the lower end).
    case log10
}

public struct AxisTick: Sendable, Hashable {
    public var value: Double
    public var label: String
}

/// One axis: its scale, a domain with room for the data, ticks with labels.
public struct PlotAxis: Sendable {
    public var scale: AxisScale
    public var lower: Double
    public var upper: Double
    public var label: String
    public var ticks: [AxisTick]

    /// A domain around `values` (non-finite values, and on a log axis
    /// non-positive ones, are ignored): linear axes end on ticks, log axes
    /// get a small margin; [0, 1] or about [1, 10] for no values.
    /// `margin`: on a linear axis, room beyond the data as a fraction of its
    /// span before the ends are rounded to ticks, so that no point sits on
    /// the frame (a value axis; found by a helper: the lowest seed's dot was
    /// cut in half where the axis began at it).
    public init(scale: AxisScale, covering values: [Double], label: String, includeZero: Bool = false, margin: Double = 0) {
        self.scale = scale
        self.label = label
        switch scale {
        case .linear:
            var data = values.filter(\.isFinite)
            if includeZero { data.append(0) }
            var low = data.min() ?? 0
            var high = data.max() ?? 1
            if high - low < 1e-12 {
                let pad = max(abs(high) * 0.05, 0.5)
                low = includeZero && low == 0 ? 0 : low - pad
                high += pad
            } else if margin > 0 {
                let pad = (high - low) * margin
                low = includeZero && low == 0 ? 0 : low - pad
                high += pad
            }
            let step = Ticks.niceStep(span: high - low, target: 6)
            lower = (low / step).rounded(.down) * step
            upper = (high / step).rounded(.up) * step
            let values = Ticks.linear(lower: lower, upper: upper, step: step)
            ticks = zip(values, Ticks.linearLabels(values, step: step)).map { AxisTick(value: $0, label: $1) }
        case .log10:
            let data = values.filter { $0.isFinite && $0 > 0 }
            var low = data.min() ?? 1
            var high = data.max() ?? 10
            if high / low < 1.0001 {
                low /= 1.5
                high *= 1.5
            }
            // 6 % of the span (at least 0.03 decades) on each side, so no
            // line sits on the frame; ends are not rounded to whole decades,
            // which would waste up to two decades of height.
            let lowExponent = Foundation.log10(low)
            let highExponent = Foundation.log10(high)
            let pad = max((highExponent - lowExponent) * 0.06, 0.03)
            lower = pow(10, lowExponent - pad)
            upper = pow(10, highExponent + pad)
            let values = Ticks.log10(lower: lower, upper: upper)
            ticks = zip(values, Ticks.logLabels(values)).map { AxisTick(value: $0, label: $1) }
        }
    }

    /// An axis with a given domain and ticks (`lower > upper` flips it).
    public init(scale: AxisScale, lower: Double, upper: Double, label: String, ticks: [AxisTick]) {
        self.scale = scale
        self.lower = lower
        self.upper = upper
        self.label = label
        self.ticks = ticks
    }

    /// Where `value` lies, 0 at `lower` and 1 at `upper` (not clamped).
    public func fraction(_ value: Double) -> Double {
        switch scale {
        case .linear:
            return (value - lower) / (upper - lower)
        case .log10:
            let safe = value > 0 ? value : lower
            return (Foundation.log10(safe) - Foundation.log10(lower)) / (Foundation.log10(upper) - Foundation.log10(lower))
        }
    }
}

/// Tick positions and labels.
public enum Ticks {
    /// 1, 2 or 5 times a power of ten, near `span / target`.
    public static func niceStep(span: Double, target: Int) -> Double {
        let raw = span / Double(max(target, 1))
        let magnitude = pow(10, Foundation.log10(raw).rounded(.down))
        let ratio = raw / magnitude
        let nice: Double = ratio < 1.5 ? 1 : ratio < 3 ? 2 : ratio < 7 ? 5 : 10
        return nice * magnitude
    }

    /// Multiples of `step` from `lower` to `upper`, cleaned of rounding noise.
    public static func linear(lower: Double, upper: Double, step: Double) -> [Double] {
        let first = (lower / step - 1e-9).rounded(.up)
        let last = (upper / step + 1e-9).rounded(.down)
        guard first <= last else { return [] }
        return stride(from: first, through: last, by: 1).map { clean($0 * step) }
    }

    /// Labels for linear ticks with as many decimals as `step` needs; values
    /// of 10,000 and more in thousands ("25k").
    public static func linearLabels(_ values: [Double], step: Double) -> [String] {
        let largest = values.map(abs).max() ?? 0
        let thousands = largest >= 10_000 && step >= 1000
        let unit = thousands ? 1000.0 : 1
        let decimals = max(0, Int(-Foundation.log10(step / unit).rounded(.down)))
        return values.map { value in
            let text = String(format: "%.\(decimals)f", value / unit)
            // "0", never "-0" or "0k".
            if Double(text) == 0 { return String(format: "%.\(decimals)f", 0.0) }
            return thousands ? text + "k" : text
        }
    }

    /// Ticks in [lower, upper]: powers of ten when there are at least four,
    /// else 1-2-5 multiples when there are at least two, else 1…9 multiples.
    public static func log10(lower: Double, upper: Double) -> [Double] {
        precondition(lower > 0 && upper > lower, "log axis needs 0 < lower < upper")
        let firstExponent = Int(Foundation.log10(lower).rounded(.down))
        let lastExponent = Int(Foundation.log10(upper).rounded(.up))
        var ticks: [Double] = []
        for (mantissas, enough) in [([1.0], 4), ([1, 2, 5], 2), ([1, 2, 3, 4, 5, 6, 7, 8, 9], 2)] {
            ticks = []
            for exponent in firstExponent ... lastExponent {
                for mantissa in mantissas {
                    let value = clean(mantissa * pow(10, Double(exponent)))
                    if value >= lower * (1 - 1e-9) && value <= upper * (1 + 1e-9) { ticks.append(value) }
                }
            }
            if ticks.count >= enough { return ticks }
        }
        return ticks
    }

    /// Plain decimals ("0.01", "200") when every tick is between 0.01 and
    /// 9999; else powers of ten with superscripts ("10⁻³", "2×10⁻³").
    public static func logLabels(_ values: [Double]) -> [String] {
        let exponents = values.map { Int((Foundation.log10($0) + 1e-9).rounded(.down)) }
        let plain = exponents.allSatisfy { (-2 ... 3).contains($0) }
        return zip(values, exponents).map { value, exponent in
            if plain { return String(format: "%g", value) }
            let mantissa = Int((value / pow(10, Double(exponent))).rounded())
            let power = "10" + superscript(exponent)
            return mantissa == 1 ? power : "\(mantissa)×" + power
        }
    }

    static func superscript(_ exponent: Int) -> String {
        let digits: [Character] = ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"]
        let body = String(String(abs(exponent)).map { digits[Int(String($0))!] })
        return exponent < 0 ? "⁻" + body : body
    }

    /// Rounds to 12 significant digits: 0.30000000000000004 → 0.3.
    static func clean(_ value: Double) -> Double {
        guard value != 0, value.isFinite else { return value }
        return Double(String(format: "%.12g", value))!
    }
}
