import Foundation
import GRDB
import VSliceModel
import VSliceSupport

/// Reading tasks and their rows.
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

    static func unfinished(_ db: Database, input: String, output: String) throws -> TaskRecord? {
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

    /// The analyze event's elements, in order.
    public func analyses(task: TaskID) throws(VSliceError) -> [SegmentRecord] { try segments(task: task, of: .analyze) }

    package func segments(task: TaskID, of node: Node) throws(VSliceError) -> [SegmentRecord] {
        try read { db in try SegmentRecord.fetchAll(db, sql: "SELECT * FROM segment WHERE event_id = ? ORDER BY ord", arguments: [task.event(node)]) }
    }

    /// The kept frames done so far by each running attempt at a video segment, by segment order, as the holder's
    /// heartbeat last recorded them (`recordRunningFrames`).
    public func runningFrames(task: TaskID) throws(VSliceError) -> [Int: Int] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT s.ord, t.frames_out FROM trace t JOIN segment s ON t.segment_id = s.id
                WHERE s.event_id = ? AND t.status = ? AND t.frames_out IS NOT NULL
                """, arguments: [task.event(.encode), StepStatus.running])
            return Dictionary(rows.map { (($0[0] as Int), ($0[1] as Int)) }, uniquingKeysWith: max)
        }
    }

    public func traces(task: TaskID) throws(VSliceError) -> [TraceRecord] {
        try read { db in
            try TraceRecord.fetchAll(db, sql: "SELECT * FROM trace WHERE substr(event_id, 1, ?) = ? ORDER BY started_at",
                                     arguments: [task.eventPrefix.count, task.eventPrefix])
        }
    }
}
