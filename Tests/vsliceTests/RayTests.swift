import Foundation
import TestScratch
import Testing

/// `--executor ray` against a private two-node Ray on loopback (PrivateRay): the elements run in actors as
/// `vslice segment`, judged by ffprobe/ffmpeg and by the workers' trace records.
@Suite("ray executor", .serialized, .enabled(if: PrivateRay.installed, PrivateRay.skipReason))
struct RayTests {
    struct Job {
        var dir: URL
        var ray: PrivateRay
        var home: String { dir.appendingPathComponent("home").path }
        var out: String { dir.appendingPathComponent("out.mp4").path }
        var db: String { home + "/vslice.db" }
        var environment: [String: String] { ray.environment.merging(["VSLICE_HOME": home]) { $1 } }

        func sql(_ query: String) throws -> String {
            let r = try Proc.run("sqlite3", [db, query], timeout: 30)
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func transcode(_ extra: [String], input: String, output: String? = nil, environment: [String: String] = [:]) throws -> Run {
            try vslice(["transcode", input, "-o", output ?? out, "--executor", "ray", "-q", "--json"] + extra,
                       environment: self.environment.merging(environment) { $1 })
        }

        /// Done traces per element, "0:1,1:1,…" (video segments, then audio pieces as "aN:…").
        func donePerElement() throws -> String {
            try sql("""
                SELECT group_concat(c, ',') FROM (SELECT (CASE WHEN s.event_id LIKE '%\\_audio' ESCAPE '\\' THEN 'a' ELSE '' END) || s.ord || ':'
                || (SELECT count(*) FROM trace t WHERE t.segment_id = s.id AND t.status = 'done') AS c
                FROM segment s WHERE s.event_id LIKE '%\\_encode' ESCAPE '\\' OR s.event_id LIKE '%\\_audio' ESCAPE '\\' ORDER BY s.event_id DESC, s.ord)
                """)
        }

        /// The workers' trace records in the work folder, as JSON objects.
        func records(_ work: String) throws -> [[String: Any]] {
            try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.contains(".trace-") && $0.hasSuffix(".json") }.map {
                try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/" + $0))) as? [String: Any])
            }
        }

