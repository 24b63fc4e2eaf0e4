import Foundation
import TestScratch
import Logging
import Synchronization
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The remote executor's per-index element tracker (pure transitions), Slurm's outputs as the engine reads
/// them, and the executor driven end to end against a fake cluster engine — no Slurm.
@Suite("remote elements: the tracker, Slurm's outputs, a fake cluster")
struct ElementTrackerTests {
    static func tracker(_ pending: [Int], canSubmit: Bool = true, maxAttempts: Int = 3) -> ElementTracker {
        let counter = Atomic<Int>(0)
        var t = ElementTracker(task: "T", engine: "slurm", canSubmit: canSubmit, maxAttempts: maxAttempts, pending: pending,
                               frames: Dictionary(uniqueKeysWithValues: pending.map { ($0, 100) }))
        t.makeTrace = { TraceID("lost-\(counter.add(1, ordering: .relaxed).newValue)") }
        return t
    }

    static func record(_ segment: Int, _ status: StepStatus, trace: TraceID = TraceID(UUID().uuidString), kind: String = "processing",
                       deterministic: Bool? = nil, elementJob: String? = nil, frames: Int? = nil) -> SegmentTraceRecord {
        SegmentTraceRecord(trace: trace, task: "T", segment: segment, status: status, error: status == .done ? nil : "it broke",
                           exitKind: status == .done ? "ok" : kind, exitCode: status == .done ? 0 : 1, deterministic: deterministic,
                           startedAt: 1, endedAt: 2, wallSeconds: 1, cpuSeconds: 1, framesOut: frames, pid: 9, host: "h",
                           engine: .init(kind: "slurm", job: "50", arrayIndex: segment, elementJob: elementJob))
    }

    static func running(_ node: String, job: String = "51") -> ElementSighting {
        ElementSighting(state: .running, node: node, job: job, arrayJob: "50", arrayIndex: 0)
    }

    /// A compact transcript of effects: "started 0", "frames 0 40", "done 0 100", "failed 0", "record 0", "fail".
    static func names(_ fx: [ElementTracker.Effect]) -> [String] {
        fx.map {
            switch $0 {
            case .started(let i): "started \(i)"
            case .frames(let i, let n): "frames \(i) \(n)"
            case .done(let i, let n): "done \(i) \(n)"
            case .failed(let i, _): "failed \(i)"
            case .writeRecord(let r): "record \(r.segment)"
            case .failTask(_, let cancel): cancel ? "fail+cancel" : "fail"
            }
        }
    }

    @Test("submitted → running → done: started once, frames from the progress file, the rest of the frames with the record")
    func happyPath() throws {
        var t = Self.tracker([0, 1])
        #expect(try t.due().get() == [0, 1])
        t.submitted([0, 1], now: 10)
        #expect(t.phase(0) == .submitted)
        #expect(try t.due().get().isEmpty)
        let fx1 = t.look(ElementLook(live: [0: Self.running("n1"), 1: .init(state: .queued)], progress: [0: ("a", 40)], now: 11))
        #expect(Self.names(fx1) == ["started 0", "frames 0 40"])
        #expect(t.phase(0) == .running(node: "n1") && t.phase(1) == .submitted)
        let fx2 = t.record(Self.record(0, .done, trace: "a", frames: 100), progressTrace: "a")
        #expect(Self.names(fx2) == ["frames 0 60", "done 0 100"])
        // The ended attempt's progress file counts no more.
        #expect(Self.names(t.look(ElementLook(live: [1: Self.running("n2")], progress: [0: ("a", 100)], now: 12))) == ["started 1"])
        #expect(Self.names(t.record(Self.record(1, .done, frames: 100), progressTrace: nil)) == ["frames 1 100", "done 1 100"])
        #expect(t.finished)
    }

