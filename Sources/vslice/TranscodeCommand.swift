import ArgumentParser
import Foundation
import Logging
import VSliceKit

struct TranscodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcode",
        abstract: "Transcode INPUT to OUTPUT: audio once, video in parallel segments, merged and verified.",
        discussion: "The container follows OUTPUT's extension: .mp4 (or .m4v), .mov, .mkv.")

    @Argument(help: "The input media file.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "The output file.")
    var output: String

    @OptionGroup var options: TranscodeOptions

    @OptionGroup var outputOptions: OutputOptions

    @OptionGroup var runner: RunOptions

    func run() throws {
        let settings = try options.settings()
        runner.prepare()
        let request = outputOptions.request(input: input, output: output, settings: settings)
        let store = try runner.store.open()
        let outcome = runner.session.run(input: input, output: output) { onEvent throws(VSliceError) in
            try Transcoder(request: request, logger: runner.logger, onEvent: onEvent).run(store: store, options: runner.pipelineOptions)
        }
        if let error = outcome.error { throw error }
    }
}

/// What happens around the output: shared by transcode and batch.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Replace an existing output (batch: one that does not verify against its input).")
    var force = false

    @Flag(help: "Keep the task's work folder (segments, audio) after success.")
    var keepTemp = false

    @Option(help: "Folder for work folders (default: beside the output).")
    var workDir: String?

    func request(input: String, output: String, settings: TranscodeSettings) -> TranscodeRequest {
        TranscodeRequest(input: input, output: output, settings: settings, force: force, keepTemp: keepTemp, workRoot: workDir)
    }
}

/// How a task runs and reports: shared by transcode, resume and batch.
struct RunOptions: ParsableArguments {
    @Flag(help: "Write NDJSON events on stdout (task_started, segment_done, task_done with the verify figures, task_failed …).")
    var json = false

    @Flag(help: "Start over instead of resuming an unfinished task for the same input and output.")
    var fresh = false

    @Option(help: "Attempts per segment before the task fails.")
    var maxAttempts = 3

    @Option(help: "Seconds without a decoded frame after which a segment attempt is abandoned and retried.")
    var stallTimeout = 300.0

    @OptionGroup var store: StoreOptions

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Log each step, and FFmpeg's warnings, on stderr.")
    var verbose = false

    /// Logging, FFmpeg's log level and the Ctrl-C handler.
    func prepare() {
        if verbose { FFmpegLog.set(.warning) }
        Signals.install()
    }

    var logger: Logger { Log.make(verbose: verbose) }
    var session: TaskSession { TaskSession(json: json, quiet: quiet) }

    var pipelineOptions: Transcoder.RunOptions {
        var o = Transcoder.RunOptions()
        o.fresh = fresh
        o.maxAttempts = maxAttempts
        o.stallTimeout = stallTimeout
        return o
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

    @Option(name: .customLong("vf"), help: "The filter graph the output was made with (--vf): its frames are checked against the graph's output times on the source.")
    var videoFilter: String?

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Skip decoding the output (check timestamps and durations only).")
    var noDecode = false

    func run() throws {
        let report = try Verifier.verify(output: output, against: against, filter: videoFilter, decode: !noDecode)
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

