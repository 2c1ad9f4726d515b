// swift-tools-version: 6.1
import PackageDescription

// Kernels, the model and audio loading (mu-law, checksums over the corpus)
// are the hot path: they are optimised even in debug builds so that
// `swift test` (gradient checks, overfit tests, the real corpus) runs quickly.
// `-O` keeps `precondition` (public shape checks) and drops `assert`.
// The kernels are written with SIMD8<Float>; on x86-64 they need AVX2 and FMA
// (every x86-64 server since 2015; without FMA a fused multiply-add becomes a
// libm call).
#if arch(x86_64)
let hotPath: [SwiftSetting] = [.unsafeFlags(["-O", "-Xcc", "-mavx2", "-Xcc", "-mfma"])]
#else
let hotPath: [SwiftSetting] = [.unsafeFlags(["-O"])]
#endif

let package = Package(
    name: "PBTWave",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pbtwave", targets: ["pbtwave"]),
        .library(name: "TensorModule", targets: ["TensorModule"]),
        .library(name: "SpeechAudio", targets: ["SpeechAudio"]),
        .library(name: "WaveNetModule", targets: ["WaveNetModule"]),
        .library(name: "PBT", targets: ["PBT"]),
        .library(name: "PBTPostgres", targets: ["PBTPostgres"]),
        .library(name: "PBTExperiment", targets: ["PBTExperiment"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        // MARK: Public modules
        .target(name: "SeededRNG"),
        .target(name: "FileSupport", dependencies: ["CCrypto"]),
        .target(name: "TensorModule", dependencies: ["COpenBLAS", "SeededRNG"], swiftSettings: hotPath),
        .target(name: "SpeechAudio", dependencies: ["CSndFile", "CSampleRate", "SeededRNG", "FileSupport"], swiftSettings: hotPath),
        .target(name: "WaveNetModule", dependencies: ["TensorModule", "SpeechAudio", "SeededRNG", "FileSupport"], swiftSettings: hotPath),
        .target(name: "PBT", dependencies: ["CSQLite", "SeededRNG", "FileSupport"]),
        .target(name: "PBTPostgres", dependencies: ["PBT", "CLibPQ", "SeededRNG"]),
        .target(
            name: "PBTExperiment",
            dependencies: ["PBT", "PBTPostgres", "WaveNetModule", "SpeechAudio", .product(name: "RealModule", package: "swift-numerics")]
        ),
        .target(name: "PB2", dependencies: ["COpenBLAS", "SeededRNG"]),
        .target(
            name: "PBTWaveCommands",
            dependencies: [
                "PBTExperiment", "PBT", "PBTPostgres", "WaveNetModule", "SpeechAudio", "TensorModule",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "pbtwave", dependencies: ["PBTWaveCommands"]),

        // MARK: System libraries (Debian -dev packages; see .ci/run)
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSampleRate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["SeededRNG"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorModuleTests", dependencies: ["TensorModule", "COpenBLAS", "TestSupport"]),
        .testTarget(name: "SpeechAudioTests", dependencies: ["SpeechAudio", "FileSupport", "TestSupport"]),
        .testTarget(name: "WaveNetModuleTests", dependencies: ["WaveNetModule", "SpeechAudio", "TensorModule", "TestSupport"]),
        .testTarget(name: "PBTTests", dependencies: ["PBT", "PBTPostgres"]),
        .testTarget(
            name: "PBTExperimentTests",
            dependencies: ["PBTExperiment", "PBTWaveCommands", .product(name: "RealModule", package: "swift-numerics")]
        ),
        .testTarget(name: "PB2Tests", dependencies: ["PB2", "SeededRNG"]),
    ]
)
