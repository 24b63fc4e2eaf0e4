import Foundation
import Testing

/// Issue 30: what a model user (an ML engineer with a folder of short clips and a model script) trips over. Each
/// test reproduces what was seen and shows the new behaviour, judged by ffprobe/ffmpeg.
enum ModelUser {
    static let python = Processors.python
    /// A 5-second clip: five segments of 25 frames with `cut`.
    static let cut = ["--split", "frames", "--segment-frames", "25", "--min-split-seconds", "0", "--jobs", "1"]

    /// Each frame's largest luma (ffmpeg's signalstats): black frames are at most about 16.
    static func lumaMax(_ path: String) throws -> [Int] {
        let r = try Proc.run("ffprobe", ["-v", "error", "-f", "lavfi", "-i", "movie=\(path),signalstats",
                                         "-show_entries", "frame_tags=lavfi.signalstats.YMAX", "-of", "csv=p=0"])
        guard r.status == 0 else { throw OracleError("signalstats failed: \(r.stderr)") }
        return r.stdout.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// A raw rgb24 script `proc/run.py` that imports its model from `proc/model.py` beside it, or reads
    /// `weights` (a path in its environment, named on no command line) when given.
    static func rawScript(_ dir: URL) throws -> String {
        let proc = dir.appendingPathComponent("proc")
        try FileManager.default.createDirectory(at: proc, withIntermediateDirectories: true)
        try """
            import os, sys
            import model
            w, h = int(os.environ["VSLICE_WIDTH"]), int(os.environ["VSLICE_HEIGHT"])
            n = w * h * 3
            gain = open(os.environ["WEIGHTS"]).read().strip() if os.environ.get("WEIGHTS") else "1"
            while True:
                b = sys.stdin.buffer.read(n)
                if len(b) < n:
                    break
                sys.stdout.buffer.write(model.apply(b) if gain == "1" else bytes(n))
            sys.stdout.buffer.flush()

            """.write(to: proc.appendingPathComponent("run.py"), atomically: true, encoding: .utf8)
        try setModel(dir, black: false)
        return "\(python) \(proc.path)/run.py"
    }

    static func setModel(_ dir: URL, black: Bool) throws {
        try (black ? "def apply(b):\n    return bytes(len(b))\n" : "def apply(b):\n    return b\n")
            .write(to: dir.appendingPathComponent("proc/model.py"), atomically: true, encoding: .utf8)
    }
}

@Suite("issue 30, item 1: a resume never mixes two versions of the program")
struct ModelUserResumeTests {
    @Test("interrupted at 3 of 5, the module the script imports edited (black frames): refused (exit 5, naming it); put back: resumed; --fresh: all new frames")
    func importedModule() throws {
        let dir = try Paths.scratch("mu-module")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mp4").path
        try makeClip(src, seconds: 5)
        let cmd = try ModelUser.rawScript(dir)
        let args = ["transcode", src, "-o", out, "--process", cmd, "--process-format", "rgb24"] + ModelUser.cut
        let killed = try vslice(args + ["-q"], environment: ["VSLICE_FAULT": "segment-done:3"])
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        try ModelUser.setModel(dir, black: true)
        // Before: exit 0, frames 1–75 from the old module, 76–125 black.
        let edited = try vslice(args + ["-q"])
        #expect(edited.status == 5, "\(edited.stderr)")
        #expect(edited.stderr.contains("proc/model.py (beside the program) changed") && edited.stderr.contains("--fresh"), "\(edited.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // The module put back as it was: the done segments are kept (Python's __pycache__ does not count).
        try ModelUser.setModel(dir, black: false)
        let resumed = try vslice(args + ["--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try lastEvent(resumed.stdout, "planned")["segments_done"] as? Int == 3)
        #expect(try ModelUser.lumaMax(out).allSatisfy { $0 > 100 })
        #expect(try oracleProblems(source: src, output: out).isEmpty)
        // Edited again, --fresh: every frame is the new module's.
        try ModelUser.setModel(dir, black: true)
        let fresh = try vslice(args + ["--fresh", "--force", "-q"])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        let luma = try ModelUser.lumaMax(out)
        #expect(luma.count == 125 && luma.allSatisfy { $0 < 30 }, "\(luma)")
    }

    @Test("weights named by --process-deps (a folder elsewhere): changed after an interruption, the resume is refused naming the file; --fresh starts over")
    func weightsByDeps() throws {
        let dir = try Paths.scratch("mu-weights")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mkv").path
        try makeClip(src, seconds: 5)
        let cmd = try ModelUser.rawScript(dir)
        let models = dir.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        let weights = models.appendingPathComponent("gain.txt")
        try "1\n".write(to: weights, atomically: true, encoding: .utf8)
        let env = ["WEIGHTS": weights.path]
        let args = ["transcode", src, "-o", out, "--process", cmd, "--process-format", "rgb24", "--process-deps", models.path] + ModelUser.cut + ["-q"]
        let killed = try vslice(args, environment: env.merging(["VSLICE_FAULT": "segment-done:3"]) { $1 })
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        try "0\n".write(to: weights, atomically: true, encoding: .utf8)
        let changed = try vslice(args, environment: env)
        #expect(changed.status == 5, "\(changed.stderr)")
        #expect(changed.stderr.contains("the file \(weights.path) (beside the program) changed"), "\(changed.stderr)")
        let fresh = try vslice(args + ["--fresh"], environment: env)
        #expect(fresh.status == 0, "\(fresh.stderr)")
        let luma = try ModelUser.lumaMax(out)
        #expect(luma.count == 125 && luma.allSatisfy { $0 < 30 }, "\(luma)")
    }

    @Test("a program's own identity in its Y4M header (XVSLICE_ID): another one on resume is refused (exit 5); a segment saying another than the check fails")
    func identityInHeader() throws {
        let dir = try Paths.scratch("mu-id")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mp4").path
        try makeClip(src, seconds: 5)
        // Elsewhere than any folder vslice looks through: only the header can tell the model changed.
        let script = dir.appendingPathComponent("id.py")
        try """
            import os, sys
            ident = os.environ["MODEL_ID"]
            if os.environ.get("VSLICE_CHECK") is None and os.environ["VSLICE_SEGMENT"] == os.environ.get("ODD_SEGMENT"):
                ident = "odd"
            i, o = sys.stdin.buffer, sys.stdout.buffer
            o.write(i.readline().rstrip(b"\\n") + b" XVSLICE_ID=" + ident.encode() + b"\\n")
            while True:
                b = i.read(1 << 16)
                if not b:
                    break
                o.write(b)

            """.write(to: script, atomically: true, encoding: .utf8)
        let args = ["transcode", src, "-o", out, "--process", "\(ModelUser.python) -c \"exec(open('\(script.path)').read())\""] + ModelUser.cut + ["-q"]
        let killed = try vslice(args, environment: ["MODEL_ID": "esrgan-v1", "VSLICE_FAULT": "segment-done:3"])
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        let other = try vslice(args, environment: ["MODEL_ID": "esrgan-v2"])
        #expect(other.status == 5, "\(other.stderr)")
        #expect(other.stderr.contains("'esrgan-v2' (XVSLICE_ID), where it said 'esrgan-v1'"), "\(other.stderr)")
        // The same identity but segment 4's program says another: that segment fails, nothing is published.
        let odd = try vslice(args, environment: ["MODEL_ID": "esrgan-v1", "ODD_SEGMENT": "4"])
        #expect(odd.status == 1, "\(odd.stderr)")
        #expect(odd.stderr.contains("says it is 'odd' (XVSLICE_ID), where the check before the task heard 'esrgan-v1'"), "\(odd.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let same = try vslice(args, environment: ["MODEL_ID": "esrgan-v1"])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(try oracleProblems(source: src, output: out).isEmpty)
    }
}

@Suite("issue 30, items 2 and 3: sizes, and text on stdout")
struct ModelUserPipeTests {
    static var upscale: String { "\(ModelUser.python) \(Processors.tests)/upscale_rgb.py" }

    @Test("a 2x raw model without a size: exit 2 naming the size expected, the size it writes and --process-scale 2; a wrong --process-size the same")
    func sizeMismatch() throws {
        let dir = try Paths.scratch("mu-size")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let src = Paths.fixture("h264_aac.mp4")   // 320x180
        let bare = try vslice(["transcode", src, "-o", out, "--process", Self.upscale, "--process-format", "rgb24"])
        #expect(bare.status == 2)
        // Before: "the processor gave more than 5 frames for 5 input frames".
        #expect(bare.stderr.contains("where 320x180 rgb24 (the input's size") && bare.stderr.contains("it writes 640x360 frames")
                && bare.stderr.contains("Give --process-scale 2 (or --process-size 640x360)"), "\(bare.stderr)")
        let wrong = try vslice(["transcode", src, "-o", out, "--process", Self.upscale, "--process-format", "rgb24", "--process-size", "640x362"])
        #expect(wrong.status == 2)
        // Before: "ended inside a frame (… bytes after frame 4)" alone.
        #expect(wrong.stderr.contains("where 640x362 rgb24 (--process-size 640x362) is 695040")
                && wrong.stderr.contains("Give --process-scale 2"), "\(wrong.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test("a batch over a folder of mixed sizes with a 2x raw model and --process-scale 2: every output twice its input's size")
    func mixedSizes() throws {
        let dir = try Paths.scratch("mu-mixed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inDir = dir.appendingPathComponent("in"), outDir = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: inDir, withIntermediateDirectories: true)
        let sizes = ["a": (160, 90), "b": (256, 144), "c": (200, 200)]
        for (name, (w, h)) in sizes { try makeClip(inDir.appendingPathComponent("\(name).mp4").path, size: "\(w)x\(h)", seconds: 1) }
        let run = try vslice(["batch", inDir.path, "-o", outDir.path, "--process", Self.upscale, "--process-format", "rgb24",
                              "--process-scale", "2", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        for (name, (w, h)) in sizes {
            let out = outDir.appendingPathComponent("\(name).mp4").path
            let v = try #require(try FFprobe.stream(out, "v"))
            #expect(v["width"] as? Int == 2 * w && v["height"] as? Int == 2 * h, "\(name): \(v)")
            // Against the source scaled the same way by ffmpeg (each pixel doubled: nearest neighbour).
            let src = inDir.appendingPathComponent("\(name).mp4").path
            let scaled = dir.appendingPathComponent("\(name)-scaled.mkv").path
            try FidelityMedia.ffmpeg(["-i", src, "-vf", "scale=\(2 * w):\(2 * h):flags=neighbor", "-c:v", "libx264", "-qp", "0", "-an", scaled])
            let problems = try oracleProblems(source: src, output: out, expect: Expected(size: "\(2 * w)x\(2 * h)", picture: .reference(scaled)))
            #expect(problems.isEmpty, "\(name): \(problems)")
        }
    }

    @Test("text on stdout is named as such: before the first frame (raw and y4m) at the check, exit 2; mid-run, the segment fails saying so")
    func textOnStdout() throws {
        let dir = try Paths.scratch("mu-text")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let src = Paths.fixture("h264_aac.mp4")
        let raw = ["transcode", src, "-o", out, "--process", Self.upscale, "--process-format", "rgb24", "--process-scale", "2"]
        let start = try vslice(raw, environment: ["TALK": "start"])
        #expect(start.status == 2)
        #expect(start.stderr.contains("the processor wrote text on stdout: 'loading model' (before its first frame)")
                && start.stderr.contains("log to stderr"), "\(start.stderr)")
        let y4m = try vslice(["transcode", src, "-o", out, "--process", "\(ModelUser.python) -c \"print('loading model'); import sys; sys.stdout.flush(); sys.stdout.buffer.write(sys.stdin.buffer.read())\""])
        #expect(y4m.status == 2)
        #expect(y4m.stderr.contains("the processor wrote text on stdout: 'loading model'"), "\(y4m.stderr)")
        // After frame 30 of a segment: past the check's 5 frames. Before: "ended inside a frame (27 bytes after frame 50)".
        let mid = try vslice(raw + ["--segment-seconds", "2", "--min-split-seconds", "0", "--jobs", "1", "--json"], environment: ["TALK": "30"])
        #expect(mid.status == 1)
        #expect(mid.stderr.contains("the processor wrote text on stdout: '30 frames done' (after its frame 30)"), "\(mid.stderr)")
        #expect(!mid.stderr.contains("ended inside a frame"))
        #expect(try ndjson(mid.stdout).filter { $0["event"] as? String == "segment_failed" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
