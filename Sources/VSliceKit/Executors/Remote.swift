import Foundation
import Synchronization

/// Where an element stands according to its scheduler.
enum ElementState: Sendable, Equatable {
    /// Waiting for resources (or to be requeued).
    case queued
    case running
}

/// A scheduler that runs `vslice segment` for chosen indices of a task.
protocol ClusterEngine: Sendable {
    /// Short name for messages ("slurm").
    var name: String { get }
    /// Seconds between two looks at the scheduler and the work folder.
    var pollInterval: Double { get }
    /// Whether this coordinator can start elements itself (and so resubmit failed ones).
    var canSubmit: Bool { get }
    /// Starts `vslice segment --work-dir DIR` for each index, at most `parallel` at once; returns the
    /// scheduler's ID for the submission.
    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> String
    /// The task's elements the scheduler still holds (queued or running), by segment index; nil when the
    /// scheduler cannot be asked right now.
    func inFlight(task: String) -> [Int: ElementState]?
    /// Stops every element of the task.
    func cancel(task: String)
}

/// What was submitted for a task (kept in the work folder as `submissions.json`, for attempts and `cancel`).
struct Submission: Codable, Sendable {
    var engine: String
    var id: String
    var indices: [Int]
    var submittedAt: Double

    static let fileName = "submissions.json"

    static func load(workDir: String) -> [Submission] {
        let path = (workDir as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? JSONDecoder().decode([Submission].self, from: data)) ?? []
    }

    static func save(_ all: [Submission], workDir: String) throws(VSliceError) {
        let data: Data
        do { data = try JSONEncoder().encode(all) } catch {
            throw VSliceError(.processing, "write submissions", path: workDir, reason: "\(error)")
        }
        try WorkFolder.writeAtomically(data, to: (workDir as NSString).appendingPathComponent(fileName))
    }
}

/// The coordinator side of an executor whose segments run in other processes (`vslice segment`): it submits
/// the segments to a scheduler, then watches the scheduler and the work folder — never the scheduler's
/// accounting, never job dependencies: an element is done when its trace record says so and its sealed file
/// matches; it is lost when the scheduler no longer holds it and it left no record. Records are ingested
/// into the ledger as they appear; failed and lost elements are submitted again (a new submission of just
/// those) up to `--max-attempts`; a deterministic failure (a record marked so: the worker's exit 2, 3 or 7 —
/// the policy of RetryPolicy.swift, the local executor's too) fails the task at once with the worker's error.
struct RemoteExecutor: SegmentExecutor {
    var engine: ClusterEngine

    /// Polls in a row an element may be missing from the scheduler, without a record, before it counts as lost
    /// (its record may be on its way through a shared filesystem).
    static let lostAfterPolls = 3

