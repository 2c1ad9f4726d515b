// swift-tools-version: 6.1
// Benchmarks live in their own package so that package-benchmark (and its
// dependencies) never slow the main build or the tests.
//
//     cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "PBTWaveBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "PBTWave", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Kernels",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PBTWaveTensor", package: "PBTWave"),
            ],
            path: "Benchmarks/Kernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "Training",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PBTWaveTensor", package: "PBTWave"),
                .product(name: "PBTWaveModel", package: "PBTWave"),
            ],
            path: "Benchmarks/Training",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
