import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The verifier's rules, on probes built in memory (and one pair of files written by FFmpeg's Matroska muxer):
/// what it finds, and the differences it must let pass.
@Suite("verifier")
struct VerifierTests {
    static let tb25 = Ratio(num: 1, den: 25)

    /// A probe of a video whose frames are at `pts` (time base `tb`), the last one `last` ticks long.
    static func probe(_ pts: [Int64], tb: Ratio = tb25, last: Int64 = 1, stated: Bool = true, dtsIncreasing: Bool = true,
                      audio: [AudioSpan] = [], subtitles: [SubtitleSpan] = []) -> Probe {
        let index = VideoIndex(streamIndex: 0, timeBase: tb, pts: pts, keyframeIndices: [0], openGop: false,
                               endTime: Double(pts.last! + last) * tb.value, dtsStrictlyIncreasing: dtsIncreasing,
                               lastFrameDuration: last, lastFrameDurationStated: stated)
        let report = ProbeReport(path: "memory", format: "test", formatLongName: "", streams: [])
        return Probe(report: report, video: index, audioTracks: audio.enumerated().map { ($0.offset + 1, $0.element) },
                     subtitleTracks: subtitles)
    }

    static let frames = (0..<10).map { Int64($0) }   // 0.4 s at 25 fps
    static let aacFrame = 1024.0 / 48000
    static let sound = AudioSpan(start: 0, end: 0.4, unsignalledPriming: 0, firstPacket: 0, lastPacketDuration: aacFrame)

    func problems(_ out: Probe, _ src: Probe, filtered: FilterTiming? = nil, audioStreams: [Int]? = nil,
                  copiedAudio: Set<Int> = []) -> [String] {
        let r = Verifier.verify(output: out, against: src, filtered: filtered, audioStreams: audioStreams, copiedAudio: copiedAudio)
        #expect(r.ok == r.problems.isEmpty)
        return r.problems
    }

    @Test("an output equal to its source passes, with its figures reported")
    func same() {
        let src = Self.probe(Self.frames, audio: [Self.sound])
        let r = Verifier.verify(output: src, against: src)
        #expect(r.ok && r.problems.isEmpty)
        #expect(r.inputFrames == 10 && r.outputFrames == 10 && r.maxTimestampError == 0)
        #expect(abs(r.outputVideoDuration - 0.4) < 1e-9 && r.outputAudioDuration == 0.4 && r.outputAvOffset == 0)
    }

