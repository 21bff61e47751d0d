// swift-tools-version: 6.1
import PackageDescription
import Foundation

// Release builds are tuned for the machine that builds them (the set-up builds where it runs).
// TAILOR_PORTABLE=1 drops -march=native for a binary that runs on any x86-64.
// The AVX2 kernels are compiled in when the building CPU has AVX2/FMA/F16C (AVX-512 machines
// too); otherwise the portable kernels (Swift SIMD, compiler-vectorized loops) are used.
let portable = Context.environment["TAILOR_PORTABLE"] == "1"
let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
let avx2 = !portable && cpuinfo.contains(" avx2") && cpuinfo.contains(" fma") && cpuinfo.contains(" f16c")
var fast: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"] + (portable ? [] : ["-Xcc", "-march=native"])),
]
if avx2 { fast.append(.define("TAILOR_AVX2")) }
// The AVX-512 decoding kernels (VNNI dot products, byte permutes) where the building CPU has them.
let avx512 = avx2 && ["avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi"].allSatisfy { cpuinfo.contains(" \($0)") }
if avx512 { fast.append(.define("TAILOR_AVX512")) }
// The AMX int8 kernel of the packed products where the building CPU has AMX (used only when the
// running CPU has it too and Linux grants the tile state: checked at run time).
let amx = avx512 && cpuinfo.contains(" amx_int8") && cpuinfo.contains(" amx_tile")
if amx { fast.append(.define("TAILOR_AMX")) }
// The fp16 encoder GEMM (HalfGEMM) where the building CPU has AVX512-FP16.
let avx512fp16 = avx512 && cpuinfo.contains(" avx512_fp16")
if avx512fp16 { fast.append(.define("TAILOR_AVX512FP16")) }
// The libraries compile in Swift 6 language mode (strict concurrency checking).
fast.append(.swiftLanguageMode(.v6))
// Kernels, models and training loops run real models in the test suite: optimized in debug builds too.
let optimizedInTests: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Tailor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tailor", targets: ["tailor"]),
        .library(name: "TailorModels", targets: ["TailorModels"]),
        .library(name: "TailorRAG", targets: ["TailorRAG"]),
        .library(name: "TailorTuning", targets: ["TailorTuning"]),
        .library(name: "TailorEval", targets: ["TailorEval"]),
        .library(name: "TailorServer", targets: ["TailorServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(name: "TailorKernels", dependencies: ["CBLAS"], swiftSettings: fast + optimizedInTests),
        .target(name: "TailorFormats", dependencies: ["TailorKernels"], swiftSettings: fast),
        .target(name: "TailorTokenizers", dependencies: ["TailorFormats"], swiftSettings: fast),
        .target(name: "TailorModels",
                dependencies: ["TailorKernels", "TailorFormats", "TailorTokenizers"],
                swiftSettings: fast + optimizedInTests),
        .systemLibrary(name: "CPoppler", path: "Sources/CPoppler", pkgConfig: "poppler-glib",
                       providers: [.apt(["libpoppler-glib-dev"])]),
        .target(name: "TailorRAG", dependencies: [
            "TailorModels", "TailorFormats", "TailorKernels", "CPoppler",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ], swiftSettings: fast),
        .target(name: "TailorTuning", dependencies: ["TailorModels", "TailorFormats", "TailorKernels", "CBLAS"],
                swiftSettings: fast + optimizedInTests),
        .target(name: "TailorEval", dependencies: ["TailorRAG", "TailorTuning", "TailorModels", "TailorFormats"], swiftSettings: fast),
        .target(name: "TailorServer", dependencies: [
            "TailorEval", "TailorRAG", "TailorTuning", "TailorModels", "TailorFormats", "TailorKernels",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "MultipartKit", package: "multipart-kit"),
        ], swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "tailor", dependencies: [
            "TailorServer", "TailorEval", "TailorRAG", "TailorTuning", "TailorModels", "TailorFormats", "TailorTokenizers", "TailorKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TailorTestSupport", path: "Tests/TailorTestSupport"),
        .testTarget(name: "TailorKernelsTests", dependencies: ["TailorKernels", "TailorFormats"],
                    resources: [.copy("Fixtures")],
                    swiftSettings: avx512fp16 ? [.define("TAILOR_AVX512FP16")] : []),
        .testTarget(name: "TailorCLITests", dependencies: ["tailor", "TailorTestSupport"]),
        .testTarget(name: "TailorServerTests", dependencies: [
            "TailorServer", "TailorModels", "TailorRAG", "TailorTestSupport", "tailor",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "TailorFormatsTests", dependencies: ["TailorFormats", "TailorTestSupport"]),
        .testTarget(name: "TailorTokenizersTests", dependencies: ["TailorTokenizers", "TailorFormats", "TailorTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TailorModelsTests",
                    dependencies: ["TailorModels", "TailorTokenizers", "TailorFormats", "TailorTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TailorEvalTests", dependencies: ["TailorEval", "TailorModels", "TailorTestSupport"]),
        .testTarget(name: "TailorTuningTests", dependencies: ["TailorTuning", "TailorModels", "TailorFormats", "TailorTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TailorRAGTests",
                    dependencies: ["TailorRAG", "TailorModels", "TailorTestSupport", .product(name: "PostgresNIO", package: "postgres-nio")],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
