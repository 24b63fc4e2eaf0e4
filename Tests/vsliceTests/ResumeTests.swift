import Foundation
import Testing

/// Crash-and-resume: the process is killed with SIGKILL at chosen points (VSLICE_FAULT), then the same command
/// is run again. The result must pass the oracle, and no segment finished before the kill may be encoded again.
@Suite("job store and crash-safe resume", .serialized)
struct ResumeTests {
    static let source = Paths.fixture("h264_aac.mp4")
    static let args = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "veryfast", "-q", "--jobs", "1"]

    struct Job {
        var dir: URL
        var home: String { dir.appendingPathComponent("home").path }
        var out: String { dir.appendingPathComponent("out.mp4").path }
        var db: String { home + "/vslice.db" }

        func run(_ extra: [String] = [], fault: String? = nil) throws -> Run {
            var env = ["VSLICE_HOME": home]
            if let fault { env["VSLICE_FAULT"] = fault }
            return try vslice(["transcode", ResumeTests.source, "-o", out] + ResumeTests.args + extra, environment: env)
        }

        func sql(_ query: String) throws -> String {
            let r = try Proc.run("sqlite3", [db, query])
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func job(_ tag: String) throws -> Job { Job(dir: try Paths.scratch(tag)) }

    @Test("killed at each point, resumed: a correct output, finished segments not encoded again",
          arguments: ["audio", "segment-encode:3", "segment-commit:2", "segment-done:3", "concat", "publish", "published"])
    func killAndResume(_ fault: String) throws {
        let j = try job("kill")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let killed = try j.run(fault: fault)
        #expect(killed.status == SIGKILL, "\(fault) did not crash: \(killed.status) \(killed.stderr)")
        // Killed after the rename but before the commit, the output is there; resuming must recognise it as its own.
        if fault != "published" { #expect(!FileManager.default.fileExists(atPath: j.out), "a killed run published") }
        let doneBefore = try j.sql("SELECT id FROM segment WHERE status='done' ORDER BY ord").split(separator: "\n")

        let resumed = try j.run()
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try oracleProblems(source: Self.source, output: j.out).isEmpty)
        // One successful encode trace per segment that was done before the kill.
        for seg in doneBefore {
            #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id='\(seg)' AND status='done'") == "1", "\(seg)")
        }
        // Killed after the merge: the merged part file is kept and not merged again.
        if fault.hasPrefix("publish") {
            #expect(try j.sql("SELECT count(*) FROM trace WHERE event_id LIKE '%_mux' AND status='done'") == "1")
        }
        #expect(try j.sql("SELECT count(*) FROM task") == "1")
        #expect(try j.sql("SELECT status FROM task") == "done")
        // Every event of a finished task ended done (the encode event used to stay `running`).
        #expect(try j.sql("SELECT node || ':' || status FROM event WHERE status != 'done'") == "")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE status = 'running'") == "0")
        #expect(try j.sql("PRAGMA integrity_check") == "ok")
    }

    @Test("a done segment's file deleted or truncated before resume: only that segment is redone")
    func damagedSegment() throws {
        let j = try job("dmg")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        _ = try j.run(fault: "segment-done:4")
        let files = try j.sql("SELECT file FROM segment WHERE status='done' ORDER BY ord").split(separator: "\n").map(String.init)
        try #require(files.count == 4)
        try FileManager.default.removeItem(atPath: files[1])
        let handle = try #require(FileHandle(forWritingAtPath: files[2]))
        try handle.truncate(atOffset: 100)
        try handle.close()
        #expect(try j.run().status == 0)
        #expect(try oracleProblems(source: Self.source, output: j.out).isEmpty)
        let counts = try j.sql("SELECT ord || ':' || (SELECT count(*) FROM trace t WHERE t.segment_id = s.id AND t.status='done') FROM segment s ORDER BY ord")
        #expect(counts.split(separator: "\n") == ["0:1", "1:2", "2:2", "3:1", "4:1", "5:1"])
        #expect(try j.sql("PRAGMA integrity_check") == "ok")
    }

    @Test("resume with other settings or a changed input is refused (exit 5); --fresh starts over")
    func refusedResume() throws {
        let j = try job("ref")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        _ = try j.run(fault: "segment-done:2")
        let changed = try j.run(["--crf", "30"])
        #expect(changed.status == 5, "\(changed.stderr)")
        #expect(changed.stderr.contains("settings differ") && changed.stderr.contains("--crf none → 30"), "\(changed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: j.out))
        let fresh = try j.run(["--crf", "30", "--fresh"])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(try j.sql("SELECT status FROM task ORDER BY created_at") == "cancelled\ndone")
        #expect(try j.sql("PRAGMA integrity_check") == "ok")

        // A modified input.
        let copy = j.dir.appendingPathComponent("in.mp4").path
        try FileManager.default.copyItem(atPath: Self.source, toPath: copy)
        let out2 = j.dir.appendingPathComponent("out2.mp4").path
        let env = ["VSLICE_HOME": j.home, "VSLICE_FAULT": "segment-done:1"]
        _ = try vslice(["transcode", copy, "-o", out2] + Self.args, environment: env)
        let h = try #require(FileHandle(forWritingAtPath: copy))
        try h.seekToEnd()
        h.write(Data(repeating: 0, count: 16))
        try h.close()
        let r = try vslice(["transcode", copy, "-o", out2] + Self.args, environment: ["VSLICE_HOME": j.home])
        #expect(r.status == 5, "\(r.stderr)")
        #expect(r.stderr.contains("input changed"))
    }

    @Test("two processes on the same task: one runs, the other refuses; no segment encoded twice")
    func twoProcesses() throws {
        let j = try job("two")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // A first run leaves a task; then two resumes start together.
        _ = try j.run(fault: "segment-done:1")
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var runs: [Run] = []
        }
        let box = Box()
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            Thread {
                if let r = try? j.run() { box.lock.lock(); box.runs.append(r); box.lock.unlock() }
                group.leave()
            }.start()
        }
        group.wait()
        let results = box.runs
        let codes = results.map(\.status).sorted()
        #expect(codes == [0, 5], "\(results.map(\.stderr))")
        #expect(try oracleProblems(source: Self.source, output: j.out).isEmpty)
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id IS NOT NULL AND status='done'") == "6")
        #expect(try j.sql("PRAGMA integrity_check") == "ok")
    }
}
