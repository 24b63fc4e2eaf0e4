import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// The default executor: the elements — video segments, then audio pieces — run on threads in this process,
/// `--jobs` at a time, each attempt traced in the ledger directly; a failed attempt is retried here with backoff.
struct LocalExecutor: SegmentExecutor {
    func encode(_ job: EncodeJob) throws(VSliceError) -> EncodeOutcome {
        let encodeSettings = job.settings.forRun(segments: job.todo.count)
        let gpus = job.settings.gpus
        // --process-persistent: one program per job slot, kept loaded across the slot's segments.
        let hosts = SlotPrograms(settings: job.settings.process, slots: job.settings.jobs)
        let errors = WorkerPool.run(job.elements, jobs: job.settings.jobs, body: { (element: Element, slot: Int) throws(VSliceError) in
            switch element {
            case .segment(let segment):
                try Self.retrying(job, what: "segment \(segment.index)", onFailure: { job.onEvent(.segmentFailed(index: segment.index, error: $0)) }) {
                    () throws(VSliceError) in
                    try Self.attempt(segment, job: job, settings: encodeSettings, gpu: gpus.isEmpty ? nil : gpus[slot % gpus.count],
                                     host: hosts[slot])
                }
            case .audioPiece(let piece):
                try Self.retrying(job, what: "audio piece \(piece.order)", onFailure: { _ in }) { () throws(VSliceError) in
                    try Self.attempt(piece, job: job)
                }
            case .loudness(let piece):
                try Self.retrying(job, what: "loudness of audio piece \(piece.order)", onFailure: { _ in }) { () throws(VSliceError) in
                    try Self.attempt(measure: piece, job: job)
                }
            case .analysis(let segment):
                try Self.retrying(job, what: "analysis of segment \(segment.index)", onFailure: { _ in }) { () throws(VSliceError) in
                    try Self.attempt(analysis: segment, job: job, settings: encodeSettings)
                }
            }
        }, slotEnded: { hosts[$0]?.close() })
        if let e = errors.first(where: { $0.kind == .resumeRefused }) ?? errors.first { throw e }
        return .finished
    }

    /// Runs `body` until it succeeds, or fails in a way not worth another try, or `--max-attempts` is used up:
    /// only processing failures that may pass are retried; bad input, bad options, Ctrl-C and a failure that
    /// would repeat (a filter or encoder rejecting its input) are not (RetryPolicy.swift).
    static func retrying(_ job: EncodeJob, what: String, onFailure: (String) -> Void,
                         _ body: () throws(VSliceError) -> Void) throws(VSliceError) {
        var attempt = 0
        while true {
            attempt += 1
            do throws(VSliceError) { return try body() } catch {
                // A holder that lost the task writes nothing more.
                if error.kind == .resumeRefused { throw error }
                onFailure(error.description)
                guard error.worthRetry, attempt < job.options.maxAttempts, !Cancellation.stopRequested,
                      !job.watchdog.cancelled else { throw error }
                job.logger.warning("\(what) failed; retrying", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: 0.5 * Double(1 << (attempt - 1)))
            }
        }
    }

