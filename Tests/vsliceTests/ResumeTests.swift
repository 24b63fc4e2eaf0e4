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

    /// The sealed segments (of 6, `--jobs 1`) a kill at each point leaves: after 2 of them at the third
    /// segment's encode, 1 at the second's commit, 3 after the third is done, all from the merge on. At the audio
    /// track's 20th packet any number: the audio is encoded beside the segments.
    static let sealedAtKill: [String: ClosedRange<Int>] = [
        "audio": 0...6, "segment-encode:3": 2...2, "segment-commit:2": 1...1, "segment-done:3": 3...3,
        "concat": 6...6, "publish": 6...6, "published": 6...6,
    ]

    @Test("killed at each point, resumed: a correct output, finished segments not encoded again (their files untouched)",
          arguments: ["audio", "segment-encode:3", "segment-commit:2", "segment-done:3", "concat", "publish", "published"])
    func killAndResume(_ fault: String) throws {
        let j = try job("kill")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let killed = try j.run(fault: fault)
        #expect(killed.killed, "\(fault) did not crash: \(killed.status) \(killed.stderr)")
        // Killed after the rename but before the commit, the output is there; resuming must recognise it as its own.
        if fault != "published" { #expect(!FileManager.default.fileExists(atPath: j.out), "a killed run published") }
        let work = try #require(try Witness.workFolder(of: j.out), "no work folder after the kill")
        let sealed = try Witness.sealed(in: work)
        #expect(Self.sealedAtKill[fault]!.contains(sealed.count), "\(fault): \(sealed.keys.sorted())")
        let doneBefore = try j.sql("SELECT id FROM segment WHERE status='done' ORDER BY ord").split(separator: "\n")
        let doneFiles = try j.sql("SELECT file FROM segment WHERE status='done'").split(separator: "\n").map { ($0 as NSString).lastPathComponent }
        #expect(Set(doneFiles) == Set(sealed.keys), "the ledger's done segments are not the sealed files")
        let merged = try Self.mergedWitness(j, fault)

        let resumed = try j.run(["--keep-temp"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try expectOracle(source: Self.source, output: j.out)
        // The files sealed before the kill are the very files merged: not one written again.
        let after = try Witness.sealed(in: work)
        #expect(Witness.changed(sealed, after).isEmpty, "\(Witness.changed(sealed, after))")
        #expect(after.count == 6, "\(after.keys.sorted())")
        // Killed after the merge: the merged part file is the one published, not merged again.
        if let merged { #expect(try FileWitness(j.out) == merged, "the part file was merged again") }
        try Self.expectLedgerAfterResume(j, doneBefore: doneBefore, fault: fault)
    }

    /// The merged file a kill after the merge leaves: the part file (at `publish`), the output (at `published`).
    static func mergedWitness(_ j: Job, _ fault: String) throws -> FileWitness? {
        switch fault {
        case "published": return try FileWitness(j.out)
        case "publish":
            let part = try #require(try FileManager.default.contentsOfDirectory(atPath: j.dir.path).first { $0.hasSuffix(".part") })
            return try FileWitness(j.dir.appendingPathComponent(part).path)
        default: return nil
        }
    }

    /// The ledger agrees: one done encode per segment done before the kill, one merge after a kill past it,
    /// everything ended done.
    static func expectLedgerAfterResume(_ j: Job, doneBefore: [Substring], fault: String) throws {
        for seg in doneBefore {
            #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id='\(seg)' AND status='done'") == "1", "\(seg)")
        }
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
        let work = (files[0] as NSString).deletingLastPathComponent
        let intact = try Witness.sealed(in: work).filter { [0, 3].map { (files[$0] as NSString).lastPathComponent }.contains($0.key) }
        try #require(intact.count == 2)
        try FileManager.default.removeItem(atPath: files[1])
        let handle = try #require(FileHandle(forWritingAtPath: files[2]))
        try handle.truncate(atOffset: 100)
        try handle.close()
        #expect(try j.run(["--keep-temp"]).status == 0)
        try expectOracle(source: Self.source, output: j.out)
        // The intact files are the ones merged; the deleted and the truncated one were written again.
        let after = try Witness.sealed(in: work)
        #expect(Witness.changed(intact, after).isEmpty, "\(Witness.changed(intact, after))")
        let rewritten = try FileWitness(files[2]).size
        #expect(after.count == 6 && rewritten > 100, "\(after.keys.sorted()), \(rewritten) B")
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
        // A first run leaves a task; then two resumes start together. A logging processor witnesses which
        // segments were processed, outside the ledger.
        let log = try SegmentLog(j.dir)
        let process = ["--process", log.command]
        _ = try j.run(process, fault: "segment-done:1")
        let first = try log.runs()
        #expect(first == [0], "the first run's segments: \(first)")
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var runs: [Run] = []
        }
        let box = Box()
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            Thread {
                if let r = try? j.run(process) { box.lock.lock(); box.runs.append(r); box.lock.unlock() }
                group.leave()
            }.start()
        }
        group.wait()
        let results = box.runs
        let codes = results.map(\.status).sorted()
        #expect(codes == [0, 5], "\(results.map(\.stderr))")
        try expectOracle(source: Self.source, output: j.out)
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id IS NOT NULL AND status='done'") == "6")
        // Each segment processed once over the three runs.
        let runs = try log.runs()
        #expect(runs.sorted() == Array(0..<6), "\(runs)")
        #expect(try j.sql("PRAGMA integrity_check") == "ok")
    }
}
