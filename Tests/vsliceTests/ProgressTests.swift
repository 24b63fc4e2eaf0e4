import Foundation
import Testing

/// Issue 30, item 4: the progress of a slow model. The programs are written here: raw rgb24 pass-throughs that
/// take their time (a `sleep` per frame, or all of the input read before anything is written back).
enum SlowModel {
    /// A raw rgb24 program: reads every frame (`readDelay` s each), and only then, after writing the time it
    /// starts answering (Unix seconds) to `marker`, writes them all back. The check before any work
    /// (`VSLICE_SEGMENT=-1`) writes no marker.
    static func holdAll(_ dir: URL, readDelay: Double, marker: String) throws -> String {
        let path = dir.appendingPathComponent("hold.py")
        try """
            import os, sys, time
            n = int(os.environ["VSLICE_WIDTH"]) * int(os.environ["VSLICE_HEIGHT"]) * 3
            frames = []
            while True:
                b = sys.stdin.buffer.read(n)
                if len(b) < n:
                    break
                frames.append(b)
                time.sleep(\(readDelay))
            if os.environ.get("VSLICE_SEGMENT") != "-1":
                open("\(marker)", "w").write(repr(time.time()))
            for b in frames:
                sys.stdout.buffer.write(b)
            sys.stdout.buffer.flush()

            """.write(to: path, atomically: true, encoding: .utf8)
        return "\(Processors.python) \(path.path)"
    }

    /// A raw rgb24 pass-through that sleeps `delay` s before answering each frame.
    static func perFrame(_ dir: URL, delay: Double) throws -> String {
        let path = dir.appendingPathComponent("slow.py")
        try """
            import os, sys, time
            n = int(os.environ["VSLICE_WIDTH"]) * int(os.environ["VSLICE_HEIGHT"]) * 3
            while True:
                b = sys.stdin.buffer.read(n)
                if len(b) < n:
                    break
                time.sleep(\(delay))
                sys.stdout.buffer.write(b)
                sys.stdout.buffer.flush()

            """.write(to: path, atomically: true, encoding: .utf8)
        return "\(Processors.python) \(path.path)"
    }

    static let oneSegment = ["--split", "frames", "--segment-frames", "1000", "--min-split-seconds", "0", "--jobs", "1",
                             "--process-format", "rgb24"]
}

@Suite("issue 30, item 4: progress of a slow model")
struct ProgressTests {
    @Test("frames count when they come back from the program: no progress before it answers (it said 99.2 %, ETA 0.2 s, seconds before the end)")
    func countedWhenReturned() throws {
        let dir = try Paths.scratch("progress-returned")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mp4").path
        let marker = dir.appendingPathComponent("answered").path
        try makeClip(src, seconds: 2)
        let cmd = try SlowModel.holdAll(dir, readDelay: 0.08, marker: marker)
        let r = try vslice(["transcode", src, "-o", out, "--process", cmd, "--json"] + SlowModel.oneSegment)
        #expect(r.status == 0, "\(r.stderr)")
        let answered = try #require(Double(try String(contentsOfFile: marker, encoding: .utf8)))
        let events = try ndjson(r.stdout)
        let progress = events.filter { $0["event"] as? String == "progress" }
        // Before: progress events every second while the program read its input, up to 98 % done.
        let early = progress.filter { ($0["time"] as? Double ?? 0) < answered && ($0["frames_done"] as? Int ?? 0) > 0 }
        #expect(early.isEmpty, "frames done before the program answered at \(answered): \(early)")
        #expect(try lastEvent(r.stdout, "task_done")["frames"] as? Int == 50)
        #expect(try oracleProblems(source: src, output: out).isEmpty)
    }

