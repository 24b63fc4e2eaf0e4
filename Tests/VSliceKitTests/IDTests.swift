import Foundation
import TestScratch
import GRDB
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The ledger's typed IDs: their formulas, and the plain strings they are in SQLite and in JSON (so neither the
/// job store nor `task.json`, the trace records or `--json` changed with the types).
@Suite("ledger IDs: formulas, stored and written as plain strings")
struct IDTests {
    @Test("a task's event, segment and audio piece IDs follow the design notes' formulas")
    func formulas() {
        let task = TaskID("0f3a9c1e-aaaa-bbbb-cccc-000000000000")
        #expect(task.event(.encode).rawValue == "0f3a9c1e-aaaa-bbbb-cccc-000000000000_encode")
        #expect(task.segment(7).rawValue == "0f3a9c1e-aaaa-bbbb-cccc-000000000000_encode_7")
        #expect(task.audioPiece(0).rawValue == "0f3a9c1e-aaaa-bbbb-cccc-000000000000_audio_0")
        #expect(task.short == "0f3a9c1e" && "\(task)" == task.rawValue)
        #expect(task.event(.audio).isNode(.audio) && !task.event(.encode).isNode(.audio))
        let made = TaskID.new(), trace = TraceID.new()
        #expect(made.rawValue == made.rawValue.lowercased() && UUID(uuidString: made.rawValue) != nil && made != TaskID.new())
        #expect(UUID(uuidString: trace.rawValue) != nil)
    }

    @Test("in JSON an ID is its plain string, both ways")
    func json() throws {
        let record = SegmentTraceRecord(trace: "tr-1", task: "task-1", segment: 2, status: .done, error: nil, exitKind: "ok",
                                        exitCode: 0, startedAt: 1, endedAt: 2, wallSeconds: 1, cpuSeconds: 1, pid: 1, host: "h",
                                        engine: nil)
        let object = try #require(try JSONSerialization.jsonObject(with: SegmentTraceRecord.encoder.encode(record)) as? [String: Any])
        #expect(object["trace"] as? String == "tr-1" && object["task"] as? String == "task-1")
        let back = try SegmentTraceRecord.decoder.decode(SegmentTraceRecord.self, from: SegmentTraceRecord.encoder.encode(record))
        #expect(back == record)
        #expect(String(decoding: try JSONEncoder().encode([TaskID("a"), TaskID("b")]), as: UTF8.self) == #"["a","b"]"#)
        #expect(try JSONDecoder().decode([SegmentID].self, from: Data(#"["x_encode_1"]"#.utf8)) == ["x_encode_1"])
    }

    @Test("in SQLite an ID is its plain text, read back as the same ID")
    func stored() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-ids-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try JobStore(path: dir + "/ledger.db")
        let request = TranscodeRequest(input: "/in.mp4", output: dir + "/out.mp4", settings: TranscodeSettings())
        let task = try store.claim(.init(input: "/in.mp4", output: dir + "/out.mp4", fingerprint: "1:2:3", request: request,
                                         taskId: nil, fresh: false)).task.id
        let trace = try store.beginEvent(task, .probe)
        let rows = try store.read { db in
            try Row.fetchAll(db, sql: "SELECT typeof(t.id) AS kind, t.id AS id, t.event_id AS event, e.task_id AS task FROM trace t JOIN event e ON e.id = t.event_id")
        }
        #expect(rows.count == 1)
        #expect(rows.first?["kind"] == "text" && rows.first?["id"] == trace.rawValue)
        #expect(rows.first?["event"] == task.rawValue + "_probe" && rows.first?["task"] == task.rawValue)
        #expect(try store.traces(task: task).map(\.id) == [trace])
        #expect(try store.events(task: task).map(\.id) == [task.event(.probe)])
    }
}
