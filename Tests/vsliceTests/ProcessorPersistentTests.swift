import Foundation
import Testing

/// `--process-persistent`: one program per job slot, one Y4M stream per segment on the same stdin.
@Suite("--process-persistent: a processor that stays loaded")
struct ProcessorPersistentTests {
    static var persist: String { Processors.script("\(Processors.tests)/persist.py") }
    static let lossless = ["--codec-opt", "qp=0", "-q"]

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("started once per job slot (and once by the check), one stream per segment with its frame count; the frames equal the per-segment mode's")
    func oncePerSlot() throws {
        let dir = try Paths.scratch("pp-slots")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let starts = dir.appendingPathComponent("starts").path, streams = dir.appendingPathComponent("streams").path
        let out = dir.appendingPathComponent("kept.mkv").path, each = dir.appendingPathComponent("each.mkv").path
        let split = ["--segment-seconds", "1", "--min-split-seconds", "0", "--jobs", "2", "--overlap", "1,2"]
        let run = try vslice(["transcode", src, "-o", out, "--process", Self.persist, "--process-persistent", "--json"] + split + Self.lossless,
                             environment: ["PERSIST_STARTS": starts, "PERSIST_STREAMS": streams])
        #expect(run.status == 0, "\(run.stderr)")
        let segments = try #require(try lastEvent(run.stdout, "task_done")["segments"] as? Int)
        #expect(segments == 6)
        #expect(Self.lines(starts).map { $0.split(separator: " ").last! } == ["check", "run", "run"], "\(Self.lines(starts))")
        // The check's two streams, then each segment once, its header counting its buffer frames too.
        let seen = Self.lines(streams)
        #expect(seen.count == 2 + segments, "\(seen)")
        #expect(Set(seen.dropFirst(2).map { $0.split(separator: " ")[1] }) == Set((0..<segments).map { "\($0)" }), "\(seen)")
        #expect(seen.dropFirst(2).allSatisfy { ["31", "32", "33"].contains($0.split(separator: " ")[2]) }, "\(seen)")
        let plain = try vslice(["transcode", src, "-o", each, "--process", "cat"] + split + Self.lossless)
        #expect(plain.status == 0, "\(plain.stderr)")
        let kept = try FFmpegOracle.frameMD5s(out), perSegment = try FFmpegOracle.frameMD5s(each)
        #expect(kept.count == 180 && kept == perSegment)
        #expect(try oracleProblems(source: src, output: out).isEmpty)
    }

    @Test("--gpus with --slots-per-gpu K: K programs kept loaded per device, each told its own; the check runs on the first slot's device, K at once where it times the program")
    func slotsPerGPU() throws {
        let dir = try Paths.scratch("pp-gpus")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let told = dir.appendingPathComponent("gpus").path
        let out = dir.appendingPathComponent("kept.mkv").path
        let gpus = ["--gpus", "0,1", "--slots-per-gpu", "2", "--process-persistent"]
        let run = try vslice(["transcode", src, "-o", out, "--process", Self.persist, "--segment-seconds", "1", "--min-split-seconds", "0"]
                             + gpus + Self.lossless, environment: ["PERSIST_GPUS": told])
        #expect(run.status == 0, "\(run.stderr)")
        // Four slots (--jobs defaults to 2 devices × 2), one program each, two per device; the check (timing
        // fixed by the tests' VSLICE_ELEMENT_COST) is one program, on device 0.
        #expect(Self.lines(told).sorted() == ["check 0 0", "run 0 0", "run 0 0", "run 1 1", "run 1 1"], "\(Self.lines(told))")
        try FileManager.default.removeItem(atPath: told)
        // Where the plan counts the timing, the check times as many programs at once as device 0 will run: two.
        let plan = try vslice(["plan", src, "--process", Self.persist] + gpus, environment: ["PERSIST_GPUS": told, "VSLICE_ELEMENT_COST": ""])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(Self.lines(told) == ["check 0 0", "check 0 0"], "\(Self.lines(told))")
        #expect(plan.stdout.contains("2 programs at once"), "\(plan.stdout)")
        let bad = try vslice(["plan", src, "--process", Self.persist, "--slots-per-gpu", "2"])
        #expect(bad.status == 2 && bad.stderr.contains("--slots-per-gpu needs --gpus"), "\(bad.stderr)")
    }

    @Test("the temporal denoiser kept loaded, with --overlap 2,2, equals one run over the whole video")
    func temporalDenoiser() throws {
        let dir = try Paths.scratch("pp-denoise")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("noisy.mp4").path
        try Processors.noisyClip(src)
        let single = try Processors.onePass(src, Processors.denoise)
        let out = dir.appendingPathComponent("out.mkv").path
        let run = try vslice(["transcode", src, "-o", out, "--process", Processors.denoise, "--process-persistent", "--overlap", "2,2",
                              "--jobs", "2"] + ProcessorTests.frameArgs)
        #expect(run.status == 0, "\(run.stderr)")
        let mine = try FFmpegOracle.frameMD5s(out)
        #expect(single.count == 75 && mine == single, "\(zip(mine, single).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset))")
    }