    @Test("vslice status shows a running one-segment task's progress inside its segment (it showed 0.0 %)")
    func statusInSegment() throws {
        let dir = try Paths.scratch("progress-status")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mp4").path
        let home = dir.appendingPathComponent("home").path
        try makeClip(src, seconds: 4)
        let cmd = try SlowModel.perFrame(dir, delay: 0.1)
        let bg = try Background(["transcode", src, "-o", out, "--process", cmd, "-q"] + SlowModel.oneSegment,
                                environment: ["VSLICE_HOME": home])
        var seen: [String: Any]? = nil
        _ = try bg.waitUntil(timeout: 120) {
            let s = try vslice(["status", "--json"], environment: ["VSLICE_HOME": home])
            guard s.status == 0, let rows = try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [[String: Any]],
                  let row = rows.first, row["status"] as? String == "running", row["segments_done"] as? Int == 0,
                  let p = row["percent"] as? Double, p > 0 else { return false }
            seen = row
            return true
        }
        let done = bg.finish()
        #expect(done.status == 0, "\(done.stderr)")
        let row = try #require(seen, "no status with frames done inside the running segment")
        let frames = try #require(row["frames_done"] as? Int)
        #expect(frames > 0 && frames < 100 && (row["percent"] as? Double ?? 100) < 100, "\(row)")
    }

    /// Costs given, so that the estimate is known: the encoder's (the tests' own VSLICE_ELEMENT_COST: start-up
    /// 2 ms, 4 ms a frame) and the program's (start-up 1.5 s, 50 ms a frame).
    static let costs = ["VSLICE_PROCESSOR_COST": "1.5,0.05"]
    static let twoSegments = ["--split", "frames", "--segment-frames", "25", "--min-split-seconds", "0", "--process", "cat"]