    @Test("a held element missing from the scheduler for three looks is lost: a record naming its failed node is written, it waits, it is submitted again")
    func lostOnDeadNode() throws {
        var t = Self.tracker([3])
        t.submitted([3], now: 100)
        _ = t.look(ElementLook(live: [3: Self.running("n2", job: "77")], now: 101))
        // Missing twice, then seen again (a slow squeue): not lost.
        for s in 0..<2 { #expect(t.look(ElementLook(live: [:], now: 102 + Double(s))).isEmpty) }
        _ = t.look(ElementLook(live: [3: Self.running("n2", job: "77")], now: 104))
        #expect(t.nodesAboutToBeLost([:]).isEmpty)
        for s in 0..<2 { #expect(t.look(ElementLook(live: [:], now: 105 + Double(s))).isEmpty) }
        #expect(t.nodesAboutToBeLost([:]) == ["n2"])
        let fx = t.look(ElementLook(live: [:], nodeTrouble: ["n2": "down* (Not responding)"], now: 107))
        #expect(Self.names(fx) == ["failed 3", "record 3"])
        guard case .writeRecord(let r) = fx[1] else { Issue.record("no record"); return }
        #expect(r.trace == "lost-1" && r.status == .failed && r.exitKind == SegmentTraceRecord.lostExitKind && r.exitCode == nil)
        #expect(r.host == "n2" && r.engine?.node == "n2" && r.engine?.elementJob == "77" && r.startedAt == 101 && r.endedAt == 107)
        #expect(r.error?.contains("its node n2 failed while running it (down* (Not responding))") == true, "\(r.error ?? "")")
        #expect(!r.deterministicFailure)
        #expect(t.phase(3) == .waiting)
        #expect(try t.due().get() == [3])
        // Its own record, ingested later, changes nothing.
        #expect(t.record(r, progressTrace: nil).isEmpty)
        t.submitted([3], now: 108)
        #expect(Self.names(t.look(ElementLook(live: [3: Self.running("n1", job: "78")], now: 109))) == ["started 3"])
        #expect(Self.names(t.record(Self.record(3, .done, elementJob: "78", frames: 100), progressTrace: nil)) == ["frames 3 100", "done 3 100"])
        #expect(t.finished)
    }

    @Test("a lost element whose node is fine (a scancel, a kill) says so without blaming a node")
    func lostWithoutNodeTrouble() {
        var t = Self.tracker([0])
        t.submitted([0], now: 0)
        for s in 0..<3 { _ = t.look(ElementLook(live: [:], now: Double(s))) }
        #expect(t.phase(0) == .waiting)
        var u = Self.tracker([1])
        u.submitted([1], now: 0)
        _ = u.look(ElementLook(live: [1: Self.running("n1")], now: 1))
        var last: [ElementTracker.Effect] = []
        for s in 0..<3 { last = u.look(ElementLook(live: [:], nodeTrouble: [:], now: 2 + Double(s))) }
        guard case .writeRecord(let r) = last.last else { Issue.record("not lost: \(Self.names(last))"); return }
        #expect(r.error?.contains("slurm no longer holds it") == true && r.host == "n1")
    }

    @Test("failed records: retried up to --max-attempts submissions, then the task fails naming the last error; deterministic fails at once and cancels")
    func retryPolicy() throws {
        var t = Self.tracker([2], maxAttempts: 2)
        t.submitted([2], now: 0)
        #expect(Self.names(t.record(Self.record(2, .failed), progressTrace: nil)) == ["started 2", "failed 2"])
        #expect(try t.due().get() == [2])
        t.submitted([2], now: 1)
        _ = t.record(Self.record(2, .failed), progressTrace: nil)
        guard case .failure(let e) = t.due() else { Issue.record("a third submission was allowed"); return }
        #expect(e.description.contains("2 attempts under slurm failed (--max-attempts 2); last: it broke"))

        var d = Self.tracker([5])
        d.submitted([5], now: 0)
        let fx = d.record(Self.record(5, .failed, kind: "input"), progressTrace: nil)
        #expect(Self.names(fx) == ["started 5", "failed 5", "fail+cancel"])
        if case .failTask(let e, _) = fx.last { #expect(e.kind == .input && e.description.contains("encode segment 5")) }
        var p = Self.tracker([6])
        p.submitted([6], now: 0)
        #expect(Self.names(p.record(Self.record(6, .failed, deterministic: true), progressTrace: nil)).last == "fail+cancel")
        #expect(ElementTracker.finalFailure(pending: [6], earlier: [Self.record(6, .failed, deterministic: true)]) != nil)
        #expect(ElementTracker.finalFailure(pending: [6], earlier: [Self.record(6, .failed)]) == nil)
    }

    @Test("an external runner: nothing is submitted, every pending element counts as held; --max-attempts failed records fail the task")
    func externalRunner() throws {
        var t = Self.tracker([0, 1], canSubmit: false, maxAttempts: 2)
        #expect(t.attach(ElementLook(live: nil, now: 0)).isEmpty)
        #expect(t.phase(0) == .submitted)
        #expect(try t.due().get().isEmpty)
        #expect(Self.names(t.record(Self.record(0, .failed), progressTrace: nil)) == ["started 0", "failed 0"])
        #expect(t.phase(0) == .submitted)
        #expect(Self.names(t.record(Self.record(0, .failed), progressTrace: nil)) == ["started 0", "failed 0", "fail"])
    }

    @Test("re-attach: what the scheduler holds is left to it; a failed record of an older attempt does not resubmit a held index")
    func reattach() throws {
        var t = ElementTracker(task: "T", engine: "slurm", canSubmit: true, maxAttempts: 3, pending: [0, 1, 2], frames: [:],
                               submitted: [[0, 1, 2]], failed: [Self.record(2, .failed, trace: "old")])
        let fx = t.attach(ElementLook(live: [0: Self.running("n1", job: "61"), 1: .init(state: .queued, job: "60")], now: 0))
        #expect(Self.names(fx) == ["started 0"])
        #expect(try t.due().get() == [2])
        // The earlier run's failed record, ingested now, was counted already.
        #expect(t.record(Self.record(2, .failed, trace: "old"), progressTrace: nil).isEmpty)
        // Index 0's previous attempt (job 59) failed; Slurm now runs job 61 for it: nothing to submit.
        #expect(t.record(Self.record(0, .failed, elementJob: "59"), progressTrace: nil).isEmpty)
        #expect(t.phase(0) == .running(node: "n1"))
        #expect(Self.names(t.record(Self.record(0, .failed, elementJob: "61"), progressTrace: nil)) == ["failed 0"])
        #expect(t.phase(0) == .waiting)
    }

    @Test("Slurm's outputs: squeue lines with the array's base, MaxArraySize, arrays below it, sinfo's troubled nodes")
    func slurmOutputs() {
        let squeue = """
            2|PENDING|8|8||/w/segment.sbatch 8
            0|RUNNING|10|8|n1|/w/segment.sbatch 8
            1|RUNNING|12|9|n3|/w/segment.sbatch 0
            1|COMPLETING|11|8|n2|/w/segment.sbatch 8
            3|PENDING|13|13||/old/segment.sbatch
            N/A|PENDING|14|14||x
            """
        let s = SlurmEngine.sightings(squeue: squeue)
        #expect(s[10] == ElementSighting(state: .queued, node: nil, job: "8", arrayJob: "8", arrayIndex: 2))
        #expect(s[8] == ElementSighting(state: .running, node: "n1", job: "10", arrayJob: "8", arrayIndex: 0))
        #expect(s[9]?.node == "n2" && s[1]?.node == "n3" && s[3]?.state == .queued)
        #expect(s.count == 5)
        #expect(SlurmEngine.maxArraySize(config: "MaxArraySize            = 4\nMaxJobCount = 10000\n") == 4)
        #expect(SlurmEngine.maxArraySize(config: "MaxJobCount = 10000\n") == nil)
        let arrays = SlurmEngine.arrays([11, 0, 1, 2, 3, 4, 9, 5], maxArraySize: 4)
        #expect(arrays.map(\.base) == [0, 4, 9] && arrays.map(\.indices) == [[0, 1, 2, 3], [4, 5], [9, 11]])
        #expect(SlurmEngine.arrays(Array(0..<1001), maxArraySize: 1001).count == 1)
        let sinfo = "n1|idle|none\nn2|down*|Not responding\nn3|drained|maintenance\nn4|mixed*|none\n"
        #expect(SlurmEngine.nodeTrouble(sinfo: sinfo) == ["n2": "down* (Not responding)", "n3": "drained (maintenance)", "n4": "mixed*"])
    }

    @Test("workers that stay up: an element runs where the live worker holding its claim runs, waits while unclaimed and a worker is live, is gone when its worker is")
    func workerSightings() {
        let workers = SlurmEngine.workers(squeue: """
            0|RUNNING|21|20|n1|/w/workers.sbatch 0
            1|PENDING|20|20||/w/workers.sbatch 0
            """)
        #expect(workers.keys.sorted() == ["20_0", "20_1"] && workers["20_0"]?.node == "n1" && workers["20_0"]?.job == "21")
        func claim(_ worker: String) -> ElementClaim { ElementClaim(worker: worker, host: "h", pid: 1, claimedAt: 0) }
        let claims = [0: claim("20_0"), 1: claim("19_3"), 3: claim("20_0")]
        let s = SlurmEngine.workerSightings(workers: workers, claims: claims, elements: 0..<4)
        #expect(s[0] == ElementSighting(state: .running, node: "n1", job: "21", arrayJob: "20", arrayIndex: 0))
        #expect(s[1] == nil, "its worker 19_3 is gone")
        #expect(s[2] == ElementSighting(state: .queued))
        #expect(s[3]?.state == .running)
        // No worker left: nothing is held, so unclaimed elements are lost too (and submitted again).
        #expect(SlurmEngine.workerSightings(workers: [:], claims: claims, elements: 0..<4).isEmpty)
    }

    @Test("claims: one taker wins, a release takes back only the claim it was asked to, a heartbeat keeps it fresh")
    func claims() throws {
        let dir = TestScratch.url.appendingPathComponent("claims-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = ElementClaim(worker: "a", host: "h", pid: 1, claimedAt: 1), b = ElementClaim(worker: "b", host: "h", pid: 2, claimedAt: 2)
        #expect(ElementClaim.take(3, as: a, workDir: dir))
        #expect(!ElementClaim.take(3, as: b, workDir: dir))
        #expect(ElementClaim.read(3, workDir: dir)?.claim == a)
        #expect(!ElementClaim.release(3, workDir: dir, holder: b))
        #expect(ElementClaim.read(3, workDir: dir)?.claim == a, "a release of another holder's claim puts it back")
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -100)], ofItemAtPath: dir + "/seg-00003.claim")
        #expect((ElementClaim.read(3, workDir: dir)?.age ?? 0) > 90)
        ElementClaim.beat(3, workDir: dir)
        #expect((ElementClaim.read(3, workDir: dir)?.age ?? 100) < 10)
        #expect(ElementClaim.release(3, workDir: dir, holder: a))
        #expect(ElementClaim.take(3, as: b, workDir: dir) && ElementClaim.all(workDir: dir) == [3: b])
    }

    @Test("the executor against a fake cluster: a node dies under one element, which is recorded lost and submitted again; every segment done once")
    func fakeCluster() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-fake-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: dir + "/ledger.db")
        let job = try FakeCluster.job(store: store, dir: dir, segments: 4)
        let engine = FakeCluster(doomed: 2)
        guard case .finished = try RemoteExecutor(engine: engine).encode(job.job) else { Issue.record("not finished"); return }
        job.watchdog.stop()

