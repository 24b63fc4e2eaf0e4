import Foundation
import GRDB
import VSliceModel
import VSliceSupport

public struct TaskRecord: Codable, FetchableRecord, Sendable {
    public var id: TaskID
    public var input: String
    public var output: String
    public var inputFingerprint: String
    /// The canonical signature of the output-affecting settings (`TranscodeSettings.outputSignature`): a resume
    /// must have the same.
    public var settingsSignature: String
    public var workDir: String
    public var status: TaskStatus
    public var error: String?
    public var framesTotal: Int
    public var leasePid: Int?
    public var leaseHost: String?
    public var leaseHeartbeat: Double?
    /// A new random token each time a process takes the lease: every write of a holder names it, so a holder
    /// whose lease was taken over (stopped past the stale limit) can no longer write anything.
    public var leaseToken: String?
    public var createdAt: Double
    public var updatedAt: Double
    public var requestJson: String?
    /// How the task failed (`VSliceError.Kind`'s raw value), when it did; nil for tasks stored before it was kept.
    public var failureKind: String?
    /// Its failure would fail the same way again (bad input or options, a refused resume, a deterministic
    /// processing failure): `resume --all` passes over it.
    public var failureDeterministic: Bool?

    public static let databaseTableName = "task"

    /// The request the task was started with (nil for tasks stored before it was kept).
    public var storedRequest: TranscodeRequest? {
        guard let data = requestJson?.data(using: .utf8) else { return nil }
        guard let stored = try? JSONDecoder().decode(StoredRequest.self, from: data) else { return nil }
        return TranscodeRequest(input: input, output: output, settings: stored.settings, force: stored.force,
                                keepTemp: stored.keepTemp, workRoot: stored.workRoot, executor: stored.executor ?? .local)
    }
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase

    private enum EncodedKeys: String, CodingKey {
        case id, input, output, inputFingerprint, settingsSignature, workDir, status, error, framesTotal, leasePid,
             leaseHost, leaseHeartbeat, createdAt, updatedAt, request
    }

    /// As JSON (`vslice status --json`): the stored request as an object (`settings`, `force`, `keep_temp`,
    /// `work_root`, `executor`), not as a string; the lease token, a holder's secret, left out.
    public func encode(to encoder: any Swift.Encoder) throws {
        var c = encoder.container(keyedBy: EncodedKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(input, forKey: .input)
        try c.encode(output, forKey: .output)
        try c.encode(inputFingerprint, forKey: .inputFingerprint)
        try c.encode(settingsSignature, forKey: .settingsSignature)
        try c.encode(workDir, forKey: .workDir)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encode(framesTotal, forKey: .framesTotal)
        try c.encodeIfPresent(leasePid, forKey: .leasePid)
        try c.encodeIfPresent(leaseHost, forKey: .leaseHost)
        try c.encodeIfPresent(leaseHeartbeat, forKey: .leaseHeartbeat)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        if let data = requestJson?.data(using: .utf8), let stored = try? JSONDecoder().decode(StoredRequest.self, from: data) {
            try c.encode(stored, forKey: .request)
        }
    }
}

public struct EventRecord: Codable, FetchableRecord, Sendable {
    public var id: EventID
    public var taskId: TaskID
    public var node: String
    public var status: StepStatus
    public var attempts: Int
    public var detail: String?
    public var error: String?
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

public struct SegmentRecord: Codable, FetchableRecord, Sendable {
    public var id: SegmentID
    public var eventId: EventID
    public var ord: Int
    public var status: SegmentStatus
    public var attempts: Int
    public var framesPlanned: Int
    public var framesDone: Int?
    public var file: String
    public var fileSize: Int64?
    public var fileChecksum: Int64?
    public var error: String?
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

public struct TraceRecord: Codable, FetchableRecord, Sendable {
    public var id: TraceID
    public var eventId: EventID
    public var segmentId: SegmentID?
    public var status: StepStatus
    public var startedAt: Double
    public var endedAt: Double?
    public var wallSeconds: Double?
    public var cpuSeconds: Double?
    public var framesIn: Int?
    public var framesOut: Int?
    public var bytes: Int64?
    public var error: String?
    public var pid: Int
    public var host: String
    /// Set for attempts a `vslice segment` worker reported: the scheduler (slurm, kubernetes), its job and
    /// array index, and the worker's exit code.
    public var engine: String?
    public var engineJob: String?
    public var engineIndex: Int?
    public var exitCode: Int?
    /// An element's fixed costs (see `FixedCost`), where measured.
    public var startupSeconds: Double? = nil
    public var flushSeconds: Double? = nil
    public var processSeconds: Double? = nil
    public var submittedAt: Double? = nil
    public var schedulerSeconds: Double? = nil
    public var collectedSeconds: Double? = nil
    /// With `--process`: the program's start-up and work per source frame in this attempt (see `FixedCost`).
    public var processorStartupSeconds: Double? = nil
    public var processorSecondsPerFrame: Double? = nil
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

/// What of a request is stored with its task (input and output have their own columns).
package struct StoredRequest: Codable {
    package var settings: TranscodeSettings
    package var force: Bool
    package var keepTemp: Bool
    package var workRoot: String?
    /// Where the segments run (absent in tasks stored before executors existed: local).
    package var executor: ExecutorConfig?
}

extension JobStore {
    /// A holder's heartbeat older than this lets another process take the task over.
    /// `VSLICE_LEASE_STALE_SECONDS` shortens it for tests.
    public static let leaseStaleSeconds: Double = {
        if let v = ProcessInfo.processInfo.environment["VSLICE_LEASE_STALE_SECONDS"], let s = Double(v), s > 0 { return s }
        return 15
    }()

