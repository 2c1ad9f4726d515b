import ArgumentParser
import PBTFileSupport
import Foundation
import PBTWaveTensor

extension PBTWave {
    /// Parses and runs a command. Unlike ArgumentParser's `main()`, an error
    /// found after parsing (a `ValidationError` from a command's run, e.g. a
    /// bad --model-config) prints its message without the usage text and
    /// exits 1, not 64; and Foundation's errors are told in our words.
    public static func runAndExit(_ arguments: [String]? = nil) -> Never {
        var command: any ParsableCommand
        // `help NAME` of no command printed the overview and exited 0 (found by a helper).
        if let unknown = unknownHelpTopic(arguments ?? Array(CommandLine.arguments.dropFirst())) { exit(withError: ValidationError(unknown)) }
        do { command = try parseAsRoot(arguments) } catch { exit(withError: error) }
        do {
            // A PBTWAVE_ISA that names no variant (a typo in an A/B run) is
            // an error for every command, not a silent fallback to the best.
            do { _ = try Kernels.fromEnvironment() } catch { throw CommandError("\(error)") }
            try command.run()
            exit()
        } catch {
            exit(withError: afterParsing(error))
        }
    }

    /// For `help NAME…` where a NAME is no command (under the ones before
    /// it), what to say; nil otherwise.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help" else { return nil }
        var command: any ParsableCommand.Type = PBTWave.self
        var path = ["pbtwave"]
        for name in arguments.dropFirst() where !name.hasPrefix("-") {
            let subcommands = command.configuration.subcommands
            guard let next = subcommands.first(where: { $0._commandName == name }) else {
                guard !subcommands.isEmpty else { return nil }
                return "no command '\(name)' in \(path.joined(separator: " ")); its commands: "
                    + subcommands.map { $0._commandName }.joined(separator: ", ")
            }
            command = next
            path.append(name)
        }
        return nil
    }

    /// `error` as the user should see it once the arguments have parsed.
    static func afterParsing(_ error: any Error) -> any Error {
        switch error {
        case let error as ValidationError: return CommandError(error.message)
        default: return FileErrorText.sentence(for: error).map(CommandError.init) ?? error
        }
    }

    /// The message printed for `error` (what `exit(withError:)` prints, after
    /// `afterParsing`), for tests.
    static func userMessage(for error: any Error) -> String { message(for: afterParsing(error)) }
}
