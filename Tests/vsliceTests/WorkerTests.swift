import Foundation
import TestScratch
import Testing

/// The one-segment worker (`vslice segment`): a task planned by `transcode --executor external`, its segments
/// encoded by separate worker processes that cannot reach any job database, then finished by the coordinator,
/// which ingests the workers' trace records.
@Suite("one-segment worker", .serialized)
struct WorkerTests {
    static let source = Paths.fixture("h264_aac.mp4")
    static let args = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "veryfast", "--jobs", "1"]

    struct Job {
        var dir: URL
        var home: String { dir.appendingPathComponent("home").path }
        var out: String { dir.appendingPathComponent("out.mp4").path }
        var db: String { home + "/vslice.db" }
        /// A home no worker could create a database in: it lies under a regular file.
        var blockedHome: String { dir.appendingPathComponent("not-a-folder/home").path }

        init(_ tag: String) throws {
            dir = try Paths.scratch(tag)
            _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("not-a-folder").path, contents: Data("x".utf8))
        }

        func sql(_ query: String) throws -> String {
            try Proc.run("sqlite3", [db, query]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Runs a worker with no way to any database: VSLICE_HOME, XDG_DATA_HOME and HOME all unusable.
        func worker(_ args: [String], environment: [String: String] = [:]) throws -> Run {
            try vslice(["segment"] + args, environment: ["VSLICE_HOME": blockedHome, "XDG_DATA_HOME": blockedHome,
                                                         "HOME": blockedHome].merging(environment) { $1 })
        }

        /// Size and modification time of the database and its WAL: any write by a worker would change them.
        func databaseState() -> [String] {
            [db, db + "-wal", db + "-shm"].map { path in
                var st = stat()
                guard stat(path, &st) == 0 else { return "\(path): none" }
                return "\(path): \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            }
        }
    }

    /// Plans the task and returns (task ID, work folder, segment count) from the `task_detached` event.
    func detach(_ j: Job, input: String = WorkerTests.source, extra: [String] = []) throws -> (task: String, work: String, segments: Int) {
        let r = try vslice(["transcode", input, "-o", j.out, "--executor", "external", "--detach", "--json"] + Self.args + extra,
                           environment: ["VSLICE_HOME": j.home])
        try #require(r.status == 0, "\(r.stderr)")
        let e = try lastEvent(r.stdout, "task_detached")
        let task = try #require(e["task"] as? String)
        let work = try #require(e["work_dir"] as? String)
        let segments = try #require(e["segments"] as? Int)
        return (task, work, segments)
    }

    @Test("segments run by separate worker processes without a database; resume ingests their records and merges")
    func workersThenResume() throws {
        let j = try Job("worker")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // A logging processor witnesses, outside the ledger, which segments were processed and where.
        let log = try SegmentLog(j.dir)
        let (task, work, n) = try detach(j, extra: ["--process", log.command])
        #expect(n == 6)
        #expect(FileManager.default.fileExists(atPath: work + "/task.json"))
        #expect(!FileManager.default.fileExists(atPath: j.out))
        #expect(try j.sql("SELECT status, lease_pid IS NULL FROM task") == "running|1")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%'") == "0")
        let before = j.databaseState()

        // Indices from --index, SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX.
        for i in 0..<n {
            let r: Run
            switch i % 3 {
            case 0: r = try j.worker(["--work-dir", work, "--index", "\(i)", "--json"])
            case 1: r = try j.worker(["--work-dir", work, "--json"], environment: ["SLURM_ARRAY_TASK_ID": "\(i)", "SLURM_JOB_ID": "\(700 + i)",
                                                                                   "SLURM_ARRAY_JOB_ID": "700"])
            default: r = try j.worker(["--work-dir", work, "--json"], environment: ["JOB_COMPLETION_INDEX": "\(i)", "HOSTNAME": "pod-\(i)"])
            }
            #expect(r.status == 0, "segment \(i): \(r.stderr)")
            let record = try jsonObject(r.stdout)
            #expect(record["segment"] as? Int == i)
            #expect(record["status"] as? String == "done")
            #expect(record["exit_code"] as? Int == 0)
            #expect((record["frames_out"] as? Int ?? 0) > 0)
            if i % 3 == 1 {
                let engine = try #require(record["engine"] as? [String: Any])
                #expect(engine["kind"] as? String == "slurm" && engine["job"] as? String == "700" && engine["array_index"] as? Int == i)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: j.blockedHome))
        #expect(j.databaseState() == before, "a worker touched the job database")
        let records = try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.contains(".trace-") }
        #expect(records.count == n)

        #expect(try log.runs() == Array(0..<n))
        // A segment already done is not encoded again (its file untouched); bad calls are usage errors (exit 2).
        let sealed = try FileWitness(work + "/seg-00002.vseg")
        let again = try j.worker(["--work-dir", work, "--index", "2"])
        #expect(again.status == 0 && again.stdout.contains("already done"), "\(again.stderr)")
        #expect(try FileWitness(work + "/seg-00002.vseg") == sealed)
        #expect(try j.worker(["--work-dir", work, "--index", "\(n)"]).status == 2)
        #expect(try j.worker(["--work-dir", j.dir.path, "--index", "0"]).status == 2)
        #expect(try j.worker(["--work-dir", work]).status == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.contains(".trace-") }.count == n)

        let resumed = try vslice(["resume", String(task.prefix(8)), "-q"], environment: ["VSLICE_HOME": j.home])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try expectOracle(source: Self.source, output: j.out)
        // Nothing processed again: by the worker called again, nor by the coordinator.
        let runs = try log.runs()
        #expect(runs == Array(0..<n), "\(runs)")
        // One done trace per segment, each the worker's (its engine ids kept), and nothing encoded again.
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%'") == "\(n)")
        let perSegment = try j.sql("SELECT s.ord || ':' || (SELECT count(*) FROM trace t WHERE t.segment_id = s.id AND t.status = 'done') FROM segment s WHERE s.event_id LIKE '%_encode' ORDER BY s.ord")
        #expect(perSegment == (0..<n).map { "\($0):1" }.joined(separator: "\n"))
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%' AND pid = (SELECT lease_pid FROM task)") == "0")
        #expect(try j.sql("SELECT engine || ' ' || engine_job || ' ' || engine_index FROM trace WHERE segment_id LIKE '%_encode_1'") == "slurm 700 1")
        #expect(try j.sql("SELECT engine || ' ' || engine_index FROM trace WHERE segment_id LIKE '%_encode_2'") == "kubernetes 2")
        #expect(try j.sql("SELECT group_concat(attempts) FROM segment WHERE event_id LIKE '%_encode'") == Array(repeating: "1", count: n).joined(separator: ","))
        #expect(try j.sql("SELECT status FROM task") == "done")
        #expect(!FileManager.default.fileExists(atPath: work), "work folder kept after success")
    }

    /// Starts `transcode --executor external --json` in the background and waits for its work order.
    func startExternalCoordinator(_ j: Job) throws -> (Background, String) {
        let coordinator = try Background(["transcode", Self.source, "-o", j.out, "--executor", "external", "--json"] + Self.args,
                                         environment: ["VSLICE_HOME": j.home])
        var work = ""
        let planned = coordinator.waitUntil(timeout: 60) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: j.dir.path)) ?? []
            guard let w = names.first(where: { $0.hasPrefix(".out.mp4.vslice-") }) else { return false }
            work = j.dir.appendingPathComponent(w).path
            return FileManager.default.fileExists(atPath: work + "/task.json")
        }
        try #require(planned, "the coordinator did not plan")
        return (coordinator, work)
    }

    @Test("a coordinator waiting on external workers ingests them as they finish and publishes")
    func waitingCoordinator() throws {
        let j = try Job("wait")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let (coordinator, work) = try startExternalCoordinator(j)
        for i in 0..<6 {
            let r = try j.worker(["--work-dir", work, "--index", "\(i)", "-q"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let done = coordinator.finish(timeout: 120)
        #expect(done.status == 0, "\(done.stderr)")
        let events = try ndjson(done.stdout)
        #expect(events.filter { $0["event"] as? String == "segment_done" }.count == 6)
        #expect(try lastEvent(done.stdout, "task_done")["segments"] as? Int == 6)
        try expectOracle(source: Self.source, output: j.out)
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%' AND status = 'done'") == "6")
    }

    @Test("a worker's deterministic processing failure (exit 7, recorded so) fails the waiting coordinator at once with its message; resume does not retry it")
    func deterministicProcessingFailure() throws {
        let j = try Job("determ")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let (coordinator, work) = try startExternalCoordinator(j)
        // Segment 2 fails as a filter rejecting its input would: the same way on every attempt.
        let w = try j.worker(["--work-dir", work, "--index", "2"], environment: ["VSLICE_FAULT": "segment-reject"])
        #expect(w.status == 7, "\(w.stderr)")
        let message = w.stderr.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "vslice: ", with: "")
        #expect(message.contains("encode segment 2") && message.contains("VSLICE_FAULT=segment-reject"), "\(w.stderr)")
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: work).first { $0.contains(".trace-") })
        let record = try jsonObject(String(contentsOfFile: work + "/" + name, encoding: .utf8))
        #expect(record["status"] as? String == "failed" && record["exit_kind"] as? String == "processing")
        #expect(record["exit_code"] as? Int == 7 && record["deterministic"] as? Bool == true, "\(record)")

        // The coordinator (--max-attempts 3) does not wait for two more records: it fails now, exit 1, one line
        // carrying the worker's own message.
        // No other worker runs: a coordinator that waited for the other attempts would never end (the long
        // timeout is a hang guard).
        let r = coordinator.finish(timeout: 120)
        #expect(r.status == 1, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(message), "\(r.stderr)")
        #expect(try lastEvent(r.stdout, "task_failed")["exit_code"] as? Int == 1)
        #expect(try j.sql("SELECT status FROM task") == "failed")
        #expect(try j.sql("SELECT attempts || ' ' || status FROM segment WHERE ord = 2 AND event_id LIKE '%_encode'") == "1 failed")
        #expect(try j.sql("SELECT count(*) || ' ' || max(exit_code) FROM trace WHERE segment_id LIKE '%_encode_2'") == "1 7")
        #expect(!FileManager.default.fileExists(atPath: j.out))

        // Resuming does not try it again either: the recorded failure is final, with the same message.
        let task = try #require(try j.sql("SELECT id FROM task").split(separator: "\n").first.map(String.init))
        let resumed = try vslice(["resume", String(task.prefix(8))], timeout: 60, environment: ["VSLICE_HOME": j.home])
        #expect(resumed.status == 1 && resumed.stderr.contains(message), "\(resumed.stderr)")
        #expect(try j.sql("SELECT attempts FROM segment WHERE ord = 2 AND event_id LIKE '%_encode'") == "1")

        // The local executor's policy is the same one: the same failure in process, one attempt, exit 1.
        let local = j.dir.appendingPathComponent("local.mp4").path
        let l = try vslice(["transcode", Self.source, "-o", local, "--json"] + Self.args,
                           environment: ["VSLICE_HOME": j.home, "VSLICE_FAULT": "segment-reject"])
        #expect(l.status == 1 && l.stderr.contains("VSLICE_FAULT=segment-reject"), "\(l.stderr)")
        #expect(try ndjson(l.stdout).filter { $0["event"] as? String == "segment_failed" }.count == 1)
    }

    @Test("a worker refuses an input changed since planning (exit 3, recorded); the coordinator then refuses to resume")
    func changedInput() throws {
        let j = try Job("changed")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let copy = j.dir.appendingPathComponent("in.mp4").path
        try FileManager.default.copyItem(atPath: Self.source, toPath: copy)
        let (task, work, _) = try detach(j, input: copy)
        let h = try #require(FileHandle(forWritingAtPath: copy))
        try h.seekToEnd()
        h.write(Data(repeating: 0, count: 16))
        try h.close()
        let r = try j.worker(["--work-dir", work, "--index", "0"])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("input changed"))
        let record = try #require(try FileManager.default.contentsOfDirectory(atPath: work).first { $0.contains(".trace-") })
        let fields = try jsonObject(String(contentsOfFile: work + "/" + record, encoding: .utf8))
        #expect(fields["status"] as? String == "failed" && fields["exit_kind"] as? String == "input" && fields["exit_code"] as? Int == 3)
        #expect(!FileManager.default.fileExists(atPath: work + "/seg-00000.vseg"))
        let resumed = try vslice(["resume", task], environment: ["VSLICE_HOME": j.home])
        #expect(resumed.status == 5, "\(resumed.stderr)")
    }

    @Test("workers that stay up (--claim): two at once run every element once, their persistent program loaded once per worker; a fresh claim is left alone, a stale one taken back; the output equals the per-segment run")
    func workersStayUp() throws {
        let j = try Job("worker-claim")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let same = ["--codec-opt", "qp=0", "--jobs", "2"]
        let (task, work, n) = try detach(j, extra: ["--workers-stay-up", "--process", ProcessorPersistentTests.persist, "--process-persistent"] + same)
        #expect(n == 6)
        // Element 0 held by a worker long gone (its heartbeat an hour old), element 1 by one that still beats.
        func claim(_ i: Int, worker: String, age: Double) throws {
            let path = work + String(format: "/seg-%05d.claim", i)
            let at = Date().timeIntervalSince1970 - age
            try Data(#"{"worker":"\#(worker)","host":"elsewhere","pid":1,"claimed_at":\#(at)}"#.utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: at)], ofItemAtPath: path)
        }
        try claim(0, worker: "gone", age: 3600)
        try claim(1, worker: "alive", age: 0)
        let starts = j.dir.appendingPathComponent("starts").path
        func worker(_ k: Int, stale: String = "60") throws -> Background {
            try Background(["segment", "--work-dir", work, "--claim"],
                           environment: ["JOB_COMPLETION_INDEX": "\(k)", "HOSTNAME": "pod-\(k)", "PERSIST_STARTS": starts,
                                         "VSLICE_CLAIM_STALE_SECONDS": stale, "VSLICE_HOME": j.blockedHome])
        }
        let workers = try [worker(0), worker(1)]
        for w in workers {
            let r = w.finish(timeout: 120)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let records = { () throws -> [[String: Any]] in
            try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.contains(".trace-") }
                .map { try jsonObject(String(contentsOfFile: work + "/" + $0, encoding: .utf8)) }
        }
        // Every element but the one a live worker holds ran once, on both workers; each loaded its program once.
        var done = try records()
        #expect(Set(done.compactMap { $0["segment"] as? Int }) == Set(0..<n).subtracting([1]) && done.count == n - 1, "\(done)")
        #expect(Set(done.compactMap { ($0["engine"] as? [String: Any])?["job"] as? String }) == ["pod-0", "pod-1"])
        #expect(Self.lines(starts) == ["run", "run"], "\(Self.lines(starts))")
        // Only the first element of each worker carries the process's start.
        #expect(done.filter { $0["process_started_at"] != nil }.count == 2)
        // Once its heartbeat is stale, a worker takes it back.
        let late = try worker(2, stale: "0.001").finish(timeout: 60)
        #expect(late.status == 0, "\(late.stderr)")
        done = try records()
        #expect(done.filter { $0["segment"] as? Int == 1 }.count == 1 && done.count == n)
        #expect(Self.lines(starts).count == 3)

        let resumed = try vslice(["resume", String(task.prefix(8)), "-q"], environment: ["VSLICE_HOME": j.home])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try j.sql("SELECT group_concat(c) FROM (SELECT count(*) AS c FROM trace WHERE segment_id LIKE '%_encode_%' AND status = 'done' GROUP BY segment_id)") == Array(repeating: "1", count: n).joined(separator: ","))
        let each = j.dir.appendingPathComponent("each.mp4").path
        let plain = try vslice(["transcode", Self.source, "-o", each, "--process", "cat", "-q"] + Self.args + same, environment: ["VSLICE_HOME": j.home])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(try FFmpegOracle.frameMD5s(j.out) == FFmpegOracle.frameMD5s(each))
        try expectOracle(source: Self.source, output: j.out)
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
    }

    @Test("plan --emit k8s-job: an Indexed Job of --jobs workers that claim the planned task's elements, FailIndex on exit 2, 3 and 7")
    func kubernetesManifest() throws {
        let j = try Job("k8s")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let (task, work, n) = try detach(j)
        let r = try vslice(["plan", Self.source, "--emit", "k8s-job", "--task-dir", work, "--image", "registry.example/vslice:1",
                            "--pvc", "media", "--mount-path", "/", "--max-attempts", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        let job = try jsonObject(r.stdout)
        #expect(job["apiVersion"] as? String == "batch/v1" && job["kind"] as? String == "Job")
        let meta = try #require(job["metadata"] as? [String: Any])
        #expect(meta["name"] as? String == "vslice-" + task.prefix(8))
        let spec = try #require(job["spec"] as? [String: Any])
        #expect(spec["completionMode"] as? String == "Indexed")
        // Workers, not elements: --jobs 1 of the task's n elements.
        #expect(n > 1 && spec["completions"] as? Int == 1)
        #expect(spec["parallelism"] as? Int == 1)
        #expect(spec["backoffLimitPerIndex"] as? Int == 3)
        #expect(spec["backoffLimit"] == nil)
        let rules = try #require((spec["podFailurePolicy"] as? [String: Any])?["rules"] as? [[String: Any]])
        let failIndex = try #require(rules.first { $0["action"] as? String == "FailIndex" })
        let codes = try #require(failIndex["onExitCodes"] as? [String: Any])
        #expect(codes["operator"] as? String == "In" && codes["values"] as? [Int] == [2, 3, 7] && codes["containerName"] as? String == "vslice")
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(pod["restartPolicy"] as? String == "Never")
        let containers = try #require(pod["containers"] as? [[String: Any]])
        #expect(containers.count == 1)
        #expect(containers[0]["name"] as? String == "vslice" && containers[0]["image"] as? String == "registry.example/vslice:1")
        #expect(containers[0]["command"] as? [String] == ["vslice", "segment", "--work-dir", work, "--claim", "--max-attempts", "4"])
        let mounts = try #require(containers[0]["volumeMounts"] as? [[String: Any]])
        #expect(mounts.first?["mountPath"] as? String == "/" && mounts.first?["name"] as? String == "work")
        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        #expect((volumes.first?["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String == "media")

        // Paths the volume would not hold, a folder that is no task's, and no --task-dir: usage errors.
        #expect(try vslice(["plan", Self.source, "--emit", "k8s-job", "--task-dir", work, "--pvc", "media", "--mount-path", "/nowhere"]).status == 2)
        #expect(try vslice(["plan", Self.source, "--emit", "k8s-job", "--task-dir", j.dir.path]).status == 2)
        #expect(try vslice(["plan", Self.source, "--emit", "k8s-job"]).status == 2)
    }

    @Test("--detach needs a remote executor; a work folder root that cannot be written is refused before any work")
    func refusals() throws {
        let j = try Job("refuse")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let local = try vslice(["transcode", Self.source, "-o", j.out, "--detach"] + Self.args, environment: ["VSLICE_HOME": j.home])
        #expect(local.status == 2 && local.stderr.contains("--detach"), "\(local.stderr)")
        let blocked = try vslice(["transcode", Self.source, "-o", j.out, "--executor", "external", "--work-dir", "/proc"] + Self.args,
                                 environment: ["VSLICE_HOME": j.home])
        #expect(blocked.status == 2 && blocked.stderr.contains("not writable"), "\(blocked.stderr)")
        #expect(try j.sql("SELECT count(*) FROM task") == "0")
    }

    @Test("vslice segment with a --work-dir that does not exist, or is a file: exit 2 naming the folder, before the index is asked for")
    func missingWorkDir() throws {
        let missing = TestScratch.url.appendingPathComponent("no-such-work-\(UUID().uuidString.prefix(6))").path
        for args in [["segment", "--work-dir", missing], ["segment", "--work-dir", missing, "--index", "0"]] {
            let run = try vslice(args)
            #expect(run.status == 2 && run.stderr.contains("'\(missing)'") && run.stderr.contains("does not exist"), "\(run.stderr)")
            #expect(!run.stderr.contains("--index") && run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        }
        let file = Paths.fixture("h264_aac.mp4")
        let run = try vslice(["segment", "--work-dir", file])
        #expect(run.status == 2 && run.stderr.contains("'\(file)'") && run.stderr.contains("not a folder"), "\(run.stderr)")
    }
}
