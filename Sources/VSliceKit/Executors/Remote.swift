import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// A scheduler that runs `vslice segment` for chosen indices of a task.
protocol ClusterEngine: Sendable {
    /// Short name for messages ("slurm").
    var name: String { get }
    /// Seconds between two looks at the scheduler and the work folder.
    var pollInterval: Double { get }
    /// Whether this coordinator can start elements itself (and so resubmit failed ones).
    var canSubmit: Bool { get }
    /// Starts `vslice segment --work-dir DIR` for each index, at most `parallel` at once (per submission);
    /// returns the scheduler's submissions (one, or several when the scheduler caps a submission's size), each
    /// with its ID and the indices it holds. All or nothing: a submission that fails cancels the ones before it.
    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> [(id: String, indices: [Int])]
    /// The task's elements the scheduler still holds (queued or running), by segment index; nil when the
    /// scheduler cannot be asked right now.
    func inFlight(task: TaskID) -> [Int: ElementSighting]?
    /// The same for a run's elements (an engine whose workers stay up reads their claims in the work folder).
    func inFlight(job: EncodeJob) -> [Int: ElementSighting]?
    /// Of these nodes, those the scheduler reports down, drained or not responding, with its words.
    func nodeTrouble(_ nodes: Set<String>) -> [String: String]
    /// Stops every element of the task.
    func cancel(task: TaskID)
    /// Whether the elements stop with the coordinator (Ctrl-C cancels them) rather than go on without it.
    var stopsWithCoordinator: Bool { get }
    /// Every element of the task is done: what the scheduler still holds for it has nothing left to do (workers
    /// that stay up, queued or about to exit).
    func finished(task: TaskID)
}

extension ClusterEngine {
    var stopsWithCoordinator: Bool { false }
    func inFlight(job: EncodeJob) -> [Int: ElementSighting]? { inFlight(task: job.task.id) }
    func finished(task: TaskID) {}
}

/// The coordinator side of an executor whose segments run in other processes (`vslice segment`): it submits
/// the segments to a scheduler, then watches the scheduler and the work folder — never the scheduler's
/// accounting, never job dependencies: an element is done when its trace record says so and its sealed file
/// matches; it is lost when the scheduler no longer holds it and it left no record (cancelled, killed, its node
/// failed). Records are ingested into the ledger as they appear; failed and lost elements are submitted again (a
/// new submission of just those) up to `--max-attempts`; a deterministic failure (a record marked so: the
/// worker's exit 2, 3 or 7 — the policy of RetryPolicy.swift, the local executor's too) fails the task at once
/// with the worker's error. Each element's state and what follows from a look or a record is `ElementTracker`'s
/// (pure transitions); `RemoteRun` does the I/O around it.
struct RemoteExecutor: SegmentExecutor {
    var engine: ClusterEngine

    func encode(_ job: EncodeJob) throws(VSliceError) -> EncodeOutcome {
        var run = try RemoteRun(engine: engine, job: job)
        if run.tracker.finished { return .finished }
        try run.attach()
        if !run.tracker.finished {
            if job.options.detach { return .detached }
            try run.watch()
        }
        engine.finished(task: job.task.id)
        return .finished
    }
}

/// One coordinator's watch over a task's elements: asks the scheduler, reads the progress files, ingests the
/// records into the ledger, submits, and carries out the tracker's effects (events, records of lost attempts,
/// the task's failure).
struct RemoteRun {
    let engine: ClusterEngine
    let job: EncodeJob
    private(set) var tracker: ElementTracker
    private var submissions: [Submission]
    /// Looks in a row the scheduler did not answer.
    private var unanswered = 0

