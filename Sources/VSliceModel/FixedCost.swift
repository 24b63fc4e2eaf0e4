import Foundation
import VSliceSupport

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
/// - `processor_startup_seconds`, `processor_seconds_per_frame`: with `--process`, the program's start-up (its
///   launch — or, kept loaded, its stream's start — until its first frame out) and its work per source frame
///   (`ProcessorCost`), timed as the check before any work times them: what `vslice plan` measured, recorded.
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
    public var processorStartupSeconds: Double? = nil
    public var processorSecondsPerFrame: Double? = nil

    public init(startupSeconds: Double? = nil, flushSeconds: Double? = nil, processSeconds: Double? = nil,
                submittedAt: Double? = nil, schedulerSeconds: Double? = nil, collectedSeconds: Double? = nil,
                processor: ProcessorCost? = nil) {
        processorStartupSeconds = processor?.startupSeconds
        processorSecondsPerFrame = processor?.secondsPerFrame
        self.startupSeconds = startupSeconds
        self.flushSeconds = flushSeconds
        self.processSeconds = processSeconds
        self.submittedAt = submittedAt
        self.schedulerSeconds = schedulerSeconds
        self.collectedSeconds = collectedSeconds
    }

    package var isEmpty: Bool { self == FixedCost() }
}


/// The scheduler's latency for one element, from what the work folder holds: the submissions and every
/// worker's record. An element could run from its submission (the latest one holding its index, made before
/// its process started) or, when the scheduler held it back for want of a free CPU, from the moment an
/// element of the task ended before it started (the latest such end: the scheduler starts the next element
/// when one ends). Its latency is from then until its process started. Coordinator-written records of lost
/// attempts are not ends anyone saw, and are left out.
package enum SchedulerLatency {
    /// `(submittedAt, latency)` for `record`, or nil when no submission holds its index (an external runner).
    package static func of(_ record: SegmentTraceRecord, submissions: [(at: Double, indices: Set<Int>)],
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