        /// `vslice segment` processes still running for this test's work folders.
        func workersLeft() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> String? in
                guard pid_t(name) != nil, let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
                let cmd = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
                return cmd.contains(" segment ") && cmd.contains(dir.path) ? cmd : nil
            }
        }
    }

    func job(_ tag: String, nodeEnvironment: [String: String] = [:]) throws -> Job {
        Job(dir: try Paths.scratch(tag), ray: try PrivateRay(nodeEnvironment: nodeEnvironment))
    }

    /// Lossless video (x264 qp 0) in 1 s segments, the 4 s AAC track in 1 s pieces, one thread per actor.
    static let lossless = ["--codec-opt", "qp=0", "--min-split-seconds", "0", "--segment-seconds", "1", "--audio-piece-seconds", "1",
                           "--jobs", "2", "--threads", "1"]

    @Test("two nodes, a VFR source with audio pieces: the output equals the local run's (framemd5, lossless), every element has one done trace, elements ran on both nodes; batch through Ray; an unreachable cluster or a stale driver is refused before any work")
    func twoNodesMatchLocal() throws {
        let j = try job("ray")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let source = Paths.fixture("vfr.mp4")
        let r = try j.transcode(Self.lossless + ["--keep-temp"], input: source)
        #expect(r.status == 0, "\(r.stderr)")
        let done = try lastEvent(r.stdout, "task_done")
        let n = try #require(done["segments"] as? Int)
        let pieces = try #require(Int(try j.sql("SELECT count(*) FROM segment WHERE event_id LIKE '%\\_audio' ESCAPE '\\'")))
        #expect(n >= 3 && pieces >= 2, "\(n) segments, \(pieces) audio pieces")
        #expect(try oracleProblems(source: source, output: j.out).isEmpty)
        // Every element (segment and audio piece) has one done trace, each from a Ray worker.
        let one = (0..<n).map { "\($0):1" } + (0..<pieces).map { "a\($0):1" }
        #expect(try j.donePerElement() == one.joined(separator: ","))
        #expect(try j.sql("SELECT count(*) || ' ' || count(DISTINCT engine_job) FROM trace WHERE engine = 'ray' AND status = 'done'") == "\(n + pieces) 2")
        // The records say where each element ran: both nodes, by their Ray node IDs.
        let work = try #require(done["work_dir"] as? String)
        let ran = try j.records(work).compactMap { ($0["engine"] as? [String: Any])?["node"] as? String }
        let ids = try j.ray.nodeIDs()
        #expect(ran.count == n + pieces && Set(ran) == Set(ids.values), "\(ran) \(ids)")
        let ipOf = Dictionary(uniqueKeysWithValues: ids.map { ($0.value, $0.key) })
        print("RayTests: elements per node: \(Dictionary(grouping: ran) { ipOf[$0] ?? $0 }.mapValues(\.count))")

        // The same task run locally: the same decoded frames at the same times, the same audio packets — and,
        // lossless, the source's own frames.
        let local = j.dir.appendingPathComponent("local.mp4").path
        let l = try vslice(["transcode", source, "-o", local, "-q"] + Self.lossless, environment: ["VSLICE_HOME": j.home])
        #expect(l.status == 0, "\(l.stderr)")
        #expect(try FFmpegOracle.frameMD5s(j.out) == FFmpegOracle.frameMD5s(local))
        #expect(try FFmpegOracle.frameMD5s(j.out) == FFmpegOracle.frameMD5s(source))
        #expect(try FFprobe.packets(j.out).pts == FFprobe.packets(local).pts)
        #expect(try FFprobe.packets(j.out, "a").pts == FFprobe.packets(local, "a").pts)
        #expect(try FFmpegOracle.frameMD5s(j.out, extra: ["-map", "-0:v", "-map", "0:a"]) == FFmpegOracle.frameMD5s(local, extra: ["-map", "-0:v", "-map", "0:a"]))
        // Each actor keeps one `vslice segment --serve` process: only its first element's record carries the
        // process's start.
        #expect(try j.sql("SELECT count(*) FROM trace WHERE engine = 'ray' AND status = 'done' AND process_seconds IS NOT NULL") == "2")

        // --process-persistent: each actor's process keeps the program loaded across its elements (the program
        // counts its starts; the check before any work is the coordinator's), the frames those of a per-segment run.
        let starts = j.dir.appendingPathComponent("starts").path, kept = j.dir.appendingPathComponent("kept.mp4").path
        let program = "/usr/bin/env PERSIST_STARTS=\(starts) " + ProcessorPersistentTests.persist
        let p = try j.transcode(Self.lossless + ["--process", program, "--process-persistent"], input: Paths.fixture("h264_aac.mp4"), output: kept)
        #expect(p.status == 0, "\(p.stderr)")
        let task = try #require(try lastEvent(p.stdout, "task_done")["task"] as? String)
        let actors = try #require(Int(try j.sql("SELECT count(DISTINCT r.engine_job) FROM trace r JOIN event e ON e.id = r.event_id WHERE e.task_id = '\(task)' AND r.engine = 'ray' AND r.status = 'done' AND e.node = 'encode'")))
        #expect((1...2).contains(actors))
        #expect(WorkerTests.lines(starts) == ["check"] + Array(repeating: "run", count: actors), "\(WorkerTests.lines(starts))")
        let each = j.dir.appendingPathComponent("each.mp4").path
        let e = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", each, "-q", "--process", "cat"] + Self.lossless, environment: ["VSLICE_HOME": j.home])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(try FFmpegOracle.frameMD5s(kept) == FFmpegOracle.frameMD5s(each))

        // A cluster that cannot be reached: exit 1 before any work, with the address and why.
        let dead = "127.0.0.2:\(j.ray.port + 49)"
        let refused = try j.transcode(["--ray-address", dead], input: source, output: j.dir.appendingPathComponent("dead.mp4").path)
        #expect(refused.status == 1 && refused.stderr.contains(dead) && refused.stderr.contains("Connection refused"), "\(refused.status) \(refused.stderr)")
        #expect(try j.sql("SELECT count(*) FROM task WHERE output LIKE '%dead.mp4'") == "0")

        // A folder through Ray: batch runs each task's elements on the actors.
        let folder = j.dir.appendingPathComponent("batch-in"), converted = j.dir.appendingPathComponent("batch-out")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["vfr.mp4", "h264_aac.mp4"] { try FileManager.default.copyItem(atPath: Paths.fixture(name), toPath: folder.appendingPathComponent(name).path) }
        let batch = try vslice(["batch", folder.path, "-o", converted.path, "--executor", "ray", "-q", "--min-split-seconds", "0", "--segment-seconds", "2",
                                "--jobs", "2", "--threads", "1", "--preset", "veryfast"], environment: j.environment)
        #expect(batch.status == 0, "\(batch.stderr)")
        for name in ["vfr.mp4", "h264_aac.mp4"] {
            #expect(try oracleProblems(source: Paths.fixture(name), output: converted.appendingPathComponent(name).path).isEmpty, "\(name)")
        }
        #expect(try j.sql("SELECT count(DISTINCT t.id) FROM task t JOIN event e ON e.task_id = t.id JOIN trace r ON r.event_id = e.id WHERE t.output LIKE '%batch-out%' AND r.engine = 'ray' AND r.status = 'done'") == "2")

        // A driver missing, or of another version than this vslice's: exit 2, before any work, saying so.
        let missing = try j.transcode([], input: source, output: j.dir.appendingPathComponent("nodriver.mp4").path,
                                      environment: ["VSLICE_RAY_DRIVER": j.dir.appendingPathComponent("none.py").path])
        #expect(missing.status == 2 && missing.stderr.contains("Ray driver") && missing.stderr.contains("none.py"), "\(missing.stderr)")
        let old = j.dir.appendingPathComponent("old_driver.py").path
        try "import json; print(json.dumps({'ok': True, 'version': 0}))\n".write(toFile: old, atomically: true, encoding: .utf8)
        let stale = try j.transcode([], input: source, output: j.dir.appendingPathComponent("stale.mp4").path,
                                    environment: ["VSLICE_RAY_DRIVER": old])
        #expect(stale.status == 2 && stale.stderr.contains("speaks version 0"), "\(stale.stderr)")
        #expect(try j.sql("SELECT count(*) FROM task WHERE output LIKE '%driver.mp4' OR output LIKE '%stale.mp4'") == "0")
    }

    @Test("a worker node killed mid-run (its raylet, workers and their elements, kill -9): the task finishes, only that node's unfinished element ran again, one done trace per element, the output passes ffprobe's checks")
    func workerNodeKilled() throws {
        // The second node's elements hang after their first frames (its daemons' environment), so that it dies in
        // the middle of one; the head's run clean.
        let j = try job("ray-kill", nodeEnvironment: ["VSLICE_FAULT": "segment-stall"])
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let clip = j.dir.appendingPathComponent("in.mp4").path
        try makeClip(clip, seconds: 16)
        let ids = try j.ray.nodeIDs()
        let victim = try #require(ids["127.0.0.3"])
        let head = try #require(ids[PrivateRay.headIP])
        let started = Date()
        let coordinator = try Background(["transcode", clip, "-o", j.out, "--executor", "ray", "--keep-temp", "--jobs", "2", "--threads", "1",
                                          "--min-split-seconds", "0", "--segment-seconds", "2", "--preset", "veryfast", "-q", "--json"],
                                         environment: j.environment)
        // The element the second node runs, once it has frames (the hang comes after them).
        var element = -1
        let hung = try coordinator.waitUntil(timeout: 120) {
            let work = try FileManager.default.contentsOfDirectory(atPath: j.dir.path).first { $0.hasPrefix(".out.mp4.vslice-") }
            guard let work, let task = String(work.split(separator: "-").last ?? "").nilIfEmpty,
                  let full = try? j.sql("SELECT id FROM task WHERE id LIKE '\(task)%'"), !full.isEmpty,
                  let running = try? j.ray.inflight(task: full)["running"] as? [String: [String: Any]],
                  let (key, _) = running.first(where: { $0.value["node"] as? String == victim }), let i = Int(key) else { return false }
            let progress = j.dir.appendingPathComponent(work).appendingPathComponent(String(format: "seg-%05d.progress", i)).path
            guard FileManager.default.fileExists(atPath: progress) else { return false }
            element = i
            return true
        }
        try #require(hung, "no element ran on the second node")
        let killed = j.ray.killNode("127.0.0.3")
        #expect(killed.count >= 3, "raylet, worker and element: \(killed)")
        let r = coordinator.finish(timeout: 240)
        print("RayTests: node killed at \(element); run \(Int(Date().timeIntervalSince(started))) s")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try oracleProblems(source: clip, output: j.out).isEmpty)
        let done = try lastEvent(r.stdout, "task_done")
        let n = try #require(done["segments"] as? Int)
        #expect(n == 8)
        #expect(try j.donePerElement() == (0..<n).map { "\($0):1" }.joined(separator: ","))
        // Only the element that node held ran again: one lost attempt, naming the node; its retry on the head.
        let failed = try ndjson(r.stdout).filter { $0["event"] as? String == "segment_failed" }
        #expect(failed.count == 1 && failed.first?["segment"] as? Int == element, "\(failed)")
        // Called lost once the queue missed its worker's beats (10 s) and the coordinator 3 looks; the node named,
        // with why (its raylet refuses connections before the GCS marks it dead, ≈ 15 s).
        #expect((failed.first?["error"] as? String)?.contains("lost: its node \(victim) failed") == true, "\(failed)")
        print("RayTests: the lost attempt: \(failed.first?["error"] as? String ?? "-")")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE status = 'failed'") == "1")
        let work = try #require(done["work_dir"] as? String)
        let records = try j.records(work)
        let lost = records.filter { $0["status"] as? String == "failed" }
        #expect(lost.count == 1 && (lost.first?["engine"] as? [String: Any])?["node"] as? String == victim, "\(lost)")
        let retry = records.filter { $0["segment"] as? Int == element && $0["status"] as? String == "done" }
        #expect(retry.count == 1 && (retry.first?["engine"] as? [String: Any])?["node"] as? String == head, "\(retry)")
        #expect(j.workersLeft().isEmpty, "\(j.workersLeft())")
    }

    @Test("--detach returns once submitted, status says which node holds which element, cancel stops the actors; resume re-attaches without submitting again; Ctrl-C stops the actors")
    func detachStatusCancelResumeInterrupt() throws {
        let j = try job("ray-detach")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let clip = j.dir.appendingPathComponent("in.mp4").path
        try makeClip(clip, seconds: 8)
        let short = ["--min-split-seconds", "0", "--segment-seconds", "1", "--jobs", "2", "--threads", "1", "--preset", "veryfast"]

        // Detached, its elements hanging: status shows them held by the actors, with their nodes; cancel stops them.
        let r = try j.transcode(short + ["--detach"], input: clip, environment: ["VSLICE_FAULT": "segment-stall"])
        #expect(r.status == 0, "\(r.stderr)")
        let task = try #require(try lastEvent(r.stdout, "task_detached")["task"] as? String)
        var status = Run(status: 0, stdout: "", stderr: "")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            status = try vslice(["status", task], environment: j.environment)
            if status.stdout.components(separatedBy: ", ray actor worker-").count == 3 { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(status.stdout.contains("detached") && status.stdout.components(separatedBy: ", ray actor worker-").count == 3
                && status.stdout.contains("queued (ray)"), "\(status.stdout)")
        let ids = try j.ray.nodeIDs()
        for ip in j.ray.ips { #expect(status.stdout.contains("running on \(ip) (ray node \(ids[ip]!.prefix(12)))"), "\(ip): \(status.stdout)") }
        #expect(try !j.ray.actors(task: task).isEmpty)
        let cancel = try vslice(["cancel", task], environment: j.environment)
        #expect(cancel.status == 0 && cancel.stdout.contains("work folder removed"), "\(cancel.stdout) \(cancel.stderr)")
        #expect(try j.ray.actors(task: task).isEmpty, "cancel left actors")
        #expect(j.workersLeft().isEmpty, "\(j.workersLeft())")
        #expect(try j.sql("SELECT status FROM task WHERE id = '\(task)'") == "cancelled")

        // Detached, then resumed: it re-attaches, leaves what the actors hold to them, submits nothing again.
        let out2 = j.dir.appendingPathComponent("out2.mp4").path
        let r2 = try j.transcode(short + ["--detach", "--keep-temp"], input: clip, output: out2)
        let task2 = try #require(try lastEvent(r2.stdout, "task_detached")["task"] as? String)
        let resumed = try vslice(["resume", task2, "-q", "--json"], environment: j.environment)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try oracleProblems(source: clip, output: out2).isEmpty)
        let work2 = try #require(try lastEvent(resumed.stdout, "task_done")["work_dir"] as? String)
        let submissions = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work2 + "/submissions.json"))) as? [Any])
        #expect(submissions.count == 1)
        #expect(try j.sql("SELECT count(*) FROM trace WHERE engine = 'ray' AND status = 'done' AND segment_id LIKE '\(task2)%'") == "8")

        // Ctrl-C in the coordinator: exit 130, and no actor of the task is left running, nor any element.
        let out3 = j.dir.appendingPathComponent("out3.mp4").path
        let coordinator = try Background(["transcode", clip, "-o", out3, "--executor", "ray", "-q", "--json"] + short,
                                         environment: j.environment.merging(["VSLICE_FAULT": "segment-stall"]) { $1 })
        var task3 = ""
        let running = coordinator.waitUntil(timeout: 120) {
            guard let id = try? j.sql("SELECT id FROM task WHERE output = '\(out3)'"), !id.isEmpty,
                  let held = try? j.ray.inflight(task: id)["running"] as? [String: Any], held.count == 2 else { return false }
            task3 = id
            return true
        }
        try #require(running, "the elements never ran")
        let interrupted = Date()
        coordinator.signal(SIGINT)
        let stopped = coordinator.finish(timeout: 90)
        #expect(stopped.status == 130, "\(stopped.stderr)")
        print("RayTests: Ctrl-C to exit: \(String(format: "%.1f", Date().timeIntervalSince(interrupted))) s")
        #expect(try j.ray.actors(task: task3).isEmpty, "Ctrl-C left actors")
        #expect(j.workersLeft().isEmpty, "\(j.workersLeft())")
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
