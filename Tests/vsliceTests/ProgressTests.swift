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
}
