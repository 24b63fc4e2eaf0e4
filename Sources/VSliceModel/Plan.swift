import Foundation
import VSliceSupport

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
    /// Frames its file holds: the source frames, or with a filter or a processor the frames that come out in its
    /// interval (nil when that depends on the pictures and is known only once encoded).
    public var outputFrames: Int? { cut == nil ? frameCount : cut!.expectedFrames }

    /// Frames `first…last` of the source as segment `number` with no buffers, decoded from `decodeFrom` (default
    /// `first`, a keyframe): what the checks before any work run the encoder or the processor on.
    package static func checkRun(_ first: Int, _ last: Int, index: VideoIndex, number: Int = 0, decodeFrom: Int? = nil) -> SegmentPlan {
        let from = decodeFrom ?? first
        return SegmentPlan(index: number, bufferStart: first, firstFrame: first, lastFrame: last, bufferEnd: last, decodeFrom: from,
                           startPts: index.pts[first], endPts: index.pts[last], bufferStartPts: index.pts[first],
                           bufferEndPts: index.pts[last], decodeFromPts: index.pts[from])
    }
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
    /// Why the input was cut this way (printed by `vslice plan`).
    public var reason: String
    /// With `--split scene`: the frames (presentation indices) where a scene change was found.
    public var sceneChanges: [Int] = []
    /// The source's HDR10 static metadata, handed to every segment's encoder (wherever it runs).
    public var hdr: HDRMetadata? = nil
    /// What the `--process` program puts out (learnt before any work); every segment's must put out the same.
    public var processor: ProcessorOutput? = nil
    /// What an element was taken to cost (the default plan's measurement, the processor's included where counted).
    public var elementCost: ElementCost? = nil
    /// The context steps (`--analyze`, `--reduce`, `--context-frames`); nil without them.
    public var context: ContextPlan? = nil

    /// Cuts the video for a filtered transcode: segments as without a filter, overlap buffers raised to what
    /// the graph's measured timing needs, and each segment cut by time (see `TimeCut`).
    /// `from`: the first time the output keeps (nil: all the graph gives).
    public init(index: VideoIndex, settings: TranscodeSettings, filter timing: FilterTiming, from start: Int64? = nil,
                scenes: [Int64] = [], cost: ElementCost? = nil) {
        var s = settings
        s.overlapBefore = max(s.overlapBefore, timing.memory)
        s.overlapAfter = max(s.overlapAfter, timing.lookahead > 0 ? timing.lookahead + 1 : 0)
        self.init(index: index, settings: s, scenes: scenes, cost: cost)
        let pts = index.pts, n = pts.count
        for i in segments.indices {
            // The overlaps as times too: at least the frames that cover the measured spans.
            var seg = segments[i]
            if timing.memorySpan > 0, seg.firstFrame > 0 {
                let from = pts[seg.firstFrame] - timing.memorySpan
                var k = seg.bufferStart
                while k > 0 && pts[k] > from { k -= 1 }
                seg.bufferStart = k
            }
            if timing.lookaheadSpan > 0, seg.lastFrame + 1 < n, pts[seg.bufferEnd] < pts[seg.lastFrame + 1] + timing.lookaheadSpan {
                let until = pts[seg.lastFrame + 1] + timing.lookaheadSpan
                var k = seg.bufferEnd
                while k + 1 < n && pts[k] < until { k += 1 }
                seg.bufferEnd = min(n - 1, k + 1)
            }
            if seg.bufferStart != segments[i].bufferStart || seg.bufferEnd != segments[i].bufferEnd {
                seg.decodeFrom = Plan.decodeStart(for: seg.bufferStart, index: index)
                seg.bufferStartPts = pts[seg.bufferStart]
                seg.bufferEndPts = pts[seg.bufferEnd]
                seg.decodeFromPts = pts[seg.decodeFrom]
                segments[i] = seg
            }
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

    /// Cuts the video described by `index` into segments according to `settings`; `scenes` are the
    /// timestamps of scene changes (`--split scene`, see `SceneDetect`); `cost`: what an element costs besides its
    /// frames, measured before any work (the default plan keeps it under `fixedCostShare` of each segment's work).
    public init(index: VideoIndex, settings: TranscodeSettings, scenes: [Int64] = [], cost: ElementCost? = nil) {
        let n = index.pts.count
        let tb = index.timeBase.value
        // First frame's start to last frame's end (a 60 s clip is 60 s, not 60 s minus a frame).
        let duration = n > 1 ? Double(index.pts[n - 1] - index.pts[0] + index.duration(ofFrameAt: index.pts[n - 1])) * tb : 0
        frameCount = n
        timeBase = index.timeBase
        var starts: [Int] = [0]
        if let minimum = settings.minSplitSeconds, duration < minimum {
            reason = String(format: "one segment: %.1f s is shorter than --min-split-seconds %g", duration, minimum)
        } else if n < 2 {
            reason = "one segment: a single frame"
        } else {
            switch settings.split {
            case .gop:
                if let seconds = settings.segmentSeconds {
                    let t0 = index.pts[0]
                    var mark = 1
                    for k in index.keyframeIndices where k > 0 {
                        let t = Double(index.pts[k] - t0) * tb
                        if t >= Double(mark) * seconds - 1e-9 {
                            starts.append(k)
                            mark = Int((t / seconds + 1e-9).rounded(.down)) + 1
                        }
                    }
                    reason = String(format: "--segment-seconds %g: a cut at the first keyframe at or after every mark", seconds)
                    if starts.count == 1 {
                        reason = String(format: "one segment: --segment-seconds %g cuts at keyframes, and no keyframe is at or after its first mark"
                                        + " (%d keyframe%@); --split frames --segment-frames N cuts between keyframes", seconds,
                                        index.keyframeIndices.count, index.keyframeIndices.count == 1 ? "" : "s")
                    }
                } else {
                    (starts, reason) = Plan.checkedByModel(Plan.balancedStarts(index: index, duration: duration, settings: settings, cost: cost),
                                                           index: index, settings: settings, cost: cost)
                }
            case .frames:
                starts = Array(stride(from: 0, to: n, by: max(1, settings.segmentFrames)))
                reason = "--split frames: exactly \(settings.segmentFrames) frames per segment"
            case .scene:
                // Scene changes as frame indices (a timestamp that is no frame's is dropped).
                let frames = scenes.compactMap { t -> Int? in
                    var lo = 0, hi = n - 1
                    while lo <= hi {
                        let mid = (lo + hi) / 2
                        if index.pts[mid] == t { return mid }
                        if index.pts[mid] < t { lo = mid + 1 } else { hi = mid - 1 }
                    }
                    return nil
                }
                sceneChanges = frames
                (starts, reason) = Plan.balancedStarts(index: index, duration: duration, settings: settings, scenes: frames, cost: cost)
            }
        }
        var segs: [SegmentPlan] = []
        for (i, first) in starts.enumerated() {
            let last = i + 1 < starts.count ? starts[i + 1] - 1 : n - 1
            let bufferStart = max(0, first - settings.overlapBefore)
            let bufferEnd = min(n - 1, last + min(settings.overlapAfter, n))
            let decodeFrom = Plan.decodeStart(for: bufferStart, index: index)
            segs.append(SegmentPlan(
                index: i, bufferStart: bufferStart, firstFrame: first, lastFrame: last, bufferEnd: bufferEnd,
                decodeFrom: decodeFrom, startPts: index.pts[first], endPts: index.pts[last],
                bufferStartPts: index.pts[bufferStart], bufferEndPts: index.pts[bufferEnd],
                decodeFromPts: index.pts[decodeFrom]))
        }
        segments = segs
    }

    /// Cuts the segments for a `--process` program putting out P frames per Q input frames: by time, each
    /// keeping the program's frames that fall inside its kept source frames (or, after a filter, inside its
    /// interval), the buffer frames' P/Q-fold dropped. With Q > 1 each segment's first buffer frame is moved back
    /// to a multiple of Q, so every segment's program sees the frames at the same phase as one run over the
    /// whole video would, and their frames fall at the same times.
    package mutating func process(with out: ProcessorOutput, index: VideoIndex) {
        processor = out
        let p = Int(out.rate.num), q = Int(out.rate.den)
        let pts = index.pts, n = pts.count
        /// Output frames that fall inside source frames [0, k): one at every position j·Q/P below k.
        func upTo(_ k: Int) -> Int { (k * p + q - 1) / q }
        for i in segments.indices {
            var seg = segments[i]
            if var cut = seg.cut {
                // After a filter (whole rates only): P frames for each of the graph's.
                cut.expectedFrames = cut.expectedFrames.map { $0 * p }
                seg.cut = cut
            } else {
                if q > 1 && seg.bufferStart % q != 0 {
                    seg.bufferStart -= seg.bufferStart % q
                    seg.bufferStartPts = pts[seg.bufferStart]
                    seg.decodeFrom = Plan.decodeStart(for: seg.bufferStart, index: index)
                    seg.decodeFromPts = pts[seg.decodeFrom]
                }
                seg.cut = TimeCut(keepFromPts: i == 0 ? nil : seg.startPts,
                                  keepUntilPts: seg.lastFrame + 1 < n ? pts[seg.lastFrame + 1] : nil,
                                  expectedFrames: upTo(seg.lastFrame + 1) - upTo(seg.firstFrame),
                                  primeFrames: 0, lastFrameDuration: index.duration(ofFrameAt: seg.endPts))
            }
            segments[i] = seg
        }
    }

    /// The share of a segment's work its fixed cost may take, at most (the default plan's rule).
    public static let fixedCostShare = 0.02

    /// Whether the plan for these settings is the default, balanced one, which depends on what an element costs.
    package static func measuresElementCost(_ s: TranscodeSettings) -> Bool {
        (s.split == .gop && s.segmentSeconds == nil || s.split == .scene) && s.jobs > 1
    }


    /// The default plan: cuts at keyframes chosen so the work fills every worker to the end. Segments are
    /// largest first and shrink towards the end (each ≈ what is left ÷ 2 × jobs, by frame count, as guided
    /// self-scheduling does), so when one worker finishes early a short segment is left for it instead of a
    /// long one; none is shorter than the encoder's minimum. It splits whenever two such segments fit.
    ///
    /// With `scenes` (frame indices of scene changes, `--split scene`), a cut goes to the scene change nearest
    /// the mark when one lies within a quarter of the segment's length of it (decoding then starts at the
    /// keyframe before), else to the nearest keyframe as without.
    package static func balancedStarts(index: VideoIndex, duration: Double, settings: TranscodeSettings,
                               scenes: [Int] = [], cost: ElementCost? = nil) -> ([Int], String) {
        let jobs = max(1, settings.jobs)
        // Every cut costs its overlap buffers: frames processed twice (a filter's memory and lookahead, or
        // --overlap), as dear as kept ones. A segment is at least ten times its buffers (≤ 10 % spent on them).
        let perCut = settings.overlapBefore + settings.overlapAfter
        let interval = Double(Probe.medianInterval(index.pts)) * index.timeBase.value
        let fixed = FixedCostMinimum(index: index, cost: cost, encoder: settings.videoCodec, interval: interval, jobs: jobs,
                                     duration: duration)
        let encoderMinimum = fixed.atKeyframes
        let buffers = Double(10 * perCut) * interval
        let minimum = max(encoderMinimum, buffers)
        let minimumWhy = buffers > encoderMinimum
            ? String(format: "%.3g s, ten times the %d buffer frames each cut costs", minimum, perCut) : fixed.why
        guard jobs > 1 else { return ([0], "one segment: one job (--jobs 1), so its encoder gets every core") }
        guard duration >= 2 * minimum else {
            return ([0], String(format: "one segment: %.1f s is shorter than two shortest segments (%@)", duration, minimumWhy))
        }
        let cuts = BalancedCuts(index: index, jobs: jobs, minimum: minimum, perCut: perCut, duration: duration, scenes: scenes,
                                minimumBetween: max(fixed.betweenKeyframes, buffers), fewerThanJobs: cost?.processor != nil)
        var (starts, atScenes) = cuts.shrinking(index.keyframeIndices)
        var shape = BalancedCuts.Shape.shrinking
        if let better = cuts.improved(starts) { (starts, atScenes, shape) = (better.starts, 0, better.shape) }
        // A processor's segments are long (its start-up): no keyframe may fit where equal cuts between them do.
        if starts.count == 1, cost?.processor != nil, let split = cuts.split() { (starts, atScenes, shape) = (split.starts, 0, split.shape) }
        let between = shape == .equal
        guard starts.count > 1 else {
            return ([0], "one segment: no keyframe leaves the shortest segment (\(minimumWhy)) on both sides (cut between keyframes with --split frames)")
        }
        let lengths = (0..<starts.count).map { i in (i + 1 < starts.count ? cuts.time(starts[i + 1]) : cuts.end) - cuts.time(starts[i]) }
        let rest = between ? "between keyframes (decoding from the keyframe before: keyframes alone left a worker idle)" : "at keyframes"
        let at = scenes.isEmpty && settings.split != .scene ? rest
            : "\(atScenes) cut(s) at scene changes (of \(scenes.count) found), the rest \(rest)"
        if between {
            return (starts, String(format: "%d equal segments for %d jobs (%.1f s each, at least %@), %@", starts.count, jobs,
                                    lengths.first ?? 0, fixed.whyBetween, at))
        }
        if shape == .even {
            return (starts, String(format: "%d segments for %d jobs, at most one each, at the keyframes nearest equal marks (%.1f s to %.1f s): "
                                    + "shrinking ones of at least %@ would leave workers idle", starts.count, jobs,
                                    lengths.min() ?? 0, lengths.max() ?? 0, minimumWhy))
        }
        if let first = lengths.first, let last = lengths.last, first - last < 0.05 {
            return (starts, String(format: "%d segments of %.1f s for %d jobs, %@; none shorter than %@", starts.count, first, jobs,
                                    at, minimumWhy))
        }
        return (starts, String(format: "%d segments for %d jobs, %@, from %.1f s down to %.1f s "
                                + "(each ≈ what is left ÷ 2 × jobs, at least %@), so the workers finish together",
                                starts.count, jobs, at, lengths.first ?? 0, lengths.last ?? 0, minimumWhy))
    }

    /// The two ways the default plan cuts: segments shrinking towards the end at candidate frames (keyframes,
    /// or scene changes near the marks), or equal segments cut at any frame; and how well either fills the jobs.
    package struct BalancedCuts {
        package let index: VideoIndex
        package let jobs: Int
        /// The shortest segment, seconds.
        package let minimum: Double
        /// The shortest segment that starts between keyframes (its fixed cost holds the frames decoded before its
        /// first one), seconds: equal cuts and cuts at scene changes.
        package let minimumBetween: Double
        /// Buffer frames each cut costs.
        package let perCut: Int
        package let duration: Double
        /// Frame indices of scene changes (`--split scene`).
        package let scenes: [Int]
        package var n: Int { index.pts.count }
        /// The end of the last frame, seconds.
        package let end: Double

        /// Equal segments may be fewer than the jobs (a processor's dear start-up), rather than none.
        package var fewerThanJobs = false

        package init(index: VideoIndex, jobs: Int, minimum: Double, perCut: Int, duration: Double, scenes: [Int], minimumBetween: Double? = nil,
                     fewerThanJobs: Bool = false) {
            self.fewerThanJobs = fewerThanJobs
            self.index = index
            self.jobs = jobs
            self.minimum = minimum
            self.minimumBetween = max(minimum, minimumBetween ?? minimum)
            self.perCut = perCut
            self.duration = duration
            self.scenes = scenes
            let last = index.pts[index.pts.count - 1]
            end = Double(last + index.duration(ofFrameAt: last)) * index.timeBase.value
        }

        package func time(_ frame: Int) -> Double { Double(index.pts[frame]) * index.timeBase.value }

        /// A cut at `f` leaves at least `minimum` seconds (`shortest`, for a cut between keyframes) after the
        /// segment starting at `current` and before the end.
        package func fits(_ f: Int, after current: Int, shortest: Double? = nil) -> Bool {
            let m = shortest ?? minimum
            return time(f) - time(current) >= m - 1e-9 && end - time(f) >= m - 1e-9
        }

        /// Cuts chosen among `candidates` (frame indices, ascending: the keyframes), each segment ≈ what is left
        /// ÷ 2 × jobs; a scene change within a quarter of a segment's length of the mark wins. Returns the
        /// starts and how many are at scene changes.
        package func shrinking(_ candidates: [Int]) -> (starts: [Int], atScenes: Int) {
            var starts = [0]
            var k = 0   // position in `candidates` of the current start
            var atScenes = 0
            while true {
                let current = starts[starts.count - 1]
                let target = current + max(1, (n - current) / (2 * jobs))
                let window = max(1, (target - current) / 4)
                if let scene = scenes.filter({ $0 > current && abs($0 - target) <= window && fits($0, after: current, shortest: minimumBetween) })
                    .min(by: { abs($0 - target) < abs($1 - target) }) {
                    starts.append(scene)
                    atScenes += 1
                    // Candidates before the cut are behind us.
                    while k + 1 < candidates.count && candidates[k + 1] <= scene { k += 1 }
                    continue
                }
                guard let chosen = nearest(candidates, after: k, current: current, target: target) else { break }
                starts.append(candidates[chosen])
                k = chosen
            }
            return (starts, atScenes)
        }

        /// The position in `candidates` (after `k`) of the one nearest `target` that leaves at least `minimum`
        /// seconds on both sides.
        package func nearest(_ candidates: [Int], after k: Int, current: Int, target: Int) -> Int? {
            var best: Int? = nil
            var j = k + 1
            while j < candidates.count {
                let f = candidates[j]
                if fits(f, after: current) {
                    if let b = best, abs(f - target) >= abs(candidates[b] - target) { break }
                    best = j
                } else if end - time(f) < minimum - 1e-9 { break }
                j += 1
            }
            return best
        }

        /// How the default plan cut.
        package enum Shape { case shrinking, equal, even }

        /// When the shrinking cuts leave workers idle (under 95 % busy), the better filling of the other two ways,
        /// if it fills them better by more than 2 %: keyframes far apart next to the segment lengths (five equal GOPs
        /// on two workers: a sixth of the time idle) are helped by equal segments cut between keyframes, decoding
        /// from the keyframe before (`equal`); a shortest segment longer than what shrinking asks for (many jobs, a
        /// dear start-up) makes many segments of that length, whose last wave leaves most workers idle, or fewer
        /// segments than jobs with a long last one, and is helped by one segment per job (as many as the shortest
        /// allows) at the keyframes nearest equal marks (`even`).
        package func improved(_ starts: [Int]) -> (starts: [Int], shape: Shape)? {
            guard starts.count > 1, efficiency(starts) < 0.95, scenes.isEmpty else { return nil }
            var best: (starts: [Int], shape: Shape)? = nil
            var bar = efficiency(starts) + 0.02
            for (candidate, shape) in [(equal(), Shape.equal), (even(), Shape.even)] where candidate.count > 1 {
                let e = efficiency(candidate)
                if e > bar { (best, bar) = ((candidate, shape), e) }
            }
            return best
        }

        /// When no keyframe leaves the shortest segment on both sides: the better filling of equal segments cut
        /// between keyframes and even ones at keyframes, if either splits at all.
        package func split() -> (starts: [Int], shape: Shape)? {
            guard scenes.isEmpty else { return nil }
            let options = [(equal(), Shape.equal), (even(), Shape.even)].filter { $0.0.count > 1 }
            return options.max { efficiency($0.0) < efficiency($1.0) }.map { ($0.0, $0.1) }
        }

        /// One segment per job — or, when the shortest segment allows fewer, as many as fit (the most for which
        /// every cut finds its keyframe) — each cut at the keyframe nearest its mark that leaves the shortest
        /// segment on both sides.
        package func even() -> [Int] {
            let keys = index.keyframeIndices
            guard keys.first == 0 else { return [0] }
            var count = min(jobs, Int((duration / minimum + 1e-9).rounded(.down)))
            while count > 1 {
                let starts = even(count, keys)
                if starts.count == count { return starts }
                count -= 1
            }
            return [0]
        }

        /// `count` segments cut at the keyframes nearest equal marks (fewer when a mark finds none).
        private func even(_ count: Int, _ keys: [Int]) -> [Int] {
            var starts = [0], k = 0
            for m in 1..<count {
                let current = starts[starts.count - 1], mark = n * m / count
                guard mark > current, let j = nearest(keys, after: k, current: current, target: mark) else { break }
                starts.append(keys[j])
                k = j
            }
            return starts
        }

        /// Any frame may be a cut: two equal segments per job (one per job when two would be under the minimum,
        /// or when the buffers of the extra cuts would cost more than 1 % of the work: equal segments on one
        /// worker each already finish together), each cut at the frame nearest its mark whose decoding starts no
        /// earlier than the segment before.
        package func equal() -> [Int] {
            let perJob = min(perCut * jobs * 100 > n ? 1 : 2, Int(duration / (Double(jobs) * minimumBetween)))
            let fewer = fewerThanJobs ? Int(duration / minimumBetween + 1e-9) : 0
            guard perJob >= 1 || fewer >= 2 else { return [0] }
            let count = perJob >= 1 ? jobs * perJob : fewer
            var starts = [0]
            for m in 1..<count {
                let mark = n * m / count
                let current = starts[starts.count - 1]
                let ok = { (f: Int) in
                    f > current && f < n && fits(f, after: current, shortest: minimumBetween) && Plan.decodeStart(for: f, index: index) >= current
                }
                guard let f = (0..<n).lazy.flatMap({ [mark - $0, mark + $0] }).first(where: ok) else { continue }
                starts.append(f)
            }
            return starts
        }

        /// How well `jobs` workers are used by these segments dispatched longest first (1 = no idle tail).
        package func efficiency(_ starts: [Int]) -> Double {
            var workers = [Int](repeating: 0, count: jobs)
            let sizes = (0..<starts.count).map { ($0 + 1 < starts.count ? starts[$0 + 1] : n) - starts[$0] }
            for size in sizes.sorted(by: >) { workers[workers.indices.min { workers[$0] < workers[$1] }!] += size }
            return Double(n) / Double(jobs) / Double(workers.max() ?? n)
        }
    }

    /// The keyframe to start decoding from so that frame `frame` and every frame after it decode correctly.
    /// With open GOPs the frames right after a keyframe (in presentation order) may still be fine while the
    /// keyframe's own leading frames are not, so decoding starts one GOP earlier (a cut at an open GOP's keyframe would lose or damage them).
    package static func decodeStart(for frame: Int, index: VideoIndex) -> Int {
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
