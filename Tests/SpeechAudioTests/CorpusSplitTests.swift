import PBTFileSupport
import Foundation
@testable import PBTWaveAudio
import Testing

/// The leading 32 bits of sha256(path), computed here from the digest so the
/// test does not lean on the rule it checks.
private func leadingBits(_ path: String) -> UInt32 {
    let digest = Array(path.utf8).withUnsafeBytes { SHA256Digest.digest(of: $0) }
    return digest.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
}

/// `count` names `clipN.wav` that the hash alone puts all in train
/// (`allValidation` false) or all in validation, at `percent`.
private func names(count: Int, allValidation: Bool, percent: Int) -> [String] {
    var names: [String] = []
    for index in 0... where names.count < count {
        let name = "clip\(index).wav"
        if (Int(leadingBits(name) % 100) < percent) == allValidation { names.append(name) }
        if names.count == count { break }
    }
    return names
}

/// Builds a corpus of `names` (short 16 kHz WAVs) at `percent`; returns
/// the corpus folder and the summary (the sources are removed).
private func buildCorpus(_ names: [String], percent: Int) throws -> (out: TemporaryFolder, summary: CorpusBuildSummary) {
    let sources = TemporaryFolder("split-sources")
    for (index, name) in names.enumerated() {
        try sources.writeWAV(name, samples: pcmGridSignal(count: 4000, seed: UInt64(index + 1)))
    }
    let out = TemporaryFolder("split-out")
    var options = CorpusBuildOptions(source: sources.path, output: out.path)
    options.validationPercent = percent
    options.jobs = 1
    return (out, try CorpusBuilder.build(options))
}

@Suite("corpus split")
struct CorpusSplitTests {
    @Test("a small corpus whose hash split leaves validation empty gets the lowest-hash file in validation")
    func smallCorpusGetsAValidationFile() throws {
        let files = names(count: 10, allValidation: false, percent: 10)
        let (out, summary) = try buildCorpus(files, percent: 10)
        let lowest = try #require(files.min { leadingBits($0) < leadingBits($1) })
        #expect(lines(out.file("validation.txt")) == [lowest])
        #expect(Set(lines(out.file("train.txt"))) == Set(files).subtracting([lowest]))
        #expect(summary.validationFiles == 1 && summary.trainFiles == 9 && summary.warnings.isEmpty, "\(summary)")
        let corpus = try SpeechCorpus.load(directory: out.path)
        #expect(corpus.validation.clips.map(\.name) == [lowest])
    }

    @Test("a corpus the hash puts wholly in validation keeps the highest-hash file in train")
    func allValidationKeepsATrainFile() {
        let files = names(count: 6, allValidation: true, percent: 90)
        let highest = files.max { leadingBits($0) < leadingBits($1) }!
        let validation = CorpusLayout.validationFiles(files, percent: 90)
        #expect(validation == Set(files).subtracting([highest]))
    }

    @Test("splits the hash already fills are left as they are; percent 0 or 100 and a single file are not changed")
    func filledSplitsAreUnchanged() {
        let paths = (0 ..< 200).map { "speaker\($0 % 7)/utterance\($0).wav" }
        for percent in [5, 10, 50, 95] {
            let hashOnly = Set(paths.filter { Int(leadingBits($0) % 100) < percent })
            #expect(!hashOnly.isEmpty && hashOnly.count < paths.count)
            #expect(CorpusLayout.validationFiles(paths, percent: percent) == hashOnly, "percent \(percent)")
        }
        #expect(CorpusLayout.validationFiles(paths, percent: 0).isEmpty)
        #expect(CorpusLayout.validationFiles(paths, percent: 100) == Set(paths))
        let lone = names(count: 1, allValidation: false, percent: 10)
        #expect(CorpusLayout.validationFiles(lone, percent: 10).isEmpty)
    }

    @Test("an empty split: describing the corpus works, loading it to train names the split and what to do")
    func emptySplitIsExplained() throws {
        let (out, summary) = try buildCorpus(names(count: 3, allValidation: false, percent: 10), percent: 0)
        #expect(summary.validationFiles == 0 && summary.warnings.count == 1)
        #expect(summary.warnings.first?.contains("validation.txt is empty") == true, "\(summary.warnings)")

        let manifest = try CorpusManifest.read(directory: out.path)
        #expect(manifest.train.count == 3 && manifest.validation.isEmpty)
        let described = try SpeechCorpus.load(directory: out.path, requireBothSplits: false)
        #expect(described.train.clips.count == 3 && described.validation.clips.isEmpty)
        #expect(try SpeechCorpus.verify(directory: out.path).isEmpty)

        let error = audioError { () throws(AudioError) in try SpeechCorpus.load(directory: out.path) }
        #expect(error == .splitEmpty(directory: out.path, split: "validation", files: 3))
        let message = error?.description ?? ""
        #expect(message.contains("empty validation split") && message.contains("--validation-percent between 1 and 99"), "\(message)")
        #expect(!message.contains("line 1"), "\(message)")
    }
}
