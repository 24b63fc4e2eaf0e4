import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// Worker trace records (written beside the segments by `vslice segment`) and their ingest into the ledger by
/// the task's holder; the worker's index selection; Slurm's array lists.
@Suite("worker trace records and their ingest")
struct IngestTests {
    let dir: String
    var db: String { dir + "/ledger.db" }
    var work: String { dir + "/work" }

    init() throws {
        dir = TestScratch.url.appendingPathComponent("vslice-ingest-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/work", withIntermediateDirectories: true)
    }

    /// A claimed task with a plan of two 50-frame segments.
    func task(_ store: JobStore) throws -> (id: TaskID, plan: Plan) {
        let request = TranscodeRequest(input: "/in.mp4", output: dir + "/out.mp4", settings: TranscodeSettings())
        let id = try store.claim(.init(input: "/in.mp4", output: dir + "/out.mp4", fingerprint: "1:2:3", request: request,
                                       taskId: nil, fresh: false)).task.id
        let index = VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 12800), pts: (0..<100).map { Int64($0 * 512) },
                               keyframeIndices: Array(stride(from: 0, to: 100, by: 25)), openGop: false,
                               endTime: 4, dtsStrictlyIncreasing: true, lastFrameDuration: 512)
        var settings = TranscodeSettings()
        settings.split = .frames
        settings.segmentFrames = 50
        settings.minSplitSeconds = 0
        let plan = Plan(index: index, settings: settings)
        try #require(plan.segments.count == 2)
        try store.ensureSegments(task: id, plan: plan, files: plan.segments.map { work + "/" + WorkFolder.segmentFileName($0.index) })
        return (id, plan)
    }

    /// Seals a segment file of `packets` packets, as a worker would; returns its record (done).
    func sealed(task: TaskID, segment: Int, packets: Int) throws -> SegmentTraceRecord {
        let file = WorkFolder.segmentFileName(segment)
        let w = try PacketFileWriter(path: work + "/" + file, params: PacketFileTests.params)
        let p = Packet()
        for i in 0..<packets {
            try p.setPayload(size: 64, path: file) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(i & 0xff)) }
            p.pts = Int64(i); p.dts = Int64(i); p.duration = 1
            try w.write(p)
        }
        try w.finish()
        return SegmentTraceRecord(trace: TraceID(UUID().uuidString.lowercased()), task: task, segment: segment, status: .done, error: nil,
                                  exitKind: "ok", exitCode: 0, startedAt: 1, endedAt: 2, wallSeconds: 1, cpuSeconds: 0.5,
                                  framesIn: packets, framesOut: packets, bytes: w.bytesWritten, checksum: Int64(w.sealedChecksum),
                                  file: file, pid: 42, host: "node7",
                                  engine: .init(kind: "slurm", job: "900", arrayIndex: segment, elementJob: "90\(segment)"))
    }

    func failed(task: TaskID, segment: Int, kind: String, code: Int32) -> SegmentTraceRecord {
        SegmentTraceRecord(trace: TraceID(UUID().uuidString.lowercased()), task: task, segment: segment, status: .failed,
                           error: "it broke", exitKind: kind, exitCode: code, startedAt: 1, endedAt: 3, wallSeconds: 2,
                           cpuSeconds: 1, pid: 43, host: "node8", engine: nil)
    }

    @Test("a done record with its sealed file marks the segment done; a failed one is a failed trace; each is ingested once")
    func ingestOnce() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: db)
        let (id, _) = try task(store)
        let done = try sealed(task: id, segment: 0, packets: 50)
        try done.write(workDir: work)
        let bad = failed(task: id, segment: 1, kind: "input", code: 3)
        try bad.write(workDir: work)
        #expect(bad.deterministicFailure && !failed(task: id, segment: 1, kind: "processing", code: 1).deterministicFailure)
        // A record of another task in the same folder is not this task's.
        try sealed(task: "someone-else", segment: 1, packets: 50).write(workDir: work + "/..")

        let first = try store.ingestTraceRecords(task: id, workDir: work, videoSegments: .max)
        #expect(Set(first.map(\.trace)) == [done.trace, bad.trace])
        #expect(try store.ingestTraceRecords(task: id, workDir: work, videoSegments: .max).isEmpty)

        let segments = try store.segments(task: id)
        #expect(segments[0].status == .done && segments[0].framesDone == 50)
        #expect(segments[0].fileSize == done.bytes && segments[0].fileChecksum == done.checksum)
        #expect(segments[0].fileIsIntact)
        #expect(segments[1].status == .failed && segments[1].error == "it broke")
        #expect(segments.map(\.attempts) == [1, 1])
        let traces = try store.traces(task: id)
        #expect(traces.count == 2)
        let t0 = try #require(traces.first { $0.id == done.trace })
        #expect(t0.status == .done && t0.host == "node7" && t0.pid == 42 && t0.engine == "slurm" && t0.engineJob == "900"
                && t0.engineIndex == 0 && t0.exitCode == 0 && t0.framesOut == 50)
        #expect(traces.first { $0.id == bad.trace }?.exitCode == 3)
    }

    @Test("a done record whose file was damaged since is ingested as a failed attempt; the segment is not done")
    func damagedFile() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: db)
        let (id, _) = try task(store)
        let r = try sealed(task: id, segment: 1, packets: 50)
        try r.write(workDir: work)
        let h = try #require(FileHandle(forUpdatingAtPath: work + "/" + r.file!))
        try h.seek(toOffset: 200)
        h.write(Data([0xff, 0x00, 0xff]))
        try h.close()
        #expect(!r.sealedFileMatches(workDir: work))
        let got = try store.ingestTraceRecords(task: id, workDir: work, videoSegments: .max)
        #expect(got.count == 1 && got[0].status == .failed && got[0].exitKind == "processing")
        #expect(try store.segments(task: id)[1].status == .failed)
        #expect(try store.traces(task: id).first?.status == .failed)
    }

    @Test("only the task's holder ingests: after a takeover the old holder's ingest is refused and writes nothing")
    func ingestNeedsTheLease() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db), b = try JobStore(path: db)
        let (id, _) = try task(a)
        try a.write { db in try db.execute(sql: "UPDATE task SET lease_heartbeat = 0 WHERE id = ?", arguments: [id]) }
        let request = TranscodeRequest(input: "/in.mp4", output: dir + "/out.mp4", settings: TranscodeSettings())
        _ = try b.claim(.init(input: "/in.mp4", output: dir + "/out.mp4", fingerprint: "1:2:3", request: request,
                              taskId: nil, fresh: false))
        try sealed(task: id, segment: 0, packets: 50).write(workDir: work)
        #expect(throws: VSliceError.self) { try a.ingestTraceRecords(task: id, workDir: work, videoSegments: .max) }
        #expect(try b.traces(task: id).isEmpty)
        #expect(try b.ingestTraceRecords(task: id, workDir: work, videoSegments: .max).count == 1)
    }

    @Test("the worker's index: --index, else SLURM_ARRAY_TASK_ID, else JOB_COMPLETION_INDEX; anything else is a usage error")
    func workerIndex() throws {
        #expect(try SegmentWorker.index(given: 4, environment: ["SLURM_ARRAY_TASK_ID": "7"]) == 4)
        #expect(try SegmentWorker.index(given: nil, environment: ["SLURM_ARRAY_TASK_ID": "7", "JOB_COMPLETION_INDEX": "2"]) == 7)
        #expect(try SegmentWorker.index(given: nil, environment: ["JOB_COMPLETION_INDEX": "2"]) == 2)
        for env in [[:], ["SLURM_ARRAY_TASK_ID": "x"], ["JOB_COMPLETION_INDEX": ""]] as [[String: String]] {
            #expect(throws: VSliceError.self) { try SegmentWorker.index(given: nil, environment: env) }
        }
        #expect(SegmentTraceRecord.Engine.from(environment: ["SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "10", "SLURM_ARRAY_TASK_ID": "2"])
                == .init(kind: "slurm", job: "10", arrayIndex: 2, elementJob: "12"))
        #expect(SegmentTraceRecord.Engine.from(environment: [:]) == nil)
    }

    @Test("Slurm array lists: runs of indices become ranges")
    func arraySpec() {
        #expect(SlurmEngine.arraySpec([0, 1, 2, 3, 4, 5]) == "0-5")
        #expect(SlurmEngine.arraySpec([9, 1, 3, 7, 8, 3]) == "1,3,7-9")
        #expect(SlurmEngine.arraySpec([4]) == "4")
    }
}
