import RealModule

// The distribution functions behind the tests in Statistics.swift: the
// regularized incomplete beta function (everything else is built on it),
// Student's t, Fisher's F, the noncentral t (for power) and the standard
// normal (for BCa). Each cdf/sf pair is computed so that the smaller tail
// keeps its relative precision. Tests compare them with SciPy.

/// The regularized incomplete beta function I_x(a, b) and its complement
/// 1 − I_x(a, b), for a, b > 0 and x ∈ [0, 1] with `y` = 1 − x passed in
/// (so a caller that knows 1 − x more precisely than x keeps that precision).
///
/// The continued fraction (Numerical Recipes §6.4, evaluated with Lentz's
/// method) is used on whichever side of the mean a/(a+b) it converges fast;
/// the other value is one minus it. About O(√max(a, b)) iterations; relative
/// accuracy about 1e-14 for the parameters tests use (a, b ≤ 10⁴).
func incompleteBeta(_ a: Double, _ b: Double, x: Double, y: Double) -> (lower: Double, upper: Double) {
    precondition(a > 0 && b > 0, "incomplete beta needs a, b > 0 (got \(a), \(b))")
    precondition(x >= 0 && y >= 0, "incomplete beta needs x in [0, 1] (got x = \(x), 1 − x = \(y))")
    if x == 0 { return (0, 1) }
    if y == 0 { return (1, 0) }
    let logBeta = Double.logGamma(a) + Double.logGamma(b) - Double.logGamma(a + b)
    let front = Double.exp(a * .log(x) + b * .log(y) - logBeta)
    if x < (a + 1) / (a + b + 2) {
        let lower = front * betaContinuedFraction(a, b, x) / a
        return (lower, 1 - lower)
    }
    let upper = front * betaContinuedFraction(b, a, y) / b
    return (1 - upper, upper)
}

/// The continued fraction of I_x(a, b) (Numerical Recipes `betacf`), by the
/// modified Lentz method. Converges quickly for x < (a + 1)/(a + b + 2).
private func betaContinuedFraction(_ a: Double, _ b: Double, _ x: Double) -> Double {
    let tiny = 1e-300
    let epsilon = 1e-15
    var c = 1.0
    var d = 1 - (a + b) * x / (a + 1)
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var h = d
    // One step of the recurrence with coefficient `aa`: the factor h takes.
    func step(_ aa: Double) -> Double {
        d = 1 + aa * d
        if abs(d) < tiny { d = tiny }
        c = 1 + aa / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        return d * c
    }
    for m in 1...10_000 {
        let m = Double(m)
        // Even step of the recurrence, then the odd one.
        h *= step(m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m)))
        let delta = step(-(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m)))
        h *= delta
        if abs(delta - 1) < epsilon { break }
    }
    return h
}

/// Finds x in [lower, upper] with `increasing(x)` = target by bisection, to
/// about 1e-14 relative. `increasing` must be non-decreasing on the bracket.
private func bisect(from lower: Double, to upper: Double, target: Double, _ increasing: (Double) -> Double) -> Double {
    var lo = lower, hi = upper
    for _ in 0..<300 {
        let mid = 0.5 * (lo + hi)
        if mid == lo || mid == hi || hi - lo <= 1e-15 * max(1, abs(mid)) { break }
        if increasing(mid) < target { lo = mid } else { hi = mid }
    }
    return 0.5 * (lo + hi)
}

/// Student's t distribution with ν > 0 degrees of freedom (ν need not be an integer,
/// as Welch's test needs).
public struct StudentT: Sendable, Hashable {
    public let degreesOfFreedom: Double

    /// Precondition: ν > 0 and finite.
    public init(degreesOfFreedom: Double) {
        precondition(degreesOfFreedom > 0 && degreesOfFreedom.isFinite, "t distribution needs finite ν > 0 (got \(degreesOfFreedom))")
        self.degreesOfFreedom = degreesOfFreedom
    }

