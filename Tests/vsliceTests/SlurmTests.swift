import Foundation
import TestScratch
import Testing

/// `--executor slurm` against a private controller: the segments run as job arrays of `vslice segment`, on one
/// node or on three (one of which dies mid-run).
@Suite("slurm executor", .serialized, .enabled(if: PrivateSlurm.installed, PrivateSlurm.skipReason))
struct SlurmTests {
    static let clip: String = {
        let path = TestScratch.url.appendingPathComponent("vslice-slurm-clip-\(getpid()).mp4").path
        if !FileManager.default.fileExists(atPath: path) { try? makeClip(path, seconds: 60) }
        return path
    }()
    static let args = ["--preset", "veryfast", "-q", "--json"]
    /// 12 segments of 5 s, one element at a time: a run long enough to be interrupted in the middle.
    static let short = ["--min-split-seconds", "0", "--segment-seconds", "5"]

    struct Job {
        var dir: URL
        var slurm: PrivateSlurm
        var home: String { dir.appendingPathComponent("home").path }
        var out: String { dir.appendingPathComponent("out.mp4").path }
        var db: String { home + "/vslice.db" }
        var environment: [String: String] { slurm.environment.merging(["VSLICE_HOME": home]) { $1 } }

        func sql(_ query: String) throws -> String {
            try Proc.run("sqlite3", [db, query]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func transcode(_ extra: [String], output: String? = nil, input: String = SlurmTests.clip,
                       environment: [String: String] = [:]) throws -> Run {
            try vslice(["transcode", input, "-o", output ?? out, "--executor", "slurm"] + SlurmTests.args + extra,
                       environment: self.environment.merging(environment) { $1 })
        }
        /// Done traces per segment, "0:1,1:1,…".
        func donePerSegment() throws -> String {
            try sql("SELECT group_concat(c, ',') FROM (SELECT s.ord || ':' || (SELECT count(*) FROM trace t WHERE t.segment_id = s.id AND t.status = 'done') AS c FROM segment s WHERE s.event_id LIKE '%_encode' ORDER BY s.ord)")
        }
    }

    func job(_ tag: String, nodes: Int = 1, maxArraySize: Int? = nil) throws -> Job {
        try #require(FileManager.default.fileExists(atPath: Self.clip), "could not make the 60 s clip")
        return Job(dir: try Paths.scratch(tag), slurm: try PrivateSlurm(nodes: nodes, maxArraySize: maxArraySize))
    }

    @Test("a 60 s clip as one job array: oracle passes, same frames and timestamps as local, one element per segment and per audio piece; bad input never reaches Slurm")
    func arrayMatchesLocal() throws {
        let j = try job("slurm")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let r = try j.transcode(["--jobs", "2", "--keep-temp"])
        #expect(r.status == 0, "\(r.stderr)")
        let done = try lastEvent(r.stdout, "task_done")
        let n = try #require(done["segments"] as? Int)
        #expect(n >= 6)
        #expect(try ndjson(r.stdout).filter { $0["event"] as? String == "segment_done" }.count == n)
        try expectOracle(source: Self.clip, output: j.out)

        // One array: one element per segment and per audio piece (the 60 s track in two pieces), each reported by
        // its own worker; the pieces' traces are the audio event's.
        let pieces = try #require(Int(try j.sql("SELECT count(*) FROM segment WHERE event_id LIKE '%\\_audio' ESCAPE '\\'")))
        #expect(pieces == 2)
        #expect(j.slurm.submissions == 1)
        #expect(try j.sql("SELECT count(*) || ' ' || count(DISTINCT engine_index) || ' ' || count(DISTINCT engine_job) FROM trace WHERE engine = 'slurm'") == "\(n + pieces) \(n + pieces) 1")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE engine = 'slurm' AND status = 'done' AND event_id LIKE '%\\_audio' ESCAPE '\\'") == "\(pieces)")
        #expect(try j.donePerSegment() == (0..<n).map { "\($0):1" }.joined(separator: ","))
        // Each element's fixed costs, the audio pieces' too: its start-up, flush and process start-up, the
        // scheduler's latency (all measured, under a minute), submitted before its worker started.
        #expect(try j.sql("""
            SELECT count(*) FROM trace WHERE engine = 'slurm' AND startup_seconds BETWEEN 0 AND 60 AND flush_seconds BETWEEN 0 AND 60
            AND process_seconds BETWEEN 0 AND 60 AND scheduler_seconds BETWEEN 0 AND 60 AND submitted_at <= started_at
            """) == "\(n + pieces)")
        let work = try #require(done["work_dir"] as? String)
        let logs = try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.hasPrefix("slurm-") && $0.hasSuffix(".out") }
        #expect(logs.count == n + pieces)

        // The same task run locally: the same frames at the same times.
        let local = j.dir.appendingPathComponent("local.mp4").path
        let l = try vslice(["transcode", Self.clip, "-o", local, "--jobs", "2", "-q", "--preset", "veryfast"], environment: ["VSLICE_HOME": j.home])
        #expect(l.status == 0, "\(l.stderr)")
        let a = try MediaFacts(j.out), b = try MediaFacts(local)
        #expect(a.frames == b.frames)
        #expect(a.videoTimes == b.videoTimes)
        #expect(try FFprobe.packets(j.out).pts == FFprobe.packets(local).pts)

        // Bad input is refused on the submitting host: exit 3, nothing submitted.
        let bad = try j.transcode([], output: j.dir.appendingPathComponent("bad.mp4").path, input: Paths.fixture("bad_random.mp4"))
        #expect(bad.status == 3, "\(bad.stderr)")
        #expect(j.slurm.submissions == 1)
    }

    @Test("--process through Slurm workers (an OpenCV 2x interpolator): the same frames at the same times as the local run; with --workers-stay-up, 2 workers run the 6 elements, a --process-persistent program loaded once per worker, the same frames")
    func processorMatchesLocal() throws {
        let j = try job("slurm-proc")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let same = ["--process", Processors.interpolate, "--min-split-seconds", "0", "--segment-seconds", "1", "--codec-opt", "qp=0"]
        let r = try j.transcode(same + ["--jobs", "2"], input: src)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE engine = 'slurm' AND status = 'done'") == "6")
        let local = j.dir.appendingPathComponent("local.mp4").path
        let l = try vslice(["transcode", src, "-o", local, "-q", "--preset", "veryfast"] + same, environment: ["VSLICE_HOME": j.home])
        #expect(l.status == 0, "\(l.stderr)")
        #expect(try MediaFacts(j.out).frames == 360)
        #expect(try FFmpegOracle.frameMD5s(j.out) == FFmpegOracle.frameMD5s(local))
        #expect(try FFprobe.packets(j.out).pts == FFprobe.packets(local).pts)

        // Workers that stay up: one array of 2 workers claims the 6 elements; each loads the persistent program
        // once (the program counts its starts; the check before any work is the coordinator's).
        let starts = j.dir.appendingPathComponent("starts").path
        let kept = j.dir.appendingPathComponent("kept.mp4").path
        let lossless = ["--min-split-seconds", "0", "--segment-seconds", "1", "--codec-opt", "qp=0", "--jobs", "2"]
        let w = try j.transcode(lossless + ["--workers-stay-up", "--process", ProcessorPersistentTests.persist, "--process-persistent"],
                                output: kept, input: src, environment: ["PERSIST_STARTS": starts])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(j.slurm.submissions == 2)
        let task = try #require(try lastEvent(w.stdout, "task_done")["task"] as? String)
        let mine = "SELECT * FROM trace WHERE engine = 'slurm' AND status = 'done' AND event_id = '\(task)_encode'"
        #expect(try j.sql("SELECT count(*) || ' ' || count(DISTINCT engine_job) FROM (\(mine))") == "6 1")
        // As many workers as ran elements (2, unless one found every element claimed): each started its program
        // once, and only its first element's record carries its process's start.
        let workers = try #require(Int(try j.sql("SELECT count(DISTINCT engine_index) FROM (\(mine))")))
        #expect((1...2).contains(workers))
        #expect(try j.sql("SELECT count(*) FROM (\(mine)) WHERE process_seconds IS NOT NULL") == "\(workers)")
        #expect(WorkerTests.lines(starts) == ["check"] + Array(repeating: "run", count: workers), "\(WorkerTests.lines(starts))")
        let each = j.dir.appendingPathComponent("each.mp4").path
        let e = try vslice(["transcode", src, "-o", each, "-q", "--preset", "veryfast", "--process", "cat"] + lossless, environment: ["VSLICE_HOME": j.home])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(try FFmpegOracle.frameMD5s(kept) == FFmpegOracle.frameMD5s(each))
    }

    @Test("scancel of one running element: that index alone is submitted again and the output is right")
    func scancelledElement() throws {
        let j = try job("scancel")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // Segment 3's first attempt hangs (until it is cancelled); its retry runs clean.
        let coordinator = try Background(["transcode", Self.clip, "-o", j.out, "--executor", "slurm", "--jobs", "2"] + Self.args,
                                         environment: j.environment.merging(["VSLICE_FAULT": "segment-stall", "VSLICE_FAULT_SEGMENT": "3"]) { $1 })
        var element = ""
        let running = try coordinator.waitUntil(timeout: 120) {
            guard let e = try j.slurm.queue().first(where: { $0.index == 3 && $0.state == "RUNNING" }) else { return false }
            // Let it reach the hang (its first frames).
            Thread.sleep(forTimeInterval: 1)
            element = e.job
            return true
        }
        try #require(running, "segment 3 never ran")
        let cancel = try Proc.run("scancel", [element], timeout: 30, environment: j.slurm.environment)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let r = coordinator.finish(timeout: 240)
        #expect(r.status == 0, "\(r.stderr)")
        try expectOracle(source: Self.clip, output: j.out)
        #expect(j.slurm.submissions == 2)
        let n = try #require(try lastEvent(r.stdout, "task_done")["segments"] as? Int)
        #expect(try j.donePerSegment() == (0..<n).map { "\($0):1" }.joined(separator: ","))
        // The cancelled attempt is recorded as failed (interrupted) by its worker, or as lost by the coordinator.
        let failed = try ndjson(r.stdout).filter { $0["event"] as? String == "segment_failed" }
        #expect(failed.count == 1 && failed.first?["segment"] as? Int == 3, "\(failed)")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_3'") == "2")
        #expect(try j.sql("SELECT count(DISTINCT engine_job) FROM trace WHERE engine = 'slurm'") == "2")
    }

    @Test("kill -9 of the coordinator mid-run: resume re-attaches without submitting again; one done trace per segment")
    func coordinatorKilled() throws {
        let j = try job("kill9")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // --keep-temp (stored with the task): the resume keeps the work folder, whose files witness the reuse.
        let coordinator = try Background(["transcode", Self.clip, "-o", j.out, "--executor", "slurm", "--jobs", "1", "--keep-temp"]
                                         + Self.short + Self.args, environment: j.environment)
        var task = ""
        let midway = coordinator.waitUntil(timeout: 120) {
            guard let text = try? String(contentsOf: coordinator.outURL, encoding: .utf8),
                  let started = try? lastEvent(text, "task_started"),
                  let id = started["task"] as? String else { return false }
            task = id
            return Int((try? j.sql("SELECT count(*) FROM trace WHERE engine = 'slurm' AND status = 'done'")) ?? "") ?? 0 >= 1
        }
        try #require(midway, "no segment finished under Slurm")
        coordinator.signal(SIGKILL)
        _ = coordinator.finish(timeout: 30)
        #expect(!FileManager.default.fileExists(atPath: j.out))
        #expect(try !j.slurm.queue().isEmpty, "the array should still be queued or running")
        let work = try #require(try Witness.workFolder(of: j.out))
        let sealed = try Witness.sealed(in: work)
        #expect(!sealed.isEmpty, "no segment sealed before the kill")

        let resumed = try vslice(["resume", String(task.prefix(8)), "--json", "-q"], environment: j.environment)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try lastEvent(resumed.stdout, "task_started")["resumed"] as? Bool == true)
        try expectOracle(source: Self.clip, output: j.out)
        #expect(j.slurm.submissions == 1, "resume submitted again")
        let n = try #require(try lastEvent(resumed.stdout, "task_done")["segments"] as? Int)
        #expect(try j.donePerSegment() == (0..<n).map { "\($0):1" }.joined(separator: ","))
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%'") == "\(n)")
        // The segments sealed before the kill are the files merged, none written again.
        #expect(Witness.changed(sealed, try Witness.sealed(in: work)).isEmpty)
    }

    @Test("a worker's deterministic failure (input changed mid-run: exit 3) fails the task with exit 3, never submitted again")
    func deterministicFailure() throws {
        let j = try job("exit3")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let copy = j.dir.appendingPathComponent("in.mp4").path
        try FileManager.default.copyItem(atPath: Self.clip, toPath: copy)
        let coordinator = try Background(["transcode", copy, "-o", j.out, "--executor", "slurm", "--jobs", "1"] + Self.short + Self.args,
                                         environment: j.environment)
        let midway = coordinator.waitUntil(timeout: 120) {
            Int((try? j.sql("SELECT count(*) FROM trace WHERE engine = 'slurm' AND status = 'done'")) ?? "") ?? 0 >= 1
        }
        try #require(midway, "no segment finished under Slurm")
        let h = try #require(FileHandle(forWritingAtPath: copy))
        try h.seekToEnd()
        h.write(Data(repeating: 0, count: 16))
        try h.close()
        let r = coordinator.finish(timeout: 120)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("input changed"), "\(r.stderr)")
        #expect(j.slurm.submissions == 1)
        let deadline = Date().addingTimeInterval(30)
        while try !j.slurm.queue().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.5) }
        #expect(try j.slurm.queue().isEmpty, "the failed task's array was left running")
        #expect(!FileManager.default.fileExists(atPath: j.out))
    }

    @Test("a worker's deterministic processing failure (exit 7) fails the task at once, exit 1 with the worker's message; never submitted again")
    func deterministicProcessingFailure() throws {
        let j = try job("exit7")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // Segment 1's worker fails as a filter rejecting its input would; a second attempt would run clean, so
        // only the coordinator's decision keeps it from being submitted again.
        let r = try j.transcode(["--jobs", "2", "--min-split-seconds", "0", "--segment-seconds", "1"], input: Paths.fixture("h264_aac.mp4"),
                                environment: ["VSLICE_FAULT": "segment-reject", "VSLICE_FAULT_SEGMENT": "1"])
        #expect(r.status == 1, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("encode segment 1") && lines[0].contains("VSLICE_FAULT=segment-reject"), "\(r.stderr)")
        #expect(j.slurm.submissions == 1)
        #expect(try j.sql("SELECT attempts || ' ' || status FROM segment WHERE ord = 1") == "1 failed")
        #expect(try j.sql("SELECT count(*) || ' ' || max(exit_code) || ' ' || max(engine) FROM trace WHERE segment_id LIKE '%_encode_1'") == "1 7 slurm")
        #expect(try j.sql("SELECT status FROM task") == "failed")
        let deadline = Date().addingTimeInterval(30)
        while try !j.slurm.queue().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.5) }
        #expect(try j.slurm.queue().isEmpty, "the failed task's array was left running")
        #expect(!FileManager.default.fileExists(atPath: j.out))
    }

    @Test("--detach submits and returns the task; resume finishes it; cancel scancels a detached task's array")
    func detachResumeCancel() throws {
        let j = try job("detach")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let r = try j.transcode(["--detach", "--jobs", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let detached = try lastEvent(r.stdout, "task_detached")
        let task = try #require(detached["task"] as? String)
        #expect(!FileManager.default.fileExists(atPath: j.out))
        #expect(try j.sql("SELECT status FROM task") == "running")
        let resumed = try vslice(["resume", task], environment: j.environment)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try expectOracle(source: Self.clip, output: j.out)
        #expect(j.slurm.submissions == 1)
        // The progress of segments run by workers: kept frames only, never past 100 %, ending at exactly 100 %.
        let percents = resumed.stderr.matches(of: /([0-9.]+)% ([0-9]+)\/([0-9]+) frames/).map { (Double($0.1)!, Int($0.2)!, Int($0.3)!) }
        #expect(!percents.isEmpty && percents.allSatisfy { $0.0 <= 100 && $0.1 <= $0.2 }, "\(resumed.stderr)")
        #expect(percents.last.map { $0.0 == 100 && $0.1 == $0.2 } == true, "\(resumed.stderr)")

        // A detached task whose elements hang, cancelled: its array leaves the queue.
        let out2 = j.dir.appendingPathComponent("out2.mp4").path
        // `-q --detach` (no --json), as a script would: the task ID alone on stdout.
        let r2 = try vslice(["transcode", Self.clip, "-o", out2, "--executor", "slurm", "--preset", "veryfast", "-q", "--detach", "--jobs", "2"],
                            environment: j.environment.merging(["VSLICE_FAULT": "segment-stall"]) { $1 })
        let task2 = r2.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r2.status == 0 && task2.count == 36 && UUID(uuidString: task2) != nil, "\(r2.stdout) \(r2.stderr)")
        #expect(try !j.slurm.queue().isEmpty)
        // status: detached, and what Slurm holds of each segment.
        let status = try vslice(["status", task2], environment: j.environment)
        #expect(status.stdout.contains("detached") && (status.stdout.contains("(slurm job ") || status.stdout.contains(", slurm job ")),
                "\(status.stdout)")
        let statusJSON = try jsonObject(try vslice(["status", task2, "--json"], environment: j.environment).stdout)
        #expect(statusJSON["status"] as? String == "detached" && (statusJSON["scheduled"] as? [String: String]).map { !$0.isEmpty } == true,
                "\(statusJSON["status"] ?? "-") \(statusJSON["scheduled"] ?? "-")")
        // A controller that does not answer: the cancel says the elements were not cancelled (exit 1), and how to.
        let deadConf = j.dir.appendingPathComponent("dead.conf").path
        try String(contentsOfFile: j.slurm.conf, encoding: .utf8)
            .replacingOccurrences(of: "SlurmctldPort=", with: "SlurmctldPort=1").write(toFile: deadConf, atomically: true, encoding: .utf8)
        let unreached = try vslice(["cancel", task2], environment: j.environment.merging(["SLURM_CONF": deadConf]) { $1 })
        #expect(unreached.status == 1 && unreached.stderr.contains("not cancelled") && unreached.stderr.contains("scancel --name=vslice-"),
                "\(unreached.status) \(unreached.stderr)")
        // A transcode for a controller that does not answer is refused before any work; --slurm-arg without
        // --executor slurm is a usage error.
        let out3 = j.dir.appendingPathComponent("out3.mp4").path
        let dead = try j.transcode([], output: out3, environment: ["SLURM_CONF": deadConf])
        #expect(dead.status == 1 && dead.stderr.contains("the controller does not answer"), "\(dead.status) \(dead.stderr)")
        #expect(try j.sql("SELECT count(*) FROM task WHERE output = '\(out3)'") == "0")
        let local = try vslice(["transcode", Self.clip, "-o", out3, "--slurm-arg=--partition=x"], environment: j.environment)
        #expect(local.status == 2 && local.stderr.contains("--slurm-arg needs --executor slurm"), "\(local.stderr)")
        #expect(try !j.slurm.queue().isEmpty)
        // The same cancel again, the controller answering: the array leaves the queue.
        let cancel = try vslice(["cancel", task2], environment: j.environment)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let deadline = Date().addingTimeInterval(60)
        while try !j.slurm.queue().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.5) }
        #expect(try j.slurm.queue().isEmpty, "cancel left the array in the queue")
        // The cancel waited for the workers to end before removing the work folder: nothing wrote it again.
        #expect(cancel.stdout.contains("work folder removed"), "\(cancel.stdout)")
        let left = try FileManager.default.contentsOfDirectory(atPath: j.dir.path).filter { $0.hasPrefix(".out2.mp4.vslice-") }
        #expect(left.isEmpty, "\(left)")
        #expect(try j.sql("SELECT status FROM task WHERE id = '\(task2)'") == "cancelled")
    }

    @Test("three nodes, one killed mid-run (its slurmd and job steps, kill -9): Slurm marks it down, its element is submitted again and runs on another; the output equals the local run's, one done trace per segment, and status tells; with --workers-stay-up only the killed worker's unfinished element runs again",
          arguments: [false, true])
    func nodeKilled(staysUp: Bool) throws {
        let j = try job(staysUp ? "nodes-up" : "nodes", nodes: 3)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // Segment 4's first attempt hangs after its first frames, so that its node dies in the middle of it; the
        // attempt after it runs clean (the fault is scoped to a segment's first attempt).
        let same = ["--jobs", "3", "--threads", "1"] + Self.short
        let coordinator = try Background(["transcode", Self.clip, "-o", j.out, "--executor", "slurm", "--keep-temp"] + same + Self.args
                                            + (staysUp ? ["--workers-stay-up"] : []),
                                         environment: j.environment.merging(["VSLICE_FAULT": "segment-stall", "VSLICE_FAULT_SEGMENT": "4"]) { $1 })
        var node = ""
        let running = try coordinator.waitUntil(timeout: 120) {
            let queue = try j.slurm.queue()
            if staysUp {
                // The worker that holds segment 4's claim, where Slurm runs it.
                guard let work = try Witness.workFolder(of: j.out),
                      let data = FileManager.default.contents(atPath: work + "/seg-00004.claim"),
                      let worker = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["worker"] as? String,
                      let e = queue.first(where: { "\($0.array)_\($0.index)" == worker && $0.state == "RUNNING" }) else { return false }
                node = e.node
                return true
            }
            guard let e = queue.first(where: { $0.index == 4 && $0.state == "RUNNING" }) else { return false }
            node = e.node
            return true
        }
        try #require(running && j.slurm.nodes.contains(node), "segment 4 never ran")
        Thread.sleep(forTimeInterval: 1)
        let killed = try j.slurm.killNode(node)
        #expect(killed.count >= 3, "slurmd, slurmstepd and the worker: \(killed)")
        let r = coordinator.finish(timeout: 240)
        #expect(r.status == 0, "\(r.stderr)")
        let states = try j.slurm.nodeStates()
        #expect(states[node]?.hasPrefix("down") == true, "\(states)")
        try expectOracle(source: Self.clip, output: j.out)
        let done = try lastEvent(r.stdout, "task_done")
        let n = try #require(done["segments"] as? Int)
        #expect(n == 12)
        #expect(try j.donePerSegment() == (0..<n).map { "\($0):1" }.joined(separator: ","))
        // Only segment 4 ran twice (with workers that stay up, what the killed worker had finished stays done).
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%\\_encode\\_%' ESCAPE '\\'") == "\(n + 1)")
        // One array, then segment 4 alone again; its lost attempt is a failed trace naming the node.
        #expect(j.slurm.submissions == 2)
        let failed = try ndjson(r.stdout).filter { $0["event"] as? String == "segment_failed" }
        #expect(failed.count == 1 && failed.first?["segment"] as? Int == 4, "\(failed)")
        #expect((failed.first?["error"] as? String)?.contains("node \(node) failed") == true, "\(failed)")
        #expect(try j.sql("SELECT group_concat(status || '|' || (host = '\(node)'), ',') FROM (SELECT * FROM trace WHERE segment_id LIKE '%_encode_4' ORDER BY started_at)") == "failed|1,done|0")
        // The retry ran on another node (the workers' records name the node Slurm ran them on).
        let work = try #require(done["work_dir"] as? String)
        let records = try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.hasPrefix("seg-00004.trace-") }
            .map { try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/" + $0))) as? [String: Any] }
        let doneNode = records.first { $0?["status"] as? String == "done" }??["engine"] as? [String: Any]
        let retryNode = try #require(doneNode?["node"] as? String)
        #expect(retryNode != node && j.slurm.nodes.contains(retryNode))
        // `vslice status TASK` says what happened.
        let task = try #require(done["task"] as? String)
        let status = try vslice(["status", String(task.prefix(8))], environment: j.environment)
        #expect(status.stdout.contains("segment 4: done, 125/125 frames, 2 attempt(s)\n    failed attempt on \(node), slurm job ")
                && status.stdout.contains("lost: its node \(node) failed"), "\(status.stdout)")

        // The same task run locally: the same decoded frames at the same times.
        let local = j.dir.appendingPathComponent("local.mp4").path
        let l = try vslice(["transcode", Self.clip, "-o", local, "-q", "--preset", "veryfast"] + same, environment: ["VSLICE_HOME": j.home])
        #expect(l.status == 0, "\(l.stderr)")
        #expect(try FFprobe.packets(j.out).pts == FFprobe.packets(local).pts)
        #expect(try FFmpegOracle.frameMD5s(j.out) == FFmpegOracle.frameMD5s(local))
    }

    @Test("more elements than MaxArraySize (4): 12 segments and 2 audio pieces in four arrays, the output right, one done trace per segment; cancel scancels every array")
    func severalArrays() throws {
        let j = try job("arrays", nodes: 3, maxArraySize: 4)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let r = try j.transcode(["--jobs", "3"] + Self.short)
        #expect(r.status == 0, "\(r.stderr)")
        let n = try #require(try lastEvent(r.stdout, "task_done")["segments"] as? Int)
        #expect(n == 12)
        try expectOracle(source: Self.clip, output: j.out)
        #expect(j.slurm.submissions == 4)
        #expect(try j.donePerSegment() == (0..<n).map { "\($0):1" }.joined(separator: ","))
        // Each array's elements are numbered from 0 (below MaxArraySize); the element is the array's base + that.
        #expect(try j.sql("SELECT count(DISTINCT engine_job) || ' ' || min(engine_index) || ' ' || max(engine_index) FROM trace WHERE engine = 'slurm'") == "4 0 3")

        // A detached task whose elements hang: four arrays in the queue, all of them gone after cancel.
        let out2 = j.dir.appendingPathComponent("out2.mp4").path
        let r2 = try j.transcode(["--detach", "--jobs", "3"] + Self.short, output: out2, environment: ["VSLICE_FAULT": "segment-stall"])
        let task2 = try #require(try lastEvent(r2.stdout, "task_detached")["task"] as? String)
        #expect(try Set(j.slurm.queue().map(\.array)).count == 4)
        let cancel = try vslice(["cancel", task2], environment: j.environment)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let deadline = Date().addingTimeInterval(60)
        while try !j.slurm.queue().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.5) }
        #expect(try j.slurm.queue().isEmpty, "cancel left arrays in the queue")
        #expect(try j.sql("SELECT status FROM task WHERE id = '\(task2)'") == "cancelled")
    }
}