    func encode(_ job: EncodeJob) throws(VSliceError) -> EncodeOutcome {
        let work = job.workDir, taskId = job.task.id
        let maxAttempts = job.options.maxAttempts
        var pending = Set(job.todo.map(\.index))
        if pending.isEmpty { return .finished }
        let frames = Dictionary(uniqueKeysWithValues: job.plan.segments.map { ($0.index, $0.frameCount) })

        var submissions = Submission.load(workDir: work).filter { $0.engine == engine.name }
        var attempts: [Int: Int] = [:]
        for s in submissions { for i in s.indices { attempts[i, default: 0] += 1 } }
        var failures: [Int: Int] = [:]
        var lastError: [Int: String] = [:]
        // A deterministic failure recorded before (an earlier coordinator's run) is final.
        let earlier = SegmentTraceRecord.all(workDir: work).filter { pending.contains($0.segment) }
        for r in earlier where r.status == "failed" {
            failures[r.segment, default: 0] += 1
            lastError[r.segment] = r.error
        }
        for i in pending.sorted() {
            if let last = earlier.last(where: { $0.segment == i }), last.deterministicFailure { throw Self.failure(last, index: i) }
        }

        var started = Set<Int>()
        func markStarted(_ i: Int) {
            if started.insert(i).inserted { job.onEvent(.segmentStarted(index: i)) }
        }
        var outstanding = Set<Int>()
        var missing: [Int: Int] = [:]
        // Frames reported for each running attempt (from its progress file), and attempts that have ended.
        var reported: [Int: Int] = [:]
        var ended = Set<String>()
        func attemptEnded(_ i: Int, trace: String?) {
            reported[i] = nil
            if let trace { ended.insert(trace) }
            if let p = WorkFolder.progress(workDir: work, segment: i) { ended.insert(p.trace) }
        }

        /// Ingests the records that appeared since the last look; done segments leave `pending`, failed ones
        /// leave `outstanding` (to be submitted again) — or fail the task.
        func ingest() throws(VSliceError) {
            for r in try job.store.ingestTraceRecords(task: taskId, workDir: work) where pending.contains(r.segment) {
                let i = r.segment
                markStarted(i)
                missing[i] = nil
                let n = r.framesOut ?? frames[i] ?? 0
                let shown = r.trace == WorkFolder.progress(workDir: work, segment: i)?.trace ? reported[i] ?? 0 : 0
                attemptEnded(i, trace: r.trace)
                if r.status == "done" {
                    if n > shown { job.onEvent(.framesProcessed(segment: i, frames: n - shown)) }
                    job.onEvent(.segmentDone(index: i, frames: n))
                    job.kept(i, n)
                    pending.remove(i)
                    outstanding.remove(i)
                    continue
                }
                started.remove(i)
                job.onEvent(.segmentFailed(index: i, error: r.error ?? "failed"))
                failures[i, default: 0] += 1
                lastError[i] = r.error
                if r.deterministicFailure {
                    if engine.canSubmit { engine.cancel(task: taskId) }
                    throw Self.failure(r, index: i)
                }
                if engine.canSubmit {
                    outstanding.remove(i)
                } else if failures[i]! >= maxAttempts {
                    throw Self.failure(r, index: i, attempts: failures[i]!)
                }
            }
        }

        /// Submits what is pending and not outstanding, unless an index has used up its attempts.
        func submitMissing() throws(VSliceError) {
            let again = pending.subtracting(outstanding).sorted()
            guard !again.isEmpty else { return }
            if let over = again.first(where: { attempts[$0, default: 0] >= maxAttempts }) {
                engine.cancel(task: taskId)
                throw VSliceError(.processing, "encode segment \(over)", path: job.input,
                                  reason: "\(attempts[over]!) attempts under \(engine.name) failed (--max-attempts \(maxAttempts))"
                                      + (lastError[over].map { "; last: " + $0 } ?? ""))
            }
            if !submissions.isEmpty {
                job.logger.warning("submitting segments again", metadata: ["segments": "\(again)"])
            }
            try submit(again, job: job, submissions: &submissions, attempts: &attempts)
            outstanding.formUnion(again)
        }

        // What the scheduler already holds (a re-attach) is left alone; the rest is submitted. The scheduler is
        // asked first, then the records read: an element that ends in between is then seen done, not missing.
        if engine.canSubmit {
            guard let live = engine.inFlight(task: taskId) else {
                throw VSliceError(.processing, "ask \(engine.name)", path: work, reason: "the scheduler does not answer")
            }
            for (i, state) in live where pending.contains(i) {
                outstanding.insert(i)
                if state == .running { markStarted(i) }
            }
            try ingest()
            if pending.isEmpty { return .finished }
            try submitMissing()
        } else {
            outstanding = pending
            try ingest()
            if pending.isEmpty { return .finished }
        }
        if job.options.detach { return .detached }

        var unanswered = 0
        while true {
            if job.watchdog.cancelled {
                engine.cancel(task: taskId)
                throw VSliceError(.interrupted, "transcode", path: job.input, reason: "the task was cancelled")
            }
            if Cancellation.stopRequested {
                throw VSliceError(.interrupted, "transcode", path: job.input,
                                  reason: "stopped watching; the segments already submitted keep running under \(engine.name) "
                                      + "(`vslice resume \(taskId.prefix(8))` re-attaches, `vslice cancel \(taskId.prefix(8))` stops them)")
            }
            let live: [Int: ElementState]?
            if engine.canSubmit {
                live = engine.inFlight(task: taskId)
                if live == nil {
                    unanswered += 1
                    if Double(unanswered) * engine.pollInterval > 300 {
                        throw VSliceError(.processing, "ask \(engine.name)", path: work, reason: "the scheduler has not answered for 5 minutes")
                    }
                } else {
                    unanswered = 0
                }
            } else {
                live = nil
            }
            try ingest()
            if pending.isEmpty { return .finished }
            for i in outstanding.sorted() {
                guard let p = WorkFolder.progress(workDir: work, segment: i), !ended.contains(p.trace),
                      p.frames > reported[i] ?? 0 else { continue }
                markStarted(i)
                job.onEvent(.framesProcessed(segment: i, frames: p.frames - (reported[i] ?? 0)))
                reported[i] = p.frames
            }
            if let live {
                for (i, state) in live where state == .running && pending.contains(i) { markStarted(i) }
                for i in outstanding {
                    if live[i] != nil { missing[i] = nil; continue }
                    missing[i, default: 0] += 1
                    guard missing[i]! >= Self.lostAfterPolls else { continue }
                    missing[i] = nil
                    outstanding.remove(i)
                    markStarted(i)
                    started.remove(i)
                    let why = "\(engine.name) no longer holds it and it left no trace record (cancelled, killed, or its node failed)"
                    job.onEvent(.segmentFailed(index: i, error: why))
                    lastError[i] = why
                    attemptEnded(i, trace: nil)
                }
                try submitMissing()
            }
            Thread.sleep(forTimeInterval: engine.pollInterval)
        }
    }

    private func submit(_ indices: [Int], job: EncodeJob, submissions: inout [Submission],
                        attempts: inout [Int: Int]) throws(VSliceError) {
        let id = try engine.submit(indices: indices, parallel: job.settings.jobs, job: job)
        submissions.append(Submission(engine: engine.name, id: id, indices: indices, submittedAt: Date().timeIntervalSince1970))
        for i in indices { attempts[i, default: 0] += 1 }
        try Submission.save(submissions, workDir: job.workDir)
        job.logger.info("submitted", metadata: ["engine": "\(engine.name)", "id": "\(id)", "segments": "\(indices.count)"])
    }

    static func failure(_ r: SegmentTraceRecord, index: Int, attempts: Int? = nil) -> VSliceError {
        let kind = VSliceError.Kind(rawValue: r.exitKind) ?? .processing
        let kindKept: VSliceError.Kind = [.usage, .input].contains(kind) ? kind : .processing
        return VSliceError(kindKept, "encode segment \(index)", path: nil,
                           reason: "worker on \(r.host) failed" + (attempts.map { " (\($0) attempts)" } ?? "") + ": \(r.error ?? r.exitKind)")
    }
}

/// `--executor external`: nothing is submitted; `vslice segment` runs elsewhere for every index (a
/// Kubernetes Indexed Job, a shell loop on other machines) and the coordinator waits for the records.
/// Retries are the runner's business; `--max-attempts` failed records of one index fail the task.
struct ExternalEngine: ClusterEngine {
    var name: String { "external" }
    var pollInterval: Double { 0.5 }
    var canSubmit: Bool { false }
    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> String { "" }
    func inFlight(task: String) -> [Int: ElementState]? { nil }
    func cancel(task: String) {}
}
