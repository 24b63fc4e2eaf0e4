import Foundation
import Testing

/// The processors of these tests: OpenCV (Debian's python3-opencv, installed by scripts/setup) doing the work
/// — its non-local means denoiser, its resize, its blend — in scripts under examples/ and Tests/Processors/, and
/// plain programs (cat, sleep, sh) for identity and failures.
enum Processors {
    /// Debian's Python, where python3-opencv installs (another python3 on PATH may lack cv2).
    static let python = "/usr/bin/python3"
    static let examples = Paths.packageRoot.appendingPathComponent("examples").path
    static let tests = Paths.packageRoot.appendingPathComponent("Tests/Processors").path

    static func script(_ path: String) -> String { "\(python) \(path)" }
    static var denoise: String { script("\(examples)/denoise.py") }
    static var cartoonize: String { script("\(examples)/cartoonize.py") }
    static var upscale: String { script("\(tests)/upscale.py") }
    static var interpolate: String { script("\(tests)/interpolate.py") }

    /// A noisy clip: a denoiser has work to do, and its temporal window shows.
    static func noisyClip(_ path: String, seconds: Int = 3) throws {
        try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25:duration=\(seconds)",
                                  "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=\(seconds)",
                                  "-vf", "noise=alls=25:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                                  "-c:a", "aac", "-b:a", "64k", path])
    }

    /// The frames (framemd5) of `source` run once through `command` by the ffmpeg CLI: Y4M out of ffmpeg, into
    /// the processor, its Y4M into ffmpeg.
    static func onePass(_ source: String, _ command: String) throws -> [String] {
        let r = try Proc.run("/bin/sh", ["-c", "ffmpeg -nostdin -v error -i '\(source)' -f yuv4mpegpipe - | \(command) | "
                                         + "ffmpeg -nostdin -v error -f yuv4mpegpipe -i - -fps_mode passthrough -f framemd5 -"])
        guard r.status == 0 else { throw OracleError("one pass failed: \(r.stderr)") }
        return r.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }
            .compactMap { $0.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) } }
    }

    /// `source` run once through `command` by the ffmpeg CLI as raw `size` RGB frames (the program's
    /// environment as vslice gives it), its frames encoded losslessly to `path`.
    static func onePassRGB(_ source: String, _ command: String, size: String, to path: String) throws {
        let wh = size.split(separator: "x")
        let r = try Proc.run("/bin/sh", ["-c", "ffmpeg -nostdin -v error -i '\(source)' -f rawvideo -pix_fmt rgb24 - | "
                                         + "VSLICE_WIDTH=\(wh[0]) VSLICE_HEIGHT=\(wh[1]) \(command) | ffmpeg -nostdin -v error -y "
                                         + "-f rawvideo -pix_fmt rgb24 -s \(size) -i - -c:v libx264rgb -qp 0 '\(path)'"])
        guard r.status == 0 else { throw OracleError("one RGB pass failed: \(r.stderr)") }
    }

    /// Processes whose command line contains `marker` (ps, the oracle for "nothing left running").
    static func running(_ marker: String) throws -> [String] {
        let r = try Proc.run("ps", ["-eo", "pid,args"])
        return r.stdout.split(separator: "\n").map(String.init).filter { $0.contains(marker) && !$0.contains("ps -eo") }
    }
}

@Suite("--process: an external program per segment, judged by ffmpeg")
struct ProcessorTests {
    static let frameArgs = ["--split", "frames", "--segment-frames", "20", "--min-split-seconds", "0", "--codec-opt", "qp=0", "-q"]

