import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// `vslice report`'s replay of a task's elements on N workers, on synthetic traces; and its reading of a ledger.
@Suite("scaling model: the replay of recorded traces")
struct ScalingModelTests {
    func elements(_ cpu: [Double], startup: Double = 0) -> [ScalingInput.Element] {
        cpu.enumerated().map { .init(kind: .segment, index: $0.offset, cpuSeconds: $0.element, startupSeconds: startup) }
    }

    func input(_ cpu: [Double], before: Double = 0.5, after: Double = 0.5) -> ScalingInput {
        ScalingInput(before: [.init(node: "probe", seconds: before)], elements: elements(cpu), after: [.init(node: "mux", seconds: after)])
    }

    func wall(_ i: ScalingInput, _ n: Int) -> Double { ScalingModel.curve(i, workers: [n])[0].wallSeconds }

    @Test("eight equal elements: the serial steps stay, the elements divide, workers past eight idle")
    func equalElements() {
        let i = input(Array(repeating: 1, count: 8))
        let curve = ScalingModel.curve(i, workers: [1, 2, 8, 16])
        #expect(curve.map(\.wallSeconds) == [9, 5, 2, 2])
        #expect(curve.map(\.speedup) == [1, 1.8, 4.5, 4.5])
        #expect(curve.allSatisfy { $0.serialSeconds == 1 })
        #expect(curve[3].idleShare == 0.5 && curve[2].idleShare == 0 && curve[2].workShare == 1)
        #expect(curve.allSatisfy { abs($0.workShare + $0.fixedShare + $0.idleShare - 1) < 1e-9 })
    }

    @Test("analysis elements are a phase of their own: the encode waits for all of them (the reduce does)")
    func analysisPhase() {
        var i = input([1, 1], before: 0, after: 0)
        i.analyses = [.init(kind: .analysis, index: 0, cpuSeconds: 2), .init(kind: .analysis, index: 1, cpuSeconds: 1)]
        // On 2 workers: the analyses end at 2 (not 1.5), then the two segments take 1.
        #expect(wall(i, 2) == 3)
        #expect(wall(i, 1) == 5)
    }

    @Test("the dispatch order is the executor's: a long element last leaves a worker idle, first it does not")
    func dispatchOrder() {
        #expect(wall(input([1, 1, 1, 3], before: 0, after: 0), 2) == 4)
        #expect(wall(input([3, 1, 1, 1], before: 0, after: 0), 2) == 3)
    }

    @Test("a scheduler's latency: the first wave's once per worker, the later one's before every other element; then the record's collection")
    func latency() {
        var i = input([1, 1, 1, 1], before: 0, after: 0)
        i.firstWaveLatency = 2
        i.laterLatency = 0.5
        i.collectSeconds = 0.25
        for k in i.elements.indices { i.elements[k].processSeconds = 0.1 }
        // Per worker: 2 + 0.1 + 1, then 0.5 + 0.1 + 1; then the last record is collected.
        #expect(abs(wall(i, 2) - (3.1 + 1.6 + 0.25)) < 1e-9)
        // Four workers: one wave.
        #expect(abs(wall(i, 4) - 3.35) < 1e-9)
        let p = ScalingModel.curve(i, workers: [4])[0]
        #expect(abs(p.fixedShare - 4 * 2.1 / (4 * 3.35)) < 1e-9)
    }

    @Test("workers that stay up: the process start once per worker, before its first element")
    func workersStayUp() {
        var i = input([1, 1, 1, 1], before: 0, after: 0)
        i.workerStartSeconds = 0.5
        // Per worker: 0.5 + 1 + 1.
        #expect(abs(wall(i, 2) - 2.5) < 1e-9)
        #expect(abs(wall(i, 4) - 1.5) < 1e-9)
        #expect(abs(wall(i, 1) - 4.5) < 1e-9)
    }

    @Test("start-up is a fixed cost within the CPU time; a local element's ledger writes add to it")
    func startupAndLedger() {
        var i = input([1, 1], before: 0, after: 0)
        for k in i.elements.indices {
            i.elements[k].startupSeconds = 0.1
            i.elements[k].ledgerSeconds = 0.05
        }
        let p = ScalingModel.curve(i, workers: [1])[0]
        #expect(abs(p.wallSeconds - 2.1) < 1e-9)
        #expect(abs(p.fixedShare - 0.3 / 2.1) < 1e-9 && abs(p.workShare - 1.8 / 2.1) < 1e-9)
    }

