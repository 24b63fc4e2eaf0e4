import Foundation
import GRDB
import VSliceModel
import VSliceSupport

extension JobStore {
    // Publishing the output as the holder.

    /// Publishes the merged part file as the holder: records its identity (device, inode, size, mtime) and
    /// renames it onto the output inside one transaction that checks the lease, so a holder that lost the task
    /// can never publish, and a crash right after the rename can still tell the output is ours.
    /// When that commit fails (a full disk under the job store), the file is renamed back: nothing is at the
    /// output that the ledger does not say was published, and a resume publishes the same part file.
    package func publish(_ task: TaskID, part: String, to output: String, replace: Bool) throws(VSliceError) {
        var moved = false
        do throws(VSliceError) {
            try writeAsHolder(task) { db in
                try db.execute(sql: "UPDATE event SET detail = ? WHERE id = ?", arguments: [FileOps.identity(part) ?? "", task.event(.publish)])
                try FileOps.publish(part, to: output, replace: replace)
                moved = true
            }
        } catch {
            if moved && rename(output, part) == 0 { FileOps.fsyncDirectory((output as NSString).deletingLastPathComponent) }
            throw error
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

    // Events, traces and segments: the rows of the steps.

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
        try ensureRows(task: task, node: .audio, rows: pieces.map { ($0.order, $0.packets, $0.file) })
    }

    /// The analyze event's rows, one per analysis element, kept in step with the plan as the audio pieces' are.
    package func ensureAnalyses(task: TaskID, elements: [(order: Int, frames: Int, file: String)]) throws(VSliceError) {
        try ensureRows(task: task, node: .analyze, rows: elements.map { ($0.order, $0.frames, $0.file) })
    }

    private func ensureRows(task: TaskID, node: Node, rows: [(order: Int, planned: Int, file: String)]) throws(VSliceError) {
        let eventId = task.event(node)
        try writeAsHolder(task) { db in
            let t = now()
            try db.execute(sql: """
                INSERT INTO event (id, task_id, node, status, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """, arguments: [eventId, task, node.rawValue, StepStatus.running, t, t])
            for p in rows {
                try db.execute(sql: """
                    INSERT INTO segment (id, event_id, ord, status, frames_planned, file, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET frames_planned = excluded.frames_planned, file = excluded.file, status = excluded.status,
                                                  updated_at = excluded.updated_at
                    WHERE frames_planned != excluded.frames_planned OR file != excluded.file
                    """, arguments: [eventId.segment(p.order), eventId, p.order, SegmentStatus.pending, p.planned, p.file, t, t])
            }
            let kept = rows.map { String($0.order) }.joined(separator: ",")
            try db.execute(sql: "DELETE FROM segment WHERE event_id = ? AND ord NOT IN (\(kept))", arguments: [eventId])
        }
    }

    package func resetSegment(_ task: TaskID, _ id: SegmentID) throws(VSliceError) {
        try writeAsHolder(task) { db in
            try db.execute(sql: "UPDATE segment SET status = ?, updated_at = ? WHERE id = ?", arguments: [SegmentStatus.pending, now(), id])
        }
    }
}
