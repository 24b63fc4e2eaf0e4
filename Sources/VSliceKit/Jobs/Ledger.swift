/// The interface the stages and executors record a task's work through — its events, segments and traces —
/// and the lease they hold it by. The SQLite job store (`JobStore`) implements it; a ledger shared by
/// coordinators on many hosts (PostgreSQL) would be a second implementation. Every write is made as the
/// holder of the task's lease and is refused (`.resumeRefused`) once another process took the task over.
protocol Ledger: Sendable {
    // The task and its lease.
    func setFrames(_ task: String, _ n: Int) throws(VSliceError)
    func holdsLease(_ task: String) -> Bool
    func heartbeat(_ task: String) -> JobStore.HeartbeatResult
    func finishTask(_ task: String, status: String, error: String?, discardWork: Bool) throws(VSliceError)
    func releaseDetached(_ task: String) throws(VSliceError)

    // Events (one per DAG node) and their traces (one per attempt).
    func eventDone(_ task: String, _ node: Node) throws(VSliceError) -> EventRecord?
    func beginEvent(_ task: String, _ node: Node, segment: String?) throws(VSliceError) -> String
    func endStep(trace: String, task: String, node: Node, segment: JobStore.SegmentDone?, figures: JobStore.TraceFigures,
                 error: String?, detail: String?, seal: JobStore.Seal?) throws(VSliceError)
    func markEventDone(_ task: String, _ node: Node) throws(VSliceError)

    // The encode event's segments (the video).
    func ensureSegments(task: String, plan: Plan, files: [String]) throws(VSliceError)
    func segments(task: String) throws(VSliceError) -> [SegmentRecord]
    func resetSegment(_ task: String, _ id: String) throws(VSliceError)

    // The audio event's pieces (segments `TASK_audio_N`).
    func ensureAudioPieces(task: String, pieces: [(order: Int, packets: Int, file: String)]) throws(VSliceError)
    func audioPieces(task: String) throws(VSliceError) -> [SegmentRecord]
    /// Takes in the trace records `vslice segment` workers wrote into the work folder.
    @discardableResult
    func ingestTraceRecords(task: String, workDir: String) throws(VSliceError) -> [SegmentTraceRecord]

    // The output.
    func publish(_ task: String, part: String, to output: String, replace: Bool) throws(VSliceError)
}

extension JobStore: Ledger {}

extension Ledger {
    func beginEvent(_ task: String, _ node: Node) throws(VSliceError) -> String {
        try beginEvent(task, node, segment: nil)
    }

    func endStep(trace: String, task: String, node: Node, segment: JobStore.SegmentDone? = nil, figures: JobStore.TraceFigures,
                 error: String?, detail: String? = nil) throws(VSliceError) {
        try endStep(trace: trace, task: task, node: node, segment: segment, figures: figures, error: error, detail: detail, seal: nil)
    }

    func finishTask(_ task: String, status: String) throws(VSliceError) {
        try finishTask(task, status: status, error: nil, discardWork: false)
    }
}
