import ArgumentParser
@testable import PBTWaveCommands
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
