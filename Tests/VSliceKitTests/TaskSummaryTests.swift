import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// What `vslice status` prints is computed in the library: done frames and segments, the percentage, the age.
@Suite("task summary")
struct TaskSummaryTests {
    @Test("ages in their largest whole unit")
    func ages() {
        #expect(TaskSummary.age(-3) == "0s ago")
        #expect(TaskSummary.age(59.9) == "59s ago")
        #expect(TaskSummary.age(60) == "1m ago")
        #expect(TaskSummary.age(3599) == "59m ago")
        #expect(TaskSummary.age(7200) == "2h ago")
        #expect(TaskSummary.age(86400 * 3 + 5) == "3d ago")
    }

    @Test("done segments' frames against the task's, to a tenth of a percent; newest first, limited")
    func progress() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-summary-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: dir + "/ledger.db")
        func claim(_ name: String) throws -> TaskRecord {
            let request = TranscodeRequest(input: "/\(name).mp4", output: dir + "/\(name).mp4", settings: TranscodeSettings())
            return try store.claim(.init(input: request.input, output: request.output, fingerprint: "1:2:3", request: request,
                                         taskId: nil, fresh: false)).task
        }
        let older = try claim("a")
        let t = try claim("b")
        // 3 segments of 1000 frames; the first two done with 1000 and 995 frames (a filter may change the count).
        let n = 3000
        var settings = TranscodeSettings()
        settings.minSplitSeconds = 0
        settings.segmentSeconds = 40
        let index = VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 25), pts: (0..<n).map { Int64($0) },
                               keyframeIndices: Array(stride(from: 0, to: n, by: 50)), openGop: false,
                               endTime: Double(n) / 25, dtsStrictlyIncreasing: true, lastFrameDuration: 1)
        let plan = Plan(index: index, settings: settings)
        #expect(plan.segments.count == 3)
        try store.ensureSegments(task: t.id, plan: plan, files: ["0", "1", "2"])
        try store.write { db in
            try db.execute(sql: "UPDATE task SET frames_total = 3000, created_at = created_at + 10 WHERE id = ?", arguments: [t.id])
            try db.execute(sql: "UPDATE segment SET status = 'done', frames_done = 1000 WHERE ord = 0")
            try db.execute(sql: "UPDATE segment SET status = 'done', frames_done = 995 WHERE ord = 1")
        }
        let now = Date().timeIntervalSince1970 + 125
        // Read as `vslice status` does, from another process's store: the tasks are held by a live one.
        let status = try JobStore(path: dir + "/ledger.db")
        let (tasks, total) = try TaskSummary.newest(store: status, limit: 1, now: now)
        #expect(total == 2 && tasks.count == 1 && tasks[0].task.id == t.id)
        let s = tasks[0]
        #expect(s.framesDone == 1995 && s.segmentsDone == 2 && s.segments == 3)
        #expect(s.percent == 66.5 && s.percentText == "66.5%")
        #expect(s.status == "running" && s.ageText == "2m ago")
        let empty = try TaskSummary(older, store: status, now: now)
        #expect(empty.percent == nil && empty.percentText == "-" && empty.segments == 0)
        #expect(try TaskSummary.newest(store: status, limit: 0).tasks.map(\.task.id) == [t.id, older.id])
    }

    @Test("a running task's progress inside its segments: a local attempt's frames from its running trace (the heartbeat's), a worker's from its progress file until its trace record exists")
    func inSegment() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-summary-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: dir + "/ledger.db")
        let request = TranscodeRequest(input: "/a.mp4", output: dir + "/a.mp4", settings: TranscodeSettings())
        let t = try store.claim(.init(input: request.input, output: request.output, fingerprint: "1:2:3", request: request,
                                      taskId: nil, fresh: false)).task
        let n = 3000
        var settings = TranscodeSettings()
        settings.minSplitSeconds = 0
        settings.segmentSeconds = 40
        let index = VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 25), pts: (0..<n).map { Int64($0) },
                               keyframeIndices: Array(stride(from: 0, to: n, by: 50)), openGop: false,
                               endTime: Double(n) / 25, dtsStrictlyIncreasing: true, lastFrameDuration: 1)
        try store.ensureSegments(task: t.id, plan: Plan(index: index, settings: settings), files: ["0", "1", "2"])
        try store.write { db in try db.execute(sql: "UPDATE task SET frames_total = 3000 WHERE id = ?", arguments: [t.id]) }
        // Segment 0 runs here: its heartbeat recorded 420 frames. Segment 1 runs on a worker: its progress file says 250.
        let trace = try store.beginEvent(t.id, .encode, segment: t.id.segment(0))
        store.recordRunningFrames(t.id, [0: 420])
        try FileManager.default.createDirectory(atPath: t.workDir, withIntermediateDirectories: true)
        let worker = TraceID(UUID().uuidString.lowercased())
        let progress = (t.workDir as NSString).appendingPathComponent(WorkFolder.progressFileName(1))
        try "\(worker) 250\n".write(toFile: progress, atomically: true, encoding: .utf8)
        let status = try JobStore(path: dir + "/ledger.db")
        let s = try TaskSummary(try #require(try status.task(t.id)), store: status)
        #expect(s.runningFrames == [0: 420, 1: 250] && s.framesDone == 670 && s.percent == 22.3, "\(s.runningFrames)")
        // The worker's attempt ended (its trace record written): its frames no longer count as running.
        try "{}".write(toFile: (t.workDir as NSString).appendingPathComponent(WorkFolder.traceRecordName(segment: 1, trace: worker)),
                       atomically: true, encoding: .utf8)
        // The local attempt ended: its trace's frames_out is its own again.
        try store.endStep(trace: trace, task: t.id, node: .encode, segment: .init(id: t.id.segment(0), frames: 1000, size: 1, checksum: 0),
                          figures: .init(wall: 1, cpu: 1, framesIn: 1000, framesOut: 1000), error: nil, detail: nil, seal: nil)
        let after = try TaskSummary(t, store: status)
        #expect(after.runningFrames.isEmpty && after.framesDone == 1000 && after.segmentsDone == 1, "\(after.runningFrames)")
    }
}
