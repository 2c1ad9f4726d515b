import ArgumentParser

/// The `pbtwave` command: thin subcommands over the library modules.
public struct PBTWave: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pbtwave",
        abstract: "Train a compact WaveNet on real speech and tune its learning-rate schedule with Population Based Training.",
        subcommands: [
            ExperimentCommand.self, PBTCommand.self, WorkerCommand.self, ScheduleCommand.self, LineageCommand.self,
            TrainCommand.self, EvaluateCommand.self, GenerateCommand.self, CorpusCommand.self,
            ReportCommand.self, Bench.self,
        ]
    )
    public init() {}
}
