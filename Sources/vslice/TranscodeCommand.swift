import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

struct TranscodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcode",
        abstract: "Transcode INPUT to OUTPUT: audio once, video in parallel segments, merged and verified.",
        discussion: """
            The container follows OUTPUT's extension: .mp4 (or .m4v), .mov, .mkv. Options are checked before any \
            work (the encoder is opened once with them): a bad one is exit 2. Running the same command again \
            resumes an unfinished task.

            Any program can be the per-segment algorithm: --process 'python3 examples/denoise.py' --overlap 2,2 \
            runs OpenCV's temporal denoiser on every segment, two buffer frames each side (examples/ has it and a \
            cartoonizer; see --process below).

            EXAMPLES:
              vslice transcode in.mov -o out.mp4
              vslice transcode in.mp4 -o out.mkv --vcodec libx265 --crf 26 --preset medium
              vslice transcode in.mp4 -o out.mp4 --vbitrate 2M --abitrate 96k --jobs 4
              vslice transcode in.mp4 -o out.mp4 --vf scale=1280:-2 --codec-opt tune=film
              vslice transcode in.mp4 -o out.mp4 --json | jq -c 'select(.event == "progress")'
              vslice transcode in.mp4 -o out.mkv --process cat --process-format rgb24
            """)

    @Argument(help: "The input media file.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "The output file.")
    var output: String

    @OptionGroup var options: TranscodeOptions

    @OptionGroup var outputOptions: OutputOptions

    @OptionGroup var runner: RunOptions

    @OptionGroup var cluster: ExecutorOptions

    func run() throws {
        let settings = try options.settings()
        runner.prepare()
        var request = outputOptions.request(input: input, output: output, settings: settings)
        request.executor = cluster.config
        var pipelineOptions = runner.pipelineOptions
        pipelineOptions.detach = cluster.detach
        let store = try runner.store.open()
        let outcome = runner.session.run(input: input, output: output) { onEvent throws(VSliceError) in
            try Transcoder(request: request, logger: runner.logger, onEvent: onEvent).run(store: store, options: pipelineOptions)
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

    @Option(help: "Attempts per segment before the task fails (1–10).")
    var maxAttempts = 3

    @Option(help: "Seconds without a decoded frame after which a segment attempt is abandoned and retried.")
    var stallTimeout = 300.0

    func validate() throws {
        do { try pipelineOptions.validate() } catch { throw ValidationError(error.reason) }
    }

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

    /// `-v`: everything; default: warnings (a segment retried…); `-q`: errors only.
    var logger: Logger { Log.make(verbose: verbose, quiet: quiet) }
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
        abstract: "Check OUTPUT against its source: frame count, timestamps, DTS order, A/V durations and offset.",
        discussion: """
            EXAMPLES:
              vslice verify out.mp4 --against in.mov
              vslice verify out.mp4 --against in.mov --json | jq .problems
            """)

    @Argument(help: "The transcoded file.")
    var output: String

    @Option(help: "The source it was made from.")
    var against: String

    @Option(name: .customLong("vf"), help: "The filter graph the output was made with (--vf): its frames are checked against the graph's output times on the source.")
    var videoFilter: String?

    @Option(name: .customLong("process-rate"), help: "The rate of the processor it was made with (--process-rate): that many frames per source frame.")
    var processRate: String?

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Skip decoding the output (check timestamps and durations only).")
    var noDecode = false

    func run() throws {
        let rate = try processRate.map { text -> Ratio in
            let parts = text.split(separator: "/")
            guard (1...2).contains(parts.count), let n = Int32(parts[0]), let d = parts.count == 2 ? Int32(parts[1]) : 1, n > 0, d > 0 else {
                throw VSliceError(.usage, "check options", reason: "--process-rate takes an integer or a fraction P/Q, got '\(text)'")
            }
            return Ratio(num: n, den: d)
        }
        let report = try Verifier.verify(output: output, against: against, filter: videoFilter, rate: rate, decode: !noDecode)
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
    static func make(verbose: Bool, quiet: Bool = false) -> Logger {
        var logger = Logger(label: "vslice") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose ? .debug : quiet ? .error : .warning
        return logger
    }
}

/// Ctrl-C (or SIGTERM) once: stop dispatching new segments, let running ones finish. Twice: abort now.
/// Either way the work folder is kept and the process exits 130.
enum Signals {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    /// Segments in the running task's plan (0 before it is planned).
    static let segmentsInRun = Atomic<Int>(0)

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
                    let message = segmentsInRun.load(ordering: .relaxed) == 1
                        ? "stopping after the running segment; this task is a single segment, so that waits for the "
                            + "whole encode (Ctrl-C again to abort now; the task stays resumable)"
                        : "stopping after the running segments (Ctrl-C again to abort now; the task stays resumable)"
                    FileHandle.standardError.write(Data("\nvslice: \(message)\n".utf8))
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