    @Test("a temporal OpenCV denoiser (window 5) with --overlap 2,2 equals one run over the whole video; without buffers the frames next to the cuts differ")
    func temporalDenoiser() throws {
        let dir = try Paths.scratch("denoise")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("noisy.mp4").path
        try Processors.noisyClip(src)
        let single = try Processors.onePass(src, Processors.denoise)
        #expect(single.count == 75)
        var differing: [String: [Int]] = [:]
        for overlap in ["2,2", "0"] {
            let out = dir.appendingPathComponent("out-\(overlap).mkv").path
            let run = try vslice(["transcode", src, "-o", out, "--process", Processors.denoise, "--overlap", overlap] + Self.frameArgs)
            #expect(run.status == 0, "\(run.stderr)")
            let mine = try FFmpegOracle.frameMD5s(out)
            #expect(mine.count == 75)
            differing[overlap] = zip(mine, single).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        }
        #expect(differing["2,2"] == [])
        // Cuts at 20, 40, 60: the two frames each side of each cut saw fewer neighbours.
        #expect(differing["0"] == [18, 19, 20, 21, 38, 39, 40, 41, 58, 59, 60, 61])
    }

    @Test("a 2x upscaler gives twice the size, the same frames' times and sound")
    func upscale() throws {
        let dir = try Paths.scratch("upscale")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", src, "-o", out, "--process", Processors.upscale, "--min-split-seconds", "0", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        let v = try #require(try FFprobe.stream(out, "v"))
        #expect(v["width"] as? Int == 640 && v["height"] as? Int == 360)
        // Against the source scaled the same way by ffmpeg: the picture is the source's, frame by frame.
        let scaled = dir.appendingPathComponent("scaled.mkv").path
        try FidelityMedia.ffmpeg(["-i", src, "-vf", "scale=640:360:flags=bicubic", "-c:v", "libx264", "-qp", "0", "-an", scaled])
        let problems = try oracleProblems(source: src, output: out, expect: Expected(size: "640x360", picture: .reference(scaled)))
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("a 2x interpolator gives 2N frames, the source's duration and A/V offset within 1 ms, on CFR and VFR sources",
          arguments: ["cfr", "vfr"])
    func interpolate(_ kind: String) throws {
        let dir = try Paths.scratch("interp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src: String
        if kind == "vfr" {
            src = Paths.fixture("vfr.mp4")
        } else {
            src = dir.appendingPathComponent("cfr.mp4").path
            try makeClip(src, seconds: 4)
        }
        let out = dir.appendingPathComponent("out.mkv").path
        let run = try vslice(["transcode", src, "-o", out, "--process", Processors.interpolate, "--min-split-seconds", "0",
                              "--segment-seconds", "1", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        let s = try MediaFacts(src), o = try MediaFacts(out)
        #expect(o.frames == 2 * s.frames)
        // The last frame sits halfway through the source's last frame, and lasts the other half: the output ends
        // where the source does. (Matroska stores no duration for a VFR track's last frame; a CFR one's it does.)
        let sourceLast = s.videoEnd - s.videoTimes.last!
        #expect(abs((o.videoTimes.last! - o.videoStart) - (s.videoEnd - s.videoStart - sourceLast / 2)) < 0.001,
                "last frame at \(o.videoTimes.last! - o.videoStart) s, source ends at \(s.videoEnd - s.videoStart) s")
        if kind == "cfr" {
            #expect(abs((o.videoEnd - o.videoStart) - (s.videoEnd - s.videoStart)) < 0.001,
                    "video \(o.videoEnd - o.videoStart) s, source \(s.videoEnd - s.videoStart) s")
        }
        let sOff = try #require(s.audioStart) + s.primingSkew - s.videoStart
        let oOff = try #require(o.audioStart) + o.primingSkew - o.videoStart
        #expect(abs(sOff - oOff) < 0.001, "A/V offset \(oOff), source \(sOff)")
        // Every source frame's time is kept, and a frame halfway to the next one is added.
        for (i, t) in s.videoTimes.enumerated() {
            #expect(abs((o.videoTimes[2 * i] - o.videoStart) - (t - s.videoStart)) < 0.001)
        }
        #expect(o.dtsStrictlyIncreasing)
        let verify = try vslice(["verify", out, "--against", src, "--process-rate", "2"])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }

    static func rgbSource(_ dir: URL, _ format: String) throws -> String {
        let path = dir.appendingPathComponent("src-\(format).mkv").path
        if format == "rgb24" {
            try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
                                      "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
                                      "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
                                      "-c:v", "libx264", "-qp", "0", path])
        } else {
            try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
                                      "-vf", "scale=out_color_matrix=bt2020:out_range=tv,format=yuv420p10le",
                                      "-c:v", "libx265", "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
                                      "-color_range", "tv",
                                      "-x265-params", "log-level=error:lossless=1:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
                                      path])
        }
        return path
    }

    @Test("rgb24 and rgb48le identity processors keep the picture (every frame's PSNR ≥ 45 dB 8-bit, ≥ 50 dB 10-bit), the colour tags and HDR10 side data",
          arguments: ["rgb24", "rgb48le"])
    func rgbIdentity(_ format: String) throws {
        let dir = try Paths.scratch("rgb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Self.rgbSource(dir, format)
        let out = dir.appendingPathComponent("out.mkv").path
        let codec = format == "rgb24" ? ["--codec-opt", "qp=0"] : ["--vcodec", "libx265", "--codec-opt", "x265-params=lossless=1"]
        let run = try vslice(["transcode", src, "-o", out, "--process", "cat", "--process-format", format,
                              "--min-split-seconds", "0", "--segment-seconds", "1", "-q"] + codec)
        #expect(run.status == 0, "\(run.stderr)")
        let psnr = try FFmpegOracle.framePSNR(out, src)
        #expect(psnr.min >= (format == "rgb24" ? 45 : 50), "\(psnr)")
        let keys = ["pix_fmt", "color_range", "color_space", "color_transfer", "color_primaries"]
        let (o, s) = (try #require(try FFprobe.stream(out, "v")), try #require(try FFprobe.stream(src, "v")))
        for k in keys { #expect(o[k] as? String == s[k] as? String, "\(k)") }
        #expect(try HDRFidelityTests.frameHDR(out) == HDRFidelityTests.frameHDR(src))
    }

    @Test("an OpenCV cartoonizer through rgb24: every frame, timed as the source's")
    func cartoonizer() throws {
        let dir = try Paths.scratch("cartoon")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Paths.fixture("h264_aac.mp4")
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", src, "-o", out, "--process", Processors.cartoonize, "--process-format", "rgb24", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        // The same frames run once through the script by the ffmpeg CLI, losslessly: the picture vslice made.
        // The floor is low: vslice's RGB frames differ from ffmpeg's by up to 3 levels (rounding), which moves
        // the script's 8 colour levels and edges; measured: lowest frame 28.9 dB, mean 30.3 dB (ffmpeg's own
        // CRF 23 encode of the script's frames: 36.4 dB); the frames one apart: 18 to 20 dB.
        let ref = dir.appendingPathComponent("ref.mkv").path
        try Processors.onePassRGB(src, Processors.cartoonize, size: "320x180", to: ref)
        let problems = try oracleProblems(source: src, output: out, expect: Expected(picture: .reference(ref), minFramePSNR: 25))
        #expect(problems.isEmpty, "\(problems)")
        // And it changed every frame (flat colours, dark edges): none is within 30 dB of the source's.
        let changed = try FFmpegOracle.framePSNR(out, src)
        #expect((changed.frames.max() ?? 99) < 30, "\(changed)")
    }
}

@Suite("--process: failures, signals, resume and the check before any work")
struct ProcessorFailureTests {
    /// A shell processor: `body` runs after the check (which it passes by copying its input), so that the
    /// failure is the segments'.
    static func afterCheck(_ dir: URL, _ name: String, _ body: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try "if [ -n \"$VSLICE_CHECK\" ]; then exec cat; fi\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return "sh \(path)"
    }

    @Test("a processor that fails once (exit 1) is retried and the output is right")
    func retried() throws {
        let dir = try Paths.scratch("pflaky")
        defer { try? FileManager.default.removeItem(at: dir) }
        let flag = dir.appendingPathComponent("failed-once").path
        let cmd = try Self.afterCheck(dir, "flaky.sh", """
            if [ "$VSLICE_SEGMENT" = 1 ] && [ ! -f '\(flag)' ]; then touch '\(flag)'; echo 'flaky: out of GPU memory' >&2; exit 1; fi
            exec cat
            """)
        let src = Paths.fixture("h264_aac.mp4")
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", src, "-o", out, "--process", cmd, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let failed = try ndjson(run.stdout).filter { $0["event"] as? String == "segment_failed" }
        #expect(failed.count == 1)
        #expect((failed.first?["error"] as? String)?.contains("out of GPU memory") == true, "\(failed)")
        try expectOracle(source: src, output: out)
    }

    @Test("exit 0 with a frame short fails at once (exit 1, not retried), the error names the counts, nothing is published")
    func frameShort() throws {
        let dir = try Paths.scratch("pshort")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cmd = try Self.afterCheck(dir, "short.sh", """
            n=$((VSLICE_BUFFER_BEFORE + VSLICE_FRAMES + VSLICE_BUFFER_AFTER - 1))
            { head -c $((VSLICE_WIDTH * VSLICE_HEIGHT * 3 * n)); cat > /dev/null; }
            """)
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", cmd, "--process-format", "rgb24",
                              "--jobs", "1", "--segment-seconds", "1", "--min-split-seconds", "0", "--json"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("gave 29 frames for 30 input frames, expected 30"), "\(run.stderr)")
        #expect(try ndjson(run.stdout).filter { $0["event"] as? String == "segment_failed" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
        // It would fail the same way again: the message says how to remove what is kept, and resume --all passes over it.
        #expect(run.stderr.contains("work folder are kept: `vslice cancel"), "\(run.stderr)")
    }

    @Test("a processor that exits 0 after 10 frames: exit 1, the error says how many frames were sent of how many, received and expected")
    func stopsEarly() throws {
        let dir = try Paths.scratch("pearly")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Passes 10 frames through and ends, leaving the rest of its input unread.
        let cmd = try Self.afterCheck(dir, "early.sh", "head -c $((VSLICE_WIDTH * VSLICE_HEIGHT * 3 * 10))")
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", cmd, "--process-format", "rgb24",
                              "--jobs", "1", "--segment-seconds", "1", "--min-split-seconds", "0", "-q"])
        #expect(run.status == 1)
        // Segments of 30 frames (frameShort): the pipe may hold a few frames more than the program read.
        let counts = try #require(run.stderr.firstMatch(of: /\((\d+) of 30 frames sent, 10 received, 30 expected\)/), "\(run.stderr)")
        #expect((10..<30).contains(Int(counts.output.1) ?? 0), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a processor that never reads its input stalls (--stall-timeout), nothing hangs and nothing is left running")
    func neverReads() throws {
        let dir = try Paths.scratch("pstall")
        defer { try? FileManager.default.removeItem(at: dir) }
        let marker = "7\(Int.random(in: 100_000...999_999)).25"
        let cmd = try Self.afterCheck(dir, "stall.sh", "sleep \(marker)")
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", cmd, "--stall-timeout", "2",
                              "--max-attempts", "1"], timeout: 60)
        #expect(run.status == 1)
        #expect(run.stderr.contains("no frame from the processor for 2 s"), "\(run.stderr)")
        #expect(try Processors.running("sleep \(marker)").isEmpty)
        // The check itself stalls the same way, before any work (exit 2).
        let early = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", "sleep \(marker)",
                                "--stall-timeout", "2"], timeout: 60)
        #expect(early.status == 2, "\(early.stderr)")
        #expect(try Processors.running("sleep \(marker)").isEmpty)
    }

    @Test("Ctrl-C twice and kill -9 of vslice leave no processor running", arguments: ["sigint", "sigkill"])
    func noneLeft(_ how: String) throws {
        let dir = try Paths.scratch("pkill")
        defer { try? FileManager.default.removeItem(at: dir) }
        let marker = "8\(Int.random(in: 100_000...999_999)).5"
        let cmd = try Self.afterCheck(dir, "hang.sh", "sleep \(marker)")
        let out = dir.appendingPathComponent("out.mp4").path
        let bg = try Background(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", cmd, "-q"])
        #expect(try bg.waitUntil(timeout: 60) { try Processors.running("sleep \(marker)").count >= 2 })
        if how == "sigint" {
            #expect(bg.interruptTwice(), "the first Ctrl-C was not heard")
        } else {
            bg.signal(SIGKILL)
        }
        let run = bg.finish(timeout: 60)
        // Ctrl-C twice is exit 130 (a death by a signal is a crash); kill -9 is that signal.
        if how == "sigint" { #expect(run.status == 130 && !run.signaled, "\(run.status) \(run.stderr)") } else { #expect(run.killed) }
        // The supervisor kills its group when vslice dies: wait until the kernel has (a minute at most, a hang).
        var left = try Processors.running("sleep \(marker)")
        let deadline = Date().addingTimeInterval(60)
        while !left.isEmpty && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            left = try Processors.running("sleep \(marker)")
        }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("kill -9 mid-run, same command: only unfinished segments are processed again; the script edited: refused (exit 5)")
    func resume() throws {
        let dir = try Paths.scratch("presume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path
        try makeClip(src, seconds: 6)
        let log = dir.appendingPathComponent("starts.log").path
        let gate = dir.appendingPathComponent("gate").path
        // Segments 0-2 run through; from segment 3 on, each waits for the gate file.
        let script = dir.appendingPathComponent("proc.sh").path
        try """
            echo "$VSLICE_SEGMENT" >> '\(log)'
            if [ -z "$VSLICE_CHECK" ] && [ "$VSLICE_SEGMENT" -ge 3 ]; then while [ ! -f '\(gate)' ]; do sleep 0.05; done; fi
            exec cat

            """.write(toFile: script, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out.mp4").path
        let args = ["transcode", src, "-o", out, "--process", "sh \(script)", "--segment-seconds", "1", "--min-split-seconds", "0",
                    "--jobs", "1", "-q"]
        let bg = try Background(args)
        #expect(bg.waitUntil(timeout: 120) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("3\n") })
        bg.signal(SIGKILL)
        _ = bg.finish()
        let firstRun = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(firstRun == ["-1", "0", "1", "2", "3"], "\(firstRun)")   // the check (-1), then segments 0, 1, 2, 3
        try "".write(toFile: log, atomically: true, encoding: .utf8)
        #expect(FileManager.default.createFile(atPath: gate, contents: nil))
        let again = try vslice(args)
        #expect(again.status == 0, "\(again.stderr)")
        let secondRun = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(secondRun == ["-1", "3", "4", "5"], "\(secondRun)")   // the check, then the unfinished segments
        try expectOracle(source: src, output: out)

        // An edited script makes other frames: the task's finished segments are not mixed with its.
        try FileManager.default.removeItem(atPath: out)
        let bg2 = try Background(args + ["--keep-temp"])
        try? FileManager.default.removeItem(atPath: gate)
        try "".write(toFile: log, atomically: true, encoding: .utf8)
        #expect(bg2.waitUntil(timeout: 120) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("3\n") })
        bg2.signal(SIGKILL)
        _ = bg2.finish()
        try (String(contentsOfFile: script, encoding: .utf8) + "# edited\n").write(toFile: script, atomically: true, encoding: .utf8)
        let edited = try vslice(args)
        #expect(edited.status == 5, "\(edited.stderr)")
        #expect(edited.stderr.contains("--fresh") && edited.stderr.contains("the file \(script) changed"), "\(edited.stderr)")
    }

    @Test("a command with relative paths, started in its folder, is resumed by resume --all run from another folder: the same script in the same folder")
    func resumeFromElsewhere() throws {
        let dir = try Paths.scratch("prel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path
        try makeClip(src, seconds: 4)
        try "echo \"$PWD\" >> '\(dir.path)/where.log'\nexec cat\n".write(to: dir.appendingPathComponent("proc.sh"), atomically: true, encoding: .utf8)
        let home = dir.appendingPathComponent("home").path
        /// vslice run in `cwd`.
        func vsliceIn(_ cwd: String, _ args: [String], _ env: [String: String] = [:]) throws -> Run {
            try Proc.run("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", cwd, Paths.vslice] + args,
                         environment: ["VSLICE_HOME": home, "VSLICE_ELEMENT_COST": testElementCost].merging(env) { $1 })
        }
        let killed = try vsliceIn(dir.path, ["transcode", "src.mp4", "-o", "out.mp4", "--process", "sh proc.sh", "--segment-seconds", "1",
                                             "--min-split-seconds", "0", "--jobs", "1", "-q"], ["VSLICE_FAULT": "segment-done:1"])
        #expect(killed.killed, "\(killed.stderr)")
        let resumed = try vsliceIn("/", ["resume", "--all", "-q"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let out = dir.appendingPathComponent("out.mp4").path
        try expectOracle(source: src, output: out)
        // Every run of the program (the check, the segments before and after the kill) ran in the task's folder.
        let folders = Set(try String(contentsOf: dir.appendingPathComponent("where.log"), encoding: .utf8).split(separator: "\n").map(String.init))
        #expect(folders == [dir.path], "\(folders)")
    }

    @Test("--gpus 0,1: each job slot's processor gets its own device (VSLICE_GPU, CUDA_VISIBLE_DEVICES), --jobs defaults to the devices")
    func gpus() throws {
        let dir = try Paths.scratch("pgpu")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("gpus.log").path
        let cmd = try Self.afterCheck(dir, "gpu.sh", """
            echo "$VSLICE_SEGMENT $VSLICE_GPU $CUDA_VISIBLE_DEVICES $VSLICE_THREADS" >> '\(log)'
            exec cat
            """)
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", cmd, "--gpus", "0,1",
                              "--segment-seconds", "1", "--min-split-seconds", "0", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.count == 6)
        #expect(lines.allSatisfy { $0.count == 4 && ["0", "1"].contains($0[1]) && $0[1] == $0[2] && $0[3] == "1" }, "\(lines)")
        #expect(Set(lines.map { $0[1] }) == ["0", "1"])
    }

    @Test("a broken processor is refused before any work (exit 2, its stderr in the message, no task or work folder); plan --process says what it learnt")
    func checkedBeforeWork() throws {
        let dir = try Paths.scratch("pcheck")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let src = Paths.fixture("h264_aac.mp4")
        let missing = try vslice(["transcode", src, "-o", out, "--process", "\(Processors.python) -c 'import no_such_module_vslice'"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("No module named 'no_such_module_vslice'"), "\(missing.stderr)")
        // An odd size for a 4:2:0 encoder: what the processor puts out, refused by the encoder.
        let odd = try vslice(["transcode", src, "-o", out, "--process", "\(Processors.python) \(Processors.tests)/oddsize.py",
                              "--process-format", "rgb24", "--process-size", "321x181"])
        #expect(odd.status == 2)
        #expect(odd.stderr.contains("321x181"), "\(odd.stderr)")
        let contents = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(contents.isEmpty, "\(contents)")
        let plan = try vslice(["plan", src, "--process", Processors.interpolate])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("puts out 320x180 yuv420p, 2 frame(s) per input frame"), "\(plan.stdout)")
    }
}
