import Foundation
import GRDB

/// What an element (a video segment or an audio piece) costs whatever its length, as its trace records it —
/// the figures `vslice report` replays and the planner keeps small beside the work:
///
/// - `startup_seconds`: from the attempt's start until the source hands on its first frame (opening the input,
///   the seek, decoding the frames before the first one kept or buffered, opening the encoder). A worker's
///   attempt starts once it has read `task.json`, so its start-up also holds the input's fingerprint check.
/// - `flush_seconds`: from the end of stream sent to the encoder until the file is sealed (the frames the
///   encoder still held, the packet file's trailer and fsync).
/// - `process_seconds`: a `vslice segment` worker's own start: from its process's start (`/proc/self/stat`)
///   until its attempt starts (the binary loaded, `task.json` read). On the coordinator's probe trace: from
///   the run's start (the process's, for its first task) until the DAG starts — the checks before any work.
/// - `submitted_at`, `scheduler_seconds` (remote elements): when the coordinator submitted the element, and the
///   scheduler's latency — from the moment the element could run (its submission, or, when the scheduler held
///   it back for want of a free CPU, the end of the element whose CPU it took) until its process started.
/// - `collected_seconds` (remote elements): from the worker's end until the coordinator ingested its record
///   (its polling).
///
/// All are wall seconds, NULL where they were not measured (traces of older versions, failed attempts that did
/// not get so far, steps that are not elements).
public struct FixedCost: Codable, Sendable, Equatable {
    public var startupSeconds: Double? = nil
    public var flushSeconds: Double? = nil
    public var processSeconds: Double? = nil
    public var submittedAt: Double? = nil
    public var schedulerSeconds: Double? = nil
    public var collectedSeconds: Double? = nil

    public init(startupSeconds: Double? = nil, flushSeconds: Double? = nil, processSeconds: Double? = nil,
                submittedAt: Double? = nil, schedulerSeconds: Double? = nil, collectedSeconds: Double? = nil) {
        self.startupSeconds = startupSeconds
        self.flushSeconds = flushSeconds
        self.processSeconds = processSeconds
        self.submittedAt = submittedAt
        self.schedulerSeconds = schedulerSeconds
        self.collectedSeconds = collectedSeconds
    }

    var isEmpty: Bool { self == FixedCost() }
}

extension JobStore {
    /// The trace's fixed-cost columns (see `FixedCost`).
    static func registerFixedCostMigration(_ m: inout DatabaseMigrator) {
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

    /// Sets a trace's fixed-cost columns (those measured; the others stay as they are), inside the caller's
    /// transaction.
    static func recordFixedCost(_ db: Database, trace: TraceID, _ f: FixedCost) throws {
        guard !f.isEmpty else { return }
        try db.execute(sql: """
            UPDATE trace SET startup_seconds = COALESCE(?, startup_seconds), flush_seconds = COALESCE(?, flush_seconds),
                             process_seconds = COALESCE(?, process_seconds), submitted_at = COALESCE(?, submitted_at),
                             scheduler_seconds = COALESCE(?, scheduler_seconds), collected_seconds = COALESCE(?, collected_seconds)
            WHERE id = ?
            """, arguments: [f.startupSeconds, f.flushSeconds, f.processSeconds, f.submittedAt, f.schedulerSeconds,
                             f.collectedSeconds, trace])
    }
}

/// When this process started, by the kernel's account (`/proc/self/stat` field 22, clock ticks after boot), as
/// a Unix time; nil where that cannot be read (not Linux).
enum ProcessClock {
    static func startedAt() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        return startedAt(stat: stat, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), bootNow: bootSeconds(), now: now())
    }

    /// The start time `stat` (a `/proc/PID/stat` line) gives, with the clock read now: seconds since boot and Unix time.
    static func startedAt(stat: String, ticksPerSecond: Double, bootNow: Double, now: Double) -> Double? {
        // Field 2 (the command) is in parentheses and may hold spaces: count from the last ')'.
        guard ticksPerSecond > 0, let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields 3… follow: starttime is field 22, the 20th after the parenthesis.
        guard fields.count >= 20, let ticks = Double(fields[19]) else { return nil }
        let age = bootNow - ticks / ticksPerSecond
        guard age >= 0, age < 365 * 86_400 else { return nil }
        return now - age
    }

    /// Seconds since boot (CLOCK_BOOTTIME, the clock `starttime` counts in).
    static func bootSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds from this process's start until now (nil where unknown).
    static func age() -> Double? { startedAt().map { max(0, now() - $0) } }
}

/// The scheduler's latency for one element, from what the work folder holds: the submissions and every
/// worker's record. An element could run from its submission (the latest one holding its index, made before
/// its process started) or, when the scheduler held it back for want of a free CPU, from the moment an
/// element of the task ended before it started (the latest such end: the scheduler starts the next element
/// when one ends). Its latency is from then until its process started. Coordinator-written records of lost
/// attempts are not ends anyone saw, and are left out.
enum SchedulerLatency {
    /// `(submittedAt, latency)` for `record`, or nil when no submission holds its index (an external runner).
    static func of(_ record: SegmentTraceRecord, submissions: [(at: Double, indices: Set<Int>)],
                   records: [SegmentTraceRecord]) -> (submittedAt: Double, seconds: Double)? {
        let start = record.processStartedAt ?? record.startedAt
        // Coordinator and worker clocks may differ by a little: a submission up to a second after the start counts.
        guard let submitted = submissions.filter({ $0.indices.contains(record.segment) && $0.at <= start + 1 }).map(\.at).max() else {
            return nil
        }
        var ready = submitted
        for r in records where r.trace != record.trace && r.exitKind != SegmentTraceRecord.lostExitKind && r.endedAt <= start {
            ready = max(ready, r.endedAt)
        }
        return (submitted, max(0, start - ready))
    }
}
