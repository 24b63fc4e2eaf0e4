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
    public static func verify(output: String, against input: String, filter: String? = nil) throws(VSliceError) -> VerifyReport {
        let src = try Probe(path: input)
        let timing = try filter.map { (vf) throws(VSliceError) in try FilterTiming.measure(vf, source: input, index: src.video!) }
        return try verify(output: Probe(path: output), against: src, filtered: timing)
    }

    /// - Parameter filtered: the `--vf` graph's measured timing, when the output was filtered: its frames are
    ///   then checked against the graph's output times on the source (when those do not depend on the
    ///   pictures), not against the source's frames.
    public static func verify(output out: Probe, against src: Probe, filtered: FilterTiming? = nil) -> VerifyReport {
        var problems: [String] = []
        let si = src.video!, oi = out.video!
        let stb = si.timeBase.value, otb = oi.timeBase.value
        // The frame times the output must have (source time base): the source's, or the filter's.
        let keepFrom = Transcoder.filteredStart(src)
        let expected: [Int64]? = filtered == nil ? si.pts : filtered!.outputPts.map { $0.filter { $0 >= keepFrom } }
        // With a filter whose timing depends on the pictures there is nothing to compare frame by frame.
        let srcStart = Double(expected?.first ?? si.pts[0]) * stb
        let outStart = Double(oi.pts[0]) * otb
        // Each file's timeline starts at its earliest stream; frames are compared on those timelines.
        let base = min(srcStart, src.audio?.start ?? srcStart)
        // The output's audio was encoded by vslice from the source's decoded samples: priming that its
        // container cannot signal is vslice's own, and is not part of the source's timeline.
        let outAudioStart = out.audio.map { $0.start + $0.unsignalledPriming }
        let outBase = min(outStart, outAudioStart ?? outStart)
        if let expected, expected.count != oi.pts.count {
            problems.append("frame count \(oi.pts.count), \(filtered == nil ? "source has" : "the filter gives") \(expected.count)")
        }
        var maxErr = 0.0
        // Both a frame time and the timeline base are rounded to the coarser clock: one tick in all.
        let tolerance = max(stb, otb) + 1e-6
        var firstBad: Int? = nil
        let reference = expected ?? []
        for i in 0..<min(reference.count, oi.pts.count) {
            let e = abs((Double(reference[i]) * stb - base) - (Double(oi.pts[i]) * otb - outBase))
            maxErr = max(maxErr, e)
            if e > tolerance && firstBad == nil { firstBad = i }
        }
        if let firstBad {
            problems.append(String(format: "frame %d is at %.6f s, %@ frame at %.6f s (re-based)", firstBad,
                                   Double(oi.pts[firstBad]) * otb - outBase, filtered == nil ? "source" : "filtered",
                                   Double(reference[firstBad]) * stb - base))
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
        switch (src.audio, out.audio) {
        case (nil, nil): break
        case (.some, nil): problems.append("output has no audio, source has")
        case (nil, .some): problems.append("output has audio, source has none")
        case let (.some(a), .some(b)):
            report.inputAudioDuration = a.duration
            report.outputAudioDuration = b.duration - b.unsignalledPriming
            report.inputAvOffset = a.start - srcStart
            report.outputAvOffset = outAudioStart! - outStart
            if abs(a.duration - report.outputAudioDuration!) > frame + 1e-6 {
                problems.append(String(format: "audio duration %.4f s, source %.4f s", report.outputAudioDuration!, a.duration))
            }
            if expected != nil && abs(report.inputAvOffset! - report.outputAvOffset!) > 0.001 + tolerance {
                problems.append(String(format: "audio starts %.4f s after video, source %.4f s",
                                       report.outputAvOffset!, report.inputAvOffset!))
            }
        }
        report.problems = problems
        report.ok = problems.isEmpty
        return report
    }
}
