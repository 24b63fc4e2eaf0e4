import Foundation
import GRDB
import VSliceModel
import VSliceSupport

extension JobStore {
    // The lease: who holds a task, its heartbeat, how a holder ends it.

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

    /// Whether this process still holds the task's lease (a read; writes check it themselves): false once the
    /// ledger names another token (or none). A read that fails (a full disk, a busy store) is no verdict: held.
    package func holdsLease(_ task: TaskID) -> Bool {
        guard let token = leases.withLock({ $0[task] }) else { return false }
        // Not `try?`: it flattens the optional, and a failed read would look like a token taken away.
        do {
            return try read { db in try String.fetchOne(db, sql: "SELECT lease_token FROM task WHERE id = ?", arguments: [task]) } == token
        } catch {
            return true
        }
    }

    /// Refreshes the lease. `.lost` once another process took the task over (the row names another token);
    /// `.cancelled` after `vslice cancel`. A write that fails (a full disk, a busy store) is no verdict: `.held`
    /// — the run's own writes fail the same way and report the cause.
    package func heartbeat(_ id: TaskID) -> HeartbeatResult {
        guard let token = leases.withLock({ $0[id] }) else { return .lost }
        // Not `let s: TaskStatus?? = try? write {…}`: `try?` flattens the optional, so a failed write read as
        // "no row has this token", i.e. a lease taken over (a full disk said "another vslice process took it").
        do {
            return try write { db -> HeartbeatResult in
                try db.execute(sql: "UPDATE task SET lease_heartbeat = ? WHERE id = ? AND lease_token = ?", arguments: [now(), id, token])
                guard db.changesCount > 0 else { return .lost }
                return try TaskStatus.fetchOne(db, sql: "SELECT status FROM task WHERE id = ?", arguments: [id]) == .cancelled ? .cancelled : .held
            }
        } catch {
            return .held
        }
    }

    /// Records the kept frames done so far by the running attempts at video segments (segment order → frames) in
    /// their traces' `frames_out`, for `vslice status` (the heartbeat's; the attempt's end sets its own). A write
    /// that fails is dropped: the next heartbeat tries again.
    package func recordRunningFrames(_ id: TaskID, _ frames: [Int: Int]) {
        guard !frames.isEmpty else { return }
        _ = try? writeAsHolder(id) { db in
            for (ord, n) in frames {
                try db.execute(sql: "UPDATE trace SET frames_out = ? WHERE segment_id = ? AND status = ?",
                               arguments: [n, id.segment(ord), StepStatus.running])
            }
        }
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
}
