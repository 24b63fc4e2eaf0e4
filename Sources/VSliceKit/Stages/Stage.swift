import Foundation
import Logging
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport


/// How a stage ended.
enum StageOutcome: Sendable {
    /// Done (or found done by an earlier run): the nodes that need it may start.
    case done
    /// Its work was handed elsewhere (`--detach`): the walk stops here, the task stays resumable.
    case detached
}

/// One node of the transcode DAG: what it needs (`inputs`, nodes that must be done first) and what it does.
/// A stage reads what it needs from the task's ledger rows, its work folder and the run's context, records its
/// own result there (the plan in the ledger and `task.json`, segments, tracks and the merged file in the work
/// folder, their sizes and checksums in the ledger), and hands later stages a typed value through the context.
protocol Stage: SendableMetatype {
    static var node: Node { get }
    static var inputs: [Node] { get }
    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome
}

/// What every stage of one run of a task sees: the request, the task and its ledger, what was learnt before any
/// work (the probe, the streams, the filter's timing), and the values the stages before it produced.
final class StageContext: Sendable {
    let request: TranscodeRequest
    let task: TaskRecord
    /// The ledger the run records itself in.
    let store: any Ledger
    /// The source as the checks before any work found it.
    let source: Transcoder.Inspection
    var probe: Probe { source.probe }
    /// The source's video stream (a source without one was refused before any work).
    var video: VideoIndex { source.video }
    var extras: SourceExtras { source.extras }
    /// The input file's identity when the run began; every open of the input checks it.
    var identity: FileIdentity { source.identity }
    /// Absolute paths.
    var input: String { source.input }
    let output: String
    /// The output container (`mp4`, `mov`, `matroska`).
    let format: String
    let options: Transcoder.RunOptions
    let watchdog: StallWatchdog
    /// The output is already this task's own published file (a crash came after the rename).
    let published: Bool
    let logger: Logger
    let onEvent: @Sendable (PipelineEvent) -> Void
    /// Wall and CPU seconds from the run's start (its process's start, for the first task a process runs) until
    /// the DAG started: the checks before any work (probe, encoder and filter checks, the claim). Recorded on the
    /// probe's trace.
    let preflight: (wall: Double, cpu: Double)

    init(request: TranscodeRequest, task: TaskRecord, store: any Ledger, source: Transcoder.Inspection,
         output: String, format: String, options: Transcoder.RunOptions,
         watchdog: StallWatchdog, published: Bool, logger: Logger, onEvent: @escaping @Sendable (PipelineEvent) -> Void,
         preflight: (wall: Double, cpu: Double) = (0, 0)) {
        self.request = request
        self.task = task
        self.store = store
        self.source = source
        self.output = output
        self.format = format
        self.options = options
        self.watchdog = watchdog
        self.published = published
        self.logger = logger
        self.onEvent = onEvent
        self.preflight = preflight
    }

    var settings: TranscodeSettings { request.settings }
    var work: String { task.workDir }
    var taskId: TaskID { task.id }

    // MARK: values handed from stage to stage (each set once, by the stage named)

    private struct Produced: Sendable {
        var plan: Plan?
        var doneSegments = Set<Int>()
        var audioPieces: [Int: [AudioPiece]] = [:]
        var keptFrames: [Int] = []
        var verify: VerifyReport?
        var loudnessGains: [Int: Double] = [:]
    }
    private let produced = Mutex(Produced())

    /// The plan (set by `PlanStage`).
    var plan: Plan {
        get { produced.withLock { $0.plan }! }
        set { produced.withLock { $0.plan = newValue } }
    }
    /// The segments an earlier run finished, intact (set by `PlanStage`).
    var doneSegments: Set<Int> {
        get { produced.withLock { $0.doneSegments } }
        set { produced.withLock { $0.doneSegments = newValue } }
    }
    /// The audio pieces of every track encoded in pieces, by track number (set by `PlanStage`; the executor
    /// encodes them beside the video segments, the merge joins them).
    var audioPieces: [Int: [AudioPiece]] {
        get { produced.withLock { $0.audioPieces } }
        set { produced.withLock { $0.audioPieces = newValue } }
    }
    /// Every audio piece, in order (their element indices follow the video segments').
    var allAudioPieces: [AudioPiece] { audioPieces.values.flatMap { $0 }.sorted { $0.order < $1.order } }
    /// Frames each segment kept (set by `PlanStage` for the segments already done, by `EncodeStage` for the rest).
    func setKept(_ segment: Int, _ frames: Int) { produced.withLock { $0.keptFrames[segment] = frames } }
    func resetKept(count: Int) { produced.withLock { $0.keptFrames = Array(repeating: 0, count: count) } }
    var keptFrames: [Int] { produced.withLock { $0.keptFrames } }
    /// Each track's linear gain (`--loudness`; set by `ReduceStage`).
    var loudnessGains: [Int: Double] {
        get { produced.withLock { $0.loudnessGains } }
        set { produced.withLock { $0.loudnessGains = newValue } }
    }
    /// The check of the merged file (set by `VerifyStage`).
    var verify: VerifyReport? {
        get { produced.withLock { $0.verify } }
        set { produced.withLock { $0.verify = newValue } }
    }

