import Foundation
import VSliceSupport

/// What the pipeline tells its caller while it runs (progress, NDJSON events).
public enum PipelineEvent: Sendable {
    /// The task this run works on (new, or an unfinished one resumed).
    case taskStarted(id: TaskID, resumed: Bool)
    /// How many segments a resumed run found done and intact (sent just before `planned`).
    case alreadyDone(segments: Int)
    case planned(totalFrames: Int, segments: Int, framesAlreadyDone: Int)
    /// Kept frames a segment attempt has processed since the last report.
    case framesProcessed(segment: Int, frames: Int)
    case segmentStarted(index: Int)
    case segmentDone(index: Int, frames: Int)
    /// An attempt failed (it may be retried).
    case segmentFailed(index: Int, error: String)
    case audioDone
    case merged
    case published(path: String)
}

public struct TranscodeRequest: Sendable {
    public var input: String
    public var output: String
    public var settings: TranscodeSettings
    public var force: Bool
    public var keepTemp: Bool
    /// Folder under which the per-task work folder is made; default: beside the output.
    public var workRoot: String?
    /// Where the segments run (`--executor`).
    public var executor: ExecutorConfig
    /// `--max-attempts` and `--stall-timeout` as given (nil: the defaults), stored with the task so that a
    /// resume by its ID runs with them.
    public var maxAttempts: Int? = nil
    public var stallTimeout: Double? = nil
    /// Keep every segment's processor log after success (`--keep-logs`), not only those of failed attempts.
    public var keepLogs = false

    public init(input: String, output: String, settings: TranscodeSettings, force: Bool = false,
                keepTemp: Bool = false, workRoot: String? = nil, executor: ExecutorConfig = .local) {
        self.input = input
        self.output = output
        self.settings = settings
        self.force = force
        self.keepTemp = keepTemp
        self.workRoot = workRoot
        self.executor = executor
    }
}
