import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// The product's own check of an output against its source: frame count, every frame's timestamp, DTS order,
/// A/V durations and start offset. Run before publishing and by `vslice verify`.
public struct VerifyReport: Codable, Sendable {
    public var ok: Bool
    public var problems: [String]
    public var inputFrames: Int
    public var outputFrames: Int
    /// Largest difference between an output frame's time and its source frame's (re-based), seconds.
    public var maxTimestampError: Double
    public var inputVideoDuration: Double
    public var outputVideoDuration: Double
    public var inputAudioDuration: Double?
    public var outputAudioDuration: Double?
    /// Audio start minus video start, seconds.
    public var inputAvOffset: Double?
    public var outputAvOffset: Double?
}

public enum Verifier {
    /// With `decode`, every video and audio packet of the output is also decoded: damaged media data that
    /// leaves the timestamps intact is found too. With `filter` (the `--vf` it was made with), its frames are
    /// checked against the graph's output times on the source.
    /// With `rate` (a `--process` program's P/Q), P frames for every Q of the source's (or the filter's).
    public static func verify(output: String, against input: String, filter: String? = nil, rate: Ratio? = nil,
                              decode: Bool = false) throws(VSliceError) -> VerifyReport {
        let src = try Probe(path: input)
        let timing = try filter.map { (vf) throws(VSliceError) in try FilterTiming.measure(vf, source: input, index: src.video!) }
        var report = verify(output: try Probe(path: output), against: src, filtered: timing, rate: rate)
        if decode {
            report.problems += try DecodeCheck.problems(path: output)
            report.ok = report.problems.isEmpty
        }
        return report
    }

    /// - Parameter filtered: the `--vf` graph's measured timing, when the output was filtered: its frames are
    ///   then checked against the graph's output times on the source (when those do not depend on the
    ///   pictures), not against the source's frames.
    /// - Parameter audioStreams: the source's audio streams the output keeps, in order (nil: all of them
    ///   when the output has as many audio tracks, else the best one).
    /// - Parameter copiedAudio: output audio tracks (by position) that were stream-copied: their priming is
    ///   the source's, not vslice's encoder's.
    /// - Parameter rate: a `--process` program's rate P/Q: the output has a frame at every position j·Q/P of
    ///   the frames it was given, in equal steps inside each.
    public static func verify(output out: Probe, against src: Probe, filtered: FilterTiming? = nil, rate: Ratio? = nil,
                              audioStreams: [Int]? = nil, copiedAudio: Set<Int> = [],
                              subtitleStreams: [Int]? = nil) -> VerifyReport {
        let c = Comparison(out: out, src: src, filtered: filtered, rate: rate, audioStreams: audioStreams, copiedAudio: copiedAudio)
        var problems = c.videoProblems()
        var report = VerifyReport(ok: true, problems: [], inputFrames: c.si.pts.count, outputFrames: c.oi.pts.count,
                                  maxTimestampError: c.maxTimestampError, inputVideoDuration: c.inputVideoDuration,
                                  outputVideoDuration: c.outputVideoDuration)
        problems += c.audioProblems(into: &report)
        problems += c.subtitleProblems(subtitleStreams: subtitleStreams)
        report.problems = problems
        report.ok = problems.isEmpty
        return report
    }

    /// The times (ticks) of a processor's frames at rate P/Q over frames at `times` (the last lasting until
    /// `end`): frame j at position j·Q/P, inside the frame it falls in in equal steps.
    static func spread(_ times: [Int64], end: Int64, rate: Ratio) -> [Double] {
        let p = Int64(rate.num), q = Int64(rate.den), n = Int64(times.count)
        let count = (n * p + q - 1) / q
        return (0..<count).map { j in
            let i = Int(j * q / p), r = j * q % p
            let next = i + 1 < times.count ? times[i + 1] : end
            return Double(times[i]) + Double(r) * Double(next - times[i]) / Double(p)
        }
    }

