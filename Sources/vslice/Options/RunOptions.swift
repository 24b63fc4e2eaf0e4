import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

/// How a task runs and reports: shared by transcode, resume and batch.
struct RunOptions: ParsableArguments {
    @Flag(help: "Write NDJSON events on stdout (task_started, segment_done, task_done with the verify figures, task_failed …).")
    var json = false

    @Flag(help: "Start over instead of resuming an unfinished task for the same input and output.")
    var fresh = false

    @Option(help: "Attempts per segment before the task fails (1–10; default 3; resume: as the task was started).")
    var maxAttempts: Int?

    @Option(help: "Seconds without a decoded frame after which a segment attempt is abandoned and retried (default 300; resume: as the task was started).")
    var stallTimeout: Double?

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
        if let maxAttempts { o.maxAttempts = maxAttempts }
        if let stallTimeout { o.stallTimeout = stallTimeout }
        return o
    }

    /// `pipelineOptions` for a stored request: what this command line gives, else what the task was started with.
    func pipelineOptions(for stored: TranscodeRequest?) -> Transcoder.RunOptions {
        var o = pipelineOptions
        if maxAttempts == nil, let m = stored?.maxAttempts { o.maxAttempts = m }
        if stallTimeout == nil, let s = stored?.stallTimeout { o.stallTimeout = s }
        return o
    }

    /// A request that records the running options given, for a resume by the task's ID.
    func recording(_ request: TranscodeRequest) -> TranscodeRequest {
        var r = request
        r.maxAttempts = maxAttempts
        r.stallTimeout = stallTimeout
        return r
    }
}
