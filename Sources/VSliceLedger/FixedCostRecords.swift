import Foundation
import GRDB
import VSliceModel
import VSliceSupport


extension JobStore {
    /// The trace's fixed-cost columns (see `FixedCost`).
    package static func registerFixedCostMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("trace-fixed-cost") { db in
            try db.execute(sql: """
                ALTER TABLE trace ADD COLUMN startup_seconds REAL;    -- attempt start → first frame handed on
                ALTER TABLE trace ADD COLUMN flush_seconds REAL;      -- end of stream to the encoder → file sealed
                ALTER TABLE trace ADD COLUMN process_seconds REAL;    -- worker: process start → attempt start
                ALTER TABLE trace ADD COLUMN submitted_at REAL;       -- remote: when the coordinator submitted it
                ALTER TABLE trace ADD COLUMN scheduler_seconds REAL;  -- remote: could run → process started
                ALTER TABLE trace ADD COLUMN collected_seconds REAL;  -- remote: worker ended → record ingested
                """)
        }
    }

    /// The processor's timing in a trace (see `FixedCost`).
    package static func registerProcessorCostMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("trace-processor-cost") { db in
            try db.execute(sql: """
                ALTER TABLE trace ADD COLUMN processor_startup_seconds REAL;    -- --process: launch → first frame out
                ALTER TABLE trace ADD COLUMN processor_seconds_per_frame REAL;  -- --process: first → last frame out, per frame
                """)
        }
    }

    /// Sets a trace's fixed-cost columns (those measured; the others stay as they are), inside the caller's
    /// transaction.
    package static func recordFixedCost(_ db: Database, trace: TraceID, _ f: FixedCost) throws {
        guard !f.isEmpty else { return }
        try db.execute(sql: """
            UPDATE trace SET startup_seconds = COALESCE(?, startup_seconds), flush_seconds = COALESCE(?, flush_seconds),
                             process_seconds = COALESCE(?, process_seconds), submitted_at = COALESCE(?, submitted_at),
                             scheduler_seconds = COALESCE(?, scheduler_seconds), collected_seconds = COALESCE(?, collected_seconds),
                             processor_startup_seconds = COALESCE(?, processor_startup_seconds),
                             processor_seconds_per_frame = COALESCE(?, processor_seconds_per_frame)
            WHERE id = ?
            """, arguments: [f.startupSeconds, f.flushSeconds, f.processSeconds, f.submittedAt, f.schedulerSeconds,
                             f.collectedSeconds, f.processorStartupSeconds, f.processorSecondsPerFrame, trace])
    }
}
