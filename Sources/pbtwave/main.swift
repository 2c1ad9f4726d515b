#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import PBTWaveCommands

// Line-buffered standard output even into a file or pipe, so results and the
// progress lines on standard error stay in order in logs.
setvbuf(stdout, nil, _IOLBF, 0)
// Output closed early (`pbtwave train … | head`) must not kill a run before
// its checkpoint: writes then fail quietly instead of raising SIGPIPE.
// (Programs run by `--exec` get every signal's default back.)
signal(SIGPIPE, SIG_IGN)
PBTWave.runAndExit()