        let id = job.job.task.id
        #expect(try store.segments(task: id).map(\.status) == [.done, .done, .done, .done])
        let traces = try store.traces(task: id)
        #expect(traces.filter { $0.status == .done }.count == 4)
        let two = traces.filter { $0.segmentId == id.segment(2) }
        #expect(two.map(\.status) == [.failed, .done])
        #expect(two.first?.host == "n2" && two.first?.exitCode == nil && two.first?.engineJob == "1")
        #expect(two.first?.error?.contains("its node n2 failed while running it (down* (Not responding))") == true, "\(two)")
        #expect(engine.submissions == [[0, 1, 2, 3], [2]])
        #expect(Submission.load(workDir: job.job.workDir).map(\.indices) == [[0, 1, 2, 3], [2]])
        let events = job.events.all
        #expect(events.filter { $0.hasPrefix("failed") } == ["failed 2"])
        #expect(events.filter { $0.hasPrefix("done") }.count == 4)
        #expect(events.filter { $0.hasPrefix("started") }.count == 5)
    }
}

/// A cluster without Slurm: two nodes (n1, n2) of one element each. An element runs for one look and then
/// finishes — its worker seals the segment file and writes a done record, as `vslice segment` does — except the
/// first attempt of the `doomed` index, which runs on n2 and dies with it: the element vanishes with no record
/// and the node is reported down.
final class FakeCluster: ClusterEngine, @unchecked Sendable {
    struct Element { var index: Int; var job: Int; var array: Int; var node: String? = nil; var looks = 0 }
    let doomed: Int
    private let lock = NSLock()
    private var queue: [Element] = []
    private var nextJob = 1
    private var doomedJob: Int?
    private var down = Set<String>()
    private var submitted: [[Int]] = []
    private var work = "", task: TaskID = ""

