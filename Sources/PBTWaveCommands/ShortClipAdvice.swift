import PBTWaveAudio

/// What sets the length of a command's training or validation windows, so
/// that "no clip is long enough" can name the thing to change.
enum WindowSetting {
    /// A flag and the value it has (`--window`, `--eval-targets`): the
    /// window holds that many scored samples plus the model's context.
    case flag(String, value: Int)
    /// Something with no flag for its windows: `the quick preset`
    /// (`experiment`), `the run's stored recipe` (`worker`).
    case fixed(by: String)
}

/// Runs `body`; when it fails because no clip of one split of `corpus` is
/// long enough for that split's windows, throws a ``CommandError`` that
/// names the split and what changes its window for this command
/// (`training` for the train split, `validation` for the other), with the
/// largest value that fits. Other errors pass through unchanged.
func explainingShortClips<T>(
    _ corpus: SpeechCorpus, training: WindowSetting, validation: WindowSetting, _ body: () throws -> T
) throws -> T {
    do {
        return try body()
    } catch let AudioError.noClipLongEnough(source, length, longest) {
        let (split, setting) = source == corpus.train.source ? ("train", training) : ("validation", validation)
        let clips = "the longest \(split) clip of \(corpus.directory) has \(longest) samples"
        switch setting {
        case let .flag(flag, value):
            let context = length - value
            let fits = longest - context
            // Training windows: --context samples before the first input one
            // (the window's first input sample is not a target); validation
            // windows: the model's receptive field.
            let isTraining = split == "train"
            let before = isTraining ? (context == 1 ? "its first input sample" : "--context \(context - 1) and the first input sample")
                : "\(context) of context (the model's receptive field)"
            let fix = fits >= 1 ? "give \(flag) \(fits) or less, or longer recordings"
                : isTraining ? "--context \(context - 1) leaves no room for the window: give --context \(max(0, longest - value - 1)) or less"
                    + (longest - value - 1 >= 0 ? "" : " and a shorter \(flag)") + ", or longer recordings"
                : "the receptive field alone is longer than every clip: use a model with a smaller receptive field (fewer or shorter dilations) "
                + "or recordings of at least \(context + 1) samples"
            throw CommandError("every \(split) window needs \(length) samples (\(flag) \(value) plus \(before)), but \(clips): \(fix)")
        case let .fixed(what):
            let seconds = Double(length) / Double(SpeechCorpus.sampleRate)
            throw CommandError("the clips are too short for \(what): its \(split) windows need \(length) samples (\(String(format: "%.2f", seconds)) s at \(SpeechCorpus.sampleRate) Hz), but \(clips): use recordings at least that long")
        }
    }
}
