import ArgumentParser
import Foundation
import VSliceKit

/// `vslice segment`: the one-segment worker that cluster executors launch.
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Encode one segment of a planned task from its work folder (the unit a cluster runs).",
        discussion: """
            Reads DIR/task.json (written by the coordinating `vslice transcode`), checks the input's fingerprint, \
            encodes the segment, seals DIR/seg-NNNNN.vseg and writes its trace record DIR/seg-NNNNN.trace-UUID.json. \
            Never opens the job database. The index is --index, else SLURM_ARRAY_TASK_ID, else JOB_COMPLETION_INDEX. \
            A segment already done is not encoded again. Exit codes: 0 done; 1 failed, worth a retry; 2 usage \
            (not a work folder, index out of range); 3 input missing, changed or unreadable; 7 failed in a way \
            that repeats (a filter or encoder rejecting its input); 130 interrupted (SIGTERM, as a scheduler's \
            cancel sends). 2, 3 and 7 fail the same way every time: never retry them. \
            With --claim the worker stays up: it claims the next element no worker holds (DIR/seg-NNNNN.claim) and \
            runs it, until none is left (a Slurm array element of --workers-stay-up, a Kubernetes pod). With \
            --serve it runs the indices read one per line on stdin ("INDEX [ATTEMPT]") and answers "INDEX CODE" \
            on stdout for each (a Ray actor). Either way a --process-persistent program stays loaded across them.
            """)

    @Option(help: "The task's work folder (shared with the coordinator).")
    var workDir: String

    @Option(help: "The segment to encode (default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX).")
    var index: Int?

    @Flag(help: "Stay up: claim and run element after element until none is left.")
    var claim = false

    @Flag(help: "Stay up: run the indices read from stdin, one per line; answer \"INDEX CODE\" on stdout.")
    var serve = false

    @Option(help: "--claim: leave an element alone once it has this many failed attempts.")
    var maxAttempts = 3

    @Flag(help: "Print the trace record (JSON) on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    /// A worker that stays up (--claim, --serve); a deterministic failure ends a claiming worker with its code.
    private func stayUp(environment env: [String: String]) throws {
        guard !(claim && serve), index == nil else {
            throw ValidationError("--claim and --serve take no --index, and not both")
        }
        let loop = try WorkerLoop(workDir: workDir, environment: env)
        if serve {
            try loop.serving(input: FileHandle.standardInput, output: FileHandle.standardOutput)
            return
        }
        let ran = Result { () throws(VSliceError) in
            try loop.claiming(maxAttempts: maxAttempts) { i, result in
                if case .failure(let e) = result { Terminal.printError("element \(i): \(e.description)") }
            }
        }
        if case .failure(let error) = ran, error.workerExitCode != error.exitCode {
            Terminal.printError(error.description)
            Foundation.exit(error.workerExitCode)
        }
        let n = try ran.get()
        if !quiet { print("worker: \(n) element(s) run") }
    }

    /// Runs the segment; a processing failure that repeats exits with its own code (7), so that a runner that
    /// sees only exit codes need not retry it.
    static func work(workDir: String, index: Int, environment: [String: String]) throws(VSliceError) -> SegmentWorker.Outcome {
        let result = Result { () throws(VSliceError) in try SegmentWorker.run(workDir: workDir, index: index, environment: environment) }
        if case .failure(let error) = result, error.workerExitCode != error.exitCode {
            Terminal.printError(error.description)
            Foundation.exit(error.workerExitCode)
        }
        return try result.get()
    }

    func run() throws {
        // A scheduler stops an element with SIGTERM (then SIGKILL): abort at once, so the attempt still
        // leaves its failed trace record.
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                // A serving worker between elements has nothing to abort: it ends now.
                if WorkerLoop.waitingForInput.load(ordering: .sequentiallyConsistent) { Foundation.exit(130) }
                Cancellation.requestAbort()
            }
            src.resume()
            Signals.sources.append(src)
        }
        let env = ProcessInfo.processInfo.environment
        try WorkOrder.checkFolder(workDir: workDir)
        if claim || serve {
            try stayUp(environment: env)
            return
        }
        let i = try SegmentWorker.index(given: index, environment: env)
        let outcome = try Self.work(workDir: workDir, index: i, environment: env)
        guard let record = outcome.record ?? outcome.alreadyDone else { return }
        if json {
            try Terminal.printJSON(record)
        } else if !quiet {
            print(outcome.record == nil
                  ? "segment \(i): already done (trace \(record.trace.short))"
                  : String(format: "segment %d: %d frames, %lld bytes, %.2f s (trace %@)", i, record.framesOut ?? 0,
                           record.bytes ?? 0, record.wallSeconds, record.trace.short))
        }
    }
}
