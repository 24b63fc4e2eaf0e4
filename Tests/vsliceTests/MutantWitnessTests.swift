import Foundation
import Testing

/// The tests that see the defects of scripts/mutants.list no other test saw: each passes on the real code and
/// fails with its mutant (named in its comment). Real runs of the binary, judged with ffprobe/ffmpeg.
@Suite("mutant witnesses: defects the rest of the suite did not see")
struct MutantWitnessTests {
    static let fast = ["--min-split-seconds", "0", "--segment-seconds", "1", "--preset", "veryfast", "-q"]

    /// A scratch folder with its own job store.
    struct Job {
        var dir: URL
        var home: String { dir.appendingPathComponent("home").path }
        var env: [String: String] { ["VSLICE_HOME": home] }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

        /// The task's work folder beside `output` (`.OUTPUT.vslice-TASKID8`).
        func workFolder(of output: String) throws -> String? {
            let prefix = "." + (output as NSString).lastPathComponent + ".vslice-"
            return try FileManager.default.contentsOfDirectory(atPath: dir.path)
                .first { $0.hasPrefix(prefix) && !$0.hasSuffix(".part") }.map { path($0) }
        }
    }

    func job(_ tag: String) throws -> Job { Job(dir: try Paths.scratch("witness-\(tag)")) }

    /// Mutants colour-tags-dropped and audio-downmixed-to-stereo.
    @Test("the source's colour tags and channel layouts are kept: BT.709 and mono (mono44k.mov), 5.1 (surround51.mkv)",
          arguments: [("mono44k.mov", "mp4"), ("surround51.mkv", "mkv")])
    func streamProperties(_ name: String, _ ext: String) throws {
        let j = try job("streams")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let src = Paths.fixture(name), out = j.path("out.\(ext)")
        let run = try vslice(["transcode", src, "-o", out] + Self.fast, environment: j.env)
        #expect(run.status == 0, "\(run.stderr)")
        let sv = try #require(try FFprobe.stream(src, "v")), ov = try #require(try FFprobe.stream(out, "v"))
        for key in ["color_primaries", "color_transfer", "color_space", "color_range"] {
            #expect(ov[key] as? String == sv[key] as? String, "\(key): \(ov[key] ?? "none"), source \(sv[key] ?? "none")")
        }
        let sa = try #require(try FFprobe.stream(src, "a")), oa = try #require(try FFprobe.stream(out, "a"))
        for key in ["channels", "channel_layout"] {
            #expect("\(oa[key] ?? "none")" == "\(sa[key] ?? "none")", "\(key): \(oa[key] ?? "none"), source \(sa[key] ?? "none")")
        }
    }

