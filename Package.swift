// swift-tools-version: 6.1
import PackageDescription

// No unsafe flags: the vector code that needs AVX2 or AVX-512 is C in
// CKernels, each variant compiled with per-function target attributes and
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
        .library(name: "TensorModule", targets: ["TensorModule"]),
        .library(name: "SpeechAudio", targets: ["SpeechAudio"]),
        .library(name: "WaveNetModule", targets: ["WaveNetModule"]),
        .library(name: "Schedules", targets: ["Schedules"]),
        .library(name: "PBT", targets: ["PBT"]),
        .library(name: "PBTPostgres", targets: ["PBTPostgres"]),
        .library(name: "PB2", targets: ["PB2"]),
        .library(name: "WaveNetPBT", targets: ["WaveNetPBT"]),
        .library(name: "Report", targets: ["Report"]),
        .library(name: "Experiment", targets: ["Experiment"]),
        .library(name: "PBTExamples", targets: ["PBTExamples"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        // MARK: Public modules
        .target(name: "TensorModule", dependencies: ["CKernels", "COpenBLAS", "SeededRNG", realModule]),
        .target(name: "SpeechAudio", dependencies: ["CSndFile", "CSampleRate", "SeededRNG", "FileSupport"]),
        .target(name: "WaveNetModule", dependencies: ["TensorModule", "SpeechAudio", "Schedules", "SeededRNG", "FileSupport"]),
        .target(name: "Schedules", dependencies: ["FileSupport"]),
        .target(name: "PBT", dependencies: ["CSQLite", "Schedules", "SeededRNG", "FileSupport", realModule]),
        .target(name: "PBTPostgres", dependencies: ["PBT", "CLibPQ"]),
        /// PB2's GP bandit (LAPACKE); PBT reaches it through `ExploreStrategy`.
        .target(name: "PB2", dependencies: ["PBT", "COpenBLAS", "SeededRNG"]),
        .target(name: "WaveNetPBT", dependencies: ["PBT", "WaveNetModule", "SpeechAudio", "Schedules"]),
        .target(name: "Report", dependencies: ["Schedules", "FileSupport", "SeededRNG", realModule]),
        .target(name: "Experiment", dependencies: ["PBT", "Report", "Schedules"]),
        .target(name: "PBTWaveCommands", dependencies: [
            "Experiment", "Report", "WaveNetPBT", "PBTExamples", "PBT", "PBTPostgres", "PB2", "WaveNetModule", "SpeechAudio", "TensorModule",
            "Schedules", "FileSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "pbtwave", dependencies: ["PBTWaveCommands"]),

        // MARK: Implementation details
        /// Our own kernels: AVX-512, AVX2+FMA and portable C, chosen at run time from CPUID.
        .target(name: "CKernels"),
        .target(name: "SeededRNG", dependencies: [realModule]),
        .target(name: "FileSupport", dependencies: ["CCrypto"]),
        /// The toy and no-op PBT runners (for trying PBT in seconds, for
        /// measuring its overhead): examples, also used by the tests.
        .target(name: "PBTExamples", dependencies: ["PBT", "SeededRNG", realModule]),

        // MARK: System libraries (Debian -dev packages; see .ci/setup)
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["SeededRNG"], path: "Tests/TestSupport"),
        /// Naive twins of the kernels, written straight from the definitions.
        /// Synthetic experiment results, shaped like a real run's, for the report's tests.
        .target(name: "ReportFixtures", dependencies: ["Report", "Schedules"], path: "Tests/ReportFixtures"),
        .target(name: "KernelReferences", dependencies: ["TensorModule", realModule], path: "Tests/KernelReferences"),
        .testTarget(name: "TensorModuleTests", dependencies: ["TensorModule", "COpenBLAS", "SeededRNG", "TestSupport", "KernelReferences", realModule]),
        .testTarget(name: "SpeechAudioTests", dependencies: ["SpeechAudio", "FileSupport", "SeededRNG", "TestSupport"]),
        /// Counts each thread's heap allocations (interposes malloc in the test executable).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(name: "WaveNetModuleTests", dependencies: [
            "WaveNetModule", "SpeechAudio", "TensorModule", "Schedules", "SeededRNG", "FileSupport", "TestSupport", "KernelReferences",
            "AllocationCounter",
        ]),
        .testTarget(name: "SchedulesTests", dependencies: ["Schedules", "FileSupport", "TestSupport"]),
        .testTarget(name: "PBTTests", dependencies: ["PBT", "PBTPostgres", "PB2", "PBTExamples", "SeededRNG"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "ReportFixtures", "Schedules", "FileSupport", "TestSupport"]),
        .testTarget(name: "PB2Tests", dependencies: ["PB2", "PBT", "SeededRNG"]),
        .testTarget(name: "ExperimentTests", dependencies: ["Experiment", "Report", "PBT", "PB2", "PBTExamples"]),
        .testTarget(name: "CommandTests", dependencies: [
            "PBTWaveCommands", "WaveNetModule", "TensorModule", "SpeechAudio", "Schedules", "FileSupport", "TestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    ]
)

var realModule: Target.Dependency { .product(name: "RealModule", package: "swift-numerics") }