    /// The task with this ID, or the one task whose ID starts with it. An ambiguous prefix is refused.
    public func task(_ id: TaskID) throws(VSliceError) -> TaskRecord? {
        let found = try read { db in
            if let exact = try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [id]) { return [exact] }
            guard !id.rawValue.isEmpty else { return [TaskRecord]() }
            return try TaskRecord.fetchAll(db, sql: "SELECT * FROM task WHERE substr(id, 1, ?) = ? ORDER BY created_at LIMIT 11",
                                           arguments: [id.rawValue.count, id.rawValue.lowercased()])
        }
        if found.count > 1 {
            let list = found.prefix(10).map { "\($0.id.short) (\($0.status), \(($0.output as NSString).lastPathComponent))" }
            throw VSliceError(.usage, "find task", reason: "'\(id)' matches \(found.count > 10 ? "more than 10" : String(found.count)) tasks: "
                                + list.joined(separator: ", ") + "; give more characters")
        }
        return found.first
    }

    public func tasks() throws(VSliceError) -> [TaskRecord] {
        try read { db in try TaskRecord.fetchAll(db, sql: "SELECT * FROM task ORDER BY created_at") }
    }

    /// The unfinished task for this input → output pair (at most one exists).
    public func unfinishedTask(input: String, output: String) throws(VSliceError) -> TaskRecord? {
        try read { db in try Self.unfinished(db, input: input, output: output) }
    }

    private static func unfinished(_ db: Database, input: String, output: String) throws -> TaskRecord? {
        try TaskRecord.fetchOne(db, sql: """
            SELECT * FROM task WHERE input = ? AND output = ? AND status IN \(TaskStatus.resumableSQL)
            ORDER BY created_at DESC LIMIT 1
            """, arguments: [input, output])
    }

    public func events(task: TaskID) throws(VSliceError) -> [EventRecord] {
        try read { db in try EventRecord.fetchAll(db, sql: "SELECT * FROM event WHERE task_id = ? ORDER BY created_at", arguments: [task]) }
    }

    /// The encode event's segments (the video), in order.
    public func segments(task: TaskID) throws(VSliceError) -> [SegmentRecord] { try segments(task: task, of: .encode) }

    /// The audio event's pieces, in order.
    public func audioPieces(task: TaskID) throws(VSliceError) -> [SegmentRecord] { try segments(task: task, of: .audio) }

    package func segments(task: TaskID, of node: Node) throws(VSliceError) -> [SegmentRecord] {
        try read { db in try SegmentRecord.fetchAll(db, sql: "SELECT * FROM segment WHERE event_id = ? ORDER BY ord", arguments: [task.event(node)]) }
    }

    public func traces(task: TaskID) throws(VSliceError) -> [TraceRecord] {
        try read { db in
            try TraceRecord.fetchAll(db, sql: "SELECT * FROM trace WHERE substr(event_id, 1, ?) = ? ORDER BY started_at",
                                     arguments: [task.eventPrefix.count, task.eventPrefix])
        }
    }