    // MARK: where files are

    /// Segment `i`'s sealed file in the work folder.
    func segmentPath(_ i: Int) -> String { (work as NSString).appendingPathComponent(String(format: "seg-%05d.vseg", i)) }
    var segmentPaths: [String] { plan.segments.map { segmentPath($0.index) } }
    /// The folder of the audio and subtitle tracks' packet files, sealed as a whole by `AudioStage`.
    var tracksDir: String { (work as NSString).appendingPathComponent("tracks") }
    var audioTrackNames: [String] { extras.streams.audio.map { "audio-\($0.ordinal).vseg" } }
    var subtitleTrackNames: [String] { extras.streams.subtitles.map { "subtitle-\($0.ordinal).vseg" } }
    /// Every kept track's packet file, audio then subtitles: in `tracksDir`, but for a track encoded in pieces the
    /// file the merge joins them into (`joined/`).
    var trackPaths: [String] {
        let pieced = audioPieces
        let audio = zip(extras.streams.audio, audioTrackNames).map { track, name in
            pieced[track.ordinal] != nil ? (joinedDir as NSString).appendingPathComponent(name) : (tracksDir as NSString).appendingPathComponent(name)
        }
        return audio + subtitleTrackNames.map { (tracksDir as NSString).appendingPathComponent($0) }
    }
    /// Where the merge joins the pieces of a track encoded in pieces.
    var joinedDir: String { (work as NSString).appendingPathComponent("joined") }
    /// Audio piece `order`'s sealed file in the work folder.
    func audioPiecePath(_ order: Int) -> String { (work as NSString).appendingPathComponent(WorkFolder.audioPieceFileName(order)) }
    /// Segment `i`'s analysis artifact (`--analyze`).
    func analysisPath(_ i: Int) -> String { (work as NSString).appendingPathComponent(WorkFolder.analysisFileName(i)) }
    /// Audio piece `order`'s loudness measurement (`--loudness`).
    func measurePath(_ order: Int) -> String { (work as NSString).appendingPathComponent(WorkFolder.loudnessFileName(order)) }
    /// The reduce's global result (`--reduce`).
    var contextPath: String { (work as NSString).appendingPathComponent(WorkFolder.contextFileName) }
    /// The merged file before it is published: beside the output, named after the task.
    var partPath: String { task.partFile }
}

/// What a traced step's body hands back to the runner besides its value.
struct StepRecord<T> {
    var value: T
    /// Kept in the node's `detail` column (the plan, the merged file's signature, …).
    var detail: String? = nil
    var framesOut: Int? = nil
    var bytes: Int64? = nil
    /// A file or folder finished under a temporary name, renamed into place by the commit that records the step.
    var seal: Seal? = nil
    /// The step's fixed costs, when it measures any.
    var fixed = FixedCost()
    /// Work done for the step outside its own thread's clock — before its trace opened (the probe: the checks
    /// before any work; the mux: the join of the audio pieces) or on another thread (the plan: the audio map) —,
    /// added to its wall and CPU time.
    var before: (wall: Double, cpu: Double)? = nil
}

extension StageContext {
    /// Runs one node's work under a trace: opens it, measures wall and CPU time, and closes it with the node's
    /// status (and seals its file) in one transaction. The body gets the trace ID (for file names of its own).
    func traced<T>(_ node: Node, _ body: (_ trace: TraceID) throws(VSliceError) -> StepRecord<T>) throws(VSliceError) -> T {
        let trace = try store.beginEvent(taskId, node)
        let t0 = monotonicSeconds(), c0 = threadCPUSeconds()
        do throws(VSliceError) {
            let r = try body(trace)
            try store.endStep(trace: trace, task: taskId, node: node, segment: nil,
                              figures: .init(wall: monotonicSeconds() - t0 + (r.before?.wall ?? 0),
                                             cpu: threadCPUSeconds() - c0 + (r.before?.cpu ?? 0), framesOut: r.framesOut, bytes: r.bytes,
                                             fixed: r.fixed),
                              error: nil, detail: r.detail, seal: r.seal)
            return r.value
        } catch {
            // A holder that lost the task writes nothing more.
            if error.kind != .resumeRefused {
                try? store.endStep(trace: trace, task: taskId, node: node,
                                   figures: .init(wall: monotonicSeconds() - t0, cpu: threadCPUSeconds() - c0), error: error.description)
            }
            throw error
        }
    }
}
