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
        .target(
            name: "VSliceKit",
            dependencies: [
                "CFFmpeg",
                "CProcessGroup",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
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
        .testTarget(name: "VSliceKitTests", dependencies: ["VSliceKit", "CFFmpeg", "TestScratch"]),
        .testTarget(name: "vsliceTests", dependencies: ["vslice", "VSliceKit", "TestScratch"]),
    ],
    swiftLanguageModes: [.v6]
)