    // MARK: claiming a task

    /// Finds the unfinished task for the request and takes its lease, or creates a new task holding the lease,
    /// in ONE `BEGIN IMMEDIATE` transaction: of processes started together for the same input and output,
    /// exactly one gets the task and the others are refused (exit 5), before any work.
    /// A resume with a changed input or other settings is refused when the task has finished work (its
    /// amount is said), and quietly replaced when it has none.
    package func claim(_ r: ClaimRequest) throws(VSliceError) -> Claim {
        let token = UUID().uuidString.lowercased()
        let claim: Claim = try write { db in
            var existing = try Self.claimable(db, r)
            if let t = existing, isLeasedByOther(t) {
                throw VSliceError(.resumeRefused, "take task \(t.id.short)", path: t.output,
                                  reason: "another vslice process (pid \(t.leasePid ?? 0) on \(t.leaseHost ?? "?")) is running it")
            }
            var discarded: [TaskRecord] = []
            if let t = existing, try Self.discards(db, t, for: r) {
                try db.execute(sql: """
                    UPDATE task SET status = ?, error = 'replaced by a new task', lease_pid = NULL, lease_heartbeat = NULL,
                                    lease_token = NULL, updated_at = ? WHERE id = ?
                    """, arguments: [TaskStatus.cancelled, now(), t.id])
                try Self.closeOpenRows(db, task: t.id, status: .cancelled)
                discarded.append(t)
                existing = nil
            }
            if let t = existing {
                return Claim(task: try Self.takeOver(db, t, token: token), resumed: true, discarded: discarded)
            }
            return Claim(task: try Self.create(db, r, token: token), resumed: false, discarded: discarded)
        }
        leases.withLock { $0[claim.task.id] = token }
        return claim
    }

    /// The task a claim takes up: the one named (`vslice resume`), which must be resumable, else the
    /// unfinished task for the same input and output, if any.
    private static func claimable(_ db: Database, _ r: ClaimRequest) throws -> TaskRecord? {
        guard let id = r.taskId else { return try unfinished(db, input: r.input, output: r.output) }
        guard let t = try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [id]) else {
            throw VSliceError(.usage, "resume", reason: "no task '\(id)'")
        }
        guard t.status.isResumable else {
            throw VSliceError(.usage, "resume task \(t.id.short)", path: t.output, reason: "the task is \(t.status.rawValue); nothing to resume")
        }
        return t
    }

    /// Whether the unfinished task `t` is replaced by a new one: asked to (`--fresh`), or the request differs
    /// and it has no finished work. A request that differs from a task with finished work is refused (exit 5).
    private static func discards(_ db: Database, _ t: TaskRecord, for r: ClaimRequest) throws -> Bool {
        if r.fresh { return true }
        let now = r.request.settings.outputSignature
        let changed = t.inputFingerprint != r.fingerprint ? "the input changed since the task started"
            : t.settingsSignature != now
                ? "settings differ from the unfinished task's: \(TranscodeSettings.changes(from: t.settingsSignature, to: now))"
            : nil
        guard let changed else { return false }
        let work = try finishedWork(db, task: t.id)
        if r.taskId != nil || work.segments > 0 || work.merged {
            let what = work.merged ? "its merged output" : "\(work.segments) of \(work.total) segments already encoded"
            // `vslice resume` ran the task's own command: only what it reads can have changed.
            let advice = r.taskId != nil
                ? "put back what changed to finish it, or start over with `vslice transcode … --fresh`"
                : "run the same command as before to finish it, or add --fresh to discard that work and start over"
            throw VSliceError(.resumeRefused, "resume task \(t.id.short)", path: changed.hasPrefix("the input") ? r.input : r.output,
                              reason: "\(changed); the task has \(what) (\(advice))")
        }
        return true   // nothing finished: nothing is lost by starting over
    }

    /// Takes the lease of an unfinished task; what its previous holder had running died with it (or lost its
    /// lease and stops).
    private static func takeOver(_ db: Database, _ t: TaskRecord, token: String) throws -> TaskRecord {
        try db.execute(sql: """
            UPDATE task SET lease_pid = ?, lease_host = ?, lease_heartbeat = ?, lease_token = ?, status = ?,
                            error = NULL, updated_at = ? WHERE id = ?
            """, arguments: [Int(getpid()), Host.name, now(), token, TaskStatus.running, now(), t.id])
        try resetRunningRows(db, task: t.id, at: now())
        return try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [t.id])!
    }

