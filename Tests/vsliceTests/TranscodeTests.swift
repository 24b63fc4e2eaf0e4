import Foundation
import Testing

/// Fast settings for tests: several segments even on the short fixtures.
let quickArgs = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "veryfast", "-q"]

@Suite("vslice transcode, checked with ffprobe/ffmpeg")
struct TranscodeTests {
    @Test("every good fixture: frames, timestamps, DTS, A/V durations and offset", arguments: goodFixtures)
    func fixture(_ name: String) throws {
        let dir = try Paths.scratch("tc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture(name), "-o", out] + quickArgs)
        #expect(run.status == 0, "\(run.stderr)")
        let problems = try oracleProblems(source: Paths.fixture(name), output: out)
        #expect(problems.isEmpty, "\(problems)")
        // No work folder or temporary file is left after success.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(left == ["out.mp4"], "\(left)")
    }

    @Test("mp4, mov and mkv outputs", arguments: ["mp4", "mov", "mkv"], ["h264_aac.mp4", "surround51.mkv", "offset_start.ts"])
    func containers(_ ext: String, _ name: String) throws {
        let dir = try Paths.scratch("ct")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.\(ext)").path
        let run = try vslice(["transcode", Paths.fixture(name), "-o", out] + quickArgs)
        #expect(run.status == 0, "\(run.stderr)")
        try expectOracle(source: Paths.fixture(name), output: out)
    }

    @Test("the other encoders: x265, VP9 and AV1 pass the oracle, quietly", arguments: [
        ("libx265", "mp4"), ("libvpx-vp9", "mkv"), ("libsvtav1", "mp4")])
    func otherEncoders(_ codec: String, _ ext: String) throws {
        let dir = try Paths.scratch("enc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.\(ext)").path
        let run = try vslice(["transcode", Paths.fixture("bframes_open_gop.mp4"), "-o", out, "--vcodec", codec,
                              "--min-split-seconds", "0", "--segment-seconds", "2", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.isEmpty, "encoder banners on stderr: \(run.stderr.prefix(300))")
        let name = try #require(["libx265": "hevc", "libvpx-vp9": "vp9", "libsvtav1": "av1"][codec])
        try expectOracle(source: Paths.fixture("bframes_open_gop.mp4"), output: out, expect: Expected(videoCodec: name))
    }

    @Test("PSNR against the source at the default CRF is at least 35 dB in every frame")
    func quality() throws {
        let dir = try Paths.scratch("psnr")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["h264_aac.mp4", "bframes_open_gop.mp4", "vfr.mp4"] {
            let out = dir.appendingPathComponent("\(name).mp4").path
            let run = try vslice(["transcode", Paths.fixture(name), "-o", out, "--min-split-seconds", "0",
                                  "--segment-seconds", "1", "-q"])
            #expect(run.status == 0, "\(run.stderr)")
            // Measured lowest frames: 38 to 40 dB.
            let p = try FFmpegOracle.framePSNR(out, Paths.fixture(name))
            #expect(p.min >= 35, "\(name): \(p)")
        }
    }

    @Test("--jobs 1 and --jobs 4 give the same frames and timestamps")
    func jobsDoNotChangeTiming() throws {
        let dir = try Paths.scratch("jobs")
        defer { try? FileManager.default.removeItem(at: dir) }
        var facts: [MediaFacts] = []
        for jobs in ["1", "4"] {
            let out = dir.appendingPathComponent("j\(jobs).mp4").path
            let run = try vslice(["transcode", Paths.fixture("bframes_open_gop.mp4"), "-o", out, "--jobs", jobs] + quickArgs)
            #expect(run.status == 0, "\(run.stderr)")
            facts.append(try MediaFacts(out))
        }
        #expect(facts[0].frames == facts[1].frames)
        #expect(facts[0].videoTimes == facts[1].videoTimes)
    }

    @Test("a file without audio gives an output without audio")
    func noAudio() throws {
        let dir = try Paths.scratch("na")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mkv").path
        #expect(try vslice(["transcode", Paths.fixture("no_audio.mp4"), "-o", out] + quickArgs).status == 0)
        #expect(try FFprobe.stream(out, "a") == nil)
        #expect(try FFprobe.stream(out, "v") != nil)
    }

    @Test("an existing output is left byte-identical without --force, replaced with it")
    func existingOutput() throws {
        let dir = try Paths.scratch("ex")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let original = Data("precious".utf8)
        try original.write(to: URL(fileURLWithPath: out))
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out] + quickArgs)
        #expect(run.status == 4)
        #expect(run.stderr.contains("--force"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == original)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.mp4"])
        let forced = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--force"] + quickArgs)
        #expect(forced.status == 0, "\(forced.stderr)")
        try expectOracle(source: Paths.fixture("h264_aac.mp4"), output: out)
    }

