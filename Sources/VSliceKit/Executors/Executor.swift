import Foundation
import Logging
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

extension ExecutorConfig {

    /// Checks, before any work, what this executor needs: a work folder root the workers can write to.
    func check(request: TranscodeRequest, detach: Bool) throws(VSliceError) {
        if detach && !isRemote {
            throw VSliceError(.usage, "check options", reason: "--detach needs --executor slurm, ray or external (a local run ends with its process)")
        }
        if kind != .slurm && !slurmArgs.isEmpty {
            throw VSliceError(.usage, "check options", reason: "--slurm-arg needs --executor slurm")
        }
        if staysUp == true && ![.slurm, .external].contains(kind) {
            throw VSliceError(.usage, "check options", reason: "--workers-stay-up needs --executor slurm or external (ray's workers always stay up)")
        }
        if kind != .ray && rayAddress != nil {
            throw VSliceError(.usage, "check options", reason: "--ray-address needs --executor ray")
        }
        if kind == .ray && (rayAddress ?? "").isEmpty {
            throw VSliceError(.usage, "check options", reason: "--executor ray needs --ray-address ADDR (or RAY_ADDRESS)")
        }
        guard isRemote else { return }
        if request.settings.context?.analyze != nil || request.settings.context?.loudness != nil {
            throw VSliceError(.usage, "check options", reason: "--analyze and --loudness run with the local executor only (for now)")
        }
        let root = request.workRoot.map(Paths.absolute)
            ?? (Paths.absolute(request.output) as NSString).deletingLastPathComponent
        try WorkFolder.checkWritable(root)
        if kind == .slurm { try SlurmEngine.checkInstalled() }
        if kind == .ray { try RayEngine.check(address: rayAddress ?? "") }
    }
}

/// Everything the encode stage of one run knows: the task, its plan, the segments still to do.
struct EncodeJob: Sendable {
    var task: TaskRecord
    var store: any Ledger
    var input: String
    /// The input file's identity when the run began; every open of the input checks it.
    var identity: FileIdentity
    var index: VideoIndex
    var plan: Plan
    var segmentPaths: [String]
    /// Segments not done yet, longest first.
    var todo: [SegmentPlan]
    /// Audio pieces not done yet, in order; `piecePaths` by piece order (element `plan.segments.count + order`).
    var pieces: [AudioPiece] = []
    var piecePaths: [String] = []
    var settings: TranscodeSettings
    var options: Transcoder.RunOptions
    var watchdog: StallWatchdog
    var onEvent: @Sendable (PipelineEvent) -> Void
    var logger: Logger
    /// Records the frames a segment kept (for the report).
    var kept: @Sendable (_ segment: Int, _ frames: Int) -> Void

    var workDir: String { task.workDir }

    /// Element indices: the video segments', then `plan.segments.count + k` for audio piece k.
    var firstPieceElement: Int { plan.segments.count }
    /// The elements still to do: the video segments, longest first, then the audio pieces (short: they fill
    /// the tail).
    var elements: [Element] {
        analyses.map { .analysis($0) } + measures.map { .loudness($0) } + todo.map { .segment($0) } + pieces.map { .audioPiece($0) }
    }
    /// Analysis elements not done yet (`--analyze`), longest first; `analysisPaths` by segment index.
    var analyses: [SegmentPlan] = []
    var analysisPaths: [String] = []
    /// Audio pieces whose loudness is not measured yet (`--loudness`); `measurePaths` by piece order.
    var measures: [AudioPiece] = []
    var measurePaths: [String] = []
    /// The linear gain of each track's pieces (`--loudness`), by track number.
    var gains: [Int: Double] = [:]
}

/// One unit of work an executor runs: a video segment or an audio piece.
enum Element: Sendable {
    case segment(SegmentPlan)
    case audioPiece(AudioPiece)
    /// A video segment's analysis (`--analyze`): its frames through the analyzer, its artifact sealed.
    case analysis(SegmentPlan)
    /// An audio piece's loudness measurement (`--loudness`).
    case loudness(AudioPiece)
}

