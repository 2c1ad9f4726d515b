// swift-tools-version: 6.1
import PackageDescription

// No unsafe flags: the vector code that needs AVX2 or AVX-512 is C in
// CPBTWaveKernels, each variant compiled with per-function target attributes and
// chosen at run time from CPUID, so the package builds for any x86-64 or
// arm64 and others can depend on it by version. Debug builds of the tests run
// faster with `swift test -Xcc -O2 -Xswiftc -O`.

// Linux (Debian 12) is what is built and tested: the system libraries come
// from Debian's -dev packages through pkg-config, and the code uses POSIX
// calls (flock, posix_spawn, /proc) guarded for Glibc. Each target lists
// exactly the modules it imports.
let package = Package(
    name: "PBTWave",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pbtwave", targets: ["pbtwave"]),
        .library(name: "PBTWaveTensor", targets: ["PBTWaveTensor"]),
        .library(name: "PBTWaveAudio", targets: ["PBTWaveAudio"]),
        .library(name: "PBTWaveModel", targets: ["PBTWaveModel"]),
        .library(name: "PBTSchedules", targets: ["PBTSchedules"]),
        .library(name: "PBT", targets: ["PBT"]),
        .library(name: "PBTPostgres", targets: ["PBTPostgres"]),
        .library(name: "PBTPB2", targets: ["PBTPB2"]),
        .library(name: "PBTWaveRunner", targets: ["PBTWaveRunner"]),
        .library(name: "PBTReport", targets: ["PBTReport"]),
        .library(name: "PBTExperiment", targets: ["PBTExperiment"]),
        .library(name: "PBTExamples", targets: ["PBTExamples"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        // MARK: Public modules
        .target(name: "PBTWaveTensor", dependencies: ["CPBTWaveKernels", "CPBTOpenBLAS", "PBTSeededRNG", realModule]),
        .target(name: "PBTWaveAudio", dependencies: ["CPBTSndFile", "CPBTSampleRate", "PBTSeededRNG", "PBTFileSupport"]),
        .target(name: "PBTWaveModel", dependencies: ["PBTWaveTensor", "PBTWaveAudio", "PBTSchedules", "PBTSeededRNG", "PBTFileSupport"]),
        .target(name: "PBTSchedules", dependencies: ["PBTFileSupport"]),
        .target(name: "PBT", dependencies: ["CPBTSQLite", "PBTSchedules", "PBTSeededRNG", "PBTFileSupport", realModule]),
        .target(name: "PBTPostgres", dependencies: ["PBT", "CPBTLibPQ"]),
        /// PB2's GP bandit (LAPACKE); PBT reaches it through `ExploreStrategy`.
        .target(name: "PBTPB2", dependencies: ["PBT", "CPBTOpenBLAS", "PBTSeededRNG"]),
        .target(name: "PBTWaveRunner", dependencies: ["PBT", "PBTWaveModel", "PBTWaveAudio", "PBTSchedules"]),
        .target(name: "PBTReport", dependencies: ["PBTSchedules", "PBTFileSupport", "PBTSeededRNG", realModule]),
        .target(name: "PBTExperiment", dependencies: ["PBT", "PBTReport", "PBTSchedules"]),
        .target(name: "PBTWaveCommands", dependencies: [
            "PBTExperiment", "PBTReport", "PBTWaveRunner", "PBTExamples", "PBT", "PBTPostgres", "PBTPB2", "PBTWaveModel", "PBTWaveAudio", "PBTWaveTensor",
            "PBTSchedules", "PBTFileSupport", "PBTSeededRNG", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "pbtwave", dependencies: ["PBTWaveCommands"]),

        // MARK: Implementation details
        /// Our own kernels: AVX-512, AVX2+FMA and portable C, chosen at run time from CPUID.
        .target(name: "CPBTWaveKernels"),
        .target(name: "PBTSeededRNG", dependencies: [realModule]),
        .target(name: "PBTFileSupport", dependencies: ["CPBTCrypto"]),
        /// The toy and no-op PBT runners (for trying PBT in seconds, for
        /// measuring its overhead): examples, also used by the tests.
        .target(name: "PBTExamples", dependencies: ["PBT", "PBTSeededRNG", realModule]),

        // MARK: System libraries (Debian -dev packages; see .ci/setup)
        .systemLibrary(name: "CPBTOpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CPBTSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CPBTSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),
        .systemLibrary(name: "CPBTSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPBTLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CPBTCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["PBTSeededRNG"], path: "Tests/TestSupport"),
        /// Naive twins of the kernels, written straight from the definitions.
        /// Synthetic experiment results, shaped like a real run's, for the report's tests.
        .target(name: "ReportFixtures", dependencies: ["PBTReport", "PBTSchedules"], path: "Tests/ReportFixtures"),
        .target(name: "KernelReferences", dependencies: ["PBTWaveTensor", realModule], path: "Tests/KernelReferences"),
        .testTarget(name: "TensorModuleTests", dependencies: ["PBTWaveTensor", "CPBTOpenBLAS", "PBTSeededRNG", "TestSupport", "KernelReferences", realModule]),
        .testTarget(name: "SpeechAudioTests", dependencies: ["PBTWaveAudio", "PBTFileSupport", "PBTSeededRNG", "TestSupport", "CPBTSampleRate"]),
        /// Counts each thread's heap allocations (interposes malloc in the test executable).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(name: "WaveNetModuleTests", dependencies: [
            "PBTWaveModel", "PBTWaveAudio", "PBTWaveTensor", "PBTSchedules", "PBTSeededRNG", "PBTFileSupport", "TestSupport", "KernelReferences",
            "AllocationCounter",
        ]),
        .testTarget(name: "SchedulesTests", dependencies: ["PBTSchedules", "PBTFileSupport", "TestSupport"]),
        .testTarget(name: "PBTTests", dependencies: ["PBT", "PBTPostgres", "PBTPB2", "PBTExamples", "PBTSeededRNG", "PBTFileSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["PBTReport", "ReportFixtures", "PBTSchedules", "PBTFileSupport", "TestSupport"]),
        .testTarget(name: "PB2Tests", dependencies: ["PBTPB2", "PBT", "PBTSeededRNG"]),
        .testTarget(name: "ExperimentTests", dependencies: ["PBTExperiment", "PBTReport", "PBT", "PBTPB2", "PBTExamples", "PBTSchedules"]),
        .testTarget(name: "CommandTests", dependencies: [
            "PBTWaveCommands", "PBTWaveModel", "PBTWaveTensor", "PBTWaveAudio", "PBTSchedules", "PBTFileSupport", "TestSupport",
            "PBTWaveRunner", "PBT", "PBTReport", "ReportFixtures", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    ]
)

var realModule: Target.Dependency { .product(name: "RealModule", package: "swift-numerics") }
