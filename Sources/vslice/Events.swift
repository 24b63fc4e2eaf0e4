import Foundation
import Synchronization
import VSliceKit

/// `--json` for the commands that run tasks: one JSON object per line (NDJSON) on stdout, each with
/// `event` and `time` (Unix seconds). Events: task_started, planned, segment_started, segment_done,
/// segment_failed, audio_done, merged, published, task_done (the report, with `verify`), task_failed
/// (`exit_code`, `error`); `batch` adds input_skipped and batch_done.
final class EventWriter: Sendable {
    private let lock = Mutex(())

    func emit(_ event: String, _ fields: [String: Any] = [:]) {
        var object = fields
        object["event"] = event
        object["time"] = (Date().timeIntervalSince1970 * 1000).rounded() / 1000
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        lock.withLock { _ in
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
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
        switch event {
        case let .taskStarted(id, resumed):
            emit("task_started", where_.merging(["task": id, "resumed": resumed]) { a, _ in a })
        case let .planned(total, segments, already):
            emit("planned", where_.merging(["frames": total, "segments": segments, "frames_done": already]) { a, _ in a })
        case .framesProcessed: break
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

    struct Outcome {
        var report: TranscodeReport?
        var error: VSliceError?
    }

    /// Runs `body` (which starts or resumes the task with the given event handler); never throws: the
    /// error is printed (or emitted) and returned.
    func run(input: String, output: String,
             _ body: (@escaping @Sendable (PipelineEvent) -> Void) throws(VSliceError) -> TranscodeReport) -> Outcome {
        let progress = ProgressPrinter(label: (input as NSString).lastPathComponent, enabled: !quiet && !json)
        let writer = json ? EventWriter() : nil
        do throws(VSliceError) {
            let report = try body { event in
                progress.handle(event)
                writer?.pipeline(event, input: input, output: output)
            }
            if report.detached {
                if let writer {
                    writer.emit("task_detached", EventWriter.fields(report))
                } else if !quiet {
                    print("task \(report.task): \(report.segments) segments submitted; work folder \(report.workDir ?? "?"); "
                          + "`vslice resume \(report.task.prefix(8))` finishes it")
                }
            } else if let writer {
                writer.emit("task_done", EventWriter.fields(report))
            } else if !quiet {
                print(String(format: "%@: %d frames in %d segments, %.2f s", report.output, report.frames, report.segments,
                             report.wallSeconds))
            }
            return Outcome(report: report)
        } catch {
            progress.finishLine()
            if let writer {
                writer.emit("task_failed", ["input": input, "output": output, "exit_code": Int(error.exitCode),
                                            "error": error.description])
            }
            return Outcome(error: error)
        }
    }
}
