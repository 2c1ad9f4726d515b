import Foundation
import PBT
import PBTWaveAudio
import PBTWaveRunner

/// What `pbtwave pbt` and `pbtwave worker` share: driving workers on a run
/// with a progress line, and reporting what happened.
enum PBTSession {
    /// Runs `runner`'s workers on the run until it is done, or until SIGINT,
    /// SIGTERM or SIGHUP stops it (`stopSignal`: the signal, for the exit
    /// status 128 + signal). A training program (`ExecRunner`) is killed
    /// and its trial given back to the queue; an in-process trial (WaveNet,
    /// toy) finishes and is reported first, unless a second signal comes:
    /// then the running trials go back to the queue and the process exits
    /// at once. Either way no trial waits for its lease to expire.
    static func drive(_ runner: any TrialRunner, coordinator: PBTCoordinator, options: DriverOptions,
                      line: ProgressLine) throws -> (result: PBTRunResult, stopSignal: Int32?) {
        let callback: (@Sendable (PBTProgress) -> Void)? = line.isOff ? nil : { @Sendable in line.update($0) }
        func drive<R: TrialRunner>(_ runner: R) throws -> (result: PBTRunResult, stopSignal: Int32?) {
            let driver = PBTDriver(coordinator: coordinator, runner: runner, options: options)
            let signals: StopOnSignals
            if let exec = runner as? ExecRunner {
                signals = StopOnSignals { signal, again in
                    line.message("pbt: \(signalName(signal)): " + (again ? "killing the running programs now (SIGKILL)"
                        : "stopping; the running programs get SIGTERM, then SIGKILL after \(exec.killGrace) (again: at once)"))
                    driver.requestStop()
                    // A store out of reach is not waited for (leases bring back what this process holds).
                    coordinator.store.stopRetrying()
                    exec.stop("pbtwave got \(signalName(signal))", immediately: again)
                }
            } else {
                signals = StopOnSignals { signal, again in
                    guard again else {
                        line.message("pbt: \(signalName(signal)): stopping after the running trials, which are reported first "
                                     + "(again: stop at once, and they run again later)")
                        driver.requestStop()
                        coordinator.store.stopRetrying()
                        return
                    }
                    let released = driver.releaseClaims()
                    line.message("pbt: \(signalName(signal)): stopping now; \(released) running trial(s) given back to the queue, "
                                 + "to run again when the run goes on")
                    StopOnSignals.exitNow(signal)
                }
            }
            defer { signals.cancel() }
            do {
                return (try driver.run(progress: callback), signals.first)
            } catch let error as any StoreGaveUp where error.storeGaveUp && signals.first != nil {
                // Stopped by a signal while the store was out of reach: the signal's exit status, as for any
                // stop, with what could not be done said (it exited 1 with an error: found by a helper).
                line.message("pbt: \(error)")
                StopOnSignals.exitNow(signals.first!)
            }
        }
        let outcome = try drive(runner)
        printTime(outcome.result.time, runner: runner)
        if let wavenet = runner as? WaveNetRunner, let best = outcome.result.best?.evaluation {
            let validator = try wavenet.recipe.evaluation.validator(wavenet.corpus, config: wavenet.recipe.model)
            let unigram = TrainingReporter.unigram(on: validator, wavenet.corpus)
            if let warning = TrainingReporter.baselineWarning(nll: best, unigram: unigram, what: "the best trial") { printNote(warning) }
        }
        return outcome
    }

    /// Where the workers' time went (and, for WaveNet, how much of it was
    /// PBT's exploit: loading and saving checkpoints).
    static func printTime(_ t: WorkerTime, runner: any TrialRunner) {
        // A process that ran no trial (it joined a finished run) has no time to split.
        guard t.totalSeconds > 0, t.runnerSeconds > 0 else { return }
        print(String(format: "worker time: runner %.1f%%, controller+store %.2f%%, idle %.1f%% (%.1f s summed over workers)",
                     100 * t.runnerSeconds / t.totalSeconds, 100 * t.coordinationFraction, 100 * t.idleSeconds / t.totalSeconds,
                     t.totalSeconds))
        if let wavenet = runner as? WaveNetRunner {
            let timing = wavenet.timing
            print(String(format: "WaveNet workers: training+validation %.1f%%, checkpoint load+save %.2f%% of worker time; "
                         + "controller+store+checkpoint together %.2f%%",
                         100 * timing.computeSeconds / t.totalSeconds, 100 * timing.checkpointSeconds / t.totalSeconds,
                         100 * (timing.checkpointSeconds + t.coordinationSeconds) / t.totalSeconds))
        }
    }

