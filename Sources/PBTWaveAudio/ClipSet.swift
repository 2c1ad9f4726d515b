import Foundation

/// One recording as mu-law codes (0…255), one byte per sample.
public struct Clip: Sendable, Hashable {
    /// Where it came from: a path relative to its corpus, or a file path.
    public var name: String
    public var codes: [UInt8]

    public init(name: String, codes: [UInt8]) {
        self.name = name
        self.codes = codes
    }

    /// Encodes Float samples (see ``MuLaw``).
    public init(name: String, samples: [Float]) {
        self.init(name: name, codes: MuLaw.encode(samples))
    }
}

/// An ordered set of mu-law clips, e.g. the training or the validation part
/// of a corpus: what training windows are drawn from.
///
/// Windows never cross a clip boundary. See `ClipSet+Windows.swift` for the
/// window layout.
public struct ClipSet: Sendable {
    /// A short description for messages, e.g. "corpus/ (train)".
    public var source: String
    public var clips: [Clip]
    /// Sample rate of the codes, Hz.
    public var sampleRate: Int

    public init(source: String, clips: [Clip], sampleRate: Int) {
        self.source = source
        self.clips = clips
        self.sampleRate = sampleRate
    }

    /// Total samples over all clips.
    public var sampleCount: Int { clips.reduce(0) { $0 + $1.codes.count } }

    /// Total duration, seconds.
    public var seconds: Double { Double(sampleCount) / Double(sampleRate) }

    /// The number of samples of the longest clip (0 when empty).
    public var longestClip: Int { clips.map(\.codes.count).max() ?? 0 }

    /// How often each code occurs, over all clips (256 counts).
    public func codeHistogram() -> [Int] {
        var counts = [Int](repeating: 0, count: MuLaw.levels)
        for clip in clips {
            clip.codes.withUnsafeBufferPointer { codes in
                for code in codes { counts[Int(code)] += 1 }
            }
        }
        return counts
    }

    /// Entropy, in bits per sample, of the codes' unigram distribution: the
    /// negative log-likelihood a model that ignores context achieves at best
    /// (on these very samples). The WaveNet's validation NLL must beat it.
    /// 0 for an empty set.
    public func unigramEntropyBits() -> Double {
        entropyBits(histogram: codeHistogram())
    }
}

/// Entropy, in bits, of the distribution `histogram` counts; 0 if empty.
public func entropyBits(histogram: [Int]) -> Double {
    let total = Double(histogram.reduce(0, +))
    guard total > 0 else { return 0 }
    var bits = 0.0
    for count in histogram where count > 0 {
        let p = Double(count) / total
        bits -= p * log2(p)
    }
    return bits
}

/// Cross-entropy, in bits per sample, of the codes `histogram` counts under
/// the unigram distribution `model` counts (add-one smoothed, so codes unseen
/// in `model` cost a finite amount): the validation NLL of the best
/// context-free predictor fit on the training set.
public func crossEntropyBits(histogram: [Int], model: [Int]) -> Double {
    precondition(histogram.count == model.count, "histograms must have the same number of bins")
    let total = Double(histogram.reduce(0, +))
    guard total > 0 else { return 0 }
    let modelTotal = Double(model.reduce(0, +) + model.count)
    var bits = 0.0
    for (count, modelCount) in zip(histogram, model) where count > 0 {
        bits -= Double(count) / total * log2(Double(modelCount + 1) / modelTotal)
    }
    return bits
}
