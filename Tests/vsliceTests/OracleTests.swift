import Foundation
import Testing

/// The oracle judged: ffmpeg's own transcode of a source passes it, and each kind of wrong output made from that
/// source by ffmpeg fails it, naming what is wrong. No vslice here.
@Suite("the oracle fails wrong outputs")
struct OracleTests {
    /// 3 s of 160x90 at 25 fps, two AAC tracks (440 Hz and 880 Hz, 48 kHz stereo).
    static func source(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("src.mp4").path
        try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3",
                                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
                                  "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=3",
                                  "-map", "0", "-map", "1", "-map", "2", "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast",
                                  "-g", "25", "-c:a", "aac", path])
        return path
    }

    /// ffmpeg's transcode of `src` into `name`, with `args` before the output (the defaults: every stream,
    /// x264 and AAC; `args` starting with a -map or a graph map their own).
    static func output(_ dir: URL, _ src: String, _ name: String, _ args: [String]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        let map = ["-map", "-filter_complex"].contains(args.first ?? "") ? [] : ["-map", "0"]
        try FidelityMedia.ffmpeg(["-i", src] + map + ["-c:v", "libx264", "-c:a", "aac"] + args + [path])
        return path
    }

    @Test("ffmpeg's own transcode passes")
    func goodPasses() throws {
        let dir = try Paths.scratch("oracle-good")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Self.source(dir)
        let problems = try oracleProblems(source: src, output: try Self.output(dir, src, "good.mp4", []))
        #expect(problems.isEmpty, "\(problems)")
    }

    /// Each wrong output (the ffmpeg options that make it) and a word of the problem the oracle must name.
    static let wrong: [(name: String, args: [String], says: String)] = [
        ("6 of 75 frames blurred (their mean PSNR barely moves)", ["-vf", "boxblur=lr=6:enable='between(n,30,35)'"], "floor"),
        ("the sound 1 sample late", ["-af", "adelay=delays=1S:all=1"], "one sample off"),
        ("the sound 1024 samples late", ["-af", "adelay=delays=1024S:all=1"], "SNR"),
        ("the second track's sound replaced", ["-filter_complex", "sine=frequency=600:sample_rate=48000:duration=3[s]",
                                               "-map", "0:v", "-map", "0:a:0", "-map", "[s]", "-ac", "2"], "audio track 1: SNR"),
        ("the second track dropped", ["-map", "0:v", "-map", "0:a:0"], "audio tracks"),
        ("mono instead of stereo", ["-ac", "1"], "channels"),
        ("44.1 kHz instead of 48", ["-ar", "44100"], "sample_rate"),
        ("yuv444p", ["-pix_fmt", "yuv444p"], "pix_fmt"),
        ("other colour tags", ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"], "color_"),
        ("SAR 4:3", ["-vf", "setsar=4/3"], "sar"),
        ("rotated (a stream copy: ffmpeg 5 writes the matrix only then)", ["-c", "copy", "-metadata:s:v:0", "rotate=90"], "rotation"),
        ("MOV written under .mp4", ["-f", "mov"], "brand"),
        ("HEVC instead of H.264", ["-c:v", "libx265", "-x265-params", "log-level=error"], "codec"),
    ]

    @Test("a wrong output fails, naming the problem", arguments: 0..<wrong.count)
    func wrongFails(_ i: Int) throws {
        let w = Self.wrong[i]
        let dir = try Paths.scratch("oracle-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Self.source(dir)
        let problems = try oracleProblems(source: src, output: try Self.output(dir, src, "bad.mp4", w.args))
        #expect(problems.contains { $0.contains(w.says) }, "\(w.name): \(problems)")
    }

    @Test("a copied track must be the source's samples: an encoded one fails; a copy passes")
    func copiedExactly() throws {
        let dir = try Paths.scratch("oracle-copy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Self.source(dir)
        let encoded = try oracleProblems(source: src, output: try Self.output(dir, src, "enc.mp4", []), expect: Expected(audio: .copied))
        #expect(encoded.contains { $0.contains("differs from the source's") }, "\(encoded)")
        let copied = try oracleProblems(source: src, output: try Self.output(dir, src, "copy.mp4", ["-c:a", "copy"]),
                                        expect: Expected(audio: .copied))
        #expect(copied.isEmpty, "\(copied)")
    }

    @Test("a file written again under its name, with the same bytes, is not the same witness; one left alone is")
    func witnessSeesRewrite() throws {
        let dir = try Paths.scratch("oracle-witness")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["seg-00000.vseg", "seg-00001.vseg"] { try Data("sealed".utf8).write(to: dir.appendingPathComponent(name)) }
        let before = try Witness.sealed(in: dir.path)
        // As vslice seals a segment: a temporary file renamed into place.
        let tmp = dir.appendingPathComponent("seg-00001.vseg.tmp")
        try Data("sealed".utf8).write(to: tmp)
        #expect(rename(tmp.path, dir.appendingPathComponent("seg-00001.vseg").path) == 0)
        #expect(Witness.changed(before, try Witness.sealed(in: dir.path)).map { $0.prefix(14) } == ["seg-00001.vseg"])
    }

    @Test("framemd5 keeps a frame that repeats its predecessor's time, and counts as ffprobe does")
    func repeatedFrameCounted() throws {
        let dir = try Paths.scratch("oracle-md5")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try Self.source(dir)
        // The same 75 pictures, with frame 10 repeated: 76 frames.
        let dup = try Self.output(dir, src, "dup.mkv", ["-vf", "loop=loop=1:size=1:start=10", "-fps_mode", "passthrough", "-an"])
        #expect(try FFmpegOracle.frameMD5s(dup).count == 76)
        #expect(try MediaFacts.decodedFrames(dup) == 76)
    }
}
