import Foundation
import Testing

@Suite("frame-index cutting, overlap buffers and filters, checked with ffmpeg framemd5")
struct FrameModeTests {
    static let source = Paths.fixture("bframes_open_gop.mp4")
    static let frameArgs = ["--split", "frames", "--segment-frames", "37", "--min-split-seconds", "0",
                            "--codec-opt", "qp=0", "-q"]

    @Test("lossless, 37-frame segments on the open-GOP fixture: every decoded frame equals the source's")
    func losslessFrameMode() throws {
        let dir = try Paths.scratch("fm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mkv").path
        let run = try vslice(["transcode", Self.source, "-o", out] + Self.frameArgs)
        #expect(run.status == 0, "\(run.stderr)")
        let mine = try FFmpegOracle.frameMD5s(out), theirs = try FFmpegOracle.frameMD5s(Self.source)
        #expect(mine.count == 180)
        #expect(mine == theirs)
    }

    @Test("tmix equals a single-pass tmix with a 4-frame forward overlap, and without one: vslice measures the filter's memory")
    func temporalFilterNeedsOverlap() throws {
        let dir = try Paths.scratch("tmix")
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = try FFmpegOracle.frameMD5s(Self.source, extra: ["-vf", "tmix=frames=5"])
        #expect(single.count == 180)

        let withOverlap = dir.appendingPathComponent("overlap.mkv").path
        var run = try vslice(["transcode", Self.source, "-o", withOverlap, "--vf", "tmix=frames=5", "--overlap", "4,0"] + Self.frameArgs)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try FFmpegOracle.frameMD5s(withOverlap) == single)

        // Segments start at frames 37, 74, 111, 148; without the 4 frames of memory before each, the 4 frames
        // from each boundary on would see fewer inputs. vslice sizes the buffer itself.
        let without = dir.appendingPathComponent("plain.mkv").path
        run = try vslice(["transcode", Self.source, "-o", without, "--vf", "tmix=frames=5", "--overlap", "0"] + Self.frameArgs)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try FFmpegOracle.frameMD5s(without) == single)
    }

    @Test("backward and two-sided overlaps drop every buffer frame", arguments: ["0,3", "2,2"])
    func backwardOverlap(_ overlap: String) throws {
        let dir = try Paths.scratch("ov")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Self.source, "-o", out, "--overlap", overlap] + Self.frameArgs)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try FFmpegOracle.frameMD5s(out) == FFmpegOracle.frameMD5s(Self.source))
        try expectOracle(source: Self.source, output: out)
    }

    @Test("x265 cuts buffered segments itself (chunk-start/chunk-end): lossless, every kept frame equals the source's",
          arguments: ["2,3", "0,4", "3,0"])
    func x265Chunks(_ overlap: String) throws {
        // Frames before chunk-start are encoded and discarded by x265, frames after chunk-end only feed its
        // lookahead; vslice forces no keyframe then. Were chunking off (x265 disables it silently for an open
        // GOP), the buffer frames would be encoded, the first kept frame would not start a GOP, and the frames
        // would not match.
        let dir = try Paths.scratch("x265ov")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Self.source, "-o", out, "--overlap", overlap, "--vcodec", "libx265",
                              "--split", "frames", "--segment-frames", "37", "--min-split-seconds", "0",
                              "--codec-opt", "x265-params=lossless=1", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try FFmpegOracle.frameMD5s(out, extra: ["-pix_fmt", "yuv420p"]) == FFmpegOracle.frameMD5s(Self.source))
        try expectOracle(source: Self.source, output: out, expect: Expected(videoCodec: "hevc"))
    }

    @Test("overlaps work in GOP mode too")
    func gopModeOverlap() throws {
        let dir = try Paths.scratch("gov")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Self.source, "-o", out, "--overlap", "3,3", "--min-split-seconds", "0",
                              "--segment-seconds", "1", "--codec-opt", "qp=0", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try FFmpegOracle.frameMD5s(out) == FFmpegOracle.frameMD5s(Self.source))
    }

    @Test("plan --json reports the segments the encode then produces")
    func planMatchesEncode() throws {
        let dir = try Paths.scratch("plan")
        defer { try? FileManager.default.removeItem(at: dir) }
        let planRun = try vslice(["plan", Self.source, "--json", "--overlap", "4,2"] + Self.frameArgs.filter { $0 != "-q" })
        #expect(planRun.status == 0, "\(planRun.stderr)")
        let plan = try jsonObject(planRun.stdout)
        let segments = try #require(plan["segments"] as? [[String: Any]])
        #expect(segments.count == 5)
        let planned = segments.map { ($0["last_frame"] as! Int) - ($0["first_frame"] as! Int) + 1 }
        #expect(planned == [37, 37, 37, 37, 32])
        #expect(segments.map { $0["buffer_start"] as! Int } == [0, 33, 70, 107, 144])
        #expect(segments.map { $0["buffer_end"] as! Int } == [38, 75, 112, 149, 179])

        let out = dir.appendingPathComponent("out.mp4").path
        let run = try vslice(["transcode", Self.source, "-o", out, "--json", "--overlap", "4,2"] + Self.frameArgs)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try lastEvent(run.stdout, "task_done")
        #expect(report["segment_frames"] as? [Int] == planned)
        #expect(try MediaFacts(out).frames == 180)
    }
}
