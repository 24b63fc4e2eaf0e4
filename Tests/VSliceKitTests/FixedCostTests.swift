import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// An element's fixed costs: the process start read from /proc, the scheduler's latency estimated from the
/// submissions and the workers' records, and their ingest into the ledger's trace columns.
@Suite("element fixed costs")
struct FixedCostTests {
    @Test("the process start comes from /proc/self/stat's field 22, even with spaces and parentheses in the command")
    func processStart() throws {
        // Field 22 (starttime) = 5000 ticks at 100 Hz = 50 s after boot; the clock now reads 80 s after boot.
        let fields = (3...52).map { $0 == 22 ? "5000" : "\($0)" }.joined(separator: " ")
        let stat = "1234 (v slice) (x)) " + fields
        let at = try #require(ProcessClock.startedAt(stat: stat, ticksPerSecond: 100, bootNow: 80, now: 1_000_000))
        #expect(abs(at - (1_000_000 - 30)) < 1e-9)
        #expect(ProcessClock.startedAt(stat: "garbage", ticksPerSecond: 100, bootNow: 80, now: 1) == nil)
        // A start after "now" is a clock mix-up, not a start.
        #expect(ProcessClock.startedAt(stat: stat, ticksPerSecond: 100, bootNow: 10, now: 1) == nil)
        // This process: started before now, less than a day ago (the test runner).
        let own = try #require(ProcessClock.startedAt())
        #expect(own <= Date().timeIntervalSince1970 && own > Date().timeIntervalSince1970 - 86_400)
    }

    func record(_ segment: Int, start: Double, end: Double, process: Double? = nil, kind: String = "ok") -> SegmentTraceRecord {
        var r = SegmentTraceRecord(trace: TraceID(UUID().uuidString), task: "t", segment: segment, status: kind == "ok" ? .done : .failed,
                                   error: nil, exitKind: kind, exitCode: 0, startedAt: start, endedAt: end, wallSeconds: end - start,
                                   cpuSeconds: end - start, pid: 1, host: "h", engine: nil)
        r.processStartedAt = process
        return r
    }

    @Test("the scheduler's latency: from the submission, or from the end of the element whose CPU it took")
    func schedulerLatency() throws {
        // Segments 0–3 submitted at 100 to a scheduler with two CPUs; 4 submitted again at 130.
        let subs: [(at: Double, indices: Set<Int>)] = [(100, [0, 1, 2, 3]), (130, [4])]
        let r0 = record(0, start: 100.6, end: 110, process: 100.5)
        let r1 = record(1, start: 100.9, end: 112, process: 100.7)
        let r2 = record(2, start: 110.5, end: 120, process: 110.3)   // took r0's CPU
        let r3 = record(3, start: 112.6, end: 121, process: 112.4)   // took r1's
        let lost = record(4, start: 101, end: 125, kind: SegmentTraceRecord.lostExitKind)
        let r4 = record(4, start: 131, end: 140, process: 130.8)     // resubmitted
        let all = [r0, r1, r2, r3, lost, r4]
        func latency(_ r: SegmentTraceRecord) -> Double? { SchedulerLatency.of(r, submissions: subs, records: all)?.seconds }
        #expect(abs(latency(r0)! - 0.5) < 1e-9)
        #expect(abs(latency(r1)! - 0.7) < 1e-9)
        #expect(abs(latency(r2)! - 0.3) < 1e-9)
        #expect(abs(latency(r3)! - 0.4) < 1e-9)
        // The lost attempt's "end" is the coordinator's, no CPU was seen freed then: from the resubmission.
        #expect(abs(latency(r4)! - 0.8) < 1e-9)
        #expect(SchedulerLatency.of(r4, submissions: subs, records: all)?.submittedAt == 130)
        // Without a process start (an older worker), from the attempt's start; without a submission, nothing.
        #expect(abs(SchedulerLatency.of(record(0, start: 100.6, end: 110), submissions: subs, records: [])!.seconds - 0.6) < 1e-9)
        #expect(SchedulerLatency.of(r0, submissions: [], records: all) == nil)
    }

    @Test("ingest keeps a worker's start-up, flush, process start-up and the scheduler's latency on its trace")
    func ingest() throws {
        let t = try IngestTests()
        defer { try? FileManager.default.removeItem(atPath: t.dir) }
        let store = try JobStore(path: t.db)
        let (id, _) = try t.task(store)
        var done = try t.sealed(task: id, segment: 0, packets: 50)
        done.startedAt = now() - 3
        done.endedAt = now() - 1
        done.processStartedAt = done.startedAt - 0.25
        done.startupSeconds = 0.125
        done.flushSeconds = 0.0625
        try done.write(workDir: t.work)
        try Submission.save([Submission(engine: "slurm", id: "900", indices: [0, 1], submittedAt: done.startedAt - 1.25)], workDir: t.work)
        try store.ingestTraceRecords(task: id, workDir: t.work, videoSegments: 2)
        let trace = try #require(try store.traces(task: id).first { $0.id == done.trace })
        #expect(trace.startupSeconds == 0.125 && trace.flushSeconds == 0.0625)
        #expect(abs(trace.processSeconds! - 0.25) < 1e-6)
        #expect(abs(trace.schedulerSeconds! - 1.0) < 1e-6 && trace.submittedAt == done.startedAt - 1.25)
        #expect(trace.collectedSeconds! >= 1 && trace.collectedSeconds! < 60)
    }
}