    /// (P(T ≤ t), P(T > t)), each with full relative precision in its own tail.
    func tails(_ t: Double) -> (lower: Double, upper: Double) {
        precondition(!t.isNaN, "t distribution evaluated at NaN")
        let nu = degreesOfFreedom
        // P(|T| > |t|) = I_x(ν/2, 1/2) with x = ν/(ν + t²).
        let (beyond, within) = t.isInfinite
            ? (0, 1)
            : incompleteBeta(nu / 2, 0.5, x: nu / (nu + t * t), y: t * t / (nu + t * t))
        let far = 0.5 * beyond, near = 0.5 + 0.5 * within
        return t > 0 ? (near, far) : (far, near)
    }

    /// P(T ≤ t), SciPy's `t.cdf`.
    public func cdf(_ t: Double) -> Double { tails(t).lower }

    /// P(T > t), SciPy's `t.sf`.
    public func sf(_ t: Double) -> Double { tails(t).upper }

    /// The t with P(T ≤ t) = p, for p in (0, 1) (SciPy's `t.ppf`), by
    /// bisection on the cdf: about 100 evaluations.
    public func quantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "quantile needs p in (0, 1) (got \(p))")
        if p == 0.5 { return 0 }
        // By symmetry, solve for the upper tail q = min(p, 1 − p) on t ≥ 0.
        let q = min(p, 1 - p)
        var hi = 1.0
        while sf(hi) > q { hi *= 2 }
        let t = bisect(from: 0, to: hi, target: -q) { -sf($0) }
        return p > 0.5 ? t : -t
    }
}

/// Fisher's F distribution with (d1, d2) degrees of freedom.
public struct FisherF: Sendable, Hashable {
    public let numeratorDegreesOfFreedom: Double
    public let denominatorDegreesOfFreedom: Double

    /// Precondition: both degrees of freedom finite and > 0.
    public init(_ d1: Double, _ d2: Double) {
        precondition(d1 > 0 && d2 > 0 && d1.isFinite && d2.isFinite, "F distribution needs finite d1, d2 > 0 (got \(d1), \(d2))")
        numeratorDegreesOfFreedom = d1
        denominatorDegreesOfFreedom = d2
    }

    /// (P(F ≤ f), P(F > f)) for f ≥ 0.
    func tails(_ f: Double) -> (lower: Double, upper: Double) {
        precondition(f >= 0, "F distribution evaluated at \(f); it needs f ≥ 0")
        if f.isInfinite { return (1, 0) }
        let d1 = numeratorDegreesOfFreedom, d2 = denominatorDegreesOfFreedom
        return incompleteBeta(d1 / 2, d2 / 2, x: d1 * f / (d1 * f + d2), y: d2 / (d1 * f + d2))
    }

    /// P(F ≤ f), SciPy's `f.cdf`.
    public func cdf(_ f: Double) -> Double { tails(f).lower }

    /// P(F > f), SciPy's `f.sf`.
    public func sf(_ f: Double) -> Double { tails(f).upper }

    /// The f with P(F ≤ f) = p, for p in (0, 1) (SciPy's `f.ppf`), by bisection.
    public func quantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "quantile needs p in (0, 1) (got \(p))")
        var hi = 1.0
        while cdf(hi) < p { hi *= 2 }
        return bisect(from: 0, to: hi, target: p, cdf)
    }
}

/// The standard normal distribution.
public enum StandardNormal {
    /// Φ(x), SciPy's `norm.cdf`.
    public static func cdf(_ x: Double) -> Double { 0.5 * Double.erfc(-x / 2.0.squareRoot()) }