    /// The tracker of the segments still to do, with what earlier coordinators of the task submitted and the
    /// failed records they left. A deterministic failure recorded before is final.
    init(engine: ClusterEngine, job: EncodeJob) throws(VSliceError) {
        self.engine = engine
        self.job = job
        // Video segments, then audio pieces (element `firstPieceElement + order`).
        let pending = job.todo.map(\.index) + job.pieces.map { job.firstPieceElement + $0.order }
        let wanted = Set(pending)
        submissions = Submission.load(workDir: job.workDir).filter { $0.engine == engine.name }
        let earlier = SegmentTraceRecord.all(workDir: job.workDir).filter { wanted.contains($0.segment) }
        tracker = ElementTracker(task: job.task.id, engine: engine.name, canSubmit: engine.canSubmit,
                                 maxAttempts: job.options.maxAttempts, pending: pending,
                                 frames: Dictionary(uniqueKeysWithValues: job.plan.segments.map { ($0.index, $0.frameCount) }
                                     + job.pieces.map { (job.firstPieceElement + $0.order, $0.packets) }),
                                 submitted: submissions.map(\.indices), failed: earlier)
        if let final = ElementTracker.finalFailure(pending: pending, earlier: earlier) { throw final }
    }

    /// What the scheduler already holds (a re-attach) is left alone; what finished meanwhile is taken in; the
    /// rest is submitted. The scheduler is asked first, then the records read: an element that ends in between
    /// is then seen done, not missing.
    mutating func attach() throws(VSliceError) {
        var live: [Int: ElementSighting]?
        if engine.canSubmit {
            live = engine.inFlight(job: job)
            if live == nil {
                throw VSliceError(.processing, "ask \(engine.name)", path: job.workDir, reason: "the scheduler does not answer")
            }
        }
        try perform(tracker.attach(ElementLook(live: live, now: now())))
        try ingest()
        if !tracker.finished && engine.canSubmit { try submitDue() }
    }

    /// Looks every poll interval until every element is done, the task fails or is cancelled, or this process
    /// is told to stop watching.
    mutating func watch() throws(VSliceError) {
        while true {
            try checkStop()
            try poll()
            if tracker.finished { return }
            // Between two looks at the scheduler, the work folder's new records are taken in every quarter
            // second (a listing of the folder, nothing asked of the scheduler): the last element's record is in
            // ≈ 0.1 s after its end rather than ≈ half a poll interval.
            let next = monotonicSeconds() + engine.pollInterval
            while monotonicSeconds() + Self.recordLook < next {
                Thread.sleep(forTimeInterval: Self.recordLook)
                try checkStop()
                try ingest()
                if tracker.finished { return }
            }
            Thread.sleep(forTimeInterval: max(0, next - monotonicSeconds()))
        }
    }

    /// Seconds between two looks at the work folder's records (between looks at the scheduler).
    static let recordLook = 0.25

    /// One look: the scheduler first, then the records, then the progress files, the sightings and the losses
    /// (with the troubles of the nodes lost elements ran on); then what is due is submitted.
    mutating func poll() throws(VSliceError) {
        let live = try askScheduler()
        try ingest()
        if tracker.finished { return }
        var look = ElementLook(live: live, now: now())
        for i in tracker.held {
            if let p = WorkFolder.progress(workDir: job.workDir, segment: i) { look.progress[i] = p }
        }
        if let live {
            let nodes = tracker.nodesAboutToBeLost(live)
            if !nodes.isEmpty { look.nodeTrouble = engine.nodeTrouble(nodes) }
        }
        try perform(tracker.look(look))
        if live != nil { try submitDue() }
    }