    init(doomed: Int) { self.doomed = doomed }

    var submissions: [[Int]] { lock.withLock { submitted } }
    var name: String { "slurm" }
    var pollInterval: Double { 0.001 }
    var canSubmit: Bool { true }

    func submit(indices: [Int], parallel: Int, job: EncodeJob) throws(VSliceError) -> [(id: String, indices: [Int])] {
        lock.withLock {
            work = job.workDir
            task = job.task.id
            submitted.append(indices)
            for i in indices {
                if i == doomed && doomedJob == nil { doomedJob = nextJob }
                queue.append(Element(index: i, job: nextJob, array: submitted.count))
                nextJob += 1
            }
            return [("\(submitted.count)", indices)]
        }
    }

    /// One step of the cluster, then what it holds.
    func inFlight(task: TaskID) -> [Int: ElementSighting]? {
        lock.withLock {
            queue = queue.compactMap(step)
            var busy = Set(queue.compactMap(\.node))
            for k in queue.indices where queue[k].node == nil {
                let wanted = queue[k].job == doomedJob ? ["n2"] : ["n1", "n2"]
                if let free = wanted.first(where: { !busy.contains($0) && !down.contains($0) }) {
                    queue[k].node = free
                    busy.insert(free)
                }
            }
            return Dictionary(uniqueKeysWithValues: queue.map { e in
                (e.index, ElementSighting(state: e.node == nil ? .queued : .running, node: e.node, job: "\(e.job)",
                                          arrayJob: "\(e.array)", arrayIndex: e.index))
            })
        }
    }

