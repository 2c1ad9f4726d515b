import ArgumentParser
@testable import PBTWaveCommands
import PBTWaveAudio
import Testing

/// Help texts are written as paragraphs and wrapped by ArgumentParser, so no
/// line of an overview or discussion has a gap left by hard-wrapped source.
@Suite struct HelpTextTests {
    /// Every command, depth first, with its path of names.
    static func commands(_ command: ParsableCommand.Type = PBTWave.self) -> [ParsableCommand.Type] {
        [command] + command.configuration.subcommands.flatMap { commands($0) }
    }

    @Test func everyCommandHasAnAbstract() {
        for command in Self.commands() {
            #expect(!command.configuration.abstract.isEmpty, "\(command) has no abstract")
        }
    }

    /// The overview and the option's help name the converter `corpus build`
    /// really uses by default (the overview once said `medium`).
    @Test func corpusBuildHelpNamesTheDefaultConverter() throws {
        let command = try CorpusBuild.parse(["--from", "audio"])
        #expect(command.quality == CorpusBuildOptions(source: "audio", output: "corpus").quality)
        let overview = CorpusBuild.configuration.discussion
        #expect(overview.contains("its \(command.quality.rawValue) sinc converter unless --quality"), "\(overview)")
        for other in ResamplingQuality.allCases where other != command.quality {
            #expect(!overview.contains("\(other.rawValue) sinc"), "the overview names \(other.rawValue): \(overview)")
        }
    }

    @Test func overviewsHaveNoRaggedGaps() throws {
        for command in Self.commands() {
            let help = command.helpMessage(columns: 80)
            // The prose is everything before USAGE; option columns are aligned on purpose.
            let prose = help.components(separatedBy: "USAGE:").first ?? help
            for line in prose.split(separator: "\n") {
                let text = line.drop(while: { $0 == " " })
                #expect(!text.contains("   "), "\(command): help line with a gap: \(line)")
                #expect(line.count <= 80, "\(command): help line longer than 80 columns: \(line)")
            }
        }
    }
}
