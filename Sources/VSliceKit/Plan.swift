import Foundation

/// One segment of the video: the frames it keeps, and where decoding must start to produce them.
/// Frame numbers are presentation-order indices into the source's frames.
public struct SegmentPlan: Codable, Sendable, Equatable {
    public var index: Int
    /// First frame decoded and sent to processing/encoding (≤ `firstFrame`: forward overlap buffer).
    public var bufferStart: Int
    /// First frame kept in the output.
    public var firstFrame: Int
    /// Last frame kept in the output (inclusive).
    public var lastFrame: Int
    /// Last frame processed (≥ `lastFrame`: backward overlap buffer).
    public var bufferEnd: Int
    /// Keyframe (presentation index) where decoding starts.
    public var decodeFrom: Int
    /// Timestamps (source time base) of the first and last kept frames.
    public var startPts: Int64
    public var endPts: Int64
    /// Timestamps of the first and last processed frames (overlap buffers included) and of `decodeFrom`.
    public var bufferStartPts: Int64
    public var bufferEndPts: Int64
    public var decodeFromPts: Int64

    /// Set when a `--vf` graph runs: the segment is cut by time, not by frames.
    public var cut: TimeCut? = nil

    /// Source frames the segment covers (its share of the progress).
    public var frameCount: Int { lastFrame - firstFrame + 1 }
    public var processedCount: Int { bufferEnd - bufferStart + 1 }
    /// Frames its file holds: the source frames, or with a filter the graph's output frames in its interval
    /// (nil when that depends on the pictures and is known only once encoded).
    public var outputFrames: Int? { cut == nil ? frameCount : cut!.expectedFrames }
}

/// How a filtered segment is cut: it keeps the graph's output frames timed in [keepFrom, keepUntil) (source
/// time base; nil is unbounded: the first segment keeps what the graph puts before the source's first frame,
/// the last what it puts after the last).
public struct TimeCut: Codable, Sendable, Equatable {
    public var keepFromPts: Int64?
    public var keepUntilPts: Int64?
    /// Output frames in that interval, from the graph's measured timing; nil when it depends on the pictures.
    public var expectedFrames: Int?
    /// Blank frames fed to the graph before the first real one (a graph that counts frames).
    public var primeFrames: Int
    /// Duration of the last output frame when nothing follows it: the graph's output frame interval, else
    /// the source's last frame's duration.
    public var lastFrameDuration: Int64
    /// Subtracted from source timestamps on the way into the graph, added back on the way out.
    public var graphOffset: Int64 = 0
}

public struct Plan: Codable, Sendable {
    public var segments: [SegmentPlan]
    public var frameCount: Int
    public var timeBase: Ratio

    /// Cuts the video for a filtered transcode: segments as without a filter, overlap buffers raised to what
    /// the graph's measured timing needs, and each segment cut by time (see `TimeCut`).
    /// `from`: the first time the output keeps (nil: all the graph gives).
    public init(index: VideoIndex, settings: TranscodeSettings, filter timing: FilterTiming, from start: Int64? = nil) {
        var s = settings
        s.overlapBefore = max(s.overlapBefore, timing.memory)
        s.overlapAfter = max(s.overlapAfter, timing.lookahead > 0 ? timing.lookahead + 1 : 0)
        self.init(index: index, settings: s)
        for i in segments.indices {
            let from: Int64? = i == 0 ? start : segments[i].startPts
            let until: Int64? = i + 1 < segments.count ? segments[i + 1].startPts : nil
            let expected = timing.outputPts.map { all in
                all.filter { t in (from.map { t >= $0 } ?? true) && (until.map { t < $0 } ?? true) }.count
            }
            segments[i].cut = TimeCut(keepFromPts: from, keepUntilPts: until, expectedFrames: expected,
                                      primeFrames: timing.countsFrames ? segments[i].bufferStart : 0,
                                      lastFrameDuration: timing.frameInterval ?? index.lastFrameDuration,
                                      graphOffset: timing.offset)
        }
    }

    /// Cuts the video described by `index` into segments according to `settings`.
    public init(index: VideoIndex, settings: TranscodeSettings) {
        let n = index.pts.count
        let tb = index.timeBase.value
        // First frame's start to last frame's end (a 60 s clip is 60 s, not 60 s minus a frame).
        let duration = n > 1 ? Double(index.pts[n - 1] - index.pts[0] + index.duration(ofFrameAt: index.pts[n - 1])) * tb : 0
        frameCount = n
        timeBase = index.timeBase
        var starts: [Int] = [0]
        if duration >= settings.minSplitSeconds && n > 1 {
            switch settings.split {
            case .gop:
                let t0 = index.pts[0]
                var mark = 1
                for k in index.keyframeIndices where k > 0 {
                    let t = Double(index.pts[k] - t0) * tb
                    if t >= Double(mark) * settings.segmentSeconds - 1e-9 {
                        starts.append(k)
                        mark = Int((t / settings.segmentSeconds + 1e-9).rounded(.down)) + 1
                    }
                }
            case .frames:
                starts = Array(stride(from: 0, to: n, by: settings.segmentFrames))
            }
        }
        var segs: [SegmentPlan] = []
        for (i, first) in starts.enumerated() {
            let last = i + 1 < starts.count ? starts[i + 1] - 1 : n - 1
            let bufferStart = max(0, first - settings.overlapBefore)
            let bufferEnd = min(n - 1, last + settings.overlapAfter)
            let decodeFrom = Plan.decodeStart(for: bufferStart, index: index)
            segs.append(SegmentPlan(
                index: i, bufferStart: bufferStart, firstFrame: first, lastFrame: last, bufferEnd: bufferEnd,
                decodeFrom: decodeFrom, startPts: index.pts[first], endPts: index.pts[last],
                bufferStartPts: index.pts[bufferStart], bufferEndPts: index.pts[bufferEnd],
                decodeFromPts: index.pts[decodeFrom]))
        }
        segments = segs
    }

    /// The keyframe to start decoding from so that frame `frame` and every frame after it decode correctly.
    /// With open GOPs the frames right after a keyframe (in presentation order) may still be fine while the
    /// keyframe's own leading frames are not, so decoding starts one GOP earlier, as the design notes ask.
    static func decodeStart(for frame: Int, index: VideoIndex) -> Int {
        let keys = index.keyframeIndices
        // Last keyframe at or before `frame`.
        var lo = 0, hi = keys.count - 1, found = 0
        while lo <= hi {
            let mid = (lo + hi) / 2
            if keys[mid] <= frame { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        if index.openGop && found > 0 { found -= 1 }
        return keys[found]
    }
}
