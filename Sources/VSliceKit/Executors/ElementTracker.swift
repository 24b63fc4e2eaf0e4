import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// Where an element stands according to its scheduler.
enum ElementState: Sendable, Equatable {
    /// Waiting for resources (or to be requeued).
    case queued
    case running
}

/// What a scheduler says about one element of a task at one look.
struct ElementSighting: Sendable, Equatable {
    var state: ElementState
    /// The node it runs on (running elements, when the scheduler says).
    var node: String? = nil
    /// The element's own job ID (Slurm: the element job's ID once it runs), to tell attempts apart.
    var job: String? = nil
    /// The submission it belongs to and its index there (Slurm: the array job's ID and SLURM_ARRAY_TASK_ID).
    var arrayJob: String? = nil
    var arrayIndex: Int? = nil
}

/// One look at a task's elements: what the scheduler holds, what the workers' progress files say, which nodes
/// are in trouble, and the time.
struct ElementLook: Sendable {
    /// By segment index; nil when the scheduler was not asked (an external runner) or did not answer.
    var live: [Int: ElementSighting]?
    /// The running attempts' progress files (trace, frames so far), by segment index.
    var progress: [Int: (trace: TraceID, frames: Int)] = [:]
    /// Nodes the scheduler reports down, drained or not responding, with its words.
    var nodeTrouble: [String: String] = [:]
    var now: Double
}

/// The coordinator's account of each element of a remote run, by segment index, as pure state transitions:
///
///     waiting ──submitted──► submitted ──seen running──► running ──done record──► done
///        ▲                       │                          │
///        └──── failed record, or lost (the scheduler no longer holds it and it left no record) ────┘
///
/// Inputs are the scheduler's looks (`look`), the workers' trace records (`record`) and the submissions made
/// (`submitted`); outputs are effects for the driver (events to report, records to write, the task to fail).
/// The retry policy is RetryPolicy.swift's: a deterministic record fails the task at once; other failures and
/// lost attempts are submitted again (a scheduler that can submit) up to `maxAttempts` submissions per index,
/// or fail the task after `maxAttempts` failed records (an external runner, which retries on its own).
struct ElementTracker: Sendable {
    enum Phase: Sendable, Equatable {
        /// To be submitted: never submitted, or its last attempt ended without the segment done.
        case waiting
        /// Handed to the scheduler (or found held by it), not seen running.
        case submitted
        /// Seen running, on `node` when the scheduler said.
        case running(node: String?)
        case done
    }

    struct Element: Sendable, Equatable {
        var phase: Phase = .waiting
        /// Submissions of this index (this coordinator's and earlier ones').
        var submissions = 0
        /// Failed attempts (records, and attempts lost without one).
        var failures = 0
        var lastError: String?
        /// Looks in a row the scheduler did not hold it while we thought it held.
        var missing = 0
        /// The scheduler's last word on it (for a lost attempt: where it ran).
        var sighting: ElementSighting?
        /// When it was last submitted or first seen running (a lost attempt's start).
        var since: Double?
        /// The started event was sent for the current attempt.
        var started = false
        /// Frames of the current attempt already reported.
        var reported = 0

        /// Handed to the scheduler and not ended: not to be submitted again.
        var held: Bool {
            switch phase {
            case .submitted, .running: true
            case .waiting, .done: false
            }
        }
    }

    enum Effect: Sendable {
        case started(Int)
        case frames(Int, Int)
        case done(Int, frames: Int)
        case failed(Int, error: String)
        /// A record of an attempt that ended without one (lost): to be written into the work folder, so that
        /// the ledger and `vslice status` show it.
        case writeRecord(SegmentTraceRecord)
        /// The task fails with this error; `cancel`: stop what the scheduler still runs for it first.
        case failTask(VSliceError, cancel: Bool)
    }

    /// Looks in a row an element may be missing from the scheduler, without a record, before it counts as lost
    /// (its record may be on its way through a shared filesystem).
    static let lostAfterPolls = 3

    let task: TaskID
    let engine: String
    let canSubmit: Bool
    let maxAttempts: Int
    /// Planned frames by index (a record without a frame count).
    let frames: [Int: Int]
    /// Trace IDs for the records of lost attempts (a UUID each; tests give their own).
    var makeTrace: @Sendable () -> TraceID = { TraceID.new() }
    private(set) var elements: [Int: Element]
    /// Attempts that have ended: their progress files count no more.
    private(set) var ended = Set<TraceID>()
    /// Records already accounted for when they are ingested: failed records an earlier run left (counted at
    /// the start) and the records this tracker wrote itself (lost attempts).
    private var accounted = Set<TraceID>()

