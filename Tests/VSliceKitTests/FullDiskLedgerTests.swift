import Foundation
import GRDB
import TestScratch
import Testing
@testable import VSliceLedger
@testable import VSliceModel
@testable import VSliceSupport

/// A failed ledger write is told by its cause (issue 28, item 6): a full disk is a processing failure with the
/// resume hint; a lease is lost only when the ledger names another token. The writes are made to fail with
/// triggers (a full disk itself is FullDiskTests', end to end, as root).
@Suite("ledger: a failed write is not a lost lease")
struct FullDiskLedgerTests {
    let dir: String
    var db: String { dir + "/ledger.db" }

    init() throws {
        dir = TestScratch.url.appendingPathComponent("vslice-fullledger-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func request() -> ClaimRequest {
        .init(input: "/in.mp4", output: dir + "/out.mp4", fingerprint: "1:2:3",
              request: TranscodeRequest(input: "/in.mp4", output: dir + "/out.mp4", settings: TranscodeSettings()),
              taskId: nil, fresh: false)
    }

    @Test("a heartbeat whose write fails is no verdict (held); one whose token was replaced is lost")
    func heartbeatWriteFails() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db), other = try JobStore(path: db)
        let task = try a.claim(request()).task
        try other.write { db in
            try db.execute(sql: """
                CREATE TRIGGER no_space BEFORE UPDATE OF lease_heartbeat ON task
                BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END
                """)
        }
        #expect(a.heartbeat(task.id) == .held)
        #expect(a.holdsLease(task.id))
        try other.write { db in try db.execute(sql: "DROP TRIGGER no_space") }
        #expect(a.heartbeat(task.id) == .held)
        try other.write { db in try db.execute(sql: "UPDATE task SET lease_token = 'someone else' WHERE id = ?", arguments: [task.id]) }
        #expect(a.heartbeat(task.id) == .lost)
        #expect(!a.holdsLease(task.id))
    }

    @Test("a holder's write that fails is that failure, not a lost lease; a read that fails says nothing of the lease")
    func holderWriteFails() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db), other = try JobStore(path: db)
        let task = try a.claim(request()).task
        try other.write { db in
            try db.execute(sql: """
                CREATE TRIGGER no_space BEFORE UPDATE OF frames_total ON task
                BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END
                """)
        }
        do {
            try a.setFrames(task.id, 50)
            Issue.record("the write did not fail")
        } catch {
            #expect(error.kind == .processing, "\(error)")
            #expect(!error.reason.contains("took the task over"), "\(error)")
        }
        #expect(a.holdsLease(task.id))
        // The task table unreadable (renamed under it): no verdict either.
        try other.write { db in try db.execute(sql: "ALTER TABLE task RENAME TO task_away") }
        #expect(a.holdsLease(task.id))
        #expect(a.heartbeat(task.id) == .held)
    }

    @Test("SQLITE_FULL and an I/O error with ENOSPC are a full disk with the resume hint; another I/O error is not")
    func describeByCause() {
        let path = dir + "/ledger.db"
        let full = JobStore.describe(DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full"),
                                     operation: "write job store", path: path)
        #expect(full.kind == .processing)
        #expect(full.reason.contains("disk is full") && full.reason.contains("run the same command to resume"), "\(full)")
        for errno in [ENOSPC, EDQUOT] {
            let io = JobStore.describe(DatabaseError(resultCode: .SQLITE_IOERR_WRITE, message: "disk I/O error"),
                                       operation: "write job store", path: path, systemErrno: errno)
            #expect(io.kind == .processing)
            #expect(io.reason.contains("disk is full") && io.reason.contains("run the same command to resume"), "\(io)")
        }
        let other = JobStore.describe(DatabaseError(resultCode: .SQLITE_IOERR_WRITE, message: "disk I/O error"),
                                      operation: "write job store", path: path, systemErrno: EIO)
        #expect(other.kind == .processing && !other.reason.contains("full"), "\(other)")
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test("a publish whose commit fails puts the file back: nothing at the output the ledger does not record")
    func publishCommitFails() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db), other = try JobStore(path: db)
        let task = try a.claim(request()).task
        _ = try a.beginEvent(task.id, .publish)
        let part = dir + "/.out.mp4.vslice-test.part", out = dir + "/out.mp4"
        try Data("merged".utf8).write(to: URL(fileURLWithPath: part))
        // The commit fails after the rename: a deferred foreign key the publish's own update breaks.
        try other.write { db in
            try db.execute(sql: """
                CREATE TABLE dangling (ref TEXT REFERENCES task(id) DEFERRABLE INITIALLY DEFERRED);
                CREATE TRIGGER commit_fails AFTER UPDATE OF detail ON event BEGIN INSERT INTO dangling VALUES ('no such task'); END;
                """)
        }
        #expect(throws: VSliceError.self) { try a.publish(task.id, part: part, to: out, replace: false) }
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(FileManager.default.fileExists(atPath: part))
        #expect(try a.read { db in try String.fetchOne(db, sql: "SELECT detail FROM event WHERE id = ?", arguments: [task.id.event(.publish)]) } == nil)
        // Once the commit can land, the same part file is published.
        try other.write { db in try db.execute(sql: "DROP TRIGGER commit_fails") }
        try a.publish(task.id, part: part, to: out, replace: false)
        #expect(FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: part))
    }
}
