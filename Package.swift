// swift-tools-version:6.1
import PackageDescription

// Linux only: vslice uses Glibc, /proc, prctl(PR_SET_PDEATHSIG), pipe2 and F_SETPIPE_SZ, and Debian's FFmpeg
// packages (apt); no Apple platform is declared, as none could run it.
let package = Package(
    name: "vslice",
    products: [
        .executable(name: "vslice", targets: ["vslice"]),
        .library(name: "VSliceKit", targets: ["VSliceKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // FFmpeg's C libraries, found with pkg-config (Debian's libav*-dev packages; see scripts/setup).
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat libavcodec libavutil libswresample libavfilter libswscale",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswresample-dev",
                              "libavfilter-dev", "libswscale-dev"])]
        ),
        // Starts `--process` programs in a process group that dies with vslice (C: the code between fork and
        // exec must be async-signal-safe, and prctl is variadic).
        .target(name: "CProcessGroup"),
        // The layers, each seeing only those below it (the compiler keeps the direction):
        // Support ← Model ← {Media, Ledger} ← Kit ← vslice.
        // Support: errors, cancellation, clocks, threads, child processes, file operations, paths.
        .target(name: "VSliceSupport", dependencies: ["CProcessGroup"]),
        // Model: the values every layer speaks in — settings, the plan, IDs, statuses, the work order, the
        // source's facts as the probe states them. No FFmpeg, no SQL.
        .target(name: "VSliceModel", dependencies: ["VSliceSupport"]),
        // Media: the only importer of FFmpeg (probe, decode, filter, encode, mux, the segment pipeline).
        .target(name: "VSliceMedia", dependencies: ["CFFmpeg", "VSliceSupport", "VSliceModel"]),
        // Ledger: the only importer of GRDB (the job store: tasks, events, segments, traces).
        .target(name: "VSliceLedger", dependencies: [
            "VSliceSupport", "VSliceModel", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Kit: the DAG as it runs, its steps, the executors and workers; what the command line calls.
        .target(
            name: "VSliceKit",
            dependencies: [
                "VSliceSupport", "VSliceModel", "VSliceMedia", "VSliceLedger",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "vslice",
            dependencies: [
                "VSliceKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Where every test process writes (one folder, removed at exit): shared by both test targets.
        .target(name: "TestScratch", path: "Tests/TestScratch"),
        .testTarget(name: "VSliceKitTests", dependencies: [
            "VSliceKit", "VSliceSupport", "VSliceModel", "VSliceMedia", "VSliceLedger", "CFFmpeg", "TestScratch",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "vsliceTests", dependencies: ["vslice", "VSliceKit", "TestScratch"]),
    ],
    swiftLanguageModes: [.v6]
)
