/// The interface the stages and executors record a task's work through — its events, segments and traces —
/// and the lease they hold it by. The SQLite job store (`JobStore`) implements it; a ledger shared by
/// coordinators on many hosts (PostgreSQL) would be a second implementation. Every write is made as the
/// holder of the task's lease and is refused (`.resumeRefused`) once another process took the task over.
protocol Ledger: Sendable {
    // The task and its lease.
    /// Takes the task a run asks for (new, or the unfinished one resumed) with its lease, in one transaction.
    func claim(_ request: ClaimRequest) throws(VSliceError) -> Claim
    /// A task left `running` by a holder that is gone, refused before it was taken up again: recorded failed.
    func markAbandoned(_ task: TaskID, error: VSliceError)
    func setFrames(_ task: TaskID, _ n: Int) throws(VSliceError)
    func holdsLease(_ task: TaskID) -> Bool
    func heartbeat(_ task: TaskID) -> HeartbeatResult
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
    /// Takes in the trace records `vslice segment` workers wrote into the work folder.
    @discardableResult
    func ingestTraceRecords(task: TaskID, workDir: String, videoSegments: Int) throws(VSliceError) -> [SegmentTraceRecord]

    // The output.
    func publish(_ task: TaskID, part: String, to output: String, replace: Bool) throws(VSliceError)
}

extension JobStore: Ledger {}

extension Ledger {
    func beginEvent(_ task: TaskID, _ node: Node) throws(VSliceError) -> TraceID {
        try beginEvent(task, node, segment: nil)
    }

    func endStep(trace: TraceID, task: TaskID, node: Node, segment: SegmentDone? = nil, figures: TraceFigures,
                 error: String?, detail: String? = nil) throws(VSliceError) {
        try endStep(trace: trace, task: task, node: node, segment: segment, figures: figures, error: error, detail: detail, seal: nil)
    }

    func finishTask(_ task: TaskID, status: TaskStatus) throws(VSliceError) {
        try finishTask(task, status: status, failure: nil, discardWork: false)
    }
}

// MARK: what the ledger is told and tells

/// What a run asks of `claim`.
struct ClaimRequest {
    var input: String
    var output: String
    var fingerprint: String
    var request: TranscodeRequest
    /// Resume exactly this task (`vslice resume`); else the unfinished task for input → output, if any.
    var taskId: TaskID?
    var fresh: Bool
}

/// What `claim` found and did.
struct Claim {
    var task: TaskRecord
    /// An unfinished task was taken up again (else a new one was created).
    var resumed: Bool
    /// Unfinished tasks cancelled on the way (`--fresh`, or a changed request with no finished work):
    /// their work folders are to be removed.
    var discarded: [TaskRecord]
}

/// What a heartbeat found: the lease still held, the task cancelled (`vslice cancel`), or the lease lost.
enum HeartbeatResult { case held, cancelled, lost }

/// A finished step's figures, kept in its trace.
struct TraceFigures {
    var wall: Double
    var cpu: Double
    var framesIn: Int? = nil
    var framesOut: Int? = nil
    var bytes: Int64? = nil
    /// An element's fixed costs (start-up, flush), when measured.
    var fixed = FixedCost()
}

/// A file finished under a temporary name, moved to its final name by the commit that records it.
struct Seal {
    var from: String
    var to: String
}

/// A segment (or audio piece) finished: its frames (packets) and its sealed file's size and checksum.
struct SegmentDone {
    var id: SegmentID
    var frames: Int
    var size: Int64
    var checksum: Int64
}
