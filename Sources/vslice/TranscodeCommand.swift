import ArgumentParser
import Foundation
import Logging
import VSliceKit

struct TranscodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcode",
        abstract: "Transcode INPUT to OUTPUT: audio once, video in parallel segments, merged and verified.",
        discussion: "The container follows OUTPUT's extension: .mp4, .mov, .mkv (or .webm).")

    @Argument(help: "The input media file.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "The output file.")
    var output: String

    @OptionGroup var options: TranscodeOptions

    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    @Flag(help: "Keep the work folder (segments, audio) after success.")
    var keepTemp = false

    @Option(help: "Folder for work folders (default: beside the output).")
    var workDir: String?

    @Flag(help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(help: "Start over instead of resuming an unfinished task for the same input and output.")
    var fresh = false

    @Option(help: "Attempts per segment before the task fails.")
    var maxAttempts = 3

    @OptionGroup var store: StoreOptions

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log each step, and FFmpeg's warnings, on stderr.")
    var verbose = false

    func run() throws {
        let settings = try options.settings()
        if verbose { FFmpegLog.set(.warning) }
        Signals.install()
        let logger = Log.make(verbose: verbose)
        let progress = ProgressPrinter(label: (input as NSString).lastPathComponent, enabled: !quiet && !json)
        let request = TranscodeRequest(input: input, output: output, settings: settings, force: force,
                                       keepTemp: keepTemp, workRoot: workDir)
        let report = try Transcoder(request: request, logger: logger, onEvent: progress.handle)
            .run(store: store.open(), fresh: fresh, maxAttempts: maxAttempts)
        if json {
            try Terminal.printJSON(report)
        } else if !quiet {
            print(String(format: "%@: %d frames in %d segments, %.2f s", report.output, report.frames, report.segments,
                         report.wallSeconds))
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check OUTPUT against its source: frame count, timestamps, DTS order, A/V durations and offset.")

    @Argument(help: "The transcoded file.")
    var output: String

    @Option(help: "The source it was made from.")
    var against: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let report = try Verifier.verify(output: output, against: against)
        if json {
            try Terminal.printJSON(report)
        } else {
            print(report.ok ? "ok: \(report.outputFrames) frames, timestamps within \(String(format: "%.6f", report.maxTimestampError)) s"
                            : "differs:\n  " + report.problems.joined(separator: "\n  "))
        }
        if !report.ok { throw VSliceError(.processing, "verify", path: output, reason: report.problems.joined(separator: "; ")) }
    }
}

enum Log {
    static func make(verbose: Bool) -> Logger {
        var logger = Logger(label: "vslice") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose ? .debug : .warning
        return logger
    }
}

/// Ctrl-C (or SIGTERM) once: stop dispatching new segments, let running ones finish. Twice: abort now.
/// Either way the work folder is kept and the process exits 130.
enum Signals {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []

    static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                if Cancellation.stopRequested {
                    Cancellation.requestAbort()
                    FileHandle.standardError.write(Data("\nvslice: aborting now\n".utf8))
                } else {
                    Cancellation.requestStop()
                    FileHandle.standardError.write(Data("\nvslice: stopping after the running segments (Ctrl-C again to abort)\n".utf8))
                }
            }
            src.resume()
            sources.append(src)
        }
    }
}

struct StoreOptions: ParsableArguments {
    @Option(help: "The job database (default: $VSLICE_HOME/vslice.db, else $XDG_DATA_HOME/vslice/, else ~/.local/share/vslice/).")
    var db: String?

    func open() throws -> JobStore {
        try JobStore(path: db ?? JobStore.defaultPath())
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List tasks with their progress, or one task's events, segments and traces.")

    @Argument(help: "A task ID (or its first characters).")
    var task: String?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var store: StoreOptions

    struct Detail: Encodable {
        var task: TaskRecord
        var events: [EventRecord]
        var segments: [SegmentRecord]
        var traces: [TraceRecord]
    }

    func run() throws {
        let store = try store.open()
        guard let id = task else {
            let tasks = try store.tasks()
            if json { try Terminal.printJSON(tasks); return }
            for t in tasks {
                let segs = try store.segments(task: t.id)
                let done = segs.filter { $0.status == "done" }.count
                print("\(t.id.prefix(8))  \(t.status.padding(toLength: 11, withPad: " ", startingAt: 0)) \(done)/\(segs.count) segments  \(t.input) → \(t.output)")
            }
            return
        }
        guard let t = try store.task(id) else { throw VSliceError(.usage, "status", reason: "no task '\(id)'") }
        let detail = Detail(task: t, events: try store.events(task: t.id), segments: try store.segments(task: t.id),
                            traces: try store.traces(task: t.id))
        if json { try Terminal.printJSON(detail); return }
        print("task \(t.id) \(t.status)\(t.error.map { ": " + $0 } ?? "")\n  \(t.input) → \(t.output)\n  work: \(t.workDir)")
        for e in detail.events { print("  event \(e.node): \(e.status), \(e.attempts) attempt(s)\(e.error.map { " — " + $0 } ?? "")") }
        for s in detail.segments {
            print("  segment \(s.ord): \(s.status), \(s.framesDone ?? 0)/\(s.framesPlanned) frames, \(s.attempts) attempt(s)")
        }
        print("  \(detail.traces.count) traces")
    }
}
