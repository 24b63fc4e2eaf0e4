import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The ledger's task lifecycle in one process: two `JobStore` instances stand for two processes (each holds its
/// own lease tokens), so takeovers and lost leases are tested without starting anything.
@Suite("ledger: claim, lease, takeover, prefixes")
struct LedgerTests {
    let dir: String
    var db: String { dir + "/ledger.db" }

    init() throws {
        dir = TestScratch.url.appendingPathComponent("vslice-ledger-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func request(crf: Double? = nil) -> ClaimRequest {
        var settings = TranscodeSettings()
        settings.crf = crf
        return .init(input: "/in.mp4", output: dir + "/out.mp4", fingerprint: "1:2:3",
                     request: TranscodeRequest(input: "/in.mp4", output: dir + "/out.mp4", settings: settings),
                     taskId: nil, fresh: false)
    }

    @Test("resume --all passes over failed tasks that would fail the same way again; a missing input, a retryable failure and an interrupted task are taken up")
    func resumeAllPassesOverRepeats() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: db)
        var deterministic = VSliceError(.processing, "encode segment 3", reason: "the filter put out 9 frames, 10 planned")
        deterministic.deterministic = true
        let endings: [(String, TaskStatus, VSliceError?)] = [
            ("usage", .failed, VSliceError(.usage, "check options", reason: "--crf takes 0 to 51")),
            ("corrupt", .failed, VSliceError(.input, "decode", path: "/in.mp4", reason: "invalid data found when processing input")),
            ("deterministic", .failed, deterministic),
            ("missing", .failed, VSliceError(.input, "open input", path: "/in.mp4", reason: "no such file")),
            ("retryable", .failed, VSliceError(.processing, "encode segment 1", reason: "the processor exited with status 1")),
            ("interrupted", .interrupted, VSliceError(.interrupted, "transcode", reason: "interrupted")),
        ]
        var ids: [String: TaskID] = [:]
        for (name, status, failure) in endings {
            var r = request()
            r.output = dir + "/\(name).mp4"
            r.request.output = r.output
            let id = try store.claim(r).task.id
            try store.finishTask(id, status: status, failure: failure)
            ids[name] = id
        }
        let (resume, passedOver) = try store.tasksToResumeAll()
        #expect(Set(passedOver.map(\.id)) == Set(["usage", "corrupt", "deterministic"].map { ids[$0]! }))
        #expect(Set(resume.map(\.id)) == Set(["missing", "retryable", "interrupted"].map { ids[$0]! }))
        #expect(passedOver.allSatisfy { $0.failureKind != nil && $0.error != nil })
        // `vslice resume ID` still takes one up.
        #expect(try store.resumableTasks().count == endings.count)
    }

    @Test("a second claim while the first holder is live is refused; the same claim after it finished resumes nothing")
    func claimIsExclusive() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db), b = try JobStore(path: db)
        let first = try a.claim(request())
        #expect(!first.resumed)
        #expect(throws: VSliceError.self) { try b.claim(request()) }
        #expect(try a.tasks().count == 1)
        try a.finishTask(first.task.id, status: .done)
        let next = try b.claim(request())
        #expect(!next.resumed && next.task.id != first.task.id)
    }

    @Test("a stale holder is taken over; its writes are then refused, and its running trace abandoned")
    func takeoverAndLostLease() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db), b = try JobStore(path: db)
        let task = try a.claim(request()).task
        let trace = try a.beginEvent(task.id, .probe)
        // a stops answering: its heartbeat is older than the stale limit.
        try a.write { db in try db.execute(sql: "UPDATE task SET lease_heartbeat = 0 WHERE id = ?", arguments: [task.id]) }
        let taken = try b.claim(request())
        #expect(taken.resumed && taken.task.id == task.id)
        #expect(try b.traces(task: task.id).first { $0.id == trace }?.status == .abandoned)
        #expect(a.heartbeat(task.id) == .lost)
        #expect(!a.holdsLease(task.id))
        do {
            try a.endStep(trace: trace, task: task.id, node: .probe, figures: .init(wall: 0, cpu: 0), error: nil)
            Issue.record("a holder that lost its lease wrote")
        } catch {
            #expect(error.kind == .resumeRefused)
        }
        do {
            try a.finishTask(task.id, status: .failed, failure: VSliceError(.processing, "test", reason: "x"))
            Issue.record("a holder that lost its lease ended the task")
        } catch {
            #expect(error.kind == .resumeRefused)
        }
        #expect(try b.status(of: task.id) == .running)
        #expect(b.heartbeat(task.id) == .held)
        try b.finishTask(task.id, status: .done)
        #expect(try b.events(task: task.id).allSatisfy { $0.status == .done })
    }

    @Test("changed settings: replaced quietly without finished work, refused (saying how much) with it")
    func changedSettings() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db)
        let first = try a.claim(request()).task
        try a.finishTask(first.id, status: .failed, failure: VSliceError(.processing, "test", reason: "encoder option"))
        let replaced = try a.claim(request(crf: 30))
        #expect(!replaced.resumed && replaced.discarded.map(\.id) == [first.id])
        #expect(try a.status(of: first.id) == .cancelled)

        let plan = Plan(index: VideoIndex(streamIndex: 0, timeBase: Ratio(num: 1, den: 25), pts: Array(0..<50),
                                          keyframeIndices: [0, 25], openGop: false, endTime: 2,
                                          dtsStrictlyIncreasing: true, lastFrameDuration: 1),
                        settings: { var s = TranscodeSettings(); s.minSplitSeconds = 0; s.segmentSeconds = 1; return s }())
        let task = replaced.task
        try a.ensureSegments(task: task.id, plan: plan, files: ["/a", "/b"])
        let trace = try a.beginEvent(task.id, .encode, segment: SegmentID(task.id.rawValue + "_encode_0"))
        try a.endStep(trace: trace, task: task.id, node: .encode, segment: .init(id: SegmentID(task.id.rawValue + "_encode_0"), frames: 25, size: 1, checksum: 1),
                      figures: .init(wall: 0, cpu: 0), error: nil)
        try a.finishTask(task.id, status: .interrupted)
        do {
            _ = try a.claim(request(crf: 20))
            Issue.record("work was discarded without --fresh")
        } catch {
            #expect(error.kind == .resumeRefused)
            #expect(error.reason.contains("1 of 2 segments"))
        }
        var fresh = request(crf: 20)
        fresh.fresh = true
        #expect(try a.claim(fresh).discarded.map(\.id) == [task.id])
    }

    @Test("an ID prefix names one task or is refused, listing the matches")
    func prefixes() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try JobStore(path: db)
        var ids: [TaskID] = []
        for i in 0..<17 {
            var r = request()
            r.output = dir + "/out\(i).mp4"
            let t = try a.claim(r).task
            ids.append(t.id)
        }
        let first = try #require(Dictionary(grouping: ids, by: { $0.rawValue.prefix(1) }).first { $0.value.count > 1 })
        #expect(throws: VSliceError.self) { try a.task(TaskID(String(first.key))) }
        #expect(try a.task(ids[3])?.id == ids[3])
        #expect(try a.task(TaskID(String(ids[3].rawValue.prefix(12))))?.id == ids[3])
        #expect(try a.task("zz") == nil)
        #expect(try a.task("%") == nil)
    }

    @Test("a damaged job store is one error line saying what to do, without waiting")
    func damagedStore() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: db))
        let t0 = Date()
        do {
            _ = try JobStore(path: db)
            Issue.record("opened a damaged store")
        } catch {
            #expect(!error.description.contains("\n"))
            #expect(error.reason.contains("damaged"))
        }
        #expect(Date().timeIntervalSince(t0) < 2)
    }

    @Test("a request stored by an earlier version still decodes (new settings take their defaults); status JSON shows it as an object")
    func storedRequestAcrossVersions() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // What the previous release stored: no audio track selection, no strict streams, numbers for the plan.
        let old = #"{"settings":{"videoCodec":"libx264","crf":30,"codecOptions":{},"audioCodec":"aac","audioBitrate":128000,"split":"gop","segmentSeconds":10,"segmentFrames":0,"minSplitSeconds":60,"overlapBefore":0,"overlapAfter":0,"jobs":2},"force":false,"keepTemp":true}"#
        let a = try JobStore(path: db)
        let t = try a.claim(request()).task
        try a.write { db in try db.execute(sql: "UPDATE task SET request_json = ? WHERE id = ?", arguments: [old, t.id]) }
        let stored = try #require(try a.task(t.id)?.storedRequest)
        #expect(stored.settings.crf == 30 && stored.settings.segmentSeconds == 10 && stored.settings.minSplitSeconds == 60)
        #expect(stored.settings.audioTracks == "all" && !stored.settings.strictStreams && stored.keepTemp)
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        let json = try #require(try JSONSerialization.jsonObject(with: enc.encode(try a.task(t.id)!)) as? [String: Any])
        let req = try #require(json["request"] as? [String: Any])
        #expect((req["settings"] as? [String: Any])?["crf"] as? Double == 30)
        #expect(json["lease_token"] == nil && json["request_json"] == nil)
    }
}