    @Test("a program killed between two segments is started again for the next one, and the output is right")
    func restartedAfterDeath() throws {
        let dir = try Paths.scratch("pp-death")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let starts = dir.appendingPathComponent("starts").path
        let out = dir.appendingPathComponent("out.mkv").path, each = dir.appendingPathComponent("each.mkv").path
        let split = ["--segment-seconds", "1", "--min-split-seconds", "0", "--jobs", "1"]
        let run = try vslice(["transcode", src, "-o", out, "--process", Self.persist, "--process-persistent"] + split + Self.lossless,
                             environment: ["PERSIST_STARTS": starts, "PERSIST_DIE_ONCE": dir.appendingPathComponent("died").path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Self.lines(starts).map { $0.split(separator: " ").last! } == ["check", "run", "run"], "\(Self.lines(starts))")
        let plain = try vslice(["transcode", src, "-o", each, "--process", "cat"] + split + Self.lossless)
        #expect(plain.status == 0, "\(plain.stderr)")
        let (a, b) = (try FFmpegOracle.frameMD5s(out), try FFmpegOracle.frameMD5s(each))
        #expect(a.count == 180 && a == b)
    }

    @Test("one that cannot take a second header is refused before any work (exit 2, no task, no work folder)")
    func secondHeader() throws {
        let dir = try Paths.scratch("pp-onestream")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process",
                              Processors.script("\(Processors.tests)/onestream.py"), "--process-persistent"])
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains("failed on two streams") && run.stderr.contains("expected FRAME, got 'YUV4MPEG2"), "\(run.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        // Without --process-persistent the same program is fine.
        let plain = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process",
                                Processors.script("\(Processors.tests)/onestream.py"), "-q"])
        #expect(plain.status == 0, "\(plain.stderr)")
    }

    @Test("a wrong count with exit 0 kept loaded (a frame too many) fails at once, not retried")
    func wrongCount() throws {
        let dir = try Paths.scratch("pp-count")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", Self.persist, "--process-persistent",
                              "--segment-seconds", "1", "--min-split-seconds", "0", "--jobs", "1", "--json"],
                             environment: ["PERSIST_EXTRA": "1"])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(try ndjson(run.stdout).filter { $0["event"] as? String == "segment_failed" }.count == 1, "\(run.stdout.suffix(600))")
        #expect(run.stderr.contains("more"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("Ctrl-C twice and kill -9 of vslice leave none of the kept programs running", arguments: ["sigint", "sigkill"])
    func noneLeft(_ how: String) throws {
        let dir = try Paths.scratch("pp-kill")
        defer { try? FileManager.default.removeItem(at: dir) }
        let marker = "kept\(Int.random(in: 100_000...999_999))"
        let out = dir.appendingPathComponent("out.mp4").path
        let bg = try Background(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", "\(Self.persist) \(marker)",
                                 "--process-persistent", "--segment-seconds", "1", "--min-split-seconds", "0", "--jobs", "2", "-q"],
                                environment: ["PERSIST_HANG": "1"])
        #expect(try bg.waitUntil(timeout: 60) { try Processors.running(marker).filter { $0.contains("python") }.count >= 2 })
        if how == "sigint" {
            bg.signal(SIGINT)
            Thread.sleep(forTimeInterval: 0.3)
            bg.signal(SIGINT)
        } else {
            bg.signal(SIGKILL)
        }
        _ = bg.finish(timeout: 30)
        var left = try Processors.running(marker)
        for _ in 0..<40 where !left.isEmpty {
            Thread.sleep(forTimeInterval: 0.05)
            left = try Processors.running(marker)
        }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("the real model kept loaded: once per slot, the same frames as one program per segment; help says what it needs")
    func realModel() throws {
        try Model.require()
        let dir = try Paths.scratch("pp-model")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("tiny.mp4").path
        try Model.tinyClip(src)
        let split = ["--split", "frames", "--segment-frames", "3", "--min-split-seconds", "0", "--jobs", "2"] + Self.lossless
        var md5: [String: [String]] = [:], starts: [String: Int] = [:]
        for mode in ["each", "kept"] {
            let log = dir.appendingPathComponent("starts-\(mode)").path
            let out = dir.appendingPathComponent("\(mode).mkv").path
            let run = try vslice(["transcode", src, "-o", out, "--process", Model.superres] + (mode == "kept" ? ["--process-persistent"] : []) + split,
                                 environment: ["SUPERRES_STARTS": log])
            #expect(run.status == 0, "\(run.stderr)")
            md5[mode] = try FFmpegOracle.frameMD5s(out)
            starts[mode] = Self.lines(log).count
        }
        #expect(md5["kept"]?.count == 10 && md5["kept"] == md5["each"])
        // The check's start, then one per segment (4), or one per slot (2).
        #expect(starts == ["each": 5, "kept": 3], "\(starts)")
        let help = try vslice(["help", "transcode"])
        #expect(help.stdout.contains("--process-persistent") && help.stdout.contains("XVSLICE_FRAMES"), "\(help.stdout.suffix(400))")
    }
}