    /// The elements still to do (`pending`), with what earlier coordinators did: their submissions and the
    /// failed records already in the work folder.
    init(task: TaskID, engine: String, canSubmit: Bool, maxAttempts: Int, pending: [Int], frames: [Int: Int],
         submitted earlier: [[Int]] = [], failed: [SegmentTraceRecord] = []) {
        self.task = task
        self.engine = engine
        self.canSubmit = canSubmit
        self.maxAttempts = maxAttempts
        self.frames = frames
        elements = Dictionary(uniqueKeysWithValues: pending.map { ($0, Element()) })
        for indices in earlier { for i in indices where elements[i] != nil { elements[i]!.submissions += 1 } }
        for r in failed where r.status == .failed && elements[r.segment] != nil {
            elements[r.segment]!.failures += 1
            elements[r.segment]!.lastError = r.error
            accounted.insert(r.trace)
            ended.insert(r.trace)
        }
    }

    /// Every element is done.
    var finished: Bool { elements.values.allSatisfy { $0.phase == .done } }

    func phase(_ i: Int) -> Phase? { elements[i]?.phase }

    /// Indices not done, ascending.
    var pending: [Int] { elements.filter { $0.value.phase != .done }.keys.sorted() }

    /// Indices handed to the scheduler and not ended, ascending.
    var held: [Int] { elements.filter { $0.value.held }.keys.sorted() }

    /// The nodes that held elements ran on which this look will declare lost: the driver asks the scheduler
    /// about those nodes only (rarely, so a look costs one scheduler command).
    func nodesAboutToBeLost(_ live: [Int: ElementSighting]) -> Set<String> {
        var nodes = Set<String>()
        for (i, e) in elements where e.held && live[i] == nil && e.missing + 1 >= Self.lostAfterPolls {
            if case .running(let node) = e.phase, let node = node ?? e.sighting?.node { nodes.insert(node) }
        }
        return nodes
    }

    /// A deterministic failure an earlier run recorded as an index's last attempt is final.
    static func finalFailure(pending: [Int], earlier: [SegmentTraceRecord]) -> VSliceError? {
        for i in pending.sorted() {
            if let last = earlier.last(where: { $0.segment == i }), last.deterministicFailure { return failure(last, index: i) }
        }
        return nil
    }

    // MARK: transitions

    /// The first look: what the scheduler already holds (a re-attach) is left to it; with a runner this
    /// coordinator cannot see (external), every pending element counts as held by it.
    mutating func attach(_ look: ElementLook) -> [Effect] {
        var fx: [Effect] = []
        for i in pending {
            if !canSubmit {
                elements[i]!.phase = .submitted
            } else if let s = look.live?[i] {
                fx += sighted(i, s, now: look.now)
            }
        }
        return fx
    }

    /// `indices` were submitted (a new submission of just those).
    mutating func submitted(_ indices: [Int], now: Double) {
        for i in indices where elements[i] != nil && elements[i]!.phase != .done {
            elements[i]!.phase = .submitted
            elements[i]!.submissions += 1
            elements[i]!.missing = 0
            elements[i]!.sighting = nil
            elements[i]!.since = now
        }
    }

    /// What is due for submission: the waiting elements, ascending — or the task's failure when one of them
    /// has used up its submissions.
    func due() -> Result<[Int], VSliceError> {
        guard canSubmit else { return .success([]) }
        let again = pending.filter { elements[$0]!.phase == .waiting }
        if let over = again.first(where: { elements[$0]!.submissions >= maxAttempts }) {
            let e = elements[over]!
            return .failure(VSliceError(.processing, "encode segment \(over)", path: nil,
                                        reason: "\(e.submissions) attempts under \(engine) failed (--max-attempts \(maxAttempts))"
                                            + (e.lastError.map { "; last: " + $0 } ?? "")))
        }
        return .success(again)
    }

    /// A look at the scheduler and the progress files: frames of running attempts, elements seen running,
    /// and elements lost — held, then missing from the scheduler for `lostAfterPolls` looks in a row.
    mutating func look(_ look: ElementLook) -> [Effect] {
        var fx: [Effect] = []
        for i in pending where elements[i]!.held {
            if let p = look.progress[i], !ended.contains(p.trace), p.frames > elements[i]!.reported {
                fx += markStarted(i)
                if elements[i]!.phase == .submitted { elements[i]!.phase = .running(node: nil) }
                fx.append(.frames(i, p.frames - elements[i]!.reported))
                elements[i]!.reported = p.frames
            }
        }
        guard let live = look.live else { return fx }
        for i in pending where elements[i]!.held {
            if let s = live[i] {
                fx += sighted(i, s, now: look.now)
                continue
            }
            elements[i]!.missing += 1
            if elements[i]!.missing >= Self.lostAfterPolls { fx += lose(i, look) }
        }
        return fx
    }

