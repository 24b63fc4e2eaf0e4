import CFFmpeg
import Foundation
import GRDB

public struct TaskRecord: Codable, FetchableRecord, Sendable {
    public var id: String
    public var input: String
    public var output: String
    public var inputFingerprint: String
    public var settingsHash: String
    public var settingsJson: String
    public var workDir: String
    /// running | interrupted | failed (all resumable) | done | cancelled
    public var status: String
    public var error: String?
    public var framesTotal: Int
    public var leasePid: Int?
    public var leaseHost: String?
    public var leaseHeartbeat: Double?
    public var createdAt: Double
    public var updatedAt: Double
    public var requestJson: String?

    public static let databaseTableName = "task"

    /// The request the task was started with (nil for tasks stored before it was kept).
    public var storedRequest: TranscodeRequest? {
        guard let data = requestJson?.data(using: .utf8) else { return nil }
        guard let stored = try? JSONDecoder().decode(StoredRequest.self, from: data) else { return nil }
        return TranscodeRequest(input: input, output: output, settings: stored.settings, force: stored.force,
                                keepTemp: stored.keepTemp, workRoot: stored.workRoot)
    }
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

public struct EventRecord: Codable, FetchableRecord, Sendable {
    public var id: String
    public var taskId: String
    public var node: String
    public var status: String
    public var attempts: Int
    public var detail: String?
    public var error: String?
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

public struct SegmentRecord: Codable, FetchableRecord, Sendable {
    public var id: String
    public var eventId: String
    public var ord: Int
    public var status: String
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
    public var id: String
    public var eventId: String
    public var segmentId: String?
    public var status: String
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
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
}

/// What of a request is stored with its task (input and output have their own columns).
struct StoredRequest: Codable {
    var settings: TranscodeSettings
    var force: Bool
    var keepTemp: Bool
    var workRoot: String?
}

/// What identifies the input's content, cheaply: size, mtime, Adler-32 of the first and last MiB.
public enum Fingerprint {
    public static func of(_ path: String) throws(VSliceError) -> String {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw VSliceError(.input, "fingerprint", path: path, reason: "cannot open")
        }
        defer { try? fh.close() }
        var st = stat()
        guard stat(path, &st) == 0 else { throw VSliceError(.input, "fingerprint", path: path, reason: "cannot stat") }
        let size = Int64(st.st_size)
        let mib = 1 << 20
        var sum: UInt = 1
        let head = (try? fh.read(upToCount: mib)) ?? Data()
        if size > Int64(mib) { try? fh.seek(toOffset: UInt64(max(Int64(mib), size - Int64(mib)))) }
        let tail = size > Int64(mib) ? ((try? fh.readToEnd()) ?? Data()) : Data()
        for d in [head, tail] where !d.isEmpty {
            sum = d.withUnsafeBytes { UInt(av_adler32_update(UInt32(sum), $0.bindMemory(to: UInt8.self).baseAddress, $0.count)) }
        }
        return "\(size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec):\(String(sum, radix: 16))"
    }
}

/// FNV-1a 64 of a string, hex: identifies a settings signature.
func stableHash(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return String(h, radix: 16)
}

extension JobStore {
    public static let leaseStaleSeconds = 15.0
    /// Statuses from which a task resumes.
    public static let resumableStatuses: Set<String> = ["running", "interrupted", "failed"]