    @Test("bad options: exit 2, one line, no output or temp file left (bad input: HardeningTests)")
    func badOptions() throws {
        let dir = try Paths.scratch("bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let src = Paths.fixture("h264_aac.mp4")
        let cases: [(args: [String], code: Int32)] = [
            (["transcode", src, "-o", out, "--vcodec", "no-such-encoder"], 2),
            (["transcode", src, "-o", out, "--vcodec", "aac"], 2),
            (["transcode", src, "-o", out, "--jobs", "0"], 2),
            (["transcode", src, "-o", out, "--threads", "0"], 2),
            (["transcode", src, "-o", out, "--overlap", "x"], 2),
            (["transcode", src, "-o", out, "--codec-opt", "no-such-option=1"], 2),
            (["transcode", src, "-o", out, "--stall-timeout", "0"], 2),
            (["transcode", src, "-o", dir.appendingPathComponent("x.webm").path], 2),
            (["transcode", src, "-o", out, "--acodec", "pcm_s16be"], 2),
        ]
        for c in cases {
            let run = try vslice(c.args + ["-q"], timeout: 120)
            #expect(run.status == c.code, "\(c.args): \(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "\(c.args)")
        }
    }

    @Test("a hole in the source's audio timestamps becomes silence of the same length, in place")
    func audioGap() throws {
        let dir = try Paths.scratch("gap")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("gap.mkv").path
        // 1 s of audio dropped with its timestamps kept: packets jump from 2.005 s to 3.029 s.
        let make = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
                                           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
                                           "-af", "aselect='not(between(t,2,3))'", "-c:v", "libx264", "-preset", "ultrafast",
                                           "-c:a", "aac", src])
        try #require(make.status == 0, "\(make.stderr)")
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", src, "-o", out] + quickArgs)
        #expect(run.status == 0, "\(run.stderr)")
        try expectOracle(source: src, output: out, expect: Expected(audioSourceFilter: "aresample=async=1"))
        let detect = try Proc.run("ffmpeg", ["-nostdin", "-i", out, "-map", "0:a", "-af", "silencedetect=n=-50dB:d=0.3", "-f", "null", "-"])
        let starts = detect.stderr.matches(of: /silence_start: ([0-9.]+)/).compactMap { Double($0.1) }
        let lengths = detect.stderr.matches(of: /silence_duration: ([0-9.]+)/).compactMap { Double($0.1) }
        #expect(starts.count == 1 && abs(starts[0] - 2.026) < 0.03, "\(starts)")
        #expect(lengths.count == 1 && abs(lengths[0] - 1.0) < 0.03, "\(lengths)")
    }

    @Test("a 64 s clip with audio at the defaults: the balanced plan's segments, oracle checks pass")
    func longClip() throws {
        let dir = try Paths.scratch("long")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("long.mp4").path
        try makeClip(src, seconds: 64)
        let out = dir.appendingPathComponent("out.mkv").path
        let run = try vslice(["transcode", src, "-o", out, "--preset", "ultrafast", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try lastEvent(run.stdout, "task_done")
        // As many segments as `vslice plan` says for the same options: more than two per job, shrinking.
        let plan = try jsonObject(try vslice(["plan", src, "--json"]).stdout)
        let planned = try #require(plan["segments"] as? [[String: Any]]).compactMap { s in
            (s["last_frame"] as? Int).flatMap { last in (s["first_frame"] as? Int).map { last - $0 + 1 } }
        }
        #expect(planned.count > 2 * ProcessInfo.processInfo.activeProcessorCount, "\(planned)")
        #expect(planned.first! > planned.last!, "\(planned)")
        #expect(report["segments"] as? Int == planned.count)
        #expect(report["segment_frames"] as? [Int] == planned)
        let verify = try #require(report["verify"] as? [String: Any])
        #expect(verify["ok"] as? Bool == true)
        #expect(verify["output_frames"] as? Int == 1600)
        let events = try ndjson(run.stdout).compactMap { $0["event"] as? String }
        #expect(events.first == "task_started")
        #expect(events.filter { $0 == "segment_done" }.count == planned.count)
        try expectOracle(source: src, output: out)
    }

    @Test("--split scene: scdet finds the hard cuts of a generated clip; the output passes the oracle")
    func sceneSplit() throws {
        let dir = try Paths.scratch("scene")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("scenes.mp4").path
        // Three pictures: testsrc2 for 5.4 s, mandelbrot for 4.8 s, bars for 6 s (cuts at frames 135 and 255),
        // keyframes every 2 s, none at the cuts.
        let make = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=5.4",
                                           "-f", "lavfi", "-i", "mandelbrot=size=320x240:rate=25", "-f", "lavfi", "-i", "smptebars=size=320x240:rate=25:duration=6",
                                           "-filter_complex", "[1]trim=duration=4.8,setpts=PTS-STARTPTS[m];[0][m][2]concat=n=3:v=1:a=0,format=yuv420p",
                                           "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", src])
        try #require(make.status == 0, "\(make.stderr)")
        let plan = try jsonObject(try vslice(["plan", src, "--split", "scene", "--json"]).stdout)
        #expect(plan["scene_changes"] as? [Int] == [135, 255], "\(plan["scene_changes"] ?? "none")")
        let starts = try #require(plan["segments"] as? [[String: Any]]).compactMap { $0["first_frame"] as? Int }
        #expect(starts.contains(255), "\(starts)")
        let out = dir.appendingPathComponent("out.mp4").path
        let r = try vslice(["transcode", src, "-o", out, "--split", "scene", "--preset", "ultrafast", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        try expectOracle(source: src, output: out)
    }
}