    /// An output and its source on their own timelines (each starts at its earliest stream), with what the
    /// output's frames and tracks are compared against.
    struct Comparison {
        let src: Probe, out: Probe
        let si: VideoIndex, oi: VideoIndex
        let stb: Double, otb: Double
        let filtered: FilterTiming?
        /// A processor's rate P/Q, when it is not 1.
        let rate: Ratio?
        /// The frame times the output must have (source ticks): the source's, or the filter's, spread P/Q-fold by
        /// a processor; nil with a filter whose timing depends on the pictures (nothing to compare frame by frame).
        let expected: [Double]?
        let srcStart: Double, outStart: Double
        let srcAudio: [AudioSpan], outAudio: [AudioSpan]
        let srcAudioStarts: [Double], outAudioStarts: [Double]
        let copiedAudio: Set<Int>
        /// Where each file's timeline starts (its earliest stream), seconds.
        let base: Double, outBase: Double
        /// Both a frame time and the timeline base are rounded to the coarser clock: one tick in all.
        let tolerance: Double
        /// The largest difference between an output frame's time and its expected one's (re-based), seconds.
        private(set) var maxTimestampError = 0.0
        /// The first output frame off by more than `tolerance`.
        private(set) var firstBadFrame: Int? = nil

        init(out: Probe, src: Probe, filtered: FilterTiming?, rate: Ratio? = nil, audioStreams: [Int]?, copiedAudio: Set<Int>) {
            self.src = src
            self.out = out
            self.filtered = filtered
            self.rate = rate.flatMap { $0.num != $0.den ? $0 : nil }
            self.copiedAudio = copiedAudio
            si = src.video!
            oi = out.video!
            stb = si.timeBase.value
            otb = oi.timeBase.value
            let given = filtered.map { f in f.outputPts.map { $0.filter { $0 >= f.offset } } } ?? si.pts
            expected = given.map { [si, filtered, rate = self.rate] frames in
                guard let rate, let last = frames.last else { return frames.map(Double.init) }
                let end = last + (filtered.flatMap(\.frameInterval) ?? si.lastFrameDuration)
                return Verifier.spread(frames, end: end, rate: rate)
            }
            srcStart = (expected?.first ?? Double(si.pts[0])) * stb
            outStart = Double(oi.pts[0]) * otb
            srcAudio = if let audioStreams {
                src.audioTracks.filter { audioStreams.contains($0.stream) }.map(\.span)
            } else if out.audioTracks.count == src.audioTracks.count {
                src.audioTracks.map(\.span)
            } else {
                src.audio.map { [$0] } ?? []
            }
            outAudio = out.audioTracks.map(\.span)
            // A copied track is compared by its packets' times, which the copy keeps; an encoded one by where the
            // source's decoded samples start (priming the source's demuxer leaves in them is carried over as sound).
            srcAudioStarts = srcAudio.enumerated().map { copiedAudio.contains($0.offset) ? $0.element.firstPacket : $0.element.start }
            base = min(srcStart, srcAudioStarts.min() ?? srcStart)
            // The output's audio was encoded by vslice from the source's decoded samples: priming that its
            // demuxer does not trim is vslice's own, and is not part of the source's timeline.
            outAudioStarts = outAudio.enumerated().map { copiedAudio.contains($0.offset) ? $0.element.firstPacket : $0.element.start + $0.element.unsignalledPriming }
            outBase = min(outStart, outAudioStarts.min() ?? outStart)
            tolerance = max(stb, otb) + 1e-6
            (maxTimestampError, firstBadFrame) = frameTimes
        }

        var inputVideoDuration: Double { si.endTime - srcStart }
        var outputVideoDuration: Double { oi.endTime - outStart }
        /// A source frame's typical duration, seconds.
        var frame: Double { si.pts.count > 1 ? (si.endTime - srcStart) / Double(si.pts.count) : 0.04 }

        /// Each output frame's time against the expected one's (re-based): the largest difference, and the first
        /// frame off by more than the tolerance.
        var frameTimes: (maxError: Double, firstBad: Int?) {
            var maxErr = 0.0
            var firstBad: Int? = nil
            let reference = expected ?? []
            for i in 0..<min(reference.count, oi.pts.count) {
                let e = abs((reference[i] * stb - base) - (Double(oi.pts[i]) * otb - outBase))
                maxErr = max(maxErr, e)
                if e > tolerance && firstBad == nil { firstBad = i }
            }
            return (maxErr, firstBad)
        }

