import Foundation
import GRDB
import VSliceModel
import VSliceSupport

extension JobStore {
    /// The trace columns a worker's record brings: which scheduler ran it, its job and array index, and the
    /// worker's exit code.
    package static func registerWorkerMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("worker-trace-records") { db in
            try db.execute(sql: """
                ALTER TABLE trace ADD COLUMN engine TEXT;        -- slurm | kubernetes | NULL (in process, or a plain process)
                ALTER TABLE trace ADD COLUMN engine_job TEXT;    -- Slurm array job ID / Kubernetes pod
                ALTER TABLE trace ADD COLUMN engine_index INTEGER;
                ALTER TABLE trace ADD COLUMN exit_code INTEGER;  -- the worker process's exit code
                """)
        }
    }

    /// Ingests the trace records that `vslice segment` workers wrote into the task's work folder: each record
    /// not seen before becomes a trace row — of the encode event for a video segment's element (index below
    /// `videoSegments`), of the audio event for an audio piece's (index `videoSegments + k`: piece k) — and a done
    /// record whose sealed file is intact marks its segment done (frames, size, checksum) — in one transaction
    /// per record. Idempotent (a
    /// record is known by its trace ID). `sealed` tells whether a done record's file is there and intact (the
    /// ledger does not read media files). Returns the records ingested now, oldest first.
    @discardableResult
    public func ingestTraceRecords(task: TaskID, workDir: String, videoSegments: Int,
                                   sealed: (SegmentTraceRecord) -> Bool) throws(VSliceError) -> [SegmentTraceRecord] {
        let records = SegmentTraceRecord.all(workDir: workDir).filter { $0.task == task }
        guard !records.isEmpty else { return [] }
        let known = try read { db in
            Set(try TraceID.fetchAll(db, sql: "SELECT id FROM trace WHERE event_id IN (?, ?)",
                                     arguments: [task.event(.encode), task.event(.audio)]))
        }
        var ingested: [SegmentTraceRecord] = []
        let submitted = Submission.load(workDir: workDir).map { (at: $0.submittedAt, indices: Set($0.indices)) }
        for var r in records where !known.contains(r.trace) {
            // Checked outside the transaction: reading the file may take a moment.
            if r.status == .done && !sealed(r) {
                r.status = .failed
                r.exitKind = "processing"
                r.error = "segment file missing or damaged since the worker sealed it"
            }
            let piece = r.segment >= videoSegments
            let eventId = task.event(piece ? .audio : .encode)
            let segmentId = piece ? task.audioPiece(r.segment - videoSegments) : task.segment(r.segment)
            let inserted: Bool = try writeAsHolder(task) { db in
                guard try Int.fetchOne(db, sql: "SELECT count(*) FROM segment WHERE id = ?", arguments: [segmentId]) == 1 else {
                    return false
                }
                try db.execute(sql: """
                    INSERT INTO trace (id, event_id, segment_id, status, started_at, ended_at, wall_seconds, cpu_seconds,
                                       frames_in, frames_out, bytes, error, pid, host, engine, engine_job, engine_index, exit_code)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
                    """, arguments: [r.trace, eventId, segmentId, r.status,
                                     r.startedAt, r.endedAt, r.wallSeconds, r.cpuSeconds, r.framesIn, r.framesOut, r.bytes,
                                     r.error,
                                     r.pid, r.host, r.engine?.kind, r.engine?.job, r.engine?.arrayIndex, r.exitCode.map { Int($0) }])
                guard db.changesCount > 0 else { return false }
                try Self.recordFixedCost(db, trace: r.trace, Self.fixedCost(of: r, submissions: submitted, records: records))
                let t = now()
                try db.execute(sql: "UPDATE segment SET attempts = attempts + 1, updated_at = ? WHERE id = ?", arguments: [t, segmentId])
                let done = r.status == .done
                    ? SegmentDone(id: segmentId, frames: r.framesOut ?? 0, size: r.bytes ?? 0, checksum: r.checksum ?? 0) : nil
                try Self.endSegment(db, segmentId, done: done, error: r.error, at: t)
                return true
            }
            if inserted { ingested.append(r) }
        }
        return ingested
    }

    /// A worker's record's fixed costs as the ledger keeps them: its start-up and flush, its process's start-up,
    /// and — when a submission of this coordinator's holds its index — the scheduler's latency and how long the
    /// record waited to be ingested. A lost attempt's record (the coordinator's own) measured nothing.
    package static func fixedCost(of r: SegmentTraceRecord, submissions: [(at: Double, indices: Set<Int>)],
                          records: [SegmentTraceRecord]) -> FixedCost {
        guard r.exitKind != SegmentTraceRecord.lostExitKind else { return FixedCost() }
        var f = FixedCost(startupSeconds: r.startupSeconds, flushSeconds: r.flushSeconds,
                          processSeconds: r.processStartedAt.map { max(0, r.startedAt - $0) })
        f.processorStartupSeconds = r.processorStartupSeconds
        f.processorSecondsPerFrame = r.processorSecondsPerFrame
        if let latency = SchedulerLatency.of(r, submissions: submissions, records: records) {
            f.submittedAt = latency.submittedAt
            f.schedulerSeconds = latency.seconds
            f.collectedSeconds = max(0, now() - r.endedAt)
        }
        return f
    }

    /// Ends this process's hold on a task whose segments it handed to a scheduler (`--detach`): the task stays
    /// `running`, with no holder, for `vslice resume` to take up; its events stay as they are.
    package func releaseDetached(_ id: TaskID) throws(VSliceError) {
        try writeAsHolder(id) { db in
            try db.execute(sql: """
                UPDATE task SET status = ?, lease_pid = NULL, lease_heartbeat = NULL, lease_token = NULL, updated_at = ?
                WHERE id = ?
                """, arguments: [TaskStatus.running, now(), id])
        }
        leases.withLock { $0[id] = nil }
    }
}
