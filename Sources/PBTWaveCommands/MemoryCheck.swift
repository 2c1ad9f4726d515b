import Foundation
import PBTFileSupport
import PBTWaveAudio
import PBTWaveModel

/// Refuses work that needs more memory than this process can have, before
/// it is allocated: an allocation that fails ends a Swift program in a
/// crash with a backtrace, not a message (found by a helper: `--window
/// 1000000` under a 3 GB `ulimit -v`).
enum MemoryCheck {
    /// The bytes this process can have: the machine's memory, or the
    /// address-space limit (`ulimit -v`) when that is lower; and which.
    /// Under an address-space limit, what the process already uses counts
    /// against it (found by the re-check helper: `evaluate --all` passed the
    /// check at 16 threads under 4 GB and crashed allocating).
    static var limit: (bytes: UInt64, what: String) {
        let physical = SystemMemory.physical ?? .max
        if let limit = SystemMemory.addressSpaceLimit, limit < physical {
            let used = SystemMemory.addressSpaceInUse ?? 0
            return (limit > used ? limit - used : 0, "what is left of this process's address-space limit (ulimit -v)")
        }
        return (physical, "this machine's memory")
    }

    /// The address space a thread takes besides its buffers: its stack
    /// and the allocator's arena for it (glibc reserves 64 MiB per arena),
    /// which count against `ulimit -v`.
    static let perThreadBytes = 80 << 20

    static func gib(_ bytes: UInt64) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }

    /// Throws when `bytes` (what `doing` needs) exceed the limit; `advice`
    /// says which flags make it smaller.
    /// The estimate is given a tenth more room: allocations are aligned
    /// (2 MiB for large buffers) and threads have stacks.
    static func require(_ bytes: Int, for doing: String, advice: String) throws {
        let (available, what) = limit
        guard UInt64(max(0, bytes)) > available - available / 11 else { return }
        throw CommandError("\(doing) needs about \(bytes == Int.max ? "more than 8 EiB" : gib(UInt64(bytes))) of memory, more than \(what) (\(gib(available))): \(advice)")
    }

    /// Training one model of `recipe`.
    /// Training one model of `recipe` on `data`: first that some clip of
    /// each split holds a window (else the error `windows` explains), then
    /// the memory. (A receptive field longer than every clip had made the
    /// estimate huge, and its advice, a smaller --window, could not help:
    /// found by a helper.)
    static func requireTraining(_ recipe: TrainingRecipe, on data: SpeechCorpus,
                                windows: (training: WindowSetting, validation: WindowSetting)) throws {
        try explainingShortClips(data, training: windows.training, validation: windows.validation) {
            try data.train.requireWindow(length: recipe.training.windowLength)
            try data.validation.requireWindow(length: Validator.windowLength(recipe.model, targets: recipe.evaluation.targets))
        }
        try requireTraining(recipe)
    }

    private static func requireTraining(_ recipe: TrainingRecipe) throws {
        let t = recipe.training
        try require(recipe.memoryBytes,
                    for: "training a model at --batch \(t.batch) × --window \(t.window)"
                        + (t.context > 0 ? " (+ --context \(t.context))" : "") + ", validating on --eval-targets \(recipe.evaluation.targets)",
                    advice: "give a smaller --window or --batch (or --eval-targets)")
    }
}