        /// Frame count, every frame's time, DTS order, and the video's length.
        func videoProblems() -> [String] {
            var problems: [String] = []
            if let expected, expected.count != oi.pts.count {
                let what = rate != nil ? "the processor's rate gives" : filtered == nil ? "source has" : "the filter gives"
                problems.append("frame count \(oi.pts.count), \(what) \(expected.count)")
            }
            if let firstBad = firstBadFrame, let reference = expected {
                let what = filtered == nil ? "source" : "filtered"
                problems.append(String(format: "frame %d is at %.6f s, \(what) frame at %.6f s (re-based)", firstBad,
                                       Double(oi.pts[firstBad]) * otb - outBase, reference[firstBad] * stb - base))
            }
            if !oi.dtsStrictlyIncreasing { problems.append("video DTS not strictly increasing") }
            // Every frame's start is compared above; what is left of the video's length is the last frame's
            // duration. It is compared only when both files state it: FFmpeg 5.1 reads none from MP4/MOV (it
            // derives one from the codec's frame rate when it can) nor from Matroska video without a default
            // duration, and a guessed figure on either side would decide nothing (ffprobe shows the same).
            let inV = inputVideoDuration, outV = outputVideoDuration
            if filtered == nil && si.lastFrameDurationStated && oi.lastFrameDurationStated && abs(inV - outV) > frame + 1e-6 {
                problems.append(String(format: "video duration %.4f s, source %.4f s", outV, inV))
            }
            return problems
        }

        /// Each audio track's duration and offset to the video; the first track's figures go into `report`.
        func audioProblems(into report: inout VerifyReport) -> [String] {
            var problems: [String] = []
            if srcAudio.count != outAudio.count {
                problems.append(outAudio.isEmpty ? "output has no audio, source has"
                                : srcAudio.isEmpty ? "output has audio, source has none"
                                : "output has \(outAudio.count) audio tracks, expected \(srcAudio.count)")
            }
            for (k, (a, b)) in zip(srcAudio, outAudio).enumerated() {
                let copied = copiedAudio.contains(k)
                let inDuration = copied ? a.end - a.firstPacket : a.duration
                let outDuration = copied ? b.end - b.firstPacket : b.duration - b.unsignalledPriming
                let inOffset = srcAudioStarts[k] - srcStart, outOffset = outAudioStarts[k] - outStart
                if k == 0 {
                    report.inputAudioDuration = a.duration
                    report.outputAudioDuration = outDuration
                    report.inputAvOffset = inOffset
                    report.outputAvOffset = outOffset
                }
                let which = outAudio.count > 1 ? "audio track \(k)" : "audio"
                // An encoder pads the sound's end to a whole frame of its own (and flushes its look-ahead), which
                // Matroska keeps: an encoded track may be longer by its last packet too.
                let padding = copied ? 0 : b.lastPacketDuration
                if inDuration - outDuration > frame + 1e-6 || outDuration - inDuration > frame + padding + 1e-6 {
                    problems.append(String(format: "\(which) duration %.4f s, source %.4f s", outDuration, inDuration))
                }
                if expected != nil && abs(inOffset - outOffset) > 0.001 + tolerance {
                    problems.append(String(format: "\(which) starts %.4f s after video, source %.4f s", outOffset, inOffset))
                }
            }
            return problems
        }

        /// Subtitles: the same events, the first shown at the same time (re-based), within a millisecond.
        func subtitleProblems(subtitleStreams: [Int]?) -> [String] {
            let srcSubs = subtitleStreams.map { kept in src.subtitleTracks.filter { kept.contains($0.stream) } }
                ?? (out.subtitleTracks.count == src.subtitleTracks.count ? src.subtitleTracks : nil)
            guard let srcSubs else { return [] }
            var problems: [String] = []
            if srcSubs.count != out.subtitleTracks.count {
                problems.append("output has \(out.subtitleTracks.count) subtitle tracks, expected \(srcSubs.count)")
            }
            for (k, (a, b)) in zip(srcSubs, out.subtitleTracks).enumerated() {
                if a.events != b.events { problems.append("subtitle track \(k): \(b.events) events, source \(a.events)") }
                if let fa = a.first, let fb = b.first, abs((fa - base) - (fb - outBase)) > 0.001 + tolerance {
                    problems.append(String(format: "subtitle track \(k) starts at %.4f s, source %.4f s (re-based)", fb - outBase, fa - base))
                }
            }
            return problems
        }
    }
}
