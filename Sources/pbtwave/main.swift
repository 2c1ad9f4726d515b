#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import PBTWaveCommands

// Line-buffered standard output even into a file or pipe, so results and the
// progress lines on standard error stay in order in logs.
setvbuf(stdout, nil, _IOLBF, 0)
PBTWave.runAndExit()
