import Foundation
import GRDB
import VSliceModel
import VSliceSupport

extension JobStore {
    // Claiming a task: the one transaction that takes or creates it.

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
            : TranscodeSettings.difference(stored: t.settingsSignature, now: now).map { "settings differ from the unfinished task's: \($0)" }
        guard let changed else { return false }
        let work = try finishedWork(db, task: t.id)
        if r.taskId != nil || work.segments > 0 || work.merged || work.analyses > 0 {
            let what = work.merged ? "its merged output" : work.segments == 0 && work.analyses > 0
                ? "\(work.analyses) segment\(work.analyses == 1 ? "" : "s") already analysed"
                : "\(work.segments) of \(work.total) segment\(work.total == 1 ? "" : "s") already encoded"
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
                                   executor: req.executor, maxAttempts: req.maxAttempts, stallTimeout: req.stallTimeout,
                                   keepLogs: req.keepLogs)
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

    /// The work a changed request would lose: segments encoded, of how many; the merged file; analyses (`--analyze`).
    private static func finishedWork(_ db: Database, task: TaskID) throws -> (segments: Int, total: Int, merged: Bool, analyses: Int) {
        let done = try Int.fetchOne(db, sql: "SELECT count(*) FROM segment WHERE event_id = ? AND status = ?",
                                    arguments: [task.event(.encode), SegmentStatus.done]) ?? 0
        let total = try Int.fetchOne(db, sql: "SELECT count(*) FROM segment WHERE event_id = ?", arguments: [task.event(.encode)]) ?? 0
        let merged = try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE id = ? AND status = ?",
                                      arguments: [task.event(.mux), StepStatus.done]) ?? 0
        let analysed = try Int.fetchOne(db, sql: "SELECT count(*) FROM segment WHERE event_id = ? AND status = ?",
                                        arguments: [task.event(.analyze), SegmentStatus.done]) ?? 0
        return (done, total, merged > 0, analysed)
    }

    /// Ends whatever a task left open: events and segments still `running`, traces still `running`.
    static func closeOpenRows(_ db: Database, task: TaskID, status: StepStatus) throws {
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
}
