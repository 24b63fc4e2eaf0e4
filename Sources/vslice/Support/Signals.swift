import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

enum Log {
    static func make(verbose: Bool, quiet: Bool = false) -> Logger {
        var logger = Logger(label: "vslice") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose ? .debug : quiet ? .error : .warning
        return logger
    }
}

/// Ctrl-C (or SIGTERM) once: stop dispatching new segments, let running ones finish (under a scheduler: stop
/// watching; the elements go on). Twice: abort now. Either way the work folder is kept and the process exits 130.
enum Signals {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    /// Segments in the running task's plan (0 before it is planned).
    static let segmentsInRun = Atomic<Int>(0)
    /// The running task's segments run under a scheduler or external workers (they go on without this process).
    static let remoteRun = Atomic<Bool>(false)
    /// …and stop with this process (Ray's actors).
    static let remoteStops = Atomic<Bool>(false)

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
                    let message = remoteStops.load(ordering: .relaxed)
                        ? "stopping: the Ray actors are told to stop (their running elements end); the same command (or "
                            + "vslice resume) submits the rest again (Ctrl-C again to stop now)"
                        : remoteRun.load(ordering: .relaxed)
                        ? "stopping: the submitted elements go on without this process; the same command (or vslice resume) "
                            + "re-attaches, vslice cancel stops them (Ctrl-C again to stop now)"
                        : segmentsInRun.load(ordering: .relaxed) == 1
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