    /// A running element's next look: it ran one look, so it finishes now — or, the doomed attempt, its node dies.
    private func step(_ element: Element) -> Element? {
        guard let node = element.node else { return element }
        var e = element
        e.looks += 1
        guard e.looks >= 2 else { return e }
        if e.job == doomedJob {
            down.insert(node)
        } else {
            try! Self.finish(e, work: work, task: task)
        }
        return nil
    }

    func nodeTrouble(_ nodes: Set<String>) -> [String: String] {
        lock.withLock { Dictionary(uniqueKeysWithValues: nodes.intersection(down).map { ($0, "down* (Not responding)") }) }
    }

    func cancel(task: TaskID) { lock.withLock { queue = [] } }

    /// The worker's part: a sealed segment file of 10 packets and its done record.
    static func finish(_ e: Element, work: String, task: TaskID) throws {
        let file = WorkFolder.segmentFileName(e.index)
        let w = try PacketFileWriter(path: work + "/" + file, params: PacketFileTests.params)
        let p = Packet()
        for k in 0..<10 {
            try p.setPayload(size: 32, path: file) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(k)) }
            p.pts = Int64(k); p.dts = Int64(k); p.duration = 1
            try w.write(p)
        }
        try w.finish()
        let now = Date().timeIntervalSince1970
        try SegmentTraceRecord(trace: TraceID(UUID().uuidString.lowercased()), task: task, segment: e.index, status: .done, error: nil,
                               exitKind: "ok", exitCode: 0, startedAt: now, endedAt: now, wallSeconds: 0, cpuSeconds: 0,
                               framesIn: 10, framesOut: 10, bytes: w.bytesWritten, checksum: Int64(w.sealedChecksum), file: file,
                               pid: 1, host: "fake", engine: .init(kind: "slurm", job: "\(e.array)", arrayIndex: e.index,
                                                                   elementJob: "\(e.job)", node: e.node)).write(workDir: work)
    }

    /// What the coordinator reported (started/done/failed per segment).
    final class EventLog: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String] = []
        func append(_ s: String) { lock.withLock { items.append(s) } }
        var all: [String] { lock.withLock { items } }
    }

    /// A claimed task of `segments` segments of 10 frames, and the encode job a coordinator would run for it.
    static func job(store: JobStore, dir: String, segments: Int) throws -> (job: EncodeJob, watchdog: StallWatchdog, events: EventLog) {
        let input = dir + "/in.mp4"
        try Data("x".utf8).write(to: URL(fileURLWithPath: input))
        let request = TranscodeRequest(input: input, output: dir + "/out.mp4", settings: TranscodeSettings())
        let claimed = try store.claim(.init(input: input, output: dir + "/out.mp4", fingerprint: "1:2:3", request: request,
                                            taskId: nil, fresh: false)).task
        try FileManager.default.createDirectory(atPath: claimed.workDir, withIntermediateDirectories: true)
        let n = segments * 10
        let index = VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 25), pts: (0..<n).map { Int64($0) },
                               keyframeIndices: Array(stride(from: 0, to: n, by: 10)), openGop: false,
                               endTime: Double(n) / 25, dtsStrictlyIncreasing: true, lastFrameDuration: 1)
        var settings = TranscodeSettings()
        settings.split = .frames
        settings.segmentFrames = 10
        settings.minSplitSeconds = 0
        settings.jobs = 2
        let plan = Plan(index: index, settings: settings)
        let paths = plan.segments.map { claimed.workDir + "/" + WorkFolder.segmentFileName($0.index) }
        try store.ensureSegments(task: claimed.id, plan: plan, files: paths)
        let watchdog = StallWatchdog(timeout: 300)
        let events = EventLog()
        let job = EncodeJob(task: claimed, store: store, input: input, identity: FileIdentity.of(input)!, index: index, plan: plan,
                            segmentPaths: paths, todo: plan.segments, settings: settings, options: Transcoder.RunOptions(),
                            watchdog: watchdog, onEvent: { e in
                                switch e {
                                case .segmentStarted(let i): events.append("started \(i)")
                                case .segmentDone(let i, _): events.append("done \(i)")
                                case .segmentFailed(let i, _): events.append("failed \(i)")
                                default: break
                                }
                            }, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), kept: { _, _ in })
        return (job, watchdog, events)
    }
}