    /// Φ⁻¹(p) for p in (0, 1), SciPy's `norm.ppf`: Acklam's rational
    /// approximation (relative error 1.2e-9) refined by one Halley step on
    /// erfc, which brings it to about machine precision.
    public static func quantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "quantile needs p in (0, 1) (got \(p))")
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        func tail(_ q: Double) -> Double {
            let r = (-2 * Double.log(q)).squareRoot()
            return (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5])
                / ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1)
        }
        var x: Double
        if p < 0.02425 {
            x = tail(p)
        } else if p > 1 - 0.02425 {
            x = -tail(1 - p)
        } else {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        }
        // One Halley step on Φ(x) − p, written through the smaller tail so it keeps its precision.
        let e = x < 0 ? cdf(x) - p : (1 - p) - cdf(-x)
        let u = e * (2 * Double.pi).squareRoot() * Double.exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }
}

/// The noncentral t distribution with ν degrees of freedom and
/// noncentrality δ: the law of (Z + δ)/√(χ²_ν/ν). Used for the power of
/// Welch's test.
public struct NoncentralT: Sendable, Hashable {
    public let degreesOfFreedom: Double
    public let noncentrality: Double

    /// Precondition: ν > 0 finite and |δ| ≤ 37 (beyond that the Poisson
    /// weights e^{−δ²/2} of the series underflow; power needs δ < 10).
    public init(degreesOfFreedom: Double, noncentrality: Double) {
        precondition(degreesOfFreedom > 0 && degreesOfFreedom.isFinite, "noncentral t needs finite ν > 0 (got \(degreesOfFreedom))")
        precondition(abs(noncentrality) <= 37, "noncentral t is computed for |δ| ≤ 37 (got \(noncentrality))")
        self.degreesOfFreedom = degreesOfFreedom
        self.noncentrality = noncentrality
    }

    /// P(T ≤ t), SciPy's `nct.cdf`: Lenth's algorithm AS 243 (Applied
    /// Statistics 38, 1989), the twin Poisson-weighted series of incomplete
    /// beta functions, summed to an error bound of 1e-13.
    public func cdf(_ t: Double) -> Double {
        precondition(!t.isNaN, "noncentral t evaluated at NaN")
        // The series is for t ≥ 0; P(T ≤ t; δ) = 1 − P(T ≤ −t; −δ).
        let negative = t < 0
        let tt = abs(t), delta = negative ? -noncentrality : noncentrality
        let nu = degreesOfFreedom
        var total = 0.0
        if tt > 0 {
            if tt.isInfinite { return negative ? 0 : 1 }
            let x = tt * tt / (tt * tt + nu)
            let lambda = delta * delta
            var p = 0.5 * Double.exp(-0.5 * lambda)
            var q = (2 / Double.pi).squareRoot() * p * delta
            var s = 0.5 - p
            var a = 0.5
            let b = 0.5 * nu
            let rxb = Double.pow(1 - x, b)
            let logBeta = Double.log(Double.pi.squareRoot()) + Double.logGamma(b) - Double.logGamma(a + b)
            var xOdd = incompleteBeta(a, b, x: x, y: nu / (tt * tt + nu)).lower
            var gOdd = 2 * rxb * Double.exp(a * Double.log(x) - logBeta)
            var xEven = 1 - rxb
            var gEven = b * x * rxb
            total = p * xOdd + q * xEven
            var n = 1.0
            while n <= 1000 {
                a += 1
                xOdd -= gOdd
                xEven -= gEven
                gOdd *= x * (a + b - 1) / a
                gEven *= x * (a + b - 0.5) / (a + 0.5)
                p *= lambda / (2 * n)
                q *= lambda / (2 * n + 1)
                s -= p
                n += 1
                total += p * xOdd + q * xEven
                if 2 * s * (xOdd - gOdd) <= 1e-13 { break }
            }
        }
        total += StandardNormal.cdf(-delta)
        let cdf = negative ? 1 - total : total
        return min(1, max(0, cdf))
    }

    /// P(T > t), SciPy's `nct.sf`.
    public func sf(_ t: Double) -> Double { 1 - cdf(t) }
}
