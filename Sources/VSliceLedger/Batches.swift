import Foundation
import GRDB
import VSliceModel
import VSliceSupport

/// A `vslice batch` as the job store knows it: its request (folders, pattern, settings), so that `vslice resume
/// --all` carries on a batch that was interrupted (Ctrl-C, a kill, a reboot) with the inputs it had not started.
/// Statuses: running (its process holds it), interrupted, done (every input looked at), stopped (a failure
/// that repeats for every input ended it), replaced (the same batch was started again).
package struct BatchRecord: Sendable {
    package var id: Int64
    package var dir: String
    package var outDir: String
    package var requestJson: String
    package var status: String
}

extension JobStore {
    package static func registerBatchMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("batch") { db in
            try db.execute(sql: """
                CREATE TABLE batch (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    dir TEXT NOT NULL,               -- the input folder (absolute)
                    out_dir TEXT NOT NULL,           -- the output folder (absolute)
                    request_json TEXT NOT NULL,      -- the whole batch request (BatchRequest)
                    status TEXT NOT NULL,            -- running, interrupted, done, stopped, replaced
                    pid INTEGER, host TEXT,          -- the process running it
                    created_at REAL NOT NULL, updated_at REAL NOT NULL
                );
                """)
        }
    }

    /// Records a batch starting in this process; an unfinished record of the same folders is replaced by it.
    package func startBatch(dir: String, outDir: String, requestJson: String) throws(VSliceError) -> Int64 {
        try write { db in
            let t = now()
            try db.execute(sql: """
                UPDATE batch SET status = 'replaced', updated_at = ? WHERE dir = ? AND out_dir = ? AND status IN ('running', 'interrupted')
                """, arguments: [t, dir, outDir])
            try db.execute(sql: """
                INSERT INTO batch (dir, out_dir, request_json, status, pid, host, created_at, updated_at)
                VALUES (?, ?, ?, 'running', ?, ?, ?, ?)
                """, arguments: [dir, outDir, requestJson, Int(getpid()), Host.name, t, t])
            return db.lastInsertedRowID
        }
    }

    package func endBatch(_ id: Int64, status: String) throws(VSliceError) {
        try write { db in
            try db.execute(sql: "UPDATE batch SET status = ?, updated_at = ? WHERE id = ?", arguments: [status, now(), id])
        }
    }

    /// The batches `resume --all` carries on: interrupted, or recorded running by a process of this host that is
    /// gone (killed). Oldest first.
    package func batchesToResume() throws(VSliceError) -> [BatchRecord] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, dir, out_dir, request_json, status, pid, host FROM batch
                WHERE status IN ('running', 'interrupted') ORDER BY created_at
                """)
        }
        return rows.compactMap { r -> BatchRecord? in
            let status: String = r["status"]
            if status == "running" {
                let pid: Int? = r["pid"], host: String? = r["host"]
                guard host == Host.name, let pid, kill(pid_t(pid), 0) != 0 && errno == ESRCH else { return nil }
            }
            return BatchRecord(id: r["id"], dir: r["dir"], outDir: r["out_dir"], requestJson: r["request_json"], status: status)
        }
    }
}