enum EncodeOutcome: Sendable {
    /// Every segment is done.
    case finished
    /// The segments were handed to the scheduler and this process stops here (`--detach`).
    case detached
}

/// Runs the encode stage's segments somewhere.
protocol SegmentExecutor: Sendable {
    func encode(_ job: EncodeJob) throws(VSliceError) -> EncodeOutcome
}

extension ExecutorConfig {
    func make() -> SegmentExecutor {
        switch kind {
        case .local: LocalExecutor()
        case .external: RemoteExecutor(engine: ExternalEngine())
        case .slurm: RemoteExecutor(engine: SlurmEngine(extraArgs: slurmArgs, staysUp: workersStayUp))
        case .ray: RemoteExecutor(engine: RayEngine(address: rayAddress ?? ""))
        }
    }
}

/// Task control that reaches past this process.
public enum ExecutorControl {
    /// Stops what a scheduler still runs for the task (`vslice cancel`): scancel of its Slurm arrays. Nil when
    /// nothing was scheduled or the scheduler cancelled it; else why it did not (and the command to run by hand).
    /// What the scheduler holds of an unfinished task's elements, by segment index: "running on n2, slurm job
    /// 12_3" or "queued (slurm job 12_4)". Nil when its segments do not run under a scheduler vslice can ask, or
    /// it did not answer.
    public static func scheduled(_ t: TaskRecord) -> [Int: String]? {
        if let address = rayAddress(t) { return t.status.isResumable ? RayControl.scheduled(task: t.id, address: address) : nil }
        guard t.status.isResumable, let seen = sightings(t) else { return nil }
        let staysUp = t.storedRequest?.executor.workersStayUp == true
        return seen.mapValues { s in
            // A worker that stays up is named by its array element: it holds the element, one of many it runs.
            guard !staysUp else {
                return s.state == .running ? "running" + (s.node.map { " on \($0)" } ?? "") + ", held by worker slurm job \(s.arrayJob ?? "?")_\(s.arrayIndex.map(String.init) ?? "?")"
                    : "queued (waiting for a free worker)"
            }
            let job = "slurm job \(s.arrayJob ?? "?")_\(s.arrayIndex.map(String.init) ?? "?")"
            return s.state == .running ? "running" + (s.node.map { " on \($0)" } ?? "") + ", \(job)" : "queued (\(job))"
        }
    }

    /// What Slurm holds of the task's elements (whatever the ledger says of the task); nil when not a Slurm task
    /// or squeue did not answer.
    private static func sightings(_ t: TaskRecord) -> [Int: ElementSighting]? {
        if let address = rayAddress(t) { return RayControl.held(task: t.id, address: address)?.sightings }
        guard let e = t.storedRequest?.executor, e.kind == .slurm, ExternalCommand.find("squeue") != nil else { return nil }
        if e.workersStayUp { return SlurmEngine.workerSightings(task: t.id, workDir: t.workDir) }
        return SlurmEngine(extraArgs: []).inFlight(task: t.id)
    }

    /// Waits (at most `timeout` seconds) until the scheduler holds none of the task's elements.
    static func waitUntilUnscheduled(_ t: TaskRecord, timeout: Double) {
        let deadline = monotonicSeconds() + timeout
        while let held = sightings(t), !held.isEmpty, monotonicSeconds() < deadline { Thread.sleep(forTimeInterval: 0.5) }
    }

    @discardableResult
    public static func cancelScheduled(_ t: TaskRecord) -> String? {
        if let address = rayAddress(t) { return RayControl.cancel(task: t.id, address: address) }
        guard t.storedRequest?.executor.kind == .slurm else { return nil }
        return SlurmEngine.cancel(task: t.id)
    }

    /// The Ray cluster of a task whose elements run on Ray.
    private static func rayAddress(_ t: TaskRecord) -> String? {
        guard let e = t.storedRequest?.executor, e.kind == .ray else { return nil }
        return e.rayAddress
    }
}
