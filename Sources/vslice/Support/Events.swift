import Foundation
import Synchronization
import VSliceKit

/// `--json` for the commands that run tasks: one JSON object per line (NDJSON) on stdout, each with
/// `event` and `time` (Unix seconds). Events: task_started, planned, segment_started, progress (about once
/// a second while frames are processed), segment_done, segment_failed, audio_done, merged, published,
/// task_done (the report, with `verify`), task_failed (`exit_code`, `error`); `batch` adds input_skipped,
/// input_redone and batch_done. A failure no such event told (bad options, a refused batch) is an `error` event.
final class EventWriter: Sendable {
    private let lock = Mutex(())
    private struct Progress {
        var model = ProgressModel()
        var lastEmit = 0.0
    }
    private let progress = Mutex(Progress())
    /// In a batch: `file`, `files` and `batch_eta_seconds` in its events.
    private let batch: BatchProgress?

    init(batch: BatchProgress? = nil) { self.batch = batch }
    /// Seconds between `progress` events.
    static let progressInterval = 1.0
    /// An event that tells how a run ended (`task_failed`, `task_done`, `batch_done`) was written.
    static let outcomeReported = Atomic<Bool>(false)

    func emit(_ event: String, _ fields: [String: Any] = [:]) {
        var object = fields
        object["event"] = event
        object["time"] = (Date().timeIntervalSince1970 * 1000).rounded() / 1000
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        lock.withLock { _ in
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
        if ["task_failed", "task_done", "batch_done"].contains(event) { Self.outcomeReported.store(true, ordering: .relaxed) }
    }

    /// An Encodable value as JSON fields (snake_case keys).
    static func fields<T: Encodable>(_ value: T) -> [String: Any] {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? enc.encode(value),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }

    func pipeline(_ event: PipelineEvent, input: String, output: String) {
        let where_: [String: Any] = ["input": input, "output": output]
        let now = Date().timeIntervalSince1970
        let due: [String: Any]? = progress.withLock { p in
            p.model.apply(event, now: now)
            if case .planned = event { p.lastEmit = now }
            guard case .framesProcessed = event, now - p.lastEmit >= Self.progressInterval else { return nil }
            p.lastEmit = now
            let m = p.model
            var fields: [String: Any] = ["frames_done": m.done, "frames_total": m.total,
                                         "percent": (m.fraction * 1000).rounded() / 10,
                                         "segments_done": m.segmentsDone, "segments": m.segments, SegmentStatus.running.rawValue: m.running]
            if let fps = m.fps(now: now) { fields["fps"] = (fps * 10).rounded() / 10 }
            if let eta = m.eta(now: now) { fields["eta_seconds"] = (eta * 10).rounded() / 10 }
            if let batch {
                (fields["file"], fields["files"]) = batch.position
                if let eta = batch.eta(current: m.eta(now: now), now: now) { fields["batch_eta_seconds"] = (eta * 10).rounded() / 10 }
            }
            return fields
        }
        if let due { emit("progress", where_.merging(due) { a, _ in a }) }
        switch event {
        case let .taskStarted(id, resumed):
            var fields: [String: Any] = ["task": id.rawValue, "resumed": resumed]
            if let batch { (fields["file"], fields["files"]) = batch.position }
            emit("task_started", where_.merging(fields) { a, _ in a })
        case let .planned(total, segments, already):
            let done = progress.withLock { $0.model.segmentsAlreadyDone }
            emit("planned", where_.merging(["frames": total, "segments": segments, "frames_done": already,
                                            "segments_done": done]) { a, _ in a })
        case .framesProcessed, .alreadyDone: break
        case let .segmentStarted(index): emit("segment_started", where_.merging(["segment": index]) { a, _ in a })
        case let .segmentDone(index, frames):
            emit("segment_done", where_.merging(["segment": index, "frames": frames]) { a, _ in a })
        case let .segmentFailed(index, error):
            emit("segment_failed", where_.merging(["segment": index, "error": error]) { a, _ in a })
        case .audioDone: emit("audio_done", where_)
        case .merged: emit("merged", where_)
        case let .published(path): emit("published", where_.merging(["path": path]) { a, _ in a })
        }
    }
}

/// Runs one transcode task with its progress on stderr and, with `--json`, its events on stdout.
struct TaskSession {
    var json: Bool
    var quiet: Bool
    /// In a batch: where it is, for the progress line and the events.
    var batch: BatchProgress? = nil

