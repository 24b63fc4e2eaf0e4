import VSliceModel
import VSliceSupport
/// The interface the stages and executors record a task's work through — its events, segments and traces —
/// and the lease they hold it by. The SQLite job store (`JobStore`) implements it; a ledger shared by
/// coordinators on many hosts (PostgreSQL) would be a second implementation. Every write is made as the
/// holder of the task's lease and is refused (`.resumeRefused`) once another process took the task over.
package protocol Ledger: Sendable {
    // The task and its lease.
    /// Takes the task a run asks for (new, or the unfinished one resumed) with its lease, in one transaction.
    func claim(_ request: ClaimRequest) throws(VSliceError) -> Claim
    /// A task left `running` by a holder that is gone, refused before it was taken up again: recorded failed.
    func markAbandoned(_ task: TaskID, error: VSliceError)
    func setFrames(_ task: TaskID, _ n: Int) throws(VSliceError)
    func holdsLease(_ task: TaskID) -> Bool
    func heartbeat(_ task: TaskID) -> HeartbeatResult
    /// The running segment attempts' kept frames so far (segment order → frames), for `vslice status`.
    func recordRunningFrames(_ task: TaskID, _ frames: [Int: Int])
    /// Ends the task; a failure's message, kind and whether it would fail the same way again are recorded
    /// (`resume --all` passes over those that would).
    func finishTask(_ task: TaskID, status: TaskStatus, failure: VSliceError?, discardWork: Bool) throws(VSliceError)
    func releaseDetached(_ task: TaskID) throws(VSliceError)

    // Events (one per DAG node) and their traces (one per attempt).
    func eventDone(_ task: TaskID, _ node: Node) throws(VSliceError) -> EventRecord?
    func beginEvent(_ task: TaskID, _ node: Node, segment: SegmentID?) throws(VSliceError) -> TraceID
    func endStep(trace: TraceID, task: TaskID, node: Node, segment: SegmentDone?, figures: TraceFigures,
                 error: String?, detail: String?, seal: Seal?) throws(VSliceError)
    func markEventDone(_ task: TaskID, _ node: Node) throws(VSliceError)

    // The encode event's segments (the video).
    func ensureSegments(task: TaskID, plan: Plan, files: [String]) throws(VSliceError)
    func segments(task: TaskID) throws(VSliceError) -> [SegmentRecord]
    func resetSegment(_ task: TaskID, _ id: SegmentID) throws(VSliceError)

    // The audio event's pieces (segments `TASK_audio_N`).
    func ensureAudioPieces(task: TaskID, pieces: [(order: Int, packets: Int, file: String)]) throws(VSliceError)
    func audioPieces(task: TaskID) throws(VSliceError) -> [SegmentRecord]
    // The analyze event's elements (segments `TASK_analyze_N`, one per video segment).
    func ensureAnalyses(task: TaskID, elements: [(order: Int, frames: Int, file: String)]) throws(VSliceError)
    func analyses(task: TaskID) throws(VSliceError) -> [SegmentRecord]
    /// Takes in the trace records `vslice segment` workers wrote into the work folder.
    @discardableResult
    func ingestTraceRecords(task: TaskID, workDir: String, videoSegments: Int,
                            sealed: (SegmentTraceRecord) -> Bool) throws(VSliceError) -> [SegmentTraceRecord]

    // The output.
    func publish(_ task: TaskID, part: String, to output: String, replace: Bool) throws(VSliceError)
}

extension JobStore: Ledger {}

extension Ledger {
    package func beginEvent(_ task: TaskID, _ node: Node) throws(VSliceError) -> TraceID {
        try beginEvent(task, node, segment: nil)
    }

    package func endStep(trace: TraceID, task: TaskID, node: Node, segment: SegmentDone? = nil, figures: TraceFigures,
                 error: String?, detail: String? = nil) throws(VSliceError) {
        try endStep(trace: trace, task: task, node: node, segment: segment, figures: figures, error: error, detail: detail, seal: nil)
    }

    package func finishTask(_ task: TaskID, status: TaskStatus) throws(VSliceError) {
        try finishTask(task, status: status, failure: nil, discardWork: false)
    }
}

// MARK: what the ledger is told and tells

/// What a run asks of `claim`.
package struct ClaimRequest {
    package var input: String
    package var output: String
    package var fingerprint: String
    package var request: TranscodeRequest
    /// Resume exactly this task (`vslice resume`); else the unfinished task for input → output, if any.
    package var taskId: TaskID?
    package var fresh: Bool

    package init(input: String, output: String, fingerprint: String, request: TranscodeRequest, taskId: TaskID? = nil,
                 fresh: Bool) {
        self.input = input
        self.output = output
        self.fingerprint = fingerprint
        self.request = request
        self.taskId = taskId
        self.fresh = fresh
    }
}

/// What `claim` found and did.
package struct Claim {
    package var task: TaskRecord
    /// An unfinished task was taken up again (else a new one was created).
    package var resumed: Bool
    /// Unfinished tasks cancelled on the way (`--fresh`, or a changed request with no finished work):
    /// their work folders are to be removed.
    package var discarded: [TaskRecord]
}

/// What a heartbeat found: the lease still held, the task cancelled (`vslice cancel`), or the lease lost.
package enum HeartbeatResult { case held, cancelled, lost }

/// A finished step's figures, kept in its trace.
package struct TraceFigures {
    package var wall: Double
    package var cpu: Double
    package var framesIn: Int? = nil
    package var framesOut: Int? = nil
    package var bytes: Int64? = nil
    /// An element's fixed costs (start-up, flush), when measured.
    package var fixed: FixedCost = FixedCost()

    package init(wall: Double, cpu: Double, framesIn: Int? = nil, framesOut: Int? = nil, bytes: Int64? = nil,
                 fixed: FixedCost = FixedCost()) {
        self.wall = wall
        self.cpu = cpu
        self.framesIn = framesIn
        self.framesOut = framesOut
        self.bytes = bytes
        self.fixed = fixed
    }
}

/// A file finished under a temporary name, moved to its final name by the commit that records it.
package struct Seal {
    package var from: String
    package var to: String

    package init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}

/// A segment (or audio piece) finished: its frames (packets) and its sealed file's size and checksum.
package struct SegmentDone {
    package var id: SegmentID
    package var frames: Int
    package var size: Int64
    package var checksum: Int64

    package init(id: SegmentID, frames: Int, size: Int64, checksum: Int64) {
        self.id = id
        self.frames = frames
        self.size = size
        self.checksum = checksum
    }
}
