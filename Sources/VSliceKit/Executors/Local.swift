import Foundation

/// The default executor: segments encoded on threads in this process, `--jobs` at a time, each attempt
/// traced in the ledger directly; a failed attempt is retried here with backoff.
struct LocalExecutor: SegmentExecutor {
    func encode(_ job: EncodeJob) throws(VSliceError) -> EncodeOutcome {
        let store = job.store, taskId = job.task.id, onEvent = job.onEvent, logger = job.logger
        let watchdog = job.watchdog, maxAttempts = job.options.maxAttempts
        let segmentPaths = job.segmentPaths, kept = job.kept
        let encodeSettings = job.settings.forRun(segments: job.todo.count)
        let gpus = job.settings.gpus
        let errors = WorkerPool.run(job.todo, jobs: job.settings.jobs) { (segment: SegmentPlan, slot: Int) throws(VSliceError) in
            let segId = LedgerID.segment(taskId, segment.index)
            var attempt = 0
            while true {
                attempt += 1
                onEvent(.segmentStarted(index: segment.index))
                let trace = try store.beginEvent(taskId, .encode, segment: segId)
                // Written under a name of its own, renamed into place by the commit that records it.
                let tmp = segmentPaths[segment.index] + ".\(trace.prefix(8)).tmp"
                let run = SegmentAttempt(task: taskId, input: job.input, identity: job.identity, index: job.index, plan: job.plan,
                                         segment: segment, settings: encodeSettings, workDir: job.workDir, partPath: tmp,
                                         gpu: gpus.isEmpty ? nil : gpus[slot % gpus.count],
                                         progress: { onEvent(.framesProcessed(segment: segment.index, frames: $0)) },
                                         onProcessorLine: { logger.debug("processor: \($0)", metadata: ["segment": "\(segment.index)"]) })
                var spent = (wall: 0.0, cpu: 0.0)
                do throws(VSliceError) {
                    let done = try run.run(watchdog: watchdog) { spent = $0 }
                    let result = done.result
                    Fault.hit("segment-commit")
                    try store.endStep(trace: trace, task: taskId, node: .encode,
                                      segment: .init(id: segId, frames: result.framesKept, size: result.bytes,
                                                     checksum: Int64(result.checksum)),
                                      figures: .init(wall: done.wallSeconds, cpu: done.cpuSeconds,
                                                     framesIn: result.framesProcessed, framesOut: result.framesKept, bytes: result.bytes,
                                                     fixed: .init(startupSeconds: result.startupSeconds, flushSeconds: result.flushSeconds)),
                                      error: nil, detail: nil, seal: .init(from: tmp, to: segmentPaths[segment.index]))
                    kept(segment.index, result.framesKept)
                    onEvent(.segmentDone(index: segment.index, frames: result.framesKept))
                    Fault.hit("segment-done")
                    return
                } catch {
                    try? FileManager.default.removeItem(atPath: tmp)
                    // A holder that lost the task writes nothing more.
                    if error.kind == .resumeRefused { throw error }
                    try? store.endStep(trace: trace, task: taskId, node: .encode,
                                       segment: .init(id: segId, frames: 0, size: 0, checksum: 0),
                                       figures: .init(wall: spent.wall, cpu: spent.cpu), error: error.description)
                    onEvent(.segmentFailed(index: segment.index, error: error.description))
                    // Only processing failures are worth another try; bad input, bad options and Ctrl-C are not,
                    // nor a failure that would repeat (a filter or encoder rejecting its input): RetryPolicy.swift.
                    guard error.worthRetry, attempt < maxAttempts, !Cancellation.stopRequested,
                          !watchdog.cancelled else { throw error }
                    logger.warning("segment failed; retrying", metadata: ["segment": "\(segment.index)", "error": "\(error)"])
                    Thread.sleep(forTimeInterval: 0.5 * Double(1 << (attempt - 1)))
                }
            }
        }
        if let e = errors.first(where: { $0.kind == .resumeRefused }) ?? errors.first { throw e }
        return .finished
    }
}
