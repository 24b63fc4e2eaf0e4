import Foundation
import VSliceSupport

/// The default plan with a `--process` program counted: where its rules (the 2 % and 10 % fixed shares) make
/// fewer than two segments per job — a dear start-up, few waves, where a worker left idle costs most — they are
/// checked against the scaling model `vslice report` replays, for `--jobs` workers, and the segment count the
/// model predicts fastest is taken where it beats the rules' plan by more than `Plan.modelMargin`. With two
/// segments per job or more, the rules' segments, shrinking to the end, stay: they also absorb segments slower
/// than the check's frames, which the model does not see.
extension Plan {
    /// How much faster (a share of the rules' predicted wall time) the model's best count must be to be taken
    /// instead: where the two are close, the rules' shrinking segments also absorb a slow segment, which the
    /// model (every frame as dear as the check timed it) does not see.
    package static let modelMargin = 0.01

    /// The wall seconds the scaling model (`ScalingModel.replay`, as `vslice report` replays a task) predicts
    /// for the encode of segments starting at `starts` on `jobs` workers: dispatched longest first, each its
    /// fixed cost (`ElementCost.fixedSeconds`, with the frames it decodes before its first buffer frame) and
    /// its processed frames' work; a program kept loaded pays its start-up once per worker (the model's first
    /// wave), not per segment.
    package static func predictedSeconds(starts: [Int], index: VideoIndex, settings: TranscodeSettings, cost: ElementCost) -> Double {
        let n = index.pts.count
        var elements: [ScalingInput.Element] = []
        for (i, first) in starts.enumerated() {
            let last = i + 1 < starts.count ? starts[i + 1] - 1 : n - 1
            let from = max(0, first - settings.overlapBefore), to = min(n - 1, last + settings.overlapAfter)
            let leading = Double(from - decodeStart(for: from, index: index))
            let fixed = cost.fixedSeconds(leading: leading)
            let seconds = fixed + Double(to - from + 1) * cost.totalSecondsPerFrame
            elements.append(.init(kind: .segment, index: i, cpuSeconds: seconds, startupSeconds: fixed))
        }
        elements.sort { $0.cpuSeconds > $1.cpuSeconds }
        let once = cost.processor.map { $0.persistent ? $0.startupSeconds : 0 } ?? 0
        let input = ScalingInput(before: [], elements: elements, after: [], firstWaveLatency: once, laterLatency: 0)
        return ScalingModel.replay(input, workers: max(1, settings.jobs)).encode
    }

    /// The counts the model is asked about: 2 to a little over two segments per job, each as equal segments cut at
    /// the frames nearest equal marks (decoding from the keyframe before) and at the keyframes nearest them.
    /// Segments are at least two frames and ten times the buffer frames a cut costs.
    package static func modelCandidates(index: VideoIndex, settings: TranscodeSettings) -> [[Int]] {
        let n = index.pts.count
        let shortest = max(2, 10 * (settings.overlapBefore + settings.overlapAfter))
        let most = min(n / shortest, 2 * max(1, settings.jobs) + 2)
        guard most >= 2 else { return [] }
        var out: [[Int]] = []
        let keys = index.keyframeIndices
        for count in 2...most {
            let marks = (1..<count).map { n * $0 / count }
            out.append([0] + marks)
            var atKeys = [0]
            for m in marks {
                var lo = 0, hi = keys.count - 1
                while lo < hi { let mid = (lo + hi) / 2; if keys[mid] < m { lo = mid + 1 } else { hi = mid } }
                let near = [keys[lo], lo > 0 ? keys[lo - 1] : keys[lo]].min { abs($0 - m) < abs($1 - m) }!
                if near > atKeys[atKeys.count - 1] && n - near >= shortest && near - atKeys[atKeys.count - 1] >= shortest { atKeys.append(near) }
            }
            if atKeys.count > 1 && atKeys != out[out.count - 1] { out.append(atKeys) }
        }
        return out
    }

    /// The rules' starts, or the model's fastest when it is `modelMargin` faster, with why.
    package static func checkedByModel(_ rule: (starts: [Int], reason: String), index: VideoIndex, settings: TranscodeSettings,
                                       cost: ElementCost?) -> ([Int], String) {
        guard let cost, let p = cost.processor, settings.jobs > 1, index.pts.count >= 4, rule.starts.count < 2 * settings.jobs else { return rule }
        let ruled = predictedSeconds(starts: rule.starts, index: index, settings: settings, cost: cost)
        let tried = modelCandidates(index: index, settings: settings)
        var found: (starts: [Int], seconds: Double)? = nil
        for starts in tried {
            let t = predictedSeconds(starts: starts, index: index, settings: settings, cost: cost)
            if let f = found, f.seconds <= t { continue }
            found = (starts, t)
        }
        guard let found else { return rule }
        let most = tried.map(\.count).max() ?? 2
        let best = (found.starts, found.seconds)
        let paid = p.persistent ? "once per job slot (it stays loaded)" : "by every segment"
        let model = String(format: "the scaling model (vslice report's) for %d workers, with the processor's start-up of %.0f ms paid %@, "
                           + "predicts %.2f s of encode for these", settings.jobs, p.startupSeconds * 1000, paid, ruled)
        guard best.1 < ruled * (1 - modelMargin) else {
            return (rule.starts, rule.reason + String(format: "; %@, and no count of 2 to %d it tried is %g %% faster (the best: %d segments, %.2f s)",
                                                      model, most, modelMargin * 100, best.0.count, best.1))
        }
        let between = best.0.contains { !index.keyframeIndices.contains($0) }
        let shape = between ? "equal, cut between keyframes (decoding from the keyframe before)" : "at the keyframes nearest equal marks"
        let head = String(format: "%d segments, %@: the fastest the scaling model (vslice report's) predicts for %d workers of the counts 2 to %d, ",
                          best.0.count, shape, settings.jobs, most)
        let body = String(format: "%.2f s of encode, with the processor's start-up of %.0f ms paid %@", best.1, p.startupSeconds * 1000, paid)
        let tail = String(format: " — where the rules' %d segments (%@) would take %.2f s", rule.starts.count, rule.reason, ruled)
        return (best.0, head + body + tail)
    }
}
