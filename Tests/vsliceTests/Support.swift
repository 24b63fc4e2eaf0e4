import Foundation
import TestScratch
import Testing

/// What a finished child process said.
struct Run {
    /// The exit code, or the signal that ended it (`signaled`).
    var status: Int32
    var stdout: String
    var stderr: String
    var signaled = false

    /// Ended by SIGKILL (a fault point's, or the test's own kill), not an exit code 9.
    var killed: Bool { signaled && status == SIGKILL }
}

/// A child ended by a signal other than SIGKILL (which the tests and the fault points send) crashed: never a pass,
/// whatever its status reads as (SIGINT is 2, SIGILL 4, SIGTRAP 5, SIGABRT 6 — exit codes vslice uses).
func recordCrash(_ p: Process, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard p.terminationReason == .uncaughtSignal, p.terminationStatus != SIGKILL else { return }
    Issue.record("\(what) died of signal \(p.terminationStatus)", sourceLocation: sourceLocation)
}

enum Proc {
    /// Runs a program to completion (searching PATH), with a time limit so a hang fails the test.
    @discardableResult
    static func run(_ program: String, _ args: [String], timeout: TimeInterval = 600,
                    environment: [String: String]? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        p.arguments = program.hasPrefix("/") ? args : [program] + args
        if let environment {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let dir = TestScratch.url
        let outURL = dir.appendingPathComponent("vs-out-\(UUID().uuidString)")
        let errURL = dir.appendingPathComponent("vs-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline {
                p.terminate()
                Issue.record("\(program) \(args.joined(separator: " ")) timed out after \(timeout) s")
                timedOut = true
                break
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        p.waitUntilExit()
        try out.close()
        try err.close()
        if !timedOut { recordCrash(p, "\(program) \(args.prefix(3).joined(separator: " "))") }
        return Run(status: p.terminationStatus,
                   stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
                   signaled: p.terminationReason == .uncaughtSignal)
    }
}

enum Paths {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Fixtures")

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// The vslice binary built beside this test bundle.
    static let vslice: String = {
        if let env = ProcessInfo.processInfo.environment["VSLICE_BIN"] { return env }
        let bundle = Bundle.main.bundleURL
        for dir in [bundle.deletingLastPathComponent(), bundle, bundle.deletingLastPathComponent().deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("vslice")
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir), !isDir.boolValue {
                return candidate.path
            }
        }
        return packageRoot.appendingPathComponent(".build/debug/vslice").path
    }()

    /// A fresh scratch folder, removed by the caller with `cleanup`.
    static func scratch(_ tag: String) throws -> URL {
        let url = TestScratch.url.appendingPathComponent("vslice-test-\(tag)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The good fixtures (see Fixtures/README.md).
let goodFixtures = ["h264_aac.mp4", "bframes_open_gop.mp4", "no_audio.mp4", "vfr.mp4", "odd_318x178.mp4",
                    "surround51.mkv", "mono44k.mov", "offset_start.ts"]
let badFixtures = ["bad_empty.mp4", "bad_truncated.mp4", "bad_random.mp4", "bad_audio_only.m4a"]

/// A job database for this test run, never the user's.
let testHome: String = {
    let dir = TestScratch.url.appendingPathComponent("vslice-test-home-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

/// The element cost the tests' plans use (`VSLICE_ELEMENT_COST`): a fixed one, so that a default plan does not
/// depend on how busy the machine is (2 ms start-up, 0.1 ms a frame decoded, 4 ms of work a frame: segments of at
/// least 25 frames, 1 s at 25 fps). A test of the measurement itself passes `["VSLICE_ELEMENT_COST": ""]`.
let testElementCost = "0.002,0.0001,0.004"

func vslice(_ args: [String], timeout: TimeInterval = 600, environment: [String: String] = [:]) throws -> Run {
    try Proc.run(Paths.vslice, args, timeout: timeout,
                 environment: ["VSLICE_HOME": testHome, "VSLICE_ELEMENT_COST": testElementCost, "TMPDIR": TestScratch.root].merging(environment) { $1 })
}

func jsonObject(_ text: String) throws -> [String: Any] {
    guard let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw OracleError("not a JSON object: \(text.prefix(200))")
    }
    return obj
}

struct OracleError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The NDJSON lines of a `--json` run.
func ndjson(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { try jsonObject(String($0)) }
}

/// The last NDJSON event named `name`.
func lastEvent(_ text: String, _ name: String) throws -> [String: Any] {
    guard let e = try ndjson(text).last(where: { $0["event"] as? String == name }) else {
        throw OracleError("no \(name) event in: \(text.prefix(300))")
    }
    return e
}

/// A vslice process running in the background, for tests that signal it.
final class Background {
    let process = Process()
    let outURL: URL
    let errURL: URL

    init(_ args: [String], environment: [String: String] = [:]) throws {
        let dir = TestScratch.url
        outURL = dir.appendingPathComponent("vs-bg-out-\(UUID().uuidString)")
        errURL = dir.appendingPathComponent("vs-bg-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Paths.vslice)
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["VSLICE_HOME": testHome, "VSLICE_ELEMENT_COST": testElementCost, "TMPDIR": TestScratch.root].merging(environment) { $1 }) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes; false on timeout or if the process ended.
    func waitUntil(timeout: TimeInterval = 120, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Sends SIGINT twice, the second once the first was heard (its "Ctrl-C again" line on stderr): two signals
    /// sent at once can arrive as one.
    func interruptTwice() -> Bool {
        signal(SIGINT)
        let heard = waitUntil(timeout: 60) { ((try? String(contentsOf: errURL, encoding: .utf8)) ?? "").contains("Ctrl-C again") }
        signal(SIGINT)
        return heard
    }

    /// Waits for the exit (killing it after `timeout`) and returns what it said.
    func finish(timeout: TimeInterval = 300) -> Run {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            Issue.record("vslice did not exit within \(timeout) s")
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        recordCrash(process, "vslice \(process.arguments?.first ?? "")")
        return Run(status: process.terminationStatus,
                   stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
                   signaled: process.terminationReason == .uncaughtSignal)
    }
}

/// Makes a test clip with the ffmpeg CLI (testsrc2 + sine, H.264 with a keyframe every second).
func makeClip(_ path: String, size: String = "256x144", seconds: Int, rate: Int = 25) throws {
    let make = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(rate):duration=\(seconds)",
                                       "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=\(seconds)",
                                       "-c:v", "libx264", "-preset", "ultrafast", "-g", "\(rate)", "-bf", "2",
                                       "-c:a", "aac", "-b:a", "64k", path])
    guard make.status == 0 else { throw OracleError("ffmpeg could not make \(path): \(make.stderr)") }
}
