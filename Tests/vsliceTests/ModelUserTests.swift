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

@Suite("issue 30, item 5: a batch of a model user's clips")
struct ModelUserBatchTests {
    static func clips(_ dir: URL, _ names: [String], seconds: Int = 1, sizes: [String]? = nil) throws -> URL {
        let inDir = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inDir, withIntermediateDirectories: true)
        for (i, n) in names.enumerated() {
            try makeClip(inDir.appendingPathComponent("\(n).mp4").path, size: sizes?[i] ?? "160x90", seconds: seconds)
        }
        return inDir
    }

    @Test("a missing module stops the batch at the first input: exit 2, one message (one traceback), the inputs after it not started")
    func missingModule() throws {
        let dir = try Paths.scratch("mu-stop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inDir = try Self.clips(dir, ["a", "b", "c"])
        let outDir = dir.appendingPathComponent("out").path
        let run = try vslice(["batch", inDir.path, "-o", outDir, "--process", "\(ModelUser.python) -c 'import no_such_module_vslice'", "--json"])
        // Before: the same traceback once per input, no file name, exit 6.
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.components(separatedBy: "No module named 'no_such_module_vslice'").count == 2, "\(run.stderr)")
        #expect(run.stderr.contains("stopped at a.mp4, before the 2 inputs after it"), "\(run.stderr)")
        let events = try ndjson(run.stdout)
        #expect(events.filter { $0["event"] as? String == "task_failed" }.count == 1)
        let done = try lastEvent(run.stdout, "batch_done")
        #expect(done["not_started"] as? Int == 2 && (done["stopped"] as? String)?.contains("No module named") == true)
    }

    @Test("a failure of one input goes on with the others, and its error line names it (exit 6)")
    func oneInputFails() throws {
        let dir = try Paths.scratch("mu-one")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inDir = try Self.clips(dir, ["a", "b"], sizes: ["160x90", "256x144"])
        let script = dir.appendingPathComponent("picky.sh")
        try """
            if [ "$VSLICE_WIDTH" = 160 ]; then echo "RuntimeError: the width must be a multiple of 64" >&2; exit 1; fi
            exec cat

            """.write(to: script, atomically: true, encoding: .utf8)
        let outDir = dir.appendingPathComponent("out")
        let run = try vslice(["batch", inDir.path, "-o", outDir.path, "--process", "sh \(script.path)", "-q"])
        #expect(run.status == 6, "\(run.stderr)")
        #expect(run.stderr.contains("vslice: a.mp4: check --process:") && run.stderr.contains("multiple of 64"), "\(run.stderr)")
        #expect(try oracleProblems(source: inDir.appendingPathComponent("b.mp4").path, output: outDir.appendingPathComponent("b.mp4").path).isEmpty)
    }

    @Test("resume --all carries on an interrupted batch: its unfinished task, then the inputs it had not started")
    func resumeAllCarriesOn() throws {
        let dir = try Paths.scratch("mu-rall")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inDir = try Self.clips(dir, ["a", "b", "c"], seconds: 2)
        let outDir = dir.appendingPathComponent("out")
        let home = dir.appendingPathComponent("home").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let killed = try vslice(["batch", inDir.path, "-o", outDir.path] + ModelUser.cut + ["-q"],
                                environment: ["VSLICE_HOME": home, "VSLICE_FAULT": "segment-done:3"])
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        // Before: resume --all finished b's task and forgot c.
        let resumed = try Proc.run("/bin/sh", ["-c", "cd / && exec \"$0\" resume --all -q", Paths.vslice],
                                   environment: ["VSLICE_HOME": home, "VSLICE_ELEMENT_COST": testElementCost])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        for n in ["a", "b", "c"] {
            #expect(try oracleProblems(source: inDir.appendingPathComponent("\(n).mp4").path,
                                       output: outDir.appendingPathComponent("\(n).mp4").path).isEmpty, "\(n)")
        }
        let again = try vslice(["resume", "--all"], environment: ["VSLICE_HOME": home])
        #expect(again.status == 0 && again.stdout.contains("nothing to resume"), "\(again.stdout) \(again.stderr)")
    }
}