    @Test("vslice plan estimates the wall time for --jobs from the measured costs, text and --json (there was no estimate before a run)")
    func planEstimate() throws {
        let dir = try Paths.scratch("progress-plan")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path
        try makeClip(src, seconds: 2)
        // Two segments of 25 frames (each starting at a keyframe): 0.002 + 1.5 + 25 × (0.004 + 0.05) = 2.852 s each.
        for (jobs, encode) in [(2, 2.852), (1, 5.704)] {
            let r = try vslice(["plan", src, "--jobs", "\(jobs)", "--json"] + Self.twoSegments, environment: Self.costs)
            #expect(r.status == 0, "\(r.stderr)")
            let e = try #require(try jsonObject(r.stdout)["estimate"] as? [String: Any], "\(r.stdout.prefix(300))")
            let seconds = try #require(e["seconds"] as? Double), checks = try #require(e["checks_seconds"] as? Double)
            #expect(abs((e["encode_seconds"] as? Double ?? 0) - encode) < 0.001, "\(e)")
            #expect(checks > 0 && abs(seconds - checks - encode) < 0.001 && e["jobs"] as? Int == jobs, "\(e)")
        }
        let text = try vslice(["plan", src, "--jobs", "2"] + Self.twoSegments, environment: Self.costs)
        #expect(text.stdout.contains("estimate: about ") && text.stdout.contains("for --jobs 2") && text.stdout.contains("the segments 2.9 s"),
                "\(text.stdout)")
    }

    @Test("vslice plan DIR plans each video of a folder (it said 'is a directory'); batch --dry-run does too, writing nothing")
    func folderEstimates() throws {
        let dir = try Paths.scratch("progress-dir")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clips = dir.appendingPathComponent("clips"), out = dir.appendingPathComponent("out")
        let home = dir.appendingPathComponent("home").path
        try FileManager.default.createDirectory(at: clips, withIntermediateDirectories: true)
        try makeClip(clips.appendingPathComponent("a.mp4").path, seconds: 2)
        try makeClip(clips.appendingPathComponent("b.mp4").path, seconds: 1)
        try "not a video\n".write(to: clips.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let env = Self.costs.merging(["VSLICE_HOME": home]) { $1 }
        let plan = try vslice(["plan", clips.path, "--jobs", "2", "--json"] + Self.twoSegments, environment: env)
        #expect(plan.status == 0, "\(plan.stderr)")
        let batch = try vslice(["batch", clips.path, "-o", out.path, "--jobs", "2", "--dry-run", "--json"] + Self.twoSegments, environment: env)
        #expect(batch.status == 0, "\(batch.stderr)")
        for r in [plan, batch] {
            let all = try jsonObject(r.stdout)
            let inputs = try #require(all["inputs"] as? [[String: Any]])
            #expect(inputs.compactMap { $0["relative"] as? String } == ["a.mp4", "b.mp4"], "\(inputs)")
            #expect((all["skipped"] as? [String: String])?.keys.sorted() == ["notes.txt"])
            // a.mp4: two segments on two slots (2.852 s); b.mp4: one of 25 frames (2.852 s); plus each one's checks.
            let sum = inputs.compactMap { ($0["estimate"] as? [String: Any])?["seconds"] as? Double }.reduce(0, +)
            let encode = inputs.compactMap { ($0["estimate"] as? [String: Any])?["encode_seconds"] as? Double }
            #expect(encode.count == 2 && encode.allSatisfy { abs($0 - 2.852) < 0.001 }, "\(encode)")
            #expect(abs((all["seconds"] as? Double ?? 0) - sum) < 0.001)
        }
        #expect(!FileManager.default.fileExists(atPath: out.path), "a dry run creates no OUTDIR")
        let status = try vslice(["status", "--json"], environment: ["VSLICE_HOME": home])
        #expect((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [Any])?.isEmpty == true, "\(status.stdout)")
        let text = try vslice(["batch", clips.path, "-o", out.path, "--jobs", "2", "--dry-run"] + Self.twoSegments, environment: env)
        #expect(text.stdout.contains("a.mp4: 50 frames, 2 segments, about ") && text.stdout.contains("notes.txt: skipped")
                && text.stdout.contains("batch: 2 inputs planned, about "), "\(text.stdout)")
        #expect(text.stderr.contains("planning file 2 of 3: b.mp4"), "\(text.stderr)")
    }

    @Test("vslice batch shows file i of N and the batch's ETA, in its progress line and its NDJSON events")
    func batchPosition() throws {
        let dir = try Paths.scratch("progress-batch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clips = dir.appendingPathComponent("clips"), out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: clips, withIntermediateDirectories: true)
        for name in ["a", "b", "c"] { try makeClip(clips.appendingPathComponent("\(name).mp4").path, seconds: 2) }
        let cmd = try SlowModel.perFrame(dir, delay: 0.04)
        let args = ["batch", clips.path, "-o", out.path, "--process", cmd] + SlowModel.oneSegment
        let r = try vslice(args + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let events = try ndjson(r.stdout)
        let started = events.filter { $0["event"] as? String == "task_started" }
        #expect(started.map { "\($0["file"] ?? "?")/\($0["files"] ?? "?")" } == ["1/3", "2/3", "3/3"], "\(started)")
        let progress = events.filter { $0["event"] as? String == "progress" }
        #expect(!progress.isEmpty && progress.allSatisfy { $0["files"] as? Int == 3 }, "\(progress)")
        // The batch's ETA adds the files after this one: more than the file's own before the last file, the same on it.
        for p in progress {
            guard let eta = p["eta_seconds"] as? Double, let all = p["batch_eta_seconds"] as? Double, let file = p["file"] as? Int else { continue }
            #expect(file == 3 ? abs(all - eta) < 0.2 : all > eta, "\(p)")
        }
        #expect(progress.contains { $0["file"] as? Int == 2 && $0["batch_eta_seconds"] != nil }, "\(progress)")
        // The text: each file's line and the plain progress lines (not a terminal) name the file's place.
        let text = try vslice(args + ["--force"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stderr.contains("file 2/3, batch ETA") && text.stdout.contains("file 3 of 3: "), "\(text.stderr)\n\(text.stdout)")
    }
}
