import Foundation
import Logging
import Synchronization

/// Where a task's segments run (`--executor`); stored with the task, so a resume runs them the same way.
public struct ExecutorConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Threads in the vslice process (the default).
        case local
        /// One Slurm job array; element i runs `vslice segment --index i`.
        case slurm
        /// Someone else runs `vslice segment` for every index (e.g. a Kubernetes Indexed Job); the coordinator
        /// waits for their trace records.
        case external
    }

    public var kind: Kind
    /// Extra `sbatch` arguments (`--slurm-arg`, repeatable), e.g. `--partition=render`.
    public var slurmArgs: [String]

    public init(kind: Kind = .local, slurmArgs: [String] = []) {
        self.kind = kind
        self.slurmArgs = slurmArgs
    }

    public static let local = ExecutorConfig()

    /// Segments run in other processes, which find the task through its work folder.
    public var isRemote: Bool { kind != .local }

    /// Checks, before any work, what this executor needs: a work folder root the workers can write to.
    func check(request: TranscodeRequest, detach: Bool) throws(VSliceError) {
        if detach && !isRemote {
            throw VSliceError(.usage, "check options", reason: "--detach needs --executor slurm or external (a local run ends with its process)")
        }
        if kind != .slurm && !slurmArgs.isEmpty {
            throw VSliceError(.usage, "check options", reason: "--slurm-arg needs --executor slurm")
        }
        guard isRemote else { return }
        let root = request.workRoot.map(Transcoder.absolute)
            ?? (Transcoder.absolute(request.output) as NSString).deletingLastPathComponent
        try WorkFolder.checkWritable(root)
        if kind == .slurm { try SlurmEngine.checkInstalled() }
    }
}

extension WorkFolder {
    /// Refuses a folder this process cannot create files in (workers write their segments there).
    static func checkWritable(_ dir: String) throws(VSliceError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "check work folder", path: dir, reason: "the work folder root does not exist or is not a folder")
        }
        if let e = writeRefusal(dir) {
            throw VSliceError(.usage, "check work folder", path: dir,
                              reason: "not writable (\(String(cString: strerror(e)))): the workers write their segments there")
        }
    }

    /// Creates and removes a file in `dir`: nil when that worked, else the errno. Permission bits do not tell
    /// everything (a read-only mount, sysfs, an ACL or a FUSE file system refuse what they allow).
    static func writeRefusal(_ dir: String) -> Int32? {
        let probe = (dir as NSString).appendingPathComponent(".vslice-write-check-\(getpid())-\(UUID().uuidString.prefix(8))")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return errno }
        close(fd)
        unlink(probe)
        return nil
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
    var elements: [Element] { todo.map { .segment($0) } + pieces.map { .audioPiece($0) } }
}

/// One unit of work an executor runs: a video segment or an audio piece.
enum Element: Sendable {
    case segment(SegmentPlan)
    case audioPiece(AudioPiece)
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
        case .slurm: RemoteExecutor(engine: SlurmEngine(extraArgs: slurmArgs))
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
        guard t.status.isResumable, let seen = sightings(t) else { return nil }
        return seen.mapValues { s in
            let job = "slurm job \(s.arrayJob ?? "?")_\(s.arrayIndex.map(String.init) ?? "?")"
            return s.state == .running ? "running" + (s.node.map { " on \($0)" } ?? "") + ", \(job)" : "queued (\(job))"
        }
    }

    /// What Slurm holds of the task's elements (whatever the ledger says of the task); nil when not a Slurm task
    /// or squeue did not answer.
    private static func sightings(_ t: TaskRecord) -> [Int: ElementSighting]? {
        guard t.storedRequest?.executor.kind == .slurm, ExternalCommand.find("squeue") != nil else { return nil }
        return SlurmEngine(extraArgs: []).inFlight(task: t.id)
    }

    /// Waits (at most `timeout` seconds) until the scheduler holds none of the task's elements.
    static func waitUntilUnscheduled(_ t: TaskRecord, timeout: Double) {
        let deadline = monotonicSeconds() + timeout
        while let held = sightings(t), !held.isEmpty, monotonicSeconds() < deadline { Thread.sleep(forTimeInterval: 0.5) }
    }

    @discardableResult
    public static func cancelScheduled(_ t: TaskRecord) -> String? {
        guard t.storedRequest?.executor.kind == .slurm else { return nil }
        return SlurmEngine.cancel(task: t.id)
    }
}