    struct Outcome {
        var report: TranscodeReport?
        var error: VSliceError?
    }

    /// Runs `body` (which starts or resumes the task with the given event handler); never throws: the
    /// error is printed (or emitted) and returned.
    func run(input: String, output: String,
             _ body: (@escaping @Sendable (PipelineEvent) -> Void) throws(VSliceError) -> TranscodeReport) -> Outcome {
        let progress = ProgressPrinter(label: (input as NSString).lastPathComponent, enabled: !quiet && !json, batch: batch)
        let writer = json ? EventWriter(batch: batch) : nil
        let run = RunInfo()
        let talk = !quiet && !json
        do throws(VSliceError) {
            let report = try body { event in
                switch event {
                case let .taskStarted(id, resumed): run.started(id: id, resumed: resumed)
                case let .alreadyDone(n): run.alreadyDone(n)
                case let .planned(_, segments, _):
                    Signals.segmentsInRun.store(segments, ordering: .relaxed)
                    if talk, let (id, done) = run.resumed {
                        progress.note("resuming task \(id.short): \(done) of \(segments) segment\(segments == 1 ? "" : "s") already done")
                    }
                default: break
                }
                progress.handle(event)
                writer?.pipeline(event, input: input, output: output)
            }
            if report.detached {
                if let writer {
                    writer.emit("task_detached", EventWriter.fields(report))
                } else if !quiet {
                    print("task \(report.task): \(report.segments) segments submitted; work folder \(report.workDir ?? "?"); "
                          + "`vslice resume \(report.task.short)` finishes it")
                } else {
                    // `-q --detach` in a script: the task's ID alone, what it needs to resume or cancel it.
                    print(report.task.rawValue)
                }
            } else if let writer {
                writer.emit("task_done", EventWriter.fields(report))
            } else if !quiet {
                let place = batch.map { "file \($0.position.file) of \($0.position.files): " } ?? ""
                print(place + String(format: "%@: %d frames in %d segment%@, %.2f s", report.output, report.frames, report.segments,
                                     report.segments == 1 ? "" : "s", report.wallSeconds))
            }
            return Outcome(report: report)
        } catch {
            progress.finishLine()
            var error = error
            // Either Ctrl-C: say how to go on (a cancelled task does not go on).
            if error.kind == .interrupted, !error.reason.contains("cancel"), let id = run.id {
                error = VSliceError(.interrupted, "transcode", path: input,
                                    reason: "interrupted; the task \(id.short) is kept: run the same command again "
                                        + "(or vslice resume \(id.short)) to go on")
            } else if error.kind == .processing, let id = run.id {
                // A failed task keeps its work folder (finished segments) for a resume: say so, and how to drop it.
                error.reason += error.failsAgain
                    ? "; the task \(id.short) and its work folder are kept: `vslice cancel \(id.short)` removes them"
                    : "; the task \(id.short) is kept with its finished segments: `vslice resume \(id.short)` tries again, "
                        + "`vslice cancel \(id.short)` removes its work folder"
            }
            if let writer {
                writer.emit("task_failed", ["input": input, "output": output, "exit_code": Int(error.exitCode),
                                            "error": error.description])
            }
            return Outcome(error: error)
        }
    }
}

/// What the event handler learns about the run (from the worker threads).
final class RunInfo: Sendable {
    private struct State {
        var id: TaskID?
        var resumed = false
        var done = 0
    }
    private let state = Mutex(State())

    func started(id: TaskID, resumed: Bool) { state.withLock { $0.id = id; $0.resumed = resumed } }
    func alreadyDone(_ n: Int) { state.withLock { $0.done = n } }
    var id: TaskID? { state.withLock { $0.id } }
    /// The task ID and its segments already done, if this run resumed a task.
    var resumed: (TaskID, Int)? { state.withLock { s in s.resumed ? s.id.map { ($0, s.done) } : nil } }
}
