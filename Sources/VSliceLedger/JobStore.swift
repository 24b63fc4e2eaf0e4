import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import VSliceModel
import VSliceSupport

/// The job store: tasks, their DAG events, the segments of the encode and audio events, and one trace per
/// attempt of a step, in SQLite (WAL, `synchronous=FULL`, writes in IMMEDIATE transactions). IDs (their formulas
/// are in VSliceModel/IDs.swift; see docs/internals.md, "The ledger"): task = UUID, event = `task_node`,
/// segment = `event_order`, trace = UUID.
public final class JobStore: Sendable {
    public let path: String
    package let db: DatabaseQueue
    /// The lease tokens of the tasks this process holds (task ID → token).
    package let leases = Mutex<[TaskID: String]>([:])

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
        // Only a lock is worth waiting for; a damaged, unreadable or read-only database is reported at once.
        var attempt = 0
        while true {
            do {
                db = try Self.open(path)
                return
            } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) && attempt < 40 {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.05 * Double(min(attempt, 10)))
            } catch {
                throw Self.describe(error, operation: "open job store", path: path)
            }
        }
    }

    private static func open(_ path: String) throws -> DatabaseQueue {
        let folder = (path as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw VSliceError(.processing, "open job store", path: path,
                              reason: "cannot create its folder '\(folder)' (\(plainReason(error))) — the job store cannot be written here "
                                + "(\(whereToMove(path)))")
        }
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let db = try DatabaseQueue(path: path, configuration: config)
        // GRDB reads which migrations are applied before running each in its own transaction: a process opening
        // a new store at the same moment as another may try one the other has just applied ("table task already
        // exists", "duplicate column"). When the applied set grew meanwhile, that is what happened: read again
        // and go on from there; any other failure is the migration's own.
        let applied = { (try? db.read { try Self.migrator.appliedIdentifiers($0) }) ?? [] }
        var before = applied()
        while true {
            do {
                try Self.migrator.migrate(db)
                return db
            } catch {
                let now = applied()
                guard now.count > before.count else { throw error }
                before = now
            }
        }
    }

    /// One line in vslice's terms for a database failure: SQLite's message without the SQL, and what to do.
    /// `systemErrno`: the OS error behind it (`sqlite3_system_errno`), when the failing call was made on a
    /// connection; 0 when unknown.
    package static func describe(_ error: any Error, operation: String, path: String, systemErrno: Int32 = 0) -> VSliceError {
        if let e = error as? VSliceError { return e }
        guard let e = error as? DatabaseError else { return VSliceError(.processing, operation, path: path, reason: plainReason(error)) }
        var message = (e.message ?? "\(e.resultCode)").replacingOccurrences(of: "\n", with: " ")
        if isDiskFull(e, systemErrno: systemErrno, path: path) {
            // SQLITE_FULL says "database or disk is full"; an I/O error's "disk I/O error" is told by its cause.
            if e.resultCode != .SQLITE_FULL { message += " (disk is full)" }
            return VSliceError(.processing, operation, path: path,
                               reason: "\(message) — the disk holding the job store is full; free space, then run the same command to resume")
        }
        switch e.resultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return VSliceError(.processing, operation, path: path,
                               reason: "\(message) — the job store is damaged; move it away (or use --db PATH) to start a new one")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
            return VSliceError(.processing, operation, path: path,
                               reason: "\(message) — the job store cannot be written here (check the file and its folder, or \(whereToMove(path)))")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return VSliceError(.processing, operation, path: path,
                               reason: "\(message) — another process keeps the job store locked")
        default:
            return VSliceError(.processing, operation, path: path, reason: message)
        }
    }

    /// How to put the job store elsewhere, naming the variable that chose `path` when one did:
    /// "set VSLICE_HOME to a writable folder, or use --db PATH".
    package static func whereToMove(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        // The first of these that is set chose the default path (`defaultPath`).
        let setting = ["VSLICE_HOME", "XDG_DATA_HOME"].first { environment[$0].map { !$0.isEmpty } == true }
        let chosenBy = path == defaultPath(environment: environment) ? setting : nil
        return chosenBy.map { "set \($0) to a writable folder, or use --db PATH" } ?? "use --db PATH"
    }

    package static var migrator: DatabaseMigrator {
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
        m.registerMigration("v3") { db in
            // A lease token per holder: every write of a holder names it (see JobStore.writeAsHolder).
            try db.execute(sql: "ALTER TABLE task ADD COLUMN lease_token TEXT")
            // At most one unfinished task per input → output: older duplicates (made by processes that
            // started together before this rule) are cancelled.
            try db.execute(sql: """
                UPDATE task SET status = 'cancelled', error = 'duplicate of a newer unfinished task'
                WHERE status IN ('running','interrupted','failed') AND EXISTS (
                    SELECT 1 FROM task newer WHERE newer.input = task.input AND newer.output = task.output
                    AND newer.status IN ('running','interrupted','failed')
                    AND (newer.created_at > task.created_at OR (newer.created_at = task.created_at AND newer.id > task.id)))
                """)
            try db.execute(sql: """
                CREATE UNIQUE INDEX task_unfinished_paths ON task(input, output)
                WHERE status IN ('running','interrupted','failed')
                """)
        }
        registerWorkerMigrations(&m)
        m.registerMigration("v4-settings-signature") { db in
            // settings_hash was written and never read; settings_json never held JSON but the canonical signature of
            // the output-affecting settings (the JSON request is request_json): named for what it is.
            try db.execute(sql: "ALTER TABLE task DROP COLUMN settings_hash")
            try db.execute(sql: "ALTER TABLE task RENAME COLUMN settings_json TO settings_signature")
        }
        registerFixedCostMigration(&m)
        m.registerMigration("task-failure-kind") { db in
            try db.execute(sql: """
                ALTER TABLE task ADD COLUMN failure_kind TEXT;               -- VSliceError.Kind of a failed task
                ALTER TABLE task ADD COLUMN failure_deterministic INTEGER;   -- 1: it would fail the same way again
                """)
        }
        registerProcessorCostMigration(&m)
        registerBatchMigration(&m)
        return m
    }

    /// A full disk as SQLite reports it: SQLITE_FULL (a write that found no space), or an I/O error whose
    /// system error is ENOSPC or EDQUOT (the WAL or shared-memory file could not grow or be made) — when that
    /// error is not known (opening the store), an I/O error with no space left on the store's file system.
    package static func isDiskFull(_ e: DatabaseError, systemErrno: Int32, path: String) -> Bool {
        if e.resultCode == .SQLITE_FULL { return true }
        guard e.resultCode == .SQLITE_IOERR else { return false }
        if systemErrno != 0 { return [ENOSPC, EDQUOT].contains(systemErrno) }
        var fs = statvfs()
        return statvfs((path as NSString).deletingLastPathComponent, &fs) == 0 && fs.f_bavail == 0
    }

    /// A write in a `BEGIN IMMEDIATE` transaction. A failure is described by its cause (a full disk is
    /// `.processing` with the resume hint, never a lost lease: only `writeAsHolder`'s token check says that).
    package func write<T>(_ body: (Database) throws -> T) throws(VSliceError) -> T {
        var systemErrno: Int32 = 0
        do {
            return try db.writeWithoutTransaction { db in
                do {
                    var result: T?
                    try db.inTransaction(.immediate) {
                        result = try body(db)
                        return .commit
                    }
                    return result!
                } catch {
                    // The OS error of the call that failed (the rollback after it makes no failing call).
                    systemErrno = sqlite3_system_errno(db.sqliteConnection)
                    throw error
                }
            }
        } catch {
            throw Self.describe(error, operation: "write job store", path: path, systemErrno: systemErrno)
        }
    }

    package func read<T>(_ body: (Database) throws -> T) throws(VSliceError) -> T {
        var systemErrno: Int32 = 0
        do {
            return try db.read { db in
                do { return try body(db) } catch {
                    systemErrno = sqlite3_system_errno(db.sqliteConnection)
                    throw error
                }
            }
        } catch {
            throw Self.describe(error, operation: "read job store", path: path, systemErrno: systemErrno)
        }
    }
}