    public func task(_ id: String) throws(VSliceError) -> TaskRecord? {
        try read { db in try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ? OR id LIKE ?", arguments: [id, id + "%"]) }
    }

    public func tasks() throws(VSliceError) -> [TaskRecord] {
        try read { db in try TaskRecord.fetchAll(db, sql: "SELECT * FROM task ORDER BY created_at") }
    }

    /// The newest unfinished task for this input → output pair.
    public func unfinishedTask(input: String, output: String) throws(VSliceError) -> TaskRecord? {
        try read { db in
            try TaskRecord.fetchOne(db, sql: """
                SELECT * FROM task WHERE input = ? AND output = ? AND status IN ('running','interrupted','failed')
                ORDER BY created_at DESC LIMIT 1
                """, arguments: [input, output])
        }
    }

    public func events(task: String) throws(VSliceError) -> [EventRecord] {
        try read { db in try EventRecord.fetchAll(db, sql: "SELECT * FROM event WHERE task_id = ? ORDER BY created_at", arguments: [task]) }
    }

    public func segments(task: String) throws(VSliceError) -> [SegmentRecord] {
        try read { db in try SegmentRecord.fetchAll(db, sql: "SELECT * FROM segment WHERE event_id = ? ORDER BY ord", arguments: [task + "_encode"]) }
    }

    public func traces(task: String) throws(VSliceError) -> [TraceRecord] {
        try read { db in
            try TraceRecord.fetchAll(db, sql: "SELECT * FROM trace WHERE event_id LIKE ? ORDER BY started_at", arguments: [task + "_%"])
        }
    }

    func createTask(id: String, input: String, output: String, fingerprint: String, request: TranscodeRequest,
                    workDir: String) throws(VSliceError) -> TaskRecord {
        let t = now()
        let settings = request.settings
        let stored = StoredRequest(settings: settings, force: request.force, keepTemp: request.keepTemp, workRoot: request.workRoot)
        let json = (try? JSONEncoder().encode(stored)).flatMap { String(data: $0, encoding: .utf8) }
        try write { db in
            try db.execute(sql: """
                INSERT INTO task (id, input, output, input_fingerprint, settings_hash, settings_json, request_json, work_dir,
                                  status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)
                """, arguments: [id, input, output, fingerprint, stableHash(settings.outputSignature),
                                 settings.outputSignature, json, workDir, t, t])
        }
        return try task(id)!
    }

    /// Takes the task's lease. Refused (exit 5) while another live process holds it with a fresh heartbeat.
    func acquireLease(_ id: String) throws(VSliceError) {
        let pid = Int(getpid())
        try write { db in
            guard let t = try TaskRecord.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [id]) else {
                throw VSliceError(.usage, "resume", reason: "no task \(id)")
            }
            if isLeasedByOther(t) {
                throw VSliceError(.resumeRefused, "take task \(id.prefix(8))", path: t.output,
                                  reason: "another vslice process (pid \(t.leasePid ?? 0) on \(t.leaseHost ?? "?")) is running it")
            }
            try db.execute(sql: "UPDATE task SET lease_pid = ?, lease_host = ?, lease_heartbeat = ?, status = 'running', updated_at = ? WHERE id = ?",
                           arguments: [pid, Host.name, now(), now(), id])
            // Whatever the previous holder had running died with it.
            try db.execute(sql: "UPDATE trace SET status = 'abandoned', ended_at = ? WHERE status = 'running' AND event_id LIKE ?",
                           arguments: [now(), id + "_%"])
            try db.execute(sql: "UPDATE segment SET status = 'pending' WHERE status = 'running' AND event_id = ?",
                           arguments: [id + "_encode"])
        }
    }

    func heartbeat(_ id: String) {
        _ = try? write { db in
            try db.execute(sql: "UPDATE task SET lease_heartbeat = ? WHERE id = ? AND lease_pid = ?", arguments: [now(), id, Int(getpid())])
        }
    }

    func finishTask(_ id: String, status: String, error: String? = nil) throws(VSliceError) {
        try write { db in
            try db.execute(sql: "UPDATE task SET status = ?, error = ?, lease_pid = NULL, lease_heartbeat = NULL, updated_at = ? WHERE id = ?",
                           arguments: [status, error, now(), id])
        }
    }

    func setFrames(_ id: String, _ n: Int) throws(VSliceError) {
        try write { db in try db.execute(sql: "UPDATE task SET frames_total = ? WHERE id = ?", arguments: [n, id]) }
    }

    /// Marks a task cancelled (a running process notices at its next heartbeat and stops). Returns false when
    /// the task had already ended (done or cancelled).
    @discardableResult
    public func cancel(_ id: String) throws(VSliceError) -> Bool {
        try write { db in
            try db.execute(sql: "UPDATE task SET status = 'cancelled', updated_at = ? WHERE id = ? AND status NOT IN ('done', 'cancelled')",
                           arguments: [now(), id])
            return db.changesCount > 0
        }
    }

    /// Whether a live process other than this one holds the task's lease: a heartbeat fresher than
    /// `leaseStaleSeconds`, from a pid that still exists (only checkable on this host).
    public func isLeasedByOther(_ t: TaskRecord) -> Bool {
        guard let holder = t.leasePid, let hb = t.leaseHeartbeat, holder != Int(getpid()) else { return false }
        let alive = t.leaseHost != Host.name || kill(pid_t(holder), 0) == 0 || errno == EPERM
        return now() - hb < JobStore.leaseStaleSeconds && alive
    }

    public func status(of id: String) throws(VSliceError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT status FROM task WHERE id = ?", arguments: [id]) }
    }

    /// Forgets the work folder of an ended task (after `gc` removed it).
    public func markWorkRemoved(_ id: String) throws(VSliceError) {
        try write { db in try db.execute(sql: "UPDATE task SET work_dir = '' WHERE id = ?", arguments: [id]) }
    }

    // MARK: publish

    /// Records the identity (device, inode, size) of the file about to be renamed onto the output.
    func recordPublishing(_ task: String, identity: String) throws(VSliceError) {
        try write { db in
            try db.execute(sql: "UPDATE event SET detail = ? WHERE id = ?", arguments: [identity, task + "_publish"])
        }
    }

