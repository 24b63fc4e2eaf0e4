import Foundation
import Testing

/// resume by ID and --all, cancel, gc, Ctrl-C once and twice, and the stall watchdog.
@Suite("resume, cancel, gc, signals, stalls", .serialized)
struct JobCommandTests {
    struct Env {
        var dir: URL
        var home: String { dir.appendingPathComponent("home").path }
        var db: String { home + "/vslice.db" }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        var env: [String: String] { ["VSLICE_HOME": home] }

        func run(_ args: [String], fault: String? = nil) throws -> Run {
            var e = env
            if let fault { e["VSLICE_FAULT"] = fault }
            return try vslice(args, environment: e)
        }

        func sql(_ query: String) throws -> String {
            // Read-only, so that polling before vslice made the database does not create an empty one.
            try Proc.run("sqlite3", ["-readonly", db, query]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    static let quick = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "veryfast", "-q", "--jobs", "1"]
    /// Slow enough per segment (about a second here) that a signal lands while segments run.
    static let slow = ["--min-split-seconds", "0", "--segment-seconds", "2", "--preset", "slower", "-q", "--jobs", "1"]

    func env(_ tag: String) throws -> Env { Env(dir: try Paths.scratch(tag)) }

    /// A 640x360 20 s clip, made once per test that needs it.
    func slowClip(_ e: Env) throws -> String {
        let p = e.path("slow.mp4")
        try makeClip(p, size: "640x360", seconds: 20)
        return p
    }

    @Test("resume TASK_ID uses the stored options; resume --all finishes every unfinished task")
    func resumeCommands() throws {
        let e = try env("resume")
        defer { try? FileManager.default.removeItem(at: e.dir) }
        let src = Paths.fixture("h264_aac.mp4")
        // Started with a non-default CRF and container; the resume is given neither.
        // --keep-temp is stored with the task: the resume keeps the work folder, whose files witness the reuse.
        let a = try e.run(["transcode", src, "-o", e.path("a.mkv"), "--crf", "30", "--keep-temp"] + Self.quick, fault: "segment-done:2")
        #expect(a.killed)
        let work = try #require(try Witness.workFolder(of: e.path("a.mkv")))
        let sealed = try Witness.sealed(in: work)
        #expect(sealed.count == 2, "\(sealed.keys.sorted())")
        let b = try e.run(["transcode", Paths.fixture("vfr.mp4"), "-o", e.path("b.mp4")] + Self.quick, fault: "segment-done:1")
        #expect(b.killed)
        let ids = try e.sql("SELECT id FROM task ORDER BY created_at").split(separator: "\n").map(String.init)
        try #require(ids.count == 2)

        let one = try e.run(["resume", String(ids[0].prefix(8)), "-q"])
        #expect(one.status == 0, "\(one.stderr)")
        try expectOracle(source: src, output: e.path("a.mkv"))
        #expect(try e.sql("SELECT settings_signature FROM task WHERE id='\(ids[0])'").contains("crf=30.0"))
        // Two segments were done before the kill: each has exactly one successful encode, its file the one merged.
        #expect(try e.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '\(ids[0])%' AND status='done'") == "6")
        #expect(Witness.changed(sealed, try Witness.sealed(in: work)).isEmpty)

        let all = try e.run(["resume", "--all", "--json"])
        #expect(all.status == 0, "\(all.stderr)")
        let done = try lastEvent(all.stdout, "task_done")
        #expect(done["task"] as? String == ids[1])
        try expectOracle(source: Paths.fixture("vfr.mp4"), output: e.path("b.mp4"))
        #expect(try e.sql("SELECT group_concat(status) FROM task") == "done,done")

        // Nothing left: a done task is not resumed again.
        let again = try e.run(["resume", String(ids[0].prefix(8))])
        #expect(again.status == 2)
        #expect(again.stderr.contains("done"))
        #expect(try e.run(["resume", "--all", "-q"]).status == 0)
        #expect(try e.sql("PRAGMA integrity_check") == "ok")
    }

    @Test("Ctrl-C once: running segments finish, exit 130, resumable; twice: stops at once, resumable")
    func interrupt() throws {
        let e = try env("sigint")
        defer { try? FileManager.default.removeItem(at: e.dir) }
        let src = try slowClip(e)
        let out = e.path("out.mp4")

        for signals in [1, 2] {
            let bg = try Background(["transcode", src, "-o", out] + Self.slow, environment: e.env)
            let started = bg.waitUntil { (try? e.sql("SELECT count(*) FROM segment WHERE status='running'")) == "1" }
            try #require(started, "no segment started")
            if signals == 1 { bg.signal(SIGINT) } else { #expect(bg.interruptTwice(), "the first Ctrl-C was not heard") }
            let r = bg.finish()
            #expect(r.status == 130, "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            #expect(try e.sql("SELECT status FROM task ORDER BY created_at DESC LIMIT 1") == "interrupted")
            // No attempt is left running, and (once) the running segment was allowed to finish.
            #expect(try e.sql("SELECT count(*) FROM segment WHERE status='running'") == "0")
            if signals == 1 {
                #expect(try e.sql("SELECT count(*) FROM segment WHERE status='done'") != "0")
                #expect(try e.sql("SELECT count(*) FROM trace WHERE status='failed'") == "0")
            }
            let resumed = try e.run(["transcode", src, "-o", out] + Self.slow)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            try expectOracle(source: src, output: out)
            try FileManager.default.removeItem(atPath: out)
        }
        #expect(try e.sql("PRAGMA integrity_check") == "ok")
    }

    @Test("cancel stops the running process (exit 130); the task is not resumed; gc cleans up")
    func cancelAndGC() throws {
        let e = try env("cancel")
        defer { try? FileManager.default.removeItem(at: e.dir) }
        let src = try slowClip(e)
        let out = e.path("out.mp4")
        let bg = try Background(["transcode", src, "-o", out] + Self.slow, environment: e.env)
        let oneDone = bg.waitUntil { Int((try? e.sql("SELECT count(*) FROM segment WHERE status='done'")) ?? "") ?? 0 > 0 }
        try #require(oneDone)
        let id = try e.sql("SELECT id FROM task")
        let cancel = try e.run(["cancel", String(id.prefix(8)), "--json"])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(try jsonObject(cancel.stdout)["running"] as? Bool == true)
        let r = bg.finish()
        #expect(r.status == 130, "\(r.stderr)")
        // Stopped, not run to its end: segments were left undone.
        #expect(Int(try e.sql("SELECT count(*) FROM segment WHERE status='done'")) ?? 10 < 10)
        #expect(r.stderr.contains("cancelled"))
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try e.sql("SELECT status FROM task") == "cancelled")
        #expect(!FileManager.default.fileExists(atPath: try e.sql("SELECT work_dir FROM task")))

        // The same command starts a new task rather than resuming the cancelled one.
        let again = try e.run(["transcode", Paths.fixture("h264_aac.mp4"), "-o", e.path("k.mp4"), "--keep-temp"] + Self.quick)
        #expect(again.status == 0)
        let kept = try e.sql("SELECT work_dir FROM task WHERE output LIKE '%k.mp4'")
        #expect(FileManager.default.fileExists(atPath: kept))

        // A task that can never resume: its input is gone.
        let gone = e.path("gone.mp4")
        try FileManager.default.copyItem(atPath: Paths.fixture("h264_aac.mp4"), toPath: gone)
        _ = try e.run(["transcode", gone, "-o", e.path("g.mp4")] + Self.quick, fault: "segment-done:2")
        let goneWork = try e.sql("SELECT work_dir FROM task WHERE input LIKE '%gone.mp4'")
        #expect(FileManager.default.fileExists(atPath: goneWork))
        try FileManager.default.removeItem(atPath: gone)

        let dry = try e.run(["gc", "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(FileManager.default.fileExists(atPath: kept))
        let gc = try e.run(["gc", "--json"])
        #expect(gc.status == 0, "\(gc.stderr)")
        let items = try #require(try JSONSerialization.jsonObject(with: Data(gc.stdout.utf8)) as? [[String: Any]])
        // The cancelled task's process removed its own work folder; the done one (--keep-temp) and the one
        // killed on an input that is now gone remain, and go.
        #expect(items.compactMap { $0["status"] as? String }.sorted() == ["done", "running"], "\(gc.stdout)")
        #expect(!FileManager.default.fileExists(atPath: kept))
        #expect(!FileManager.default.fileExists(atPath: goneWork))
        #expect(FileManager.default.fileExists(atPath: e.path("k.mp4")), "gc touched an output")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: e.dir.path).filter { $0.contains(".vslice-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        #expect(try e.sql("PRAGMA integrity_check") == "ok")
    }

    @Test("a segment that stops making progress is abandoned after --stall-timeout and retried")
    func stall() throws {
        let e = try env("stall")
        defer { try? FileManager.default.removeItem(at: e.dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let out = e.path("out.mp4")
        // The stalled attempt never ends on its own: the run ends only if the watchdog abandons it.
        let r = try e.run(["transcode", src, "-o", out, "--stall-timeout", "1"] + Self.quick, fault: "segment-stall:2")
        #expect(r.status == 0, "\(r.stderr)")
        try expectOracle(source: src, output: out)
        #expect(try e.sql("SELECT count(*) FROM trace WHERE status='failed' AND error LIKE '%stalled%'") == "1")

        // With a single attempt allowed, the stall fails the task with the reason recorded.
        let out2 = e.path("out2.mp4")
        let failed = try e.run(["transcode", src, "-o", out2, "--stall-timeout", "1", "--max-attempts", "1"] + Self.quick,
                               fault: "segment-stall:1")
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("stalled"))
        #expect(!FileManager.default.fileExists(atPath: out2))
        #expect(try e.sql("SELECT status FROM task WHERE output LIKE '%out2.mp4'") == "failed")
    }

    @Test("progress on a non-TTY stderr: plain lines, counting from the done frames after a resume, ending at 100 %")
    func progressAfterResume() throws {
        let e = try env("progress")
        defer { try? FileManager.default.removeItem(at: e.dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let out = e.path("out.mp4")
        let args = ["transcode", src, "-o", out] + Self.quick.filter { $0 != "-q" }
        _ = try e.run(args, fault: "segment-done:3")
        let r = try e.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let counts = lines.compactMap { line -> Int? in
            guard let m = line.firstMatch(of: /(\d+)\/180 frames/) else { return nil }
            return Int(m.1)
        }
        #expect(counts.first == 90, "\(lines)")
        #expect(counts.last == 180, "\(lines)")
        #expect(counts == counts.sorted(), "progress went backwards: \(counts)")
        #expect(lines.contains { $0.contains("100.0%") })
        #expect(lines.last?.contains("wrote") == true || r.stdout.contains("180 frames"), "\(lines)")
        #expect(!r.stderr.contains("\u{1B}["), "terminal escapes on a non-TTY")
    }
}