    /// A worker's record, just ingested into the ledger. `progressTrace`: the trace the segment's progress
    /// file names now.
    mutating func record(_ r: SegmentTraceRecord, progressTrace: TraceID?) -> [Effect] {
        let i = r.segment
        guard let e = elements[i], e.phase != .done, !accounted.contains(r.trace) else { return [] }
        if r.status != .done && !isCurrent(r, e) { return olderAttemptFailed(r) }
        var fx = markStarted(i)
        let shown = r.trace == progressTrace ? e.reported : 0
        endAttempt(i, trace: r.trace, progressTrace: progressTrace)
        if r.status == .done {
            let n = r.framesOut ?? frames[i] ?? 0
            if n > shown { fx.append(.frames(i, n - shown)) }
            elements[i]!.phase = .done
            return fx + [.done(i, frames: n)]
        }
        fx.append(.failed(i, error: r.error ?? StepStatus.failed.rawValue))
        elements[i]!.failures += 1
        elements[i]!.lastError = r.error
        if r.deterministicFailure { return fx + [.failTask(Self.failure(r, index: i), cancel: canSubmit)] }
        if canSubmit {
            elements[i]!.phase = .waiting
        } else if elements[i]!.failures >= maxAttempts {
            fx.append(.failTask(Self.failure(r, index: i, attempts: elements[i]!.failures), cancel: false))
        }
        return fx
    }

    // MARK: steps of the transitions

    private mutating func markStarted(_ i: Int) -> [Effect] {
        guard !elements[i]!.started else { return [] }
        elements[i]!.started = true
        return [.started(i)]
    }

    private mutating func sighted(_ i: Int, _ s: ElementSighting, now: Double) -> [Effect] {
        elements[i]!.missing = 0
        elements[i]!.sighting = s
        guard s.state == .running else {
            if !elements[i]!.held { elements[i]!.phase = .submitted; elements[i]!.since = now }
            return []
        }
        if case .running = elements[i]!.phase {} else { elements[i]!.since = now }
        elements[i]!.phase = .running(node: s.node)
        return markStarted(i)
    }

    private mutating func endAttempt(_ i: Int, trace: TraceID?, progressTrace: TraceID?) {
        elements[i]!.started = false
        elements[i]!.reported = 0
        elements[i]!.missing = 0
        if let trace { ended.insert(trace) }
        if let progressTrace { ended.insert(progressTrace) }
    }

    /// A failed record is of the current attempt unless the scheduler now holds another element for the index.
    private func isCurrent(_ r: SegmentTraceRecord, _ e: Element) -> Bool {
        guard e.held, let now = e.sighting?.job, let then = r.engine?.elementJob else { return true }
        return now == then
    }

    /// A failed record of an attempt before the one the scheduler now holds: counted, reported, nothing else.
    private mutating func olderAttemptFailed(_ r: SegmentTraceRecord) -> [Effect] {
        elements[r.segment]!.failures += 1
        elements[r.segment]!.lastError = r.error
        ended.insert(r.trace)
        if r.deterministicFailure { return [.failTask(Self.failure(r, index: r.segment), cancel: canSubmit)] }
        return []
    }

    /// A held element the scheduler no longer holds, with no record: its attempt ended unseen (cancelled, killed,
    /// its node failed). A record of it is written (so the ledger has the attempt) and it waits for submission.
    private mutating func lose(_ i: Int, _ look: ElementLook) -> [Effect] {
        let e = elements[i]!
        let node: String? = if case .running(let n) = e.phase { n ?? e.sighting?.node } else { nil }
        let why: String
        if let node, let trouble = look.nodeTrouble[node] {
            why = "lost: its node \(node) failed while running it (\(trouble)); it left no trace record"
        } else {
            why = "lost: \(engine) no longer holds it and it left no trace record (cancelled, killed, or its node failed)"
        }
        let trace = makeTrace()
        accounted.insert(trace)
        let started = e.since ?? look.now
        let record = SegmentTraceRecord(
            trace: trace, task: task, segment: i, status: .failed, error: why, exitKind: SegmentTraceRecord.lostExitKind,
            exitCode: nil, deterministic: false, startedAt: started, endedAt: look.now, wallSeconds: max(0, look.now - started),
            cpuSeconds: 0, pid: 0, host: node ?? "",
            engine: .init(kind: engine, job: e.sighting?.arrayJob, arrayIndex: e.sighting?.arrayIndex, elementJob: e.sighting?.job, node: node))
        var fx = markStarted(i)
        fx.append(.failed(i, error: why))
        fx.append(.writeRecord(record))
        endAttempt(i, trace: nil, progressTrace: look.progress[i]?.trace)
        elements[i]!.failures += 1
        elements[i]!.lastError = why
        elements[i]!.phase = .waiting
        elements[i]!.sighting = nil
        return fx
    }

    static func failure(_ r: SegmentTraceRecord, index: Int, attempts: Int? = nil) -> VSliceError {
        let kind = VSliceError.Kind(rawValue: r.exitKind) ?? .processing
        let kindKept: VSliceError.Kind = [.usage, .input].contains(kind) ? kind : .processing
        return VSliceError(kindKept, "encode segment \(index)", path: nil,
                           reason: "worker on \(r.host) failed" + (attempts.map { " (\($0) attempts)" } ?? "") + ": \(r.error ?? r.exitKind)")
    }
}
