import Foundation

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
        var problems: [String] = []
        let si = src.video!, oi = out.video!
        let stb = si.timeBase.value, otb = oi.timeBase.value
        // The frame times the output must have (source time base): the source's, or the filter's.
        let given: [Int64]?
        if let filtered {
            given = filtered.outputPts.map { $0.filter { $0 >= Transcoder.filteredStart(filtered) } }
        } else {
            given = si.pts
        }
        let expected: [Double]? = given.map { frames in
            guard let rate, rate.num != rate.den, let last = frames.last else { return frames.map(Double.init) }
            let end = last + (filtered == nil ? si.lastFrameDuration : filtered!.frameInterval ?? si.lastFrameDuration)
            return Self.spread(frames, end: end, rate: rate)
        }
        // With a filter whose timing depends on the pictures there is nothing to compare frame by frame.
        let srcStart = (expected?.first ?? Double(si.pts[0])) * stb
        let outStart = Double(oi.pts[0]) * otb
        // Each file's timeline starts at its earliest stream; frames are compared on those timelines.
        let srcAudio: [AudioSpan] = if let audioStreams {
            src.audioTracks.filter { audioStreams.contains($0.stream) }.map(\.span)
        } else if out.audioTracks.count == src.audioTracks.count {
            src.audioTracks.map(\.span)
        } else {
            src.audio.map { [$0] } ?? []
        }
        let outAudio = out.audioTracks.map(\.span)
        // A copied track is compared by its packets' times, which the copy keeps; an encoded one by where the
        // source's decoded samples start (priming the source's demuxer leaves in them is carried over as sound).
        let srcAudioStarts = srcAudio.enumerated().map { copiedAudio.contains($0.offset) ? $0.element.firstPacket : $0.element.start }
        let base = min(srcStart, srcAudioStarts.min() ?? srcStart)
        // The output's audio was encoded by vslice from the source's decoded samples: priming that its
        // demuxer does not trim is vslice's own, and is not part of the source's timeline.
        let outAudioStarts = outAudio.enumerated().map { copiedAudio.contains($0.offset) ? $0.element.firstPacket : $0.element.start + $0.element.unsignalledPriming }
        let outBase = min(outStart, outAudioStarts.min() ?? outStart)
        if let expected, expected.count != oi.pts.count {
            let what = rate.map { $0.num != $0.den } == true ? "the processor's rate gives" : filtered == nil ? "source has" : "the filter gives"
            problems.append("frame count \(oi.pts.count), \(what) \(expected.count)")
        }
        var maxErr = 0.0
        // Both a frame time and the timeline base are rounded to the coarser clock: one tick in all.
        let tolerance = max(stb, otb) + 1e-6
        var firstBad: Int? = nil
        let reference = expected ?? []
        for i in 0..<min(reference.count, oi.pts.count) {
            let e = abs((reference[i] * stb - base) - (Double(oi.pts[i]) * otb - outBase))
            maxErr = max(maxErr, e)
            if e > tolerance && firstBad == nil { firstBad = i }
        }
        if let firstBad {
            let what = filtered == nil ? "source" : "filtered"
            problems.append(String(format: "frame %d is at %.6f s, \(what) frame at %.6f s (re-based)", firstBad,
                                   Double(oi.pts[firstBad]) * otb - outBase, reference[firstBad] * stb - base))
        }
        if !oi.dtsStrictlyIncreasing { problems.append("video DTS not strictly increasing") }
        let frame = si.pts.count > 1 ? (si.endTime - srcStart) / Double(si.pts.count) : 0.04
        let inV = si.endTime - srcStart
        let outV = oi.endTime - outStart
        // Every frame's start is compared above; what is left of the video's length is the last frame's
        // duration. It is compared only when both files state it: FFmpeg 5.1 reads none from MP4/MOV (it
        // derives one from the codec's frame rate when it can) nor from Matroska video without a default
        // duration, and a guessed figure on either side would decide nothing (ffprobe shows the same).
        if filtered == nil && si.lastFrameDurationStated && oi.lastFrameDurationStated && abs(inV - outV) > frame + 1e-6 {
            problems.append(String(format: "video duration %.4f s, source %.4f s", outV, inV))
        }
        var report = VerifyReport(ok: true, problems: [], inputFrames: si.pts.count, outputFrames: oi.pts.count,
                                  maxTimestampError: maxErr, inputVideoDuration: inV, outputVideoDuration: outV)
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
        // Subtitles: the same events, the first shown at the same time (re-based), within a millisecond.
        let srcSubs = subtitleStreams.map { kept in src.subtitleTracks.filter { kept.contains($0.stream) } }
            ?? (out.subtitleTracks.count == src.subtitleTracks.count ? src.subtitleTracks : nil)
        if let srcSubs {
            if srcSubs.count != out.subtitleTracks.count {
                problems.append("output has \(out.subtitleTracks.count) subtitle tracks, expected \(srcSubs.count)")
            }
            for (k, (a, b)) in zip(srcSubs, out.subtitleTracks).enumerated() {
                if a.events != b.events { problems.append("subtitle track \(k): \(b.events) events, source \(a.events)") }
                if let fa = a.first, let fb = b.first, abs((fa - base) - (fb - outBase)) > 0.001 + tolerance {
                    problems.append(String(format: "subtitle track \(k) starts at %.4f s, source %.4f s (re-based)", fb - outBase, fa - base))
                }
            }
        }
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
}
