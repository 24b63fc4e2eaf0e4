import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

extension ElementCost {
    /// Frames decoded (and dropped) to time the decoder, and frames encoded to time a frame's work.
    package static let decodeFrames = 16, sampleFrames = 8

    /// Measures, before any work, what an element of this transcode costs: one short segment, as a segment's
    /// attempt runs it (its pipeline without `--vf` or `--process`), from the keyframe nearest the middle of the
    /// video — the start-up until its first frame, then the work per frame of `sampleFrames` frames encoded and
    /// sealed; and a decode of `decodeFrames` frames from that keyframe, for what a frame decoded and dropped
    /// costs. With `workerProcess`, also how long this binary takes to start (`vslice --version`, the faster of
    /// two), as a worker's process would. The segment runs twice and the faster run counts (what the machine's
    /// other work adds is noise). Takes about a fifth of a second for x264 at 720p. Nil when the video is too short
    /// to say.
    public static func measure(source: String, index: VideoIndex, settings: TranscodeSettings, expect: FileIdentity? = nil,
                               workerProcess: Bool = false) throws(VSliceError) -> ElementCost? {
        let n = index.pts.count, keys = index.keyframeIndices
        guard n >= 2, !keys.isEmpty else { return nil }
        var k = keys[keys.count / 2]
        if n - k < 2 { k = keys[0] }
        var s = settings
        s.videoFilter = nil
        s.process = nil
        s.overlapBefore = 0
        s.overlapAfter = 0
        let decode = try decodeSeconds(source: source, index: index, from: k, frames: min(decodeFrames, n - k), expect: expect)
        let kept = min(sampleFrames, n - k)
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("vslice-cost-\(UUID().uuidString.prefix(8)).vseg")
        defer { unlink(path) }
        let pipeline = SegmentPipeline(source: source, index: index, segment: segment(index, from: k, to: k + kept - 1), settings: s,
                                       outputPath: path, expect: expect)
        var startup = Double.infinity, perFrame = Double.infinity
        for _ in 0..<runs {
            let t0 = monotonicSeconds()
            let r = try pipeline.run()
            let total = monotonicSeconds() - t0
            let s = min(total, r.startupSeconds ?? 0)
            startup = min(startup, s)
            perFrame = min(perFrame, max(1e-6, (total - s) / Double(kept)))
        }
        var cost = ElementCost(startupSeconds: startup, decodeSecondsPerFrame: decode, workSecondsPerFrame: perFrame)
        if workerProcess { cost.processSeconds = processStart() ?? 0 }
        return cost
    }

    /// Runs of the sample segment (the fastest counts).
    package static let runs = 2

    /// Seconds per frame to decode `frames` frames from keyframe `k` (the input opened first, not counted).
    private static func decodeSeconds(source: String, index: VideoIndex, from k: Int, frames: Int,
                                      expect: FileIdentity?) throws(VSliceError) -> Double {
        let src = try SegmentSource(path: source, index: index, segment: segment(index, from: k, to: k + frames - 1), threads: 1,
                                    watch: WorkWatch(), expect: expect, progress: { _ in })
        let t0 = monotonicSeconds()
        try src.run { _ in }
        return (monotonicSeconds() - t0) / Double(max(1, src.handedOn))

    }

    private static func segment(_ index: VideoIndex, from first: Int, to last: Int) -> SegmentPlan {
        SegmentPlan.checkRun(first, last, index: index)
    }

    /// Wall seconds for this binary to start and exit (`--version`), the faster of two; nil if it cannot run.
    package static func processStart() -> Double? {
        var best: Double? = nil
        for _ in 0..<2 {
            let t0 = monotonicSeconds()
            guard let r = try? ExternalCommand.run(ExternalCommand.currentExecutable, ["--version"], timeout: 30), r.status == 0 else { return nil }
            let t = monotonicSeconds() - t0
            best = min(best ?? t, t)
        }
        return best
    }
}
