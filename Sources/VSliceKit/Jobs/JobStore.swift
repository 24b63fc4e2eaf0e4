import Foundation
import GRDB

/// The job store: tasks, their DAG events, the encode event's segments, and one trace per attempt of a
/// step, in SQLite (WAL, `synchronous=FULL`, writes in IMMEDIATE transactions). IDs follow DESIGN.md §2:
/// task = UUID, event = `task_node`, segment = `event_order`, trace = UUID.
public final class JobStore: Sendable {
    public let path: String
    let db: DatabaseQueue

    /// `$VSLICE_HOME/vslice.db`, else `$XDG_DATA_HOME/vslice/vslice.db`, else `~/.local/share/vslice/vslice.db`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["VSLICE_HOME"], !home.isEmpty { return home + "/vslice.db" }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/vslice/vslice.db" }
        return NSHomeDirectory() + "/.local/share/vslice/vslice.db"
    }

    public init(path: String) throws(VSliceError) {
        self.path = path
        // Processes that open a new database at the same moment can meet a lock that SQLite's busy handler
        // does not wait on (switching to WAL, the first migration): try again briefly.
        var attempt = 0
        while true {
            do {
                db = try Self.open(path)
                return
            } catch {
                attempt += 1
                if attempt >= 40 { throw error }
                Thread.sleep(forTimeInterval: 0.05 * Double(min(attempt, 10)))
            }
        }
    }

    private static func open(_ path: String) throws(VSliceError) -> DatabaseQueue {
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            var config = Configuration()
            config.journalMode = .wal
            config.busyMode = .timeout(10)
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            let db = try DatabaseQueue(path: path, configuration: config)
            try Self.migrator.migrate(db)
            return db
        } catch {
            throw VSliceError(.processing, "open job store", path: path, reason: "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE task (
                    id TEXT PRIMARY KEY,
                    input TEXT NOT NULL,
                    output TEXT NOT NULL,
                    input_fingerprint TEXT NOT NULL,
                    settings_hash TEXT NOT NULL,
                    settings_json TEXT NOT NULL,
                    work_dir TEXT NOT NULL,
                    status TEXT NOT NULL,            -- running | done | failed | cancelled
                    error TEXT,
                    frames_total INTEGER NOT NULL DEFAULT 0,
                    lease_pid INTEGER,
                    lease_host TEXT,
                    lease_heartbeat REAL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX task_by_paths ON task(input, output, status);
                CREATE TABLE event (
                    id TEXT PRIMARY KEY,              -- task_id + "_" + node
                    task_id TEXT NOT NULL REFERENCES task(id) ON DELETE CASCADE,
                    node TEXT NOT NULL,               -- probe | audio | plan | encode | concat | mux | publish
                    status TEXT NOT NULL,             -- pending | running | done | failed
                    attempts INTEGER NOT NULL DEFAULT 0,
                    detail TEXT,
                    error TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE TABLE segment (
                    id TEXT PRIMARY KEY,              -- event_id + "_" + order
                    event_id TEXT NOT NULL REFERENCES event(id) ON DELETE CASCADE,
                    ord INTEGER NOT NULL,
                    status TEXT NOT NULL,             -- pending | running | done | failed
                    attempts INTEGER NOT NULL DEFAULT 0,
                    frames_planned INTEGER NOT NULL,
                    frames_done INTEGER,
                    file TEXT NOT NULL,
                    file_size INTEGER,
                    file_checksum INTEGER,
                    error TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE TABLE trace (
                    id TEXT PRIMARY KEY,              -- UUID, one attempt of one step
                    event_id TEXT NOT NULL REFERENCES event(id) ON DELETE CASCADE,
                    segment_id TEXT REFERENCES segment(id) ON DELETE CASCADE,
                    status TEXT NOT NULL,             -- running | done | failed | abandoned (its process died)
                    started_at REAL NOT NULL,
                    ended_at REAL,
                    wall_seconds REAL,
                    cpu_seconds REAL,
                    frames_in INTEGER,
                    frames_out INTEGER,
                    bytes INTEGER,
                    error TEXT,
                    pid INTEGER NOT NULL,
                    host TEXT NOT NULL
                );
                CREATE INDEX trace_by_event ON trace(event_id);
                """)
        }
        m.registerMigration("v2") { db in
            // The whole request (settings, --force, --keep-temp, --work-dir) as JSON, so `vslice resume ID`
            // can rebuild it; settings_json keeps the signature that decides whether a resume is allowed.
            try db.execute(sql: "ALTER TABLE task ADD COLUMN request_json TEXT")
        }
        return m
    }

    /// A write in a `BEGIN IMMEDIATE` transaction.
    func write<T>(_ body: (Database) throws -> T) throws(VSliceError) -> T {
        do {
            return try db.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let e as VSliceError {
            throw e
        } catch {
            throw VSliceError(.processing, "write job store", path: path, reason: "\(error)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(VSliceError) -> T {
        do { return try db.read(body) } catch {
            throw VSliceError(.processing, "read job store", path: path, reason: "\(error)")
        }
    }

    public func integrityCheck() throws(VSliceError) -> String {
        try read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }
}

public enum Host {
    public static let name: String = {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }()
}

func now() -> Double { Date().timeIntervalSince1970 }