@Suite("issue 30, items 6 and 7: processor logs, and the smaller findings")
struct ModelUserSmallerTests {
    /// Fails segment 1's first attempt (after saying so on stderr); logs what the check is told.
    static func flaky(_ dir: URL) throws -> String {
        let script = dir.appendingPathComponent("flaky.sh")
        try """
            if [ -n "$VSLICE_CHECK" ]; then echo "check segment=$VSLICE_SEGMENT task=$VSLICE_TASK" >> '\(dir.path)/check.env'; exec cat; fi
            echo "segment $VSLICE_SEGMENT: loading model" >&2
            if [ "$VSLICE_SEGMENT" = 1 ] && [ ! -f '\(dir.path)/failed-once' ]; then
                touch '\(dir.path)/failed-once'; echo 'RuntimeError: CUDA out of memory' >&2; exit 1
            fi
            exec cat

            """.write(to: script, atomically: true, encoding: .utf8)
        return "sh \(script.path)"
    }

    @Test("a retried segment's log is named in its message and kept after success (vslice logs, status); --keep-logs keeps all; the check is no segment (VSLICE_SEGMENT=-1)")
    func logs() throws {
        let dir = try Paths.scratch("mu-logs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let home = dir.appendingPathComponent("home").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let env = ["VSLICE_HOME": home]
        let args = ["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", try Self.flaky(dir), "--segment-seconds", "1",
                    "--min-split-seconds", "0", "--jobs", "1"]
        let run = try vslice(args + ["--json"], environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        let task = try #require(try lastEvent(run.stdout, "task_started")["task"] as? String)
        let failed = try #require(try ndjson(run.stdout).first { $0["event"] as? String == "segment_failed" })
        #expect((failed["error"] as? String)?.contains("the processor's log: `vslice logs \(task.prefix(8)) 1` (seg-00001.process.log)") == true, "\(failed)")
        // Before: the log went with the work folder, and status still named the folder.
        let logs = try vslice(["logs", String(task.prefix(8)), "1"], environment: env)
        #expect(logs.status == 0 && logs.stdout.contains("RuntimeError: CUDA out of memory")
                && logs.stdout.components(separatedBy: "segment 1: loading model").count == 3, "\(logs.stdout) \(logs.stderr)")
        let status = try vslice(["status", String(task.prefix(8))], environment: env)
        #expect(status.stdout.contains("(removed)") && status.stdout.contains("processor logs: segments 1 in \(home)/logs/"), "\(status.stdout)")
        #expect(try vslice(["logs", String(task.prefix(8)), "0"], environment: env).stdout.contains("no processor log for segment 0"))
        let check = try String(contentsOf: dir.appendingPathComponent("check.env"), encoding: .utf8)
        #expect(check == "check segment=-1 task=check\n", "\(check)")
        // --keep-logs: every segment's.
        let all = try vslice(args + ["--force", "--keep-logs", "--json"], environment: env)
        #expect(all.status == 0, "\(all.stderr)")
        let second = try #require(try lastEvent(all.stdout, "task_started")["task"] as? String)
        let printed = try vslice(["logs", String(second.prefix(8))], environment: env)
        #expect((0..<6).allSatisfy { printed.stdout.contains("==> segment \($0): ") && printed.stdout.contains("segment \($0): loading model") },
                "\(printed.stdout)")
    }