    @Test("the audio node beside the elements bounds the encode from below")
    func beside() {
        var i = input([1, 1], before: 0, after: 0)
        i.beside = [.init(node: "audio", seconds: 1.5)]
        #expect(wall(i, 1) == 2)
        #expect(wall(i, 2) == 1.5)
    }

    // MARK: reading the ledger

    @Test("a task's ledger: serial steps, each element's last done attempt in the local dispatch order, its fixed costs")
    func load() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-report-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: dir + "/ledger.db")
        let t = try IngestTests().task(store)   // two 50-frame segments
        let id = t.id
        // Refused before its segments are done.
        #expect(throws: VSliceError.self) { try TaskReport.load(store: store, task: id) }
        for node in [Node.probe, .plan, .mux, .verify, .publish] {
            let trace = try store.beginEvent(id, node)
            try store.endStep(trace: trace, task: id, node: node, figures: .init(wall: 0.25, cpu: 0.125), error: nil)
        }
        for (segment, cpu) in [(0, 2.0), (1, 3.0), (1, 5.0)] {
            let trace = try store.beginEvent(id, .encode, segment: id.segment(segment))
            try store.endStep(trace: trace, task: id, node: .encode,
                              segment: .init(id: id.segment(segment), frames: 50, size: 1, checksum: 1),
                              figures: .init(wall: cpu, cpu: cpu, fixed: .init(startupSeconds: 0.03, flushSeconds: 0.02)), error: nil)
        }
        try store.finishTask(id, status: .done)
        let r = try TaskReport.load(store: store, task: id)
        #expect(r.input.before.map(\.node) == ["probe", "plan"] && r.input.after.map(\.node) == ["mux", "verify", "publish"])
        #expect(r.input.serialSeconds == 1.25)
        // Segment 1's last attempt (5 CPU-s); equal frame counts: in index order.
        #expect(r.input.elements.map(\.index) == [0, 1])
        #expect(r.input.elements.map(\.cpuSeconds) == [2, 5])
        #expect(r.input.elements.allSatisfy { $0.startupSeconds == 0.03 && $0.flushSeconds == 0.02 && $0.processSeconds == 0 })
        #expect(r.input.executor == "local" && r.input.firstWaveLatency == 0)
        #expect(r.segments == 2 && r.pieces == 0)
        #expect(abs(r.cpuSeconds - (5 * 0.125 + 10)) < 1e-9 && abs(r.serialCPUSeconds - 5 * 0.125) < 1e-9)
        #expect(r.measuredConcurrency == 1)
        #expect(r.text(ScalingModel.curve(r.input, workers: [1, 2])).contains("serial steps 1.25 s"))
    }

    @Test("remote latencies: the first wave's from the submission, the later ones' from the end of the element before")
    func remoteLatencies() throws {
        func trace(_ start: Double, process: Double, submitted: Double, latency: Double) -> TraceRecord {
            TraceRecord(id: TraceID(UUID().uuidString), eventId: "t_encode", segmentId: nil, status: .done, startedAt: start, endedAt: start + 1,
                        wallSeconds: 1, cpuSeconds: 1, framesIn: nil, framesOut: nil, bytes: nil, error: nil, pid: 1, host: "h",
                        engine: "slurm", engineJob: nil, engineIndex: nil, exitCode: 0, processSeconds: process, submittedAt: submitted,
                        schedulerSeconds: latency, collectedSeconds: 0.5)
        }
        var i = input([1])
        TaskReport.latencies([trace(102.1, process: 0.1, submitted: 100, latency: 2), trace(102.2, process: 0.1, submitted: 100, latency: 2.1),
                              trace(104.6, process: 0.1, submitted: 100, latency: 0.3), trace(105, process: 0.1, submitted: 100, latency: 0.5)],
                             into: &i)
        #expect(abs(i.firstWaveLatency - 2.05) < 1e-9)
        #expect(abs(i.laterLatency - 0.4) < 1e-9)
        #expect(i.collectSeconds == 0.5)
    }

    @Test("medians, of odd and even counts")
    func median() {
        #expect(TaskReport.median([3, 1, 2]) == 2 && TaskReport.median([4, 1, 2, 3]) == 2.5 && TaskReport.median([]) == nil)
    }
}