    /// A new task for the request, holding the lease.
    private static func create(_ db: Database, _ r: ClaimRequest, token: String) throws -> TaskRecord {
        let id = TaskID.new()
        let t = now()
        let req = r.request
        let stored = StoredRequest(settings: req.settings, force: req.force, keepTemp: req.keepTemp, workRoot: req.workRoot,
                                   executor: req.executor)
        let json = (try? JSONEncoder().encode(stored)).flatMap { String(data: $0, encoding: .utf8) }
        let workDir = TaskPaths.workDir(output: r.output, taskId: id, root: req.workRoot.map(Paths.absolute))
        try db.execute(sql: """
            INSERT INTO task (id, input, output, input_fingerprint, settings_signature, request_json, work_dir,
                              status, lease_pid, lease_host, lease_heartbeat, lease_token, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, r.input, r.output, r.fingerprint, req.settings.outputSignature, json, workDir, TaskStatus.running,
                             Int(getpid()), Host.name, t, token, t, t])
        return try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [id])!
    }

    private static func finishedWork(_ db: Database, task: TaskID) throws -> (segments: Int, total: Int, merged: Bool) {
        let done = try Int.fetchOne(db, sql: "SELECT count(*) FROM segment WHERE event_id = ? AND status = ?",
                                    arguments: [task.event(.encode), SegmentStatus.done]) ?? 0
        let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM segment WHERE event_id = ?", arguments: [task.event(.encode)]) ?? 0
        let merged = try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE id = ? AND status = ?",
                                      arguments: [task.event(.mux), StepStatus.done]) ?? 0
        return (done, total, merged > 0)
    }

    /// Ends whatever a task left open: events and segments still `running`, traces still `running`.
    private static func closeOpenRows(_ db: Database, task: TaskID, status: StepStatus) throws {
        let t = now()
        try db.execute(sql: "UPDATE event SET status = ?, updated_at = ? WHERE task_id = ? AND status IN (?, ?)",
                       arguments: [status, t, task, StepStatus.running, StepStatus.pending])
        try resetRunningRows(db, task: task, at: t)
    }

    /// Segments left `running` go back to `pending`, traces left `running` become `abandoned`: their process is
    /// gone (or lost the task).
    private static func resetRunningRows(_ db: Database, task: TaskID, at t: Double) throws {
        try db.execute(sql: "UPDATE segment SET status = ?, updated_at = ? WHERE substr(event_id, 1, ?) = ? AND status = ?",
                       arguments: [SegmentStatus.pending, t, task.eventPrefix.count, task.eventPrefix, SegmentStatus.running])
        try db.execute(sql: "UPDATE trace SET status = ?, ended_at = ? WHERE status = ? AND substr(event_id, 1, ?) = ?",
                       arguments: [StepStatus.abandoned, t, StepStatus.running, task.eventPrefix.count, task.eventPrefix])
    }

    // MARK: the lease

    /// A write made as the holder of `task`'s lease, in one IMMEDIATE transaction that first checks the lease is
    /// still this process's. A holder that lost it (another process took the task over while this one was
    /// stopped) writes nothing: it gets a `.resumeRefused` error and must stop without touching the task.
    package func writeAsHolder<T>(_ task: TaskID, _ body: (Database) throws -> T) throws(VSliceError) -> T {
        guard let token = leases.withLock({ $0[task] }) else { throw Self.leaseLost(task) }
        return try write { db in
            let current = try String.fetchOne(db, sql: "SELECT lease_token FROM task WHERE id = ?", arguments: [task])
            guard current == token else { throw Self.leaseLost(task) }
            return try body(db)
        }
    }

    package static func leaseLost(_ task: TaskID) -> VSliceError {
        VSliceError(.resumeRefused, "hold task \(task.short)",
                    reason: "another vslice process took the task over (this one stopped answering for longer than \(Int(leaseStaleSeconds)) s); this process stops without writing")
    }

    /// Whether this process still holds the task's lease (a read; writes check it themselves).
    package func holdsLease(_ task: TaskID) -> Bool {
        guard let token = leases.withLock({ $0[task] }) else { return false }
        return (try? read { db in try String.fetchOne(db, sql: "SELECT lease_token FROM task WHERE id = ?", arguments: [task]) }) == token
    }

    /// Refreshes the lease. `.lost` once another process took the task over; `.cancelled` after `vslice cancel`.
    package func heartbeat(_ id: TaskID) -> HeartbeatResult {
        guard let token = leases.withLock({ $0[id] }) else { return .lost }
        let status: TaskStatus?? = try? write { db in
            try db.execute(sql: "UPDATE task SET lease_heartbeat = ? WHERE id = ? AND lease_token = ?", arguments: [now(), id, token])
            guard db.changesCount > 0 else { return TaskStatus?.none }
            return try TaskStatus.fetchOne(db, sql: "SELECT status FROM task WHERE id = ?", arguments: [id])
        }
        guard let found = status else { return .held }     // the database is busy or unwritable: not a verdict
        guard let s = found else { return .lost }
        return s == .cancelled ? .cancelled : .held
    }

    /// Ends the task (as its holder) and closes its open events; releases the lease. With `discardWork` (its
    /// work folder is being removed: bad input, bad options, cancelled) no segment counts as done any more.
    package func finishTask(_ id: TaskID, status: TaskStatus, failure: VSliceError? = nil, discardWork: Bool = false) throws(VSliceError) {
        try writeAsHolder(id) { db in
            if discardWork {
                try db.execute(sql: "UPDATE segment SET status = ?, updated_at = ? WHERE substr(event_id, 1, ?) = ? AND status = ?",
                               arguments: [SegmentStatus.pending, now(), id.eventPrefix.count, id.eventPrefix, SegmentStatus.done])
                try db.execute(sql: "UPDATE event SET status = ?, updated_at = ? WHERE task_id = ? AND status = ?",
                               arguments: [StepStatus.failed, now(), id, StepStatus.done])
            }
            try Self.end(db, id, status: status, failure: failure)
        }
        leases.withLock { $0[id] = nil }
    }

    /// Ends a task inside the caller's transaction: its status, its failure (message, kind, whether it would fail
    /// again), its lease released, its open events and traces closed.
    private static func end(_ db: Database, _ id: TaskID, status: TaskStatus, failure: VSliceError?) throws {
        try db.execute(sql: """
            UPDATE task SET status = ?, error = ?, failure_kind = ?, failure_deterministic = ?, lease_pid = NULL,
            lease_heartbeat = NULL, lease_token = NULL, updated_at = ?
            WHERE id = ?
            """, arguments: [status, failure?.description, failure?.kind.rawValue, failure.map { $0.failsAgain }, now(), id])
        try closeOpenRows(db, task: id, status: status == .done ? .done : status == .cancelled ? .cancelled : .failed)
    }

    /// A task left `running` by a holder that is gone, refused before it could be taken up again: recorded as
    /// failed (with why), so `status` does not show it running.
    package func markAbandoned(_ id: TaskID, error: VSliceError) {
        // Unfinished and held by no live process: nothing else is writing it.
        _ = try? write { db in
            guard let t = try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [id]),
                  t.status.isResumable, !isLeasedByOther(t) else { return }
            try Self.end(db, id, status: .failed, failure: error)
        }
    }

    package func setFrames(_ id: TaskID, _ n: Int) throws(VSliceError) {
        try writeAsHolder(id) { db in try db.execute(sql: "UPDATE task SET frames_total = ? WHERE id = ?", arguments: [n, id]) }
    }

    /// Marks a task cancelled (a running process notices at its next heartbeat and stops). Returns false when
    /// the task had already ended (done or cancelled).
    @discardableResult
    public func cancel(_ id: TaskID) throws(VSliceError) -> Bool {
        try write { db in
            try db.execute(sql: "UPDATE task SET status = ?, updated_at = ? WHERE id = ? AND status NOT IN (?, ?)",
                           arguments: [TaskStatus.cancelled, now(), id, TaskStatus.done, TaskStatus.cancelled])
            return db.changesCount > 0
        }
    }

    /// Whether a live process other than this one holds the task's lease: a heartbeat fresher than
    /// `leaseStaleSeconds`, from a pid that still exists (only checkable on this host).
    public func isLeasedByOther(_ t: TaskRecord) -> Bool {
        guard let holder = t.leasePid, let hb = t.leaseHeartbeat else { return false }
        if let token = t.leaseToken, leases.withLock({ $0[t.id] }) == token { return false }
        let alive = t.leaseHost != Host.name || kill(pid_t(holder), 0) == 0 || errno == EPERM
        return now() - hb < JobStore.leaseStaleSeconds && alive
    }

    public func status(of id: TaskID) throws(VSliceError) -> TaskStatus? {
        try read { db in try TaskStatus.fetchOne(db, sql: "SELECT status FROM task WHERE id = ?", arguments: [id]) }
    }

    /// Forgets the work folder of an ended task (after `gc` removed it).
    public func markWorkRemoved(_ id: TaskID) throws(VSliceError) {
        try write { db in try db.execute(sql: "UPDATE task SET work_dir = '' WHERE id = ?", arguments: [id]) }
    }

    // MARK: publish

    /// Publishes the merged part file as the holder: records its identity (device, inode, size, mtime) and
    /// renames it onto the output inside one transaction that checks the lease, so a holder that lost the task
    /// can never publish, and a crash right after the rename can still tell the output is ours.
    package func publish(_ task: TaskID, part: String, to output: String, replace: Bool) throws(VSliceError) {
        try writeAsHolder(task) { db in
            try db.execute(sql: "UPDATE event SET detail = ? WHERE id = ?", arguments: [FileOps.identity(part) ?? "", task.event(.publish)])
            try FileOps.publish(part, to: output, replace: replace)
        }
    }

    /// True when the task's output is the very file its interrupted publish step renamed there.
    package func publishedAlready(_ t: TaskRecord) throws(VSliceError) -> Bool {
        let detail = try read { db in
            try String.fetchOne(db, sql: "SELECT detail FROM event WHERE id = ?", arguments: [t.id.event(.publish)])
        }
        guard let detail, let identity = FileOps.identity(t.output) else { return false }
        return detail == identity
    }

    package func markEventDone(_ task: TaskID, _ node: Node) throws(VSliceError) {
        try writeAsHolder(task) { db in
            try db.execute(sql: "UPDATE event SET status = ?, updated_at = ? WHERE id = ?", arguments: [StepStatus.done, now(), task.event(node)])
        }
    }

    // MARK: events

    package func eventDone(_ task: TaskID, _ node: Node) throws(VSliceError) -> EventRecord? {
        try read { db in
            try EventRecord.fetchOne(db, sql: "SELECT * FROM event WHERE id = ? AND status = ?", arguments: [task.event(node), StepStatus.done])
        }
    }

    /// Marks a node running (creating it if needed), counts the attempt, and opens its trace.
    package func beginEvent(_ task: TaskID, _ node: Node, segment: SegmentID? = nil) throws(VSliceError) -> TraceID {
        let eventId = task.event(node)
        let traceId = TraceID.new()
        try writeAsHolder(task) { db in
            let t = now()
            try db.execute(sql: """
                INSERT INTO event (id, task_id, node, status, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """, arguments: [eventId, task, node.rawValue, StepStatus.running, t, t])
            if let segment {
                try db.execute(sql: "UPDATE segment SET status = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
                               arguments: [SegmentStatus.running, t, segment])
            } else {
                try db.execute(sql: "UPDATE event SET status = ?, attempts = attempts + 1, error = NULL, updated_at = ? WHERE id = ?",
                               arguments: [StepStatus.running, t, eventId])
            }
            try db.execute(sql: "INSERT INTO trace (id, event_id, segment_id, status, started_at, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [traceId, eventId, segment, StepStatus.running, t, Int(getpid()), Host.name])
        }
        return traceId
    }

    /// Closes a trace and, in the same transaction, marks the node (or segment) done or failed. With `seal`,
    /// the step's file is renamed into place inside that transaction (after the lease check): a holder that
    /// lost the task never replaces a file the new holder recorded.
    package func endStep(trace: TraceID, task: TaskID, node: Node, segment: SegmentDone? = nil, figures: TraceFigures,
                 error: String?, detail: String? = nil, seal: Seal? = nil) throws(VSliceError) {
        let done = error == nil
        try writeAsHolder(task) { db in
            let t = now()
            if let seal, rename(seal.from, seal.to) != 0 {
                throw VSliceError(.processing, "seal", path: seal.to, reason: String(cString: strerror(errno)))
            }
            try db.execute(sql: """
                UPDATE trace SET status = ?, ended_at = ?, wall_seconds = ?, cpu_seconds = ?, frames_in = ?, frames_out = ?,
                                 bytes = ?, error = ? WHERE id = ?
                """, arguments: [done ? StepStatus.done : .failed, t, figures.wall, figures.cpu, figures.framesIn, figures.framesOut,
                                 figures.bytes, error, trace])
            try Self.recordFixedCost(db, trace: trace, figures.fixed)
            if let segment {
                try Self.endSegment(db, segment.id, done: done ? segment : nil, error: error, at: t)
            } else {
                try db.execute(sql: "UPDATE event SET status = ?, error = ?, detail = COALESCE(?, detail), updated_at = ? WHERE id = ?",
                               arguments: [done ? StepStatus.done : .failed, error, detail, t, task.event(node)])
            }
        }
        if let seal { FileOps.fsyncDirectory((seal.to as NSString).deletingLastPathComponent) }
    }

    /// The one write that ends a segment's attempt, for the local executor (`endStep`) and a worker's ingested
    /// record alike: done, with its frames and sealed file's size and checksum; or failed, with why. A segment
    /// already done stays done (a late attempt of a node thought lost changes nothing).
    package static func endSegment(_ db: Database, _ id: SegmentID, done: SegmentDone?, error: String?, at t: Double) throws {
        if let done {
            try db.execute(sql: """
                UPDATE segment SET status = ?, frames_done = ?, file_size = ?, file_checksum = ?, error = NULL,
                                   updated_at = ? WHERE id = ? AND status != ?
                """, arguments: [SegmentStatus.done, done.frames, done.size, done.checksum, t, id, SegmentStatus.done])
        } else {
            try db.execute(sql: "UPDATE segment SET status = ?, error = ?, updated_at = ? WHERE id = ? AND status != ?",
                           arguments: [SegmentStatus.failed, error, t, id, SegmentStatus.done])
        }
    }

    /// Creates the encode event's segment rows for a plan (once).
    package func ensureSegments(task: TaskID, plan: Plan, files: [String]) throws(VSliceError) {
        let eventId = task.event(.encode)
        try writeAsHolder(task) { db in
            let t = now()
            try db.execute(sql: """
                INSERT INTO event (id, task_id, node, status, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """, arguments: [eventId, task, Node.encode.rawValue, StepStatus.running, t, t])
            for s in plan.segments {
                try db.execute(sql: """
                    INSERT INTO segment (id, event_id, ord, status, frames_planned, file, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
                    """, arguments: [task.segment(s.index), eventId, s.index, SegmentStatus.pending, s.frameCount, files[s.index], t, t])
            }
        }
    }

    /// Makes the audio event's piece rows match a plan of pieces (`order` → packets planned, file): a row that
    /// is missing is added, one whose plan or file differs is set back to pending, one past the plan removed.
    package func ensureAudioPieces(task: TaskID, pieces: [(order: Int, packets: Int, file: String)]) throws(VSliceError) {
        let eventId = task.event(.audio)
        try writeAsHolder(task) { db in
            let t = now()
            try db.execute(sql: """
                INSERT INTO event (id, task_id, node, status, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """, arguments: [eventId, task, Node.audio.rawValue, StepStatus.running, t, t])
            for p in pieces {
                try db.execute(sql: """
                    INSERT INTO segment (id, event_id, ord, status, frames_planned, file, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET frames_planned = excluded.frames_planned, file = excluded.file, status = excluded.status,
                                                  updated_at = excluded.updated_at
                    WHERE frames_planned != excluded.frames_planned OR file != excluded.file
                    """, arguments: [task.audioPiece(p.order), eventId, p.order, SegmentStatus.pending, p.packets, p.file, t, t])
            }
            try db.execute(sql: "DELETE FROM segment WHERE event_id = ? AND ord >= ?", arguments: [eventId, pieces.count])
        }
    }

    package func resetSegment(_ task: TaskID, _ id: SegmentID) throws(VSliceError) {
        try writeAsHolder(task) { db in
            try db.execute(sql: "UPDATE segment SET status = ?, updated_at = ? WHERE id = ?", arguments: [SegmentStatus.pending, now(), id])
        }
    }
}