    /// One traced attempt at a video segment: written under a name of its own, renamed into place by the
    /// commit that records it.
    static func attempt(_ segment: SegmentPlan, job: EncodeJob, settings: TranscodeSettings, gpu: String?,
                        host: PersistentProcessor? = nil) throws(VSliceError) {
        let store = job.store, taskId = job.task.id, onEvent = job.onEvent, logger = job.logger
        let segId = taskId.segment(segment.index)
        onEvent(.segmentStarted(index: segment.index))
        let trace = try store.beginEvent(taskId, .encode, segment: segId)
        let tmp = job.segmentPaths[segment.index] + ".\(trace.short).tmp"
        let run = SegmentAttempt(task: taskId, input: job.input, identity: job.identity, index: job.index, plan: job.plan,
                                 segment: segment, settings: settings, workDir: job.workDir, partPath: tmp, gpu: gpu, host: host,
                                 progress: { onEvent(.framesProcessed(segment: segment.index, frames: $0)) },
                                 onProcessorLine: { logger.debug("processor: \($0)", metadata: ["segment": "\(segment.index)"]) })
        var spent = (wall: 0.0, cpu: 0.0)
        do throws(VSliceError) {
            let done = try run.run(watchdog: job.watchdog) { spent = $0 }
            let result = done.result
            Fault.hit("segment-commit")
            try store.endStep(trace: trace, task: taskId, node: .encode,
                              segment: .init(id: segId, frames: result.framesKept, size: result.bytes, checksum: Int64(result.checksum)),
                              figures: .init(wall: done.wallSeconds, cpu: done.cpuSeconds,
                                             framesIn: result.framesProcessed, framesOut: result.framesKept, bytes: result.bytes,
                                             fixed: .init(startupSeconds: result.startupSeconds, flushSeconds: result.flushSeconds,
                                                          processor: result.processorCost)),
                              error: nil, detail: nil, seal: .init(from: tmp, to: job.segmentPaths[segment.index]))
            job.kept(segment.index, result.framesKept)
            onEvent(.segmentDone(index: segment.index, frames: result.framesKept))
            Fault.hit("segment-done")
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            if error.kind != .resumeRefused {
                try? store.endStep(trace: trace, task: taskId, node: .encode, segment: .init(id: segId, frames: 0, size: 0, checksum: 0),
                                   figures: .init(wall: spent.wall, cpu: spent.cpu), error: error.description)
            }
            throw error
        }
    }

    /// One traced attempt at an audio piece (a segment of the audio event), sealed as a video segment is.
    static func attempt(_ piece: AudioPiece, job: EncodeJob) throws(VSliceError) {
        let store = job.store, task = job.task.id, id = task.audioPiece(piece.order), path = job.piecePaths[piece.order]
        let trace = try store.beginEvent(task, .audio, segment: id)
        let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
        let tmp = path + ".\(trace.short).tmp"
        do throws(VSliceError) {
            let r = try AudioPieceAttempt(input: job.input, identity: job.identity, piece: piece, partPath: tmp,
                                          gain: job.gains[piece.track] ?? 1).run()
            try store.endStep(trace: trace, task: task, node: .audio,
                              segment: .init(id: id, frames: r.packets, size: r.bytes, checksum: Int64(r.checksum)),
                              figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0, framesOut: r.packets, bytes: r.bytes,
                                             fixed: .init(startupSeconds: r.startupSeconds, flushSeconds: r.flushSeconds)),
                              error: nil, detail: nil, seal: .init(from: tmp, to: path))
            Fault.hit("audio-piece")
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            if error.kind != .resumeRefused {
                try? store.endStep(trace: trace, task: task, node: .audio, segment: .init(id: id, frames: 0, size: 0, checksum: 0),
                                   figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: error.description)
            }
            throw error
        }
    }
}

extension LocalExecutor {
    /// One traced attempt at an analysis element (a segment of the analyze event): its artifact written under a
    /// name of its own, renamed into place by the commit that records it.
    static func attempt(analysis segment: SegmentPlan, job: EncodeJob, settings: TranscodeSettings) throws(VSliceError) {
        let store = job.store, task = job.task.id, id = task.analysis(segment.index), path = job.analysisPaths[segment.index]
        let trace = try store.beginEvent(task, .analyze, segment: id)
        let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
        let tmp = path + ".\(trace.short).tmp"
        let run = AnalysisAttempt(task: task, input: job.input, identity: job.identity, index: job.index, plan: job.plan,
                                  segment: segment, settings: settings, workDir: job.workDir, partPath: tmp)
        do throws(VSliceError) {
            let r = try run.run(watchdog: job.watchdog)
            try store.endStep(trace: trace, task: task, node: .analyze,
                              segment: .init(id: id, frames: r.frames, size: r.bytes, checksum: Int64(r.checksum)),
                              figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0 + r.cpuSeconds,
                                             framesIn: r.frames, bytes: r.bytes),
                              error: nil, detail: nil, seal: .init(from: tmp, to: path))
            Fault.hit("analysis-done")
        } catch {
            unlink(tmp)
            if error.kind != .resumeRefused {
                try? store.endStep(trace: trace, task: task, node: .analyze, segment: .init(id: id, frames: 0, size: 0, checksum: 0),
                                   figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: error.description)
            }
            throw error
        }
    }
}