    private func checkStop() throws(VSliceError) {
        let taskId = job.task.id
        if job.watchdog.cancelled {
            engine.cancel(task: taskId)
            throw VSliceError(.interrupted, "transcode", path: job.input, reason: "the task was cancelled")
        }
        if Cancellation.stopRequested && engine.stopsWithCoordinator {
            engine.cancel(task: taskId)
            throw VSliceError(.interrupted, "transcode", path: job.input,
                              reason: "stopped; the elements under \(engine.name) were stopped (`vslice resume \(taskId.short)` submits the rest again)")
        }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: job.input,
                              reason: "stopped watching; the segments already submitted keep running under \(engine.name) "
                                  + "(`vslice resume \(taskId.short)` re-attaches, `vslice cancel \(taskId.short)` stops them)")
        }
    }

    /// The scheduler's elements, or nil (an external runner; a scheduler that did not answer, for at most 5 minutes).
    private mutating func askScheduler() throws(VSliceError) -> [Int: ElementSighting]? {
        guard engine.canSubmit else { return nil }
        guard let live = engine.inFlight(job: job) else {
            unanswered += 1
            if Double(unanswered) * engine.pollInterval > 300 {
                throw VSliceError(.processing, "ask \(engine.name)", path: job.workDir, reason: "the scheduler has not answered for 5 minutes")
            }
            return nil
        }
        unanswered = 0
        return live
    }

    /// Ingests the records that appeared since the last look, and hands each to the tracker.
    private mutating func ingest() throws(VSliceError) {
        for r in try job.store.ingestTraceRecords(task: job.task.id, workDir: job.workDir, videoSegments: job.firstPieceElement) {
            let progress = WorkFolder.progress(workDir: job.workDir, segment: r.segment)?.trace
            try perform(tracker.record(r, progressTrace: progress))
        }
    }

    /// Submits what is due, unless an index has used up its submissions (then the task fails).
    private mutating func submitDue() throws(VSliceError) {
        let again: [Int]
        switch tracker.due() {
        case .success(let indices): again = indices
        case .failure(var e):
            engine.cancel(task: job.task.id)
            e.path = job.input
            throw e
        }
        guard !again.isEmpty else { return }
        if !submissions.isEmpty {
            job.logger.warning("submitting segments again", metadata: ["segments": "\(again)"])
        }
        let made = try engine.submit(indices: again, parallel: job.settings.jobs, job: job)
        let t = now()
        submissions += made.map { Submission(engine: engine.name, id: $0.id, indices: $0.indices, submittedAt: t) }
        tracker.submitted(again, now: t)
        try Submission.save(submissions, workDir: job.workDir)
        job.logger.info("submitted", metadata: ["engine": "\(engine.name)", "ids": "\(made.map(\.id).joined(separator: ","))",
                                                "segments": "\(again.count)"])
    }

    /// Carries out the tracker's effects, in order.
    private func perform(_ effects: [ElementTracker.Effect]) throws(VSliceError) {
        let pieces = job.firstPieceElement
        for effect in effects {
            switch effect {
            // An audio piece's element tells the log only: the progress counts the video's segments and frames.
            case .started(let i) where i >= pieces, .frames(let i, _) where i >= pieces: break
            case .done(let i, _) where i >= pieces: job.logger.info("audio piece done", metadata: ["piece": "\(i - pieces)"])
            case .failed(let i, let error) where i >= pieces:
                job.logger.warning("audio piece failed", metadata: ["piece": "\(i - pieces)", "error": "\(error)"])
            case .started(let i): job.onEvent(.segmentStarted(index: i))
            case .frames(let i, let n): job.onEvent(.framesProcessed(segment: i, frames: n))
            case .done(let i, let n):
                job.onEvent(.segmentDone(index: i, frames: n))
                job.kept(i, n)
            case .failed(let i, let error): job.onEvent(.segmentFailed(index: i, error: error))
            case .writeRecord(let r):
                job.logger.warning("segment attempt lost", metadata: ["segment": "\(r.segment)", "reason": "\(r.error ?? "")"])
                do { try r.write(workDir: job.workDir) } catch {
                    job.logger.warning("could not record the lost attempt", metadata: ["error": "\(error)"])
                }
            case .failTask(let e, let cancel):
                if cancel { engine.cancel(task: job.task.id) }
                throw e
            }
        }
    }
}

/// `--executor external`: nothing is submitted; `vslice segment` runs elsewhere for every index (a
/// Kubernetes Indexed Job, a shell loop on other machines) and the coordinator waits for the records.
/// Retries are the runner's business; `--max-attempts` failed records of one index fail the task.
struct ExternalEngine: ClusterEngine {
    var name: String { "external" }
    var pollInterval: Double { 0.5 }
    var canSubmit: Bool { false }
    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> [(id: String, indices: [Int])] { [] }
    func inFlight(task: TaskID) -> [Int: ElementSighting]? { nil }
    func nodeTrouble(_ nodes: Set<String>) -> [String: String] { [:] }
    func cancel(task: TaskID) {}
}