    @Test("resume TASK keeps the task's --max-attempts and --stall-timeout; a replaced task's resume says it was replaced, not 'output exists'")
    func resumeOptions() throws {
        let dir = try Paths.scratch("mu-ropts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let script = dir.appendingPathComponent("fails.sh")
        try "if [ -n \"$VSLICE_CHECK\" ]; then exec cat; fi\nif [ \"$VSLICE_SEGMENT\" = 1 ]; then echo 'no GPU' >&2; exit 1; fi\nexec cat\n"
            .write(to: script, atomically: true, encoding: .utf8)
        let args = ["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", "sh \(script.path)", "--segment-seconds", "1",
                    "--min-split-seconds", "0", "--jobs", "1", "--max-attempts", "1", "--stall-timeout", "60", "--json"]
        let first = try vslice(args)
        #expect(first.status == 1)
        let task = try #require(try lastEvent(first.stdout, "task_started")["task"] as? String)
        // Before: the resume tried 3 times (the default), forgetting --max-attempts 1.
        let resumed = try vslice(["resume", String(task.prefix(8)), "--json"])
        #expect(resumed.status == 1)
        #expect(try ndjson(resumed.stdout).filter { $0["event"] as? String == "segment_failed" }.count == 1, "\(resumed.stdout)")
        // Replaced: an unfinished task with nothing finished is replaced quietly by a run with other settings.
        let other = dir.appendingPathComponent("other.mp4").path
        let quick = ["transcode", Paths.fixture("h264_aac.mp4"), "-o", other, "-q"]
        let killed = try vslice(quick, environment: ["VSLICE_FAULT": "segment-encode"])
        #expect(killed.status == SIGKILL)
        let ids = try jsonObject("{\"t\":" + (try vslice(["status", "--json", "--limit", "1"])).stdout + "}")["t"] as? [[String: Any]]
        let old = try #require(ids?.first?["id"] as? String)
        #expect(try vslice(quick + ["--crf", "30"]).status == 0)
        let again = try vslice(["resume", String(old.prefix(8))])
        #expect(again.status == 2)
        #expect(again.stderr.contains("was replaced by task") && !again.stderr.contains("output exists"), "\(again.stderr)")
    }

    @Test("--segment-seconds on a clip with one keyframe: one segment, and the plan and the transcode say why and what cuts it; '1 segment'")
    func oneKeyframe() throws {
        let dir = try Paths.scratch("mu-onekey")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("onekey.mp4").path
        try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3", "-c:v", "libx264", "-g", "1000", src])
        let plan = try vslice(["plan", src, "--segment-seconds", "1", "--min-split-seconds", "0"])
        #expect(plan.status == 0)
        #expect(plan.stdout.contains("75 frames, 1 segment (") && plan.stdout.contains("cuts at keyframes")
                && plan.stdout.contains("--split frames --segment-frames N cuts between keyframes"), "\(plan.stdout)")
        let run = try vslice(["transcode", src, "-o", dir.appendingPathComponent("out.mp4").path, "--segment-seconds", "1", "--min-split-seconds", "0"])
        #expect(run.status == 0 && run.stderr.contains("--split frames --segment-frames N"), "\(run.stderr)")
    }

    /// Whether `text` is one JSON value ("one") or one per line ("lines"), as Python's json module reads it
    /// (`json.load` refuses a second document: "Extra data").
    static func isJSON(_ text: String, _ mode: String, in dir: URL) throws -> Bool {
        let file = dir.appendingPathComponent("out-\(UUID().uuidString.prefix(6)).json")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let code = mode == "one" ? "import json,sys; json.load(open(sys.argv[1]))"
            : "import json,sys; lines=open(sys.argv[1]).read().splitlines(); assert lines; [json.loads(l) for l in lines]"
        return try Proc.run(ModelUser.python, ["-c", code, file.path]).status == 0
    }

    @Test("every command's --json is one JSON value (events: one per line), on success and on failure")
    func jsonOutputs() throws {
        let dir = try Paths.scratch("mu-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4"), out = dir.appendingPathComponent("out.mp4").path
        let bin = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Paths.fixture("no_audio.mp4"), toPath: bin.appendingPathComponent("a.mp4").path)
        let transcode = try vslice(["transcode", src, "-o", out, "--json"])
        let task = String(try #require(try lastEvent(transcode.stdout, "task_started")["task"] as? String).prefix(8))
        let runs: [(args: [String], mode: String)] = [
            (["transcode", src, "-o", out, "--json", "--force"], "lines"),
            (["transcode", src, "-o", out, "--json", "--crf", "99"], "lines"),
            (["batch", bin.path, "-o", dir.appendingPathComponent("bout").path, "--json"], "lines"),
            (["resume", "--all", "--json"], "lines"),
            (["plan", src, "--json"], "one"), (["plan", src, "--json", "--crf", "99"], "one"),
            // Before: the report, then an error event.
            (["verify", out, "--against", Paths.fixture("vfr.mp4"), "--json"], "one"), (["verify", out, "--against", src, "--json"], "one"),
            (["probe", src, "--json"], "one"), (["probe", "/nonexistent.mp4", "--json"], "one"),
            (["status", "--json"], "one"), (["status", task, "--json"], "one"), (["status", "ffffffff", "--json"], "one"),
            (["report", "--json"], "one"), (["report", task, "--json"], "one"),
            (["cancel", task, "--json"], "one"), (["gc", "--dry-run", "--json"], "one"),
            (["segment", "--work-dir", dir.appendingPathComponent("none").path, "--json"], "one"),
        ]
        for r in runs {
            let run = try vslice(r.args)
            #expect(try Self.isJSON(run.stdout, r.mode, in: dir), "\(r.args.joined(separator: " ")) → \(run.status): \(run.stdout.prefix(600))")
        }
    }
}