    /// Mutant resume-segment-checksum-unchecked. A done segment's file changed in place and sealed again — the
    /// same size, the same packets, a valid trailer — is not the file the ledger recorded (its Adler-32 differs):
    /// the resume encodes that segment again, so no frame of the output is the damaged one's.
    @Test("a done segment's file altered and re-sealed (same size, packets and a valid trailer): the resume redoes it")
    func resealedSegmentRedone() throws {
        let j = try job("reseal")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let src = Paths.fixture("h264_aac.mp4"), out = j.path("out.mp4")
        let args = ["transcode", src, "-o", out, "--jobs", "1"] + Self.fast
        let killed = try vslice(args, environment: j.env.merging(["VSLICE_FAULT": "segment-done:3"]) { $1 })
        #expect(killed.status == SIGKILL, "\(killed.status) \(killed.stderr)")
        let work = try #require(try j.workFolder(of: out))
        let segment = (work as NSString).appendingPathComponent("seg-00001.vseg")
        let before = try Data(contentsOf: URL(fileURLWithPath: segment))
        let altered = try Self.resealed(before)
        #expect(altered.count == before.count && altered != before)
        try altered.write(to: URL(fileURLWithPath: segment))

        let resumed = try vslice(args, environment: j.env)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try oracleProblems(source: src, output: out).isEmpty)
        // The damaged packets would not decode cleanly, and their pictures would be far from the source's.
        let decode = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-i", out, "-f", "null", "-"])
        #expect(decode.stderr.isEmpty, "the output has decode errors: \(decode.stderr.prefix(300))")
        let psnr = try Self.framePSNRs(out, src, stats: j.path("psnr.log"))
        #expect(psnr.count == 180)
        let worst = psnr.enumerated().min { $0.element < $1.element }
        #expect((worst?.element ?? 0) >= 30, "frame \(worst?.offset ?? -1) at \(worst?.element ?? 0) dB against the source")
    }

    /// Each frame's PSNR (dB, their average over the planes) of `output` against `source`, frames paired in order.
    static func framePSNRs(_ output: String, _ source: String, stats: String) throws -> [Double] {
        let r = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-i", output, "-i", source, "-lavfi",
                                        "[0:v]settb=1/1000,setpts=N[a];[1:v]settb=1/1000,setpts=N[b];[a][b]psnr=stats_file=\(stats)",
                                        "-f", "null", "-"])
        guard r.status == 0 else { throw OracleError("psnr failed: \(r.stderr.suffix(300))") }
        return try String(contentsOfFile: stats, encoding: .utf8).split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("psnr_avg:") }.map { $0.dropFirst(9) == "inf" ? .infinity : Double($0.dropFirst(9)) ?? 0 }
        }
    }

    /// A sealed segment file (docs/internals.md: "VSEG", u32 version, u32 n, n bytes of JSON; 'P' packets of a
    /// 33-byte header and their data; 'E', u64 count, u32 Adler-32 of everything before it) with a byte of every
    /// packet's data flipped, and its trailer's checksum made right again.
    static func resealed(_ original: Data) throws -> Data {
        var d = [UInt8](original)
        func u32(_ at: Int) -> Int { Int(d[at]) | Int(d[at + 1]) << 8 | Int(d[at + 2]) << 16 | Int(d[at + 3]) << 24 }
        try #require(d.count > 25 && Array(d[0..<4]) == [0x56, 0x53, 0x45, 0x47] && d[d.count - 13] == UInt8(ascii: "E"))
        var at = 12 + u32(8)
        while d[at] == UInt8(ascii: "P") {
            let size = u32(at + 29)
            if size > 0 { d[at + 33 + size * 3 / 4] ^= 0x5A }
            at += 33 + size
        }
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in d[0..<(d.count - 4)] {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        let sum = b << 16 | a
        for k in 0..<4 { d[d.count - 4 + k] = UInt8((sum >> (8 * UInt32(k))) & 0xFF) }
        return Data(d)
    }

    /// Mutant publish-unverified. Killed just after the rename that published the output, the task's resume
    /// verifies that output again before recording the task done; an output changed in place since (its inode,
    /// size and modification time kept, so it still counts as the task's own) that lost its first frames is
    /// refused, not reported done.
    @Test("an output published by a killed run, then altered in place: the resume's verification refuses it (exit 1)")
    func publishedOutputVerifiedAgain() throws {
        let j = try job("republish")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let src = Paths.fixture("h264_aac.mp4"), out = j.path("out.mp4")
        let args = ["transcode", src, "-o", out] + Self.fast
        let killed = try vslice(args, environment: j.env.merging(["VSLICE_FAULT": "published"]) { $1 })
        #expect(killed.status == SIGKILL, "\(killed.status) \(killed.stderr)")
        #expect(try oracleProblems(source: src, output: out).isEmpty)
        try Self.cutVideoStartInPlace(out)
        #expect(try !oracleProblems(source: src, output: out).isEmpty, "the altered output still matches its source")

        let resumed = try vslice(args, environment: j.env)
        #expect(resumed.status == 1, "the resume passed an output that lost frames: \(resumed.status) \(resumed.stderr)")
        #expect(resumed.stderr.contains("frame count"), "\(resumed.stderr)")
    }

    /// Moves the start of the MP4's video edit list three frames later, in place (its first three frames are then
    /// cut by the edit), and puts the file's modification time back: the same inode, size and mtime.
    static func cutVideoStartInPlace(_ path: String) throws {
        var st = stat()
        try #require(stat(path, &st) == 0)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func find(_ tag: String, from: Int = 0) -> [Int] {
            let t = Array(tag.utf8)
            return (from..<(bytes.count - t.count)).filter { bytes[$0..<($0 + t.count)].elementsEqual(t) }
        }
        func u32(_ at: Int) -> UInt32 { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        // The video track (the first, with faststart at the file's start): its edit list comes before its
        // handler ('vide'), its time-to-sample box after it. elst (version 0): size, 'elst', version and flags,
        // entry count, then segment duration, media time; stts: version and flags, entry count, sample count,
        // delta; all big-endian.
        let video = try #require(find("vide").first)
        let elst = try #require(find("elst").last { $0 < video })
        let stts = try #require(find("stts", from: video).first)
        try #require(bytes[elst + 4] == 0 && u32(elst + 8) == 1)
        let mediaTime = u32(elst + 16) &+ 3 * u32(stts + 16)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(elst + 16))
        try handle.write(contentsOf: Data((0..<4).map { UInt8((mediaTime >> (8 * (3 - UInt32($0)))) & 0xFF) }))
        try handle.close()
        var times = [st.st_atim, st.st_mtim]
        try #require(utimensat(AT_FDCWD, path, &times, 0) == 0)
    }

    /// Mutant processor-extra-frame-accepted. A processor that gives one frame more than it was given fails the
    /// task, and the error blames the processor, saying so — not a later stage that tripped over the extra frame.
    @Test("a processor that exits 0 after one frame too many: exit 1, the error says the processor gave more frames than it was given, nothing published")
    func processorExtraFrame() throws {
        let j = try job("extra")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let script = j.path("extra.sh")
        // Passes the check before any work as an identity; on the segments, one black frame after its input.
        try """
            if [ -n "$VSLICE_CHECK" ]; then exec cat; fi
            cat
            head -c $((VSLICE_WIDTH * VSLICE_HEIGHT * 3)) /dev/zero
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let out = j.path("out.mp4")
        let run = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--process", "sh \(script)",
                              "--process-format", "rgb24", "--jobs", "1", "--segment-seconds", "1", "--min-split-seconds", "0", "-q"],
                             environment: j.env)
        #expect(run.status == 1, "\(run.status) \(run.stderr)")
        #expect(run.stderr.contains("the processor gave more than 30 frames for 30 input frames"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// Mutant output-replaced-at-publish. The output is checked before any work, and again, atomically, when the
    /// task publishes: a file that appeared at the output path while the task ran is left as it is (exit 4).
    @Test("an output that appears while the task runs is not replaced: exit 4, the file byte for byte as it was")
    func outputAppearingMidRunKept() throws {
        let j = try job("appear")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let src = j.path("in.mp4"), out = j.path("out.mp4")
        try makeClip(src, size: "320x240", seconds: 10)
        let bg = try Background(["transcode", src, "-o", out, "--jobs", "1"] + Self.fast, environment: j.env)
        // The work folder is made once the checks before any work have passed.
        let started = try bg.waitUntil(timeout: 120) { try j.workFolder(of: out) != nil }
        let precious = Data("precious".utf8)
        try precious.write(to: URL(fileURLWithPath: out))
        let r = bg.finish()
        try #require(started, "the task ended before its work folder was seen: \(r.status) \(r.stderr)")
        #expect(r.status == 4, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("--force"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == precious)
    }

    /// Mutant hdr-metadata-dropped. The HDR10 static metadata goes into the container too (MP4's mdcv and clli
    /// boxes, Matroska's colour elements) — what players read before the first frame — not only into the
    /// encoder's SEI: ffprobe shows it as the video stream's side data, with the source's values.
    @Test("HDR10 through libx265: the output's video stream carries the mastering display and light level as side data",
          arguments: ["mp4", "mkv"])
    func hdrStreamSideData(_ ext: String) throws {
        let j = try job("hdr-\(ext)")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let src = j.path("src.mkv"), out = j.path("out.\(ext)")
        let make = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
                                           "-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-color_primaries", "bt2020",
                                           "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-x265-params",
                                           "log-level=error:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
                                           src])
        try #require(make.status == 0, "\(make.stderr)")
        let run = try vslice(["transcode", src, "-o", out, "--vcodec", "libx265", "--min-split-seconds", "0", "--segment-seconds", "1", "-q"],
                             environment: j.env)
        #expect(run.status == 0, "\(run.stderr)")
        let r = try Proc.run("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream_side_data", "-of", "flat", out])
        // Lines like streams.stream.0.side_data_list.side_data.1.max_content=1000 (or red_x="17/25").
        var found: [String: Double] = [:]
        var types: [String] = []
        for line in r.stdout.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let key = kv[0].split(separator: ".").last.map(String.init) else { continue }
            let value = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if key == "side_data_type" { types.append(value); continue }
            let parts = value.split(separator: "/").compactMap { Double($0) }
            if parts.count == 2, parts[1] != 0 { found[key] = parts[0] / parts[1] } else if parts.count == 1 { found[key] = parts[0] }
        }
        #expect(types.contains("Mastering display metadata") && types.contains("Content light level metadata"), "\(r.stdout)")
        let want: [String: Double] = ["red_x": 0.68, "red_y": 0.32, "green_x": 0.265, "green_y": 0.69, "blue_x": 0.15, "blue_y": 0.06,
                                      "white_point_x": 0.3127, "white_point_y": 0.329, "max_luminance": 1000, "min_luminance": 0.0001,
                                      "max_content": 1000, "max_average": 400]
        for (key, value) in want.sorted(by: { $0.key < $1.key }) {
            #expect(abs((found[key] ?? -1) - value) <= value * 1e-3, "\(key): \(found[key].map { "\($0)" } ?? "none"), source \(value)")
        }
    }

    /// Mutant worker-records-done-unsealed. A worker's done record vouches for a sealed file: the segment's file
    /// is there under its own name, as large as the record says, closed by its trailer ('E', count, Adler-32).
    @Test("a worker's done record names its segment file, sealed under its own name with the size recorded")
    func workerSealsBeforeRecording() throws {
        let j = try job("worker-seal")
        defer { try? FileManager.default.removeItem(at: j.dir) }
        let out = j.path("out.mp4")
        let detached = try vslice(["transcode", Paths.fixture("h264_aac.mp4"), "-o", out, "--executor", "external", "--detach", "--json",
                                   "--jobs", "1"] + Self.fast.filter { $0 != "-q" }, environment: j.env)
        try #require(detached.status == 0, "\(detached.stderr)")
        let work = try #require(try lastEvent(detached.stdout, "task_detached")["work_dir"] as? String)
        let r = try vslice(["segment", "--work-dir", work, "--index", "1", "--json"], environment: j.env)
        #expect(r.status == 0, "\(r.stderr)")
        let record = try jsonObject(r.stdout)
        #expect(record["status"] as? String == "done")
        let file = try #require(record["file"] as? String)
        let path = (work as NSString).appendingPathComponent(file)
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []
        let data = try #require(FileManager.default.contents(atPath: path), "no \(file) in the work folder: \(listing)")
        #expect(data.count == record["bytes"] as? Int, "\(data.count) bytes, the record says \(record["bytes"] ?? "none")")
        #expect(data.count > 13 && data[data.count - 13] == UInt8(ascii: "E"), "no trailer")
        let parts = try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.hasSuffix(".part") }
        #expect(parts.isEmpty, "part files left: \(parts)")
    }
}