    /// The run's outcome, its best trial, and (with `exportTo`) the best
    /// trial's learned schedule written there as schedule.csv and
    /// schedule.json (with the run's replay recipe).
    static func printSummary(_ result: PBTRunResult, coordinator: PBTCoordinator, exportTo directory: URL?) throws {
        let settings = coordinator.settings
        let failed = result.trials.filter { $0.status == .failed }.count
        let ran = result.trials.filter(\.status.isTerminal).count
        // Created trials that have not run yet (queued, or interrupted) are not done; one another
        // process runs is said as such (it read "waiting to run").
        let running = result.trials.filter { $0.status == .running }.count
        let waiting = result.trials.count - ran - running
        // A run whose failures could not all be refilled ends short of its budget: not "complete".
        let outcome = !result.done ? "run stopped" : ran < settings.trialBudget ? "run ended short of its budget" : "run complete"
        print("pbt: \(outcome): \(ran)/\(settings.trialBudget) trials"
              + (failed > 0 ? " (\(failed) failed)" : "") + ", \(result.completedThisSession) in this session"
              + (running > 0 ? "; \(running) running in another process" : "")
              + (waiting > 0 ? "; \(waiting) created and waiting to run (run the same command again to go on)" : ""))
        guard let best = result.best else {
            print("pbt: no trial finished; nothing to export")
            return
        }
        // A stopped run has no final population yet: its best so far, and a
        // schedule that is provisional.
        print((result.done ? "best trial of the final population" : "best trial so far (the run is not complete)")
              + ": #\(best.id), generation \(best.generation), global step \(best.endStep), loss \(best.evaluation!)")
        let kept = result.bestCheckpoint.map { FileManager.default.fileExists(atPath: $0.path) ? $0.path : "\($0.path) (deleted since: not on disk)" }
        if best.isRetired {
            // Every trial that could be the result is retired: say so, not "(released)".
            print("checkpoint: none that scored: the trial was \(best.failure ?? "retired") (no live trial was left to report)")
        } else {
            print("checkpoint: \(kept ?? "(released)")")
        }
        guard let directory else { return }
        let schedule = try Lineage.export(trial: best.id, of: result.trials, configuration: coordinator.configuration)
        // A run not complete writes its best so far as schedule-so-far.*, never as schedule.* (found by a helper: a
        // stopped run's schedule.json stayed, unmarked, while a resumed run went on, and train replayed it).
        let stem = result.done ? scheduleStem : soFarStem
        for format in HyperparameterSchedule.Format.allCases {
            try schedule.write(to: directory.appendingPathComponent("\(stem).\(format.rawValue)"), format: format)
        }
        if result.done { removeSchedules(in: directory, stem: soFarStem) }
        // Every hyperparameter, not lr alone (found by a helper: "lr 0.5 throughout" beside five changes of another).
        let trends = schedule.names.compactMap { name in
            schedule.column(name).map {
                let real = schedule.realValued.contains(name)
                return $0.count == 1 ? "\(name) \($0[0].value.text(real: real)) throughout"
                    : "\(name) \($0.first!.value.text(real: real)) at step 0 → \($0.last!.value.text(real: real)) from step \($0.last!.step), "
                    + "\($0.count - 1) change\($0.count == 2 ? "" : "s")"
            }
        }
        let trend = trends.isEmpty ? "" : " (" + trends.joined(separator: "; ") + ")"
        print("schedule\(result.done ? "" : " so far (\(scheduleStem).csv and \(scheduleStem).json are written when the run completes)"): "
              + "\(directory.appendingPathComponent("\(stem).csv").path), \(stem).json: \(schedule.rows.count) change point(s)\(trend)")
    }

    /// The names of the learned schedule's files in a run directory: the
    /// complete run's, and a stopped run's best so far.
    static let scheduleStem = "schedule", soFarStem = "schedule-so-far"

    /// Removes `stem`.csv and `stem`.json from `directory` (those not there are no matter).
    static func removeSchedules(in directory: URL, stem: String) {
        for format in HyperparameterSchedule.Format.allCases {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("\(stem).\(format.rawValue)"))
        }
    }

    /// Before a session trains more of a run: the schedule files an earlier
    /// session wrote no longer hold the run's result (a complete run's whose
    /// budget was raised, a stopped run's best so far), so they go; the
    /// session's end writes them again.
    static func removeStaleSchedules(in directory: URL) {
        removeSchedules(in: directory, stem: scheduleStem)
        removeSchedules(in: directory, stem: soFarStem)
    }

    /// For a run that is done, with a store other processes share: nothing
    /// will run again, so the checkpoints of killed workers (temporaries,
    /// outputs never reported) can go. A worker still writing a late result
    /// loses its output, but that result would be ignored anyway.
    static func sweep(_ coordinator: PBTCoordinator) throws {
        let (removed, stopped) = try coordinator.sweepAfterTheEnd()
        if stopped > 0 {
            print("pbt: stopped \(stopped) training program\(stopped == 1 ? "" : "s") of workers that died or were cut off from the store and still ran (their trials ran again)")
        }
        if removed > 0 { print("pbt: removed \(removed) checkpoint\(removed == 1 ? "" : "s") that no trial holds (left by workers that stopped or died mid-trial)") }
    }

    /// Exits non-zero, with the summary, for a run whose trials all failed
    /// or that ended on failures (after the summary, a signal's exit status
    /// and the end-of-run sweep).
    static func failIfFailed(_ result: PBTRunResult) throws {
        if let summary = result.failureSummary { throw CommandError("pbt: \(summary)") }
    }
}
