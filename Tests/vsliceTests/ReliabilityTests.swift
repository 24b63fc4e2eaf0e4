import Foundation
import Testing

/// The reliability cases of the adversarial run: each reproduces a crash, a wrong published output, a ledger
/// rewritten by a process that lost its lease, or work done twice — with real processes and signals, judged by
/// ffprobe/ffmpeg and the ledger's own rows.
@Suite("reliability: crashes, wrong outputs, lost leases, concurrent starts", .serialized)
struct ReliabilityTests {
    static let fast = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "ultrafast", "-q"]
    /// For cases that act while the job runs: slow enough to be caught in the middle.
    static let slow = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "slow", "-q"]

    struct Job {
        var dir: URL
        var home: String { dir.appendingPathComponent("home").path }
        var db: String { home + "/vslice.db" }
        var input: String { dir.appendingPathComponent("in.mp4").path }
        var out: String { dir.appendingPathComponent("out.mp4").path }
        var env: [String: String] { ["VSLICE_HOME": home] }

        func sql(_ query: String) throws -> String {
            try Proc.run("sqlite3", [db, query]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Waits until at least `n` segments are recorded done (or the process ends).
        func waitForSegments(_ n: Int, of bg: Background, timeout: TimeInterval = 120) throws -> Bool {
            try bg.waitUntil(timeout: timeout) {
                guard FileManager.default.fileExists(atPath: db) else { return false }
                return (Int(try sql("SELECT count(*) FROM segment WHERE status='done' AND event_id LIKE '%_encode'")) ?? 0) >= n
            }
        }

        /// Files left beside the output (besides the output and the job folder).
        func strays() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { ![ "home", "in.mp4", "out.mp4", "other.mp4", SegmentLog.folder, "all-sent", "pass.sh"].contains($0) }
        }

        /// Every event of every task ended: none left running or pending.
        func openEvents() throws -> String { try sql("SELECT node || ':' || status FROM event WHERE status IN ('running','pending')") }
    }

    func job(_ tag: String, seconds: Int = 8, size: String = "160x90") throws -> Job {
        let j = Job(dir: try Paths.scratch(tag))
        try makeClip(j.input, size: size, seconds: seconds)
        return j
    }

    @Test("an output name of 236 bytes: the part file's name still fits, no crash, a correct output")
    func longOutputName() throws {
        let j = try job("long", seconds: 3)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let out = j.dir.appendingPathComponent(String(repeating: "n", count: 232) + ".mp4").path
        let r = try vslice(["transcode", j.input, "-o", out] + Self.fast, environment: j.env)
        #expect(r.status == 0, "\(r.status) \(r.stderr)")
        try expectOracle(source: j.input, output: out)
        #expect(try j.sql("SELECT status FROM task") == "done")
        #expect(try j.openEvents() == "")
    }

    @Test("the output folder deleted mid-job (work folder elsewhere): exit 1 with one line, no crash, task failed")
    func outputFolderDeleted() throws {
        let j = try job("gone", seconds: 12, size: "320x240")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let outDir = j.dir.appendingPathComponent("outdir")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        let work = j.dir.appendingPathComponent("work").path
        let bg = try Background(["transcode", j.input, "-o", outDir.appendingPathComponent("o.mp4").path, "--work-dir", work,
                                 "--jobs", "1"] + Self.slow, environment: j.env)
        #expect(try j.waitForSegments(1, of: bg))
        try FileManager.default.removeItem(at: outDir)
        let r = bg.finish()
        #expect(r.status == 1, "\(r.status) \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try j.sql("SELECT status FROM task") == "failed")
        #expect(try j.openEvents() == "")
    }

    @Test("the input replaced while the job runs: exit 3, nothing published, no part file")
    func inputReplaced() throws {
        let j = try job("swap", seconds: 16, size: "320x240")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let other = j.dir.appendingPathComponent("other.mp4").path
        try makeClip(other, size: "320x240", seconds: 16, rate: 30)
        let bg = try Background(["transcode", j.input, "-o", j.out, "--jobs", "1"] + Self.slow, environment: j.env)
        #expect(try j.waitForSegments(2, of: bg))
        #expect(rename(other, j.input) == 0)
        let r = bg.finish()
        #expect(r.status == 3, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("replaced or modified"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: j.out))
        let strays = try j.strays()
        #expect(strays.isEmpty, "\(strays)")
        // Running the command again starts over on the new file and succeeds.
        let again = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env)
        #expect(again.status == 0, "\(again.stderr)")
        try expectOracle(source: j.input, output: j.out)
    }

    @Test("the merged part file damaged before publish: merged again, never published as it was; verify decodes")
    func damagedPart() throws {
        let j = try job("part", seconds: 6, size: "320x240")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let killed = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env.merging(["VSLICE_FAULT": "publish"]) { $1 })
        #expect(killed.killed)
        let part = try #require(try FileManager.default.contentsOfDirectory(atPath: j.dir.path).first { $0.hasSuffix(".part") })
        let partPath = j.dir.appendingPathComponent(part).path
        var data = try Data(contentsOf: URL(fileURLWithPath: partPath))
        for k in 0..<3 { data[data.count / 2 + k * 997] ^= 0xFF }
        try data.write(to: URL(fileURLWithPath: partPath))
        let damagedCopy = j.dir.appendingPathComponent("damaged.mkv").path
        try data.write(to: URL(fileURLWithPath: damagedCopy))
        defer { try? FileManager.default.removeItem(atPath: damagedCopy) }

        // `vslice verify` decodes: the damaged file is refused.
        let v = try vslice(["verify", damagedCopy, "--against", j.input], environment: j.env)
        #expect(v.status == 1, "verify passed a damaged file: \(v.stdout)")

        let r = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env)
        #expect(r.status == 0, "\(r.stderr)")
        try expectOracle(source: j.input, output: j.out)
        let decode = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-i", j.out, "-f", "null", "-"])
        #expect(decode.stderr.isEmpty, "the published output has decode errors: \(decode.stderr)")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE event_id LIKE '%\\_mux' ESCAPE '\\' AND status='done'") == "2")
        #expect(try vslice(["verify", j.out, "--against", j.input], environment: j.env).status == 0)
    }

    @Test("a holder stopped past the lease limit, taken over, then continued: the task stays done, it exits 5 and writes nothing")
    func lostLease() throws {
        let j = try job("lease", seconds: 20, size: "320x240")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let env = j.env.merging(["VSLICE_LEASE_STALE_SECONDS": "3"]) { $1 }
        let args = ["transcode", j.input, "-o", j.out, "--jobs", "1"] + Self.slow
        let a = try Background(args, environment: env)
        #expect(try j.waitForSegments(2, of: a))
        a.signal(SIGSTOP)
        Thread.sleep(forTimeInterval: 4)
        let b = try vslice(args, environment: env)
        #expect(b.status == 0, "the takeover failed: \(b.stderr)")
        #expect(try j.sql("SELECT status FROM task") == "done")
        let before = try j.sql("SELECT count(*), max(updated_at) FROM trace; SELECT group_concat(status || updated_at) FROM segment; SELECT updated_at FROM task")
        let outputBefore = try Data(contentsOf: URL(fileURLWithPath: j.out))
        a.signal(SIGCONT)
        let r = a.finish(timeout: 60)
        #expect(r.status == 5, "the old holder: \(r.status) \(r.stderr)")
        #expect(r.stderr.contains("took the task over"), "\(r.stderr)")
        #expect(try j.sql("SELECT status FROM task") == "done")
        #expect(try j.sql("SELECT count(*), max(updated_at) FROM trace; SELECT group_concat(status || updated_at) FROM segment; SELECT updated_at FROM task") == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: j.out)) == outputBefore)
        try expectOracle(source: j.input, output: j.out)
        // Nothing to resume: the finished task is not re-encoded, its output not touched.
        let published = try FileWitness(j.out)
        let all = try vslice(["resume", "--all", "-q"], environment: env)
        #expect(all.status == 0)
        #expect(try FileWitness(j.out) == published)
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%' AND status='done'") == (try j.sql("SELECT count(*) FROM segment")))
        #expect(try j.openEvents() == "")
    }

    @Test("N identical commands started together: one task, each segment encoded once, the others exit 5", arguments: [2, 4])
    func concurrentStarts(_ n: Int) throws {
        let j = try job("conc\(n)", seconds: 10)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // A logging processor witnesses, outside the ledger, which segments were processed and how often.
        let log = try SegmentLog(j.dir)
        let args = ["transcode", j.input, "-o", j.out, "--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "medium", "-q",
                    "--process", log.command]
        let runs = try (0..<n).map { _ in try Background(args, environment: j.env) }
        let codes = runs.map { $0.finish() }.map(\.status).sorted()
        #expect(codes == [0] + Array(repeating: 5, count: n - 1), "\(codes)")
        #expect(try j.sql("SELECT count(*) FROM task") == "1")
        #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id LIKE '%_encode_%' AND status='done'") == (try j.sql("SELECT count(*) FROM segment")))
        // 10 s in 1 s segments: each processed once, by the one process that ran.
        let processed = try log.runs()
        #expect(processed.sorted() == Array(0..<10), "segments processed: \(processed)")
        let strays = try j.strays()
        #expect(strays.isEmpty, "\(strays)")
        try expectOracle(source: j.input, output: j.out)
        #expect(try j.openEvents() == "")
    }

    @Test("Ctrl-C twice while the encoder is flushed aborts without waiting for the flush: exit 130, resumable")
    func abortDuringFlush() throws {
        let j = try job("abort", seconds: 6, size: "640x360")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // One segment of 150 frames inside x264's longest lookahead (250 frames): no packet comes out before
        // every frame is sent, so the fault, at the segment's 5th packet, stops the encode inside its flush, for
        // good (--stall-timeout 3600): only an abort that does not wait for the flush ends this run. (How fast an
        // abort is, is scripts/bench's to measure.) The frames pass through a processor that marks when it has
        // passed them all: from then on the encoder has them all, and flushes.
        let sent = j.dir.appendingPathComponent("all-sent").path
        let script = j.dir.appendingPathComponent("pass.sh").path
        try "if [ -n \"$VSLICE_CHECK\" ]; then exec cat; fi\ncat\ntouch '\(sent)'\n".write(toFile: script, atomically: true, encoding: .utf8)
        let args = ["transcode", j.input, "-o", j.out, "--min-split-seconds", "0", "--segment-seconds", "60", "--preset", "slow",
                    "--codec-opt", "rc-lookahead=250", "--jobs", "1", "--stall-timeout", "3600", "--process", "sh \(script)", "-q"]
        let bg = try Background(args, environment: j.env.merging(["VSLICE_FAULT": "segment-stall"]) { $1 })
        #expect(bg.waitUntil(timeout: 300) { FileManager.default.fileExists(atPath: sent) }, "the frames were never all sent")
        #expect(bg.interruptTwice(), "the first Ctrl-C was not heard")
        let r = bg.finish(timeout: 120)
        #expect(r.status == 130 && !r.signaled, "\(r.status) \(r.stderr)")
        #expect(try j.sql("SELECT status FROM task") == "interrupted")
        #expect(try j.sql("SELECT count(*) FROM segment WHERE status = 'done'") == "0")
        #expect(try j.openEvents() == "")
    }

    @Test("a dangling symlink or a folder at the output path is refused before any work")
    func outputPathChecks() throws {
        let j = try job("outpath", seconds: 2)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        try FileManager.default.createSymbolicLink(atPath: j.out, withDestinationPath: j.dir.appendingPathComponent("nowhere.mp4").path)
        let link = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env)
        #expect(link.status == 4, "\(link.stderr)")
        #expect(link.stderr.contains("symlink"), "\(link.stderr)")
        let folder = j.dir.appendingPathComponent("folder.mp4").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let dir = try vslice(["transcode", j.input, "-o", folder, "--force"] + Self.fast, environment: j.env)
        #expect(dir.status == 2, "\(dir.stderr)")
        let tasks = FileManager.default.fileExists(atPath: j.db) ? try j.sql("SELECT count(*) FROM task") : "0"
        #expect(tasks == "0")
        let strays = try j.strays()
        #expect(strays == ["folder.mp4"], "\(strays)")
        // With --force the symlink itself is replaced by the output.
        let forced = try vslice(["transcode", j.input, "-o", j.out, "--force"] + Self.fast, environment: j.env)
        #expect(forced.status == 0, "\(forced.stderr)")
        let attrs = try FileManager.default.attributesOfItem(atPath: j.out)
        #expect(attrs[.type] as? FileAttributeType == .typeRegular)
    }

    @Test("a damaged job store is reported at once, on one line, with what to do")
    func damagedStore() throws {
        let j = try job("db", seconds: 2)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        try FileManager.default.createDirectory(atPath: j.home, withIntermediateDirectories: true)
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: j.db))
        let r = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("damaged"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: j.out))
    }

    @Test("a task prefix that matches several tasks is refused, listing them")
    func ambiguousPrefix() throws {
        let j = try job("prefix", seconds: 2)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        // Many tasks, so that some share a first hex digit.
        for i in 0..<17 {
            let r = try vslice(["transcode", j.input, "-o", j.dir.appendingPathComponent("o\(i).mkv").path, "-q"], environment: j.env)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let ids = try j.sql("SELECT id FROM task").split(separator: "\n").map(String.init)
        let counts = Dictionary(grouping: ids, by: { $0.prefix(1) })
        let shared = try #require(counts.first { $0.value.count > 1 }?.key)
        let r = try vslice(["cancel", String(shared)], environment: j.env)
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("matches"), "\(r.stderr)")
        #expect(try j.sql("SELECT count(*) FROM task WHERE status='cancelled'") == "0")
    }

    @Test("work folders of a deleted job store: gc --orphans lists and removes them once old enough, never a known task's")
    func orphanSweep() throws {
        let j = try job("orphan", seconds: 4)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let killed = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env.merging(["VSLICE_FAULT": "segment-done:2"]) { $1 })
        #expect(killed.killed)
        let work = try j.strays()
        #expect(work.count == 1 && work[0].contains(".vslice-"), "\(work)")
        try FileManager.default.removeItem(atPath: j.home)
        // A second task in the new store, with its own unfinished work folder: never an orphan.
        let out2 = j.dir.appendingPathComponent("two.mkv").path
        _ = try vslice(["transcode", j.input, "-o", out2] + Self.fast, environment: j.env.merging(["VSLICE_FAULT": "segment-done:1"]) { $1 })
        #expect(try j.strays().count == 2)

        let young = try vslice(["gc", "--orphans", j.dir.path, "--json"], environment: j.env)
        #expect(young.status == 0, "\(young.stderr)")
        #expect(!young.stdout.contains(work[0]), "removed a folder changed seconds ago: \(young.stdout)")
        let dry = try vslice(["gc", "--orphans", j.dir.path, "--min-age", "0", "--dry-run"], environment: j.env)
        #expect(dry.stdout.contains(work[0]), "\(dry.stdout)")
        #expect(try j.strays().count == 2)
        let swept = try vslice(["gc", "--orphans", j.dir.path, "--min-age", "0"], environment: j.env)
        #expect(swept.status == 0, "\(swept.stderr)")
        let left = try j.strays()
        #expect(left.count == 1 && left[0].hasPrefix(".two.mkv.vslice-"), "\(left)")

        // The second task cancelled (its work folder removed), then a late worker writes into that folder again:
        // the ledger no longer knows it as that task's, so it is an orphan too.
        let id = try #require(left[0].split(separator: "-").last.map(String.init))
        #expect(try vslice(["cancel", id], environment: j.env).status == 0)
        #expect(try j.strays().isEmpty)
        let late = j.dir.appendingPathComponent(left[0]).path
        try FileManager.default.createDirectory(atPath: late, withIntermediateDirectories: true)
        try "x".write(toFile: late + "/seg-00001.process.log", atomically: true, encoding: .utf8)
        let late2 = try vslice(["gc", "--orphans", j.dir.path, "--min-age", "0", "--json"], environment: j.env)
        #expect(late2.status == 0 && late2.stdout.contains("its task is cancelled and its work was removed"), "\(late2.stdout)")
        #expect(try j.strays().isEmpty)
    }

    @Test("the disk under the job store full: exit 1 with the resume hint, no work folder",
          .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func jobStoreDiskFull() throws {
        let j = try job("dbfull", seconds: 2)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        try FileManager.default.createDirectory(atPath: j.home, withIntermediateDirectories: true)
        let mount = try Proc.run("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", j.home])
        try #require(mount.status == 0, "this machine cannot mount a small tmpfs here: \(mount.stderr)")
        defer { _ = try? Proc.run("umount", [j.home]) }
        #expect(try vslice(["status"], environment: j.env).status == 0)   // creates the database
        _ = try Proc.run("dd", ["if=/dev/zero", "of=\(j.home)/filler", "bs=4k"])
        let r = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env)
        #expect(r.status == 1, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("disk holding the job store is full"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try j.strays().isEmpty)
    }

    @Test("a task left running by a killed process and refused by resume --all is recorded failed, not running")
    func refusedResumeIsNotRunning() throws {
        let j = try job("stale", seconds: 3)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let killed = try vslice(["transcode", j.input, "-o", j.out] + Self.fast, environment: j.env.merging(["VSLICE_FAULT": "segment-done:1"]) { $1 })
        #expect(killed.killed)
        #expect(try j.sql("SELECT status FROM task") == "running")
        try FileManager.default.removeItem(atPath: j.input)
        let r = try vslice(["resume", "--all", "-q"], environment: j.env)
        #expect(r.status == 6, "\(r.status) \(r.stderr)")
        #expect(try j.sql("SELECT status FROM task") == "failed")
        #expect(try j.sql("SELECT error FROM task").contains("no such file"))
        #expect(try j.openEvents() == "")
        // Another file at the input's path: the task would be refused again on every resume (exit 5), so the
        // next `resume --all` records why, and the one after passes over it, naming it (exit 0).
        try FileManager.default.copyItem(atPath: Paths.fixture("h264_aac.mp4"), toPath: j.input)
        let refused = try vslice(["resume", "--all", "-q"], environment: j.env)
        #expect(refused.status == 6 && refused.stderr.contains("input changed"), "\(refused.status) \(refused.stderr)")
        #expect(try j.sql("SELECT failure_kind || ',' || failure_deterministic FROM task") == "resumeRefused,1")
        let passed = try vslice(["resume", "--all"], environment: j.env)
        #expect(passed.status == 0 && passed.stdout.contains("pass over") && passed.stdout.contains("nothing to resume"),
                "\(passed.status) \(passed.stdout) \(passed.stderr)")
        #expect(try j.sql("SELECT status FROM task") == "failed")
    }

    @Test("the default plan is stored with the task: a resume with another --jobs works on the same segments")
    func planStoredForResume() throws {
        let j = try job("plan", seconds: 12)
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let args = ["transcode", j.input, "-o", j.out, "--preset", "ultrafast", "-q"]
        let killed = try vslice(args + ["--jobs", "2"], environment: j.env.merging(["VSLICE_FAULT": "segment-done:2"]) { $1 })
        #expect(killed.killed)
        let planned = try j.sql("SELECT group_concat(frames_planned) FROM (SELECT frames_planned FROM segment ORDER BY ord)")
        #expect(planned.split(separator: ",").count > 2, "\(planned)")
        let done = try j.sql("SELECT id FROM segment WHERE status='done'").split(separator: "\n")
        // Killed at the second segment done, with two at once: 2, or 3 if the other one committed in between.
        let work = try #require(try Witness.workFolder(of: j.out))
        let sealed = try Witness.sealed(in: work)
        #expect((2...3).contains(sealed.count) && sealed.count == done.count, "\(sealed.keys.sorted()), ledger \(done)")
        // With --jobs 1 the default plan would be one segment; the stored plan is used instead.
        let r = try vslice(args + ["--jobs", "1", "--keep-temp"], environment: j.env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try j.sql("SELECT group_concat(frames_planned) FROM (SELECT frames_planned FROM segment ORDER BY ord)") == planned)
        for seg in done {
            #expect(try j.sql("SELECT count(*) FROM trace WHERE segment_id='\(seg)' AND status='done'") == "1")
        }
        // The segments sealed before the kill are the files merged, not written again.
        let changed = Witness.changed(sealed, try Witness.sealed(in: work))
        #expect(changed.isEmpty, "\(changed)")
        try expectOracle(source: j.input, output: j.out)
    }
}