extension LocalExecutor {
    /// One traced attempt at an audio piece's loudness (an element of the analyze event, `S + order`): its
    /// measurement written as JSON under a name of its own, renamed into place by the commit that records it.
    static func attempt(measure piece: AudioPiece, job: EncodeJob) throws(VSliceError) {
        let store = job.store, task = job.task.id, order = job.plan.segments.count + piece.order
        let id = task.analysis(order), path = job.measurePaths[piece.order]
        let trace = try store.beginEvent(task, .analyze, segment: id)
        let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
        let tmp = path + ".\(trace.short).tmp"
        do throws(VSliceError) {
            let m = try AudioLoudness.measure(source: job.input, piece: piece, expect: job.identity)
            let data: Data
            do { data = try JSONEncoder().encode(m) } catch {
                throw VSliceError(.processing, "measure loudness", path: path, reason: "\(error)")
            }
            try WorkFolder.writeAtomically(data, to: tmp)
            let sum = ArtifactFile.measure(tmp)?.1 ?? 0
            try store.endStep(trace: trace, task: task, node: .analyze,
                              segment: .init(id: id, frames: m.blocks.count, size: Int64(data.count), checksum: Int64(sum)),
                              figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0, framesOut: m.blocks.count,
                                             bytes: Int64(data.count)),
                              error: nil, detail: nil, seal: .init(from: tmp, to: path))
            Fault.hit("analysis-done")
        } catch {
            unlink(tmp)
            if error.kind != .resumeRefused {
                try? store.endStep(trace: trace, task: task, node: .analyze, segment: .init(id: id, frames: 0, size: 0, checksum: 0),
                                   figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: error.description)
            }
            throw error
        }
    }
}

/// One attempt at one audio piece, wherever it runs (a local job slot, a `vslice segment` worker): the piece
/// encoded into a part file. A piece that, after its seek, does not meet the frame the map recorded (a demuxer
/// whose timestamps after a seek differ from a continuous read; not seen with MP4, MOV or Matroska) fails in a
/// way that repeats: the task then fails, naming `--audio-piece-seconds 0`.
struct AudioPieceAttempt {
    var input: String
    var identity: FileIdentity?
    var piece: AudioPiece
    var partPath: String
    var gain: Double = 1

    func run() throws(VSliceError) -> AudioPieceResult {
        do throws(VSliceError) {
            var encoder = AudioPieceEncoder(source: input, piece: piece, outputPath: partPath, expect: identity)
            encoder.gain = gain
            return try encoder.run()
        } catch {
            unlink(partPath)
            guard error.operation == AudioPieceEncoder.missedStart else { throw error }
            var e = error
            e.reason += " (this input's audio cannot be cut into pieces; run with --audio-piece-seconds 0)"
            e.deterministic = true
            throw e
        }
    }
}

/// The programs kept loaded for `--process-persistent`, one per job slot; each is used and ended on its slot's
/// thread only.
final class SlotPrograms: @unchecked Sendable {
    private let programs: [PersistentProcessor]

    init(settings: ProcessorSettings?, slots: Int) {
        guard let settings, settings.isPersistent else { programs = []; return }
        programs = (0..<max(1, slots)).map { _ in PersistentProcessor(settings: settings) }
    }

    subscript(slot: Int) -> PersistentProcessor? { programs.indices.contains(slot) ? programs[slot] : nil }
}
