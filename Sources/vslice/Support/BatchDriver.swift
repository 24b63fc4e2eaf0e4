import Foundation
import VSliceKit

/// Runs a batch and reports it (its events, its summary, its exit): `vslice batch`, and `vslice resume --all`
/// for a batch the job store says was interrupted.
struct BatchDriver {
    var batch: BatchRunner
    var runner: RunOptions

    /// Runs every input; throws for the exit: interrupted (130), stopped by a failure that repeats for every
    /// input (2), some inputs failed (6).
    func run(store: JobStore) throws {
        guard let request = batch.request else { return }
        let writer = runner.json ? EventWriter() : nil
        let talk = !runner.quiet && !runner.json
        var options = runner.pipelineOptions
        if runner.maxAttempts == nil, let m = request.maxAttempts { options.maxAttempts = m }
        if runner.stallTimeout == nil, let s = request.stallTimeout { options.stallTimeout = s }
        let position = BatchProgress(inputs: batch.items.map(\.input))
        var session = runner.session
        session.batch = position
        let summary = try batch.run(store: store, onEvent: { event in
            switch event {
            case let .skipped(item, reason, verified):
                writer?.emit("input_skipped", ["input": item.input, "output": item.output, "reason": reason])
                if verified && talk { FileHandle.standardError.write(Data("skip \(item.relative): \(item.output) verifies\n".utf8)) }
            case let .redone(item, reason):
                writer?.emit("input_redone", ["input": item.input, "output": item.output, "reason": reason])
                if talk { FileHandle.standardError.write(Data("redo \(item.relative): \(item.output) was \(reason)\n".utf8)) }
            case let .conflict(item, error):
                writer?.emit("task_failed", ["input": item.input, "output": item.output, "exit_code": Int(error.exitCode),
                                             "error": error.description])
            case let .failed(item, error):
                // Each line names its input: a processor's check error names none of its own.
                Terminal.printError("\(item.relative): \(error.description)")
            }
        }, transcode: { item, force in
            position.starting(batch.items.firstIndex(of: item) ?? 0, now: Date().timeIntervalSince1970)
            let error = session.run(input: item.input, output: item.output) { onEvent throws(VSliceError) in
                try Transcoder(request: request.request(item, force: force), logger: runner.logger, onEvent: onEvent)
                    .run(store: store, options: options)
            }.error
            if error == nil { position.finished(now: Date().timeIntervalSince1970) }
            return error
        })
        report(summary, writer: writer)
        try exit(summary)
    }

    private func report(_ summary: BatchSummary, writer: EventWriter?) {
        if let writer {
            writer.emit("batch_done", EventWriter.fields(summary).merging(["input": batch.request?.dir ?? "", "output": batch.request?.outDir ?? ""]) { $1 })
        } else if !runner.quiet {
            var text = String(format: "batch: %d inputs: %d done, %d skipped, %d failed in %.1f s\n",
                              summary.inputs, summary.done, summary.skipped, summary.failed, summary.seconds)
            if !summary.notVideos.isEmpty { text += "  skipped, not videos: " + summary.notVideos.joined(separator: ", ") + "\n" }
            if !summary.failures.isEmpty && summary.stopped == nil {
                text += "  failed: " + summary.failures.keys.sorted().joined(separator: ", ") + "\n"
            }
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    private func exit(_ summary: BatchSummary) throws {
        let dir = batch.request?.dir ?? ""
        if Cancellation.stopRequested || summary.interrupted {
            throw VSliceError(.interrupted, "batch", path: dir, reason: "interrupted; run the same command again (or vslice resume --all) to go on")
        }
        if let stopped = summary.stopped, let first = summary.failures.keys.first {
            throw VSliceError(.usage, "batch", path: dir,
                              reason: "stopped at \(first), before the \(summary.notStarted) input\(summary.notStarted == 1 ? "" : "s") after it: "
                                  + "the same program fails the same way for every input — \(stopped)")
        }
        if summary.failed > 0 {
            throw BatchFailure(message: "\(summary.failed) of \(summary.inputs) inputs failed: "
                               + summary.failures.keys.sorted().joined(separator: ", "))
        }
    }
}