    /// True when the task's output is the very file its interrupted publish step renamed there.
    func publishedAlready(_ t: TaskRecord) throws(VSliceError) -> Bool {
        let detail = try read { db in
            try String.fetchOne(db, sql: "SELECT detail FROM event WHERE id = ?", arguments: [t.id + "_publish"])
        }
        guard let detail, let identity = FileOps.identity(t.output) else { return false }
        return detail == identity
    }

    func markEventDone(_ task: String, _ node: String) throws(VSliceError) {
        try write { db in
            try db.execute(sql: "UPDATE event SET status = 'done', updated_at = ? WHERE id = ?", arguments: [now(), task + "_" + node])
        }
    }

    // MARK: events

    func eventDone(_ task: String, _ node: String) throws(VSliceError) -> EventRecord? {
        try read { db in try EventRecord.fetchOne(db, sql: "SELECT * FROM event WHERE id = ? AND status = 'done'", arguments: [task + "_" + node]) }
    }

    /// Marks a node running (creating it if needed), counts the attempt, and opens its trace.
    func beginEvent(_ task: String, _ node: String, segment: String? = nil) throws(VSliceError) -> String {
        let eventId = task + "_" + node
        let traceId = UUID().uuidString.lowercased()
        try write { db in
            let t = now()
            try db.execute(sql: """
                INSERT INTO event (id, task_id, node, status, attempts, created_at, updated_at) VALUES (?, ?, ?, 'running', 0, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """, arguments: [eventId, task, node, t, t])
            if let segment {
                try db.execute(sql: "UPDATE segment SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?", arguments: [t, segment])
            } else {
                try db.execute(sql: "UPDATE event SET status = 'running', attempts = attempts + 1, error = NULL, updated_at = ? WHERE id = ?", arguments: [t, eventId])
            }
            try db.execute(sql: "INSERT INTO trace (id, event_id, segment_id, status, started_at, pid, host) VALUES (?, ?, ?, 'running', ?, ?, ?)",
                           arguments: [traceId, eventId, segment, t, Int(getpid()), Host.name])
        }
        return traceId
    }

    struct TraceFigures {
        var wall: Double
        var cpu: Double
        var framesIn: Int? = nil
        var framesOut: Int? = nil
        var bytes: Int64? = nil
    }

    /// Closes a trace and, in the same transaction, marks the node (or segment) done or failed.
    func endStep(trace: String, task: String, node: String, segment: SegmentDone? = nil, figures: TraceFigures,
                 error: String?, detail: String? = nil) throws(VSliceError) {
        let status = error == nil ? "done" : "failed"
        try write { db in
            let t = now()
            try db.execute(sql: """
                UPDATE trace SET status = ?, ended_at = ?, wall_seconds = ?, cpu_seconds = ?, frames_in = ?, frames_out = ?,
                                 bytes = ?, error = ? WHERE id = ?
                """, arguments: [status, t, figures.wall, figures.cpu, figures.framesIn, figures.framesOut, figures.bytes, error, trace])
            if let segment {
                try db.execute(sql: """
                    UPDATE segment SET status = ?, frames_done = ?, file_size = ?, file_checksum = ?, error = ?, updated_at = ? WHERE id = ?
                    """, arguments: [status, segment.frames, segment.size, segment.checksum, error, t, segment.id])
            } else {
                try db.execute(sql: "UPDATE event SET status = ?, error = ?, detail = COALESCE(?, detail), updated_at = ? WHERE id = ?",
                               arguments: [status, error, detail, t, task + "_" + node])
            }
        }
    }

    struct SegmentDone {
        var id: String
        var frames: Int
        var size: Int64
        var checksum: Int64
    }

    /// Creates the encode event's segment rows for a plan (once).
    func ensureSegments(task: String, plan: Plan, files: [String]) throws(VSliceError) {
        let eventId = task + "_encode"
        try write { db in
            let t = now()
            try db.execute(sql: """
                INSERT INTO event (id, task_id, node, status, attempts, created_at, updated_at) VALUES (?, ?, 'encode', 'running', 0, ?, ?)
                ON CONFLICT(id) DO NOTHING
                """, arguments: [eventId, task, t, t])
            for s in plan.segments {
                try db.execute(sql: """
                    INSERT INTO segment (id, event_id, ord, status, frames_planned, file, created_at, updated_at)
                    VALUES (?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
                    """, arguments: ["\(eventId)_\(s.index)", eventId, s.index, s.frameCount, files[s.index], t, t])
            }
        }
    }

    func resetSegment(_ id: String) throws(VSliceError) {
        try write { db in try db.execute(sql: "UPDATE segment SET status = 'pending', updated_at = ? WHERE id = ?", arguments: [now(), id]) }
    }
}