    @Test("a frame lost, or one moved by more than a tick of the coarser clock, is named")
    func frames() {
        let src = Self.probe(Self.frames)
        #expect(problems(Self.probe(Array(Self.frames.dropLast()), last: 2), src) == ["frame count 9, source has 10"])
        // The same frames in a finer time base pass; one moved by one fine tick (0.02 s, under the 0.04 s of
        // the coarser clock) passes, by three (0.06 s) does not.
        let fine = Ratio(num: 1, den: 50)
        var pts = Self.frames.map { $0 * 2 }
        #expect(problems(Self.probe(pts, tb: fine, last: 2), src).isEmpty)
        pts[5] += 1
        let nudged = Verifier.verify(output: Self.probe(pts, tb: fine, last: 2), against: src)
        #expect(nudged.ok && abs(nudged.maxTimestampError - 0.02) < 1e-9)
        pts[5] += 2
        #expect(problems(Self.probe(pts, tb: fine, last: 2), src)
                == ["frame 5 is at 0.260000 s, source frame at 0.200000 s (re-based)"])
    }

    @Test("each file is compared on its own timeline: a whole output starting later passes")
    func rebased() {
        let src = Self.probe(Self.frames, audio: [Self.sound])
        let later = AudioSpan(start: 4, end: 4.4, unsignalledPriming: 0, firstPacket: 4, lastPacketDuration: Self.aacFrame)
        #expect(problems(Self.probe(Self.frames.map { $0 + 100 }, audio: [later]), src).isEmpty)
    }

    @Test("DTS out of order, and a video length off by more than a frame where both files state it")
    func dtsAndLength() {
        let src = Self.probe(Self.frames)
        #expect(problems(Self.probe(Self.frames, dtsIncreasing: false), src) == ["video DTS not strictly increasing"])
        #expect(problems(Self.probe(Self.frames, last: 3), src) == ["video duration 0.4800 s, source 0.4000 s"])
        // A last frame's duration guessed on either side decides nothing.
        #expect(problems(Self.probe(Self.frames, last: 3, stated: false), src).isEmpty)
    }

    @Test("audio: missing, short, long past its last packet's padding, or starting elsewhere")
    func audio() {
        let src = Self.probe(Self.frames, audio: [Self.sound])
        func out(_ span: AudioSpan) -> Probe { Self.probe(Self.frames, audio: [span]) }
        #expect(problems(Self.probe(Self.frames), src) == ["output has no audio, source has"])
        #expect(problems(out(AudioSpan(start: 0, end: 0.3, unsignalledPriming: 0)), src) == ["audio duration 0.3000 s, source 0.4000 s"])
        // An encoder pads the end to its own frame: longer by a frame of video and that packet passes.
        #expect(problems(out(AudioSpan(start: 0, end: 0.4 + 0.04 + 0.02, unsignalledPriming: 0, lastPacketDuration: Self.aacFrame)), src).isEmpty)
        #expect(problems(out(AudioSpan(start: 0, end: 0.5, unsignalledPriming: 0, lastPacketDuration: Self.aacFrame)), src)
                == ["audio duration 0.5000 s, source 0.4000 s"])
        #expect(problems(out(AudioSpan(start: 0.05, end: 0.45, unsignalledPriming: 0)), src)
                == ["audio starts 0.0500 s after video, source 0.0000 s"])
    }

    @Test("priming the output's demuxer does not trim is vslice's own: its sound starts after it")
    func priming() {
        // A millisecond clock, so that the 21 ms of AAC priming is well past the tolerance.
        let ms = Ratio(num: 1, den: 1000)
        let pts = Self.frames.map { $0 * 40 }
        let src = Self.probe(pts, tb: ms, last: 40, audio: [Self.sound])
        let primed = AudioSpan(start: -Self.aacFrame, end: 0.4, unsignalledPriming: Self.aacFrame, lastPacketDuration: Self.aacFrame)
        #expect(problems(Self.probe(pts, tb: ms, last: 40, audio: [primed]), src).isEmpty)
        var unmarked = primed
        unmarked.unsignalledPriming = 0
        #expect(problems(Self.probe(pts, tb: ms, last: 40, audio: [unmarked]), src).contains { $0.hasPrefix("audio starts -0.0213 s after video") })
    }

    @Test("tracks: the kept source tracks are counted; a copied one is compared by its packets")
    func tracks() {
        let second = AudioSpan(start: 0, end: 0.4, unsignalledPriming: 0, firstPacket: 0, lastPacketDuration: Self.aacFrame)
        let src = Self.probe(Self.frames, audio: [Self.sound, second])
        let one = Self.probe(Self.frames, audio: [Self.sound])
        #expect(problems(one, src).isEmpty, "an output with fewer tracks is compared with the best one")
        #expect(problems(one, src, audioStreams: [1, 2]) == ["output has 1 audio tracks, expected 2"])
        // A source track whose packets start 21 ms before its sound (priming the demuxer trims): a copy keeps
        // the packets' times, and is compared by them.
        let packets = AudioSpan(start: 0, end: 0.4, unsignalledPriming: 0, firstPacket: -Self.aacFrame, lastPacketDuration: Self.aacFrame)
        let ms = Ratio(num: 1, den: 1000)
        let pts = Self.frames.map { $0 * 40 }
        let copySrc = Self.probe(pts, tb: ms, last: 40, audio: [packets])
        #expect(problems(Self.probe(pts, tb: ms, last: 40, audio: [packets]), copySrc, copiedAudio: [0]).isEmpty)
        var moved = packets
        moved.firstPacket += 0.01
        #expect(problems(Self.probe(pts, tb: ms, last: 40, audio: [moved]), copySrc, copiedAudio: [0])
                .contains("audio starts -0.0113 s after video, source -0.0213 s"))
    }

    @Test("subtitles: the same events, the first at the same time")
    func subtitles() {
        let src = Self.probe(Self.frames, subtitles: [SubtitleSpan(stream: 2, first: 0.2, events: 3)])
        #expect(problems(Self.probe(Self.frames, subtitles: [SubtitleSpan(stream: 2, first: 0.2, events: 3)]), src).isEmpty)
        #expect(problems(Self.probe(Self.frames, subtitles: [SubtitleSpan(stream: 2, first: 0.2, events: 2)]), src)
                == ["subtitle track 0: 2 events, source 3"])
        #expect(problems(Self.probe(Self.frames, subtitles: [SubtitleSpan(stream: 2, first: 0.3, events: 3)]), src)
                == ["subtitle track 0 starts at 0.3000 s, source 0.2000 s (re-based)"])
    }

    @Test("with a filter, frames are checked against the graph's output times, or not one by one when they depend on the pictures")
    func filtered() {
        let src = Self.probe(Self.frames)
        let everyOther = FilterTiming(lookahead: 0, memory: 0, countsFrames: true, outputPts: [0, 2, 4, 6, 8], frameInterval: nil)
        #expect(problems(Self.probe([0, 2, 4, 6, 8], last: 2), src, filtered: everyOther).isEmpty)
        #expect(problems(Self.probe(Self.frames), src, filtered: everyOther).first == "frame count 10, the filter gives 5")
        #expect(problems(Self.probe([0, 2, 7, 8, 10], last: 2), src, filtered: everyOther)
                == ["frame 2 is at 0.280000 s, filtered frame at 0.160000 s (re-based)"])
        let byPicture = FilterTiming(lookahead: 0, memory: 0, countsFrames: false, outputPts: nil, frameInterval: nil)
        #expect(problems(Self.probe([0, 3, 7]), src, filtered: byPicture).isEmpty)
    }

    @Test("files written by FFmpeg's Matroska muxer: a merge verifies against itself, not against one missing a segment")
    func muxed() throws {
        let dir = TestScratch.url.appendingPathComponent("vslice-verify-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.vseg").path, b = dir.appendingPathComponent("b.vseg").path
        let mjpeg = MergeTests.video(codec: 7)
        try MergeTests.packetFile(a, mjpeg, (0..<5).map { (Int64($0), Int64($0)) }, duration: 1)
        try MergeTests.packetFile(b, mjpeg, (5..<10).map { (Int64($0), Int64($0)) }, duration: 1)
        func merge(_ segments: [String], _ name: String) throws -> Probe {
            let path = dir.appendingPathComponent(name).path
            _ = try Merger(segments: segments, output: path, format: "matroska",
                           base: Timestamp(ticks: 0, timeBase: Self.tb25), displayMatrix: nil).run()
            return try Probe(path: path)
        }
        let whole = try merge([a, b], "whole.mkv"), half = try merge([a], "half.mkv")
        #expect(whole.video?.pts.count == 10 && whole.video?.dtsStrictlyIncreasing == true)
        #expect(Verifier.verify(output: whole, against: whole).ok)
        #expect(problems(half, whole) == ["frame count 5, source has 10"])
    }
}
