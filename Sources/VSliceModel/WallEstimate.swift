import Foundation

/// How long a run of a plan should take on the wall, from the costs measured before any work (`ElementCost`:
/// the encoder's start-up and work per frame, and with `--process` the program's, `ProcessorCost`): the
/// checks before any work (as long as the plan's own took: a run makes the same), then the segments, longest
/// first, each on the first of `jobs` slots to be free (as the encode step hands them out). A segment costs its
/// fixed cost (start-up, the frames decoded before its first, the program's start-up unless it stays loaded)
/// and its frames' work (buffers included); a program kept loaded (`--process-persistent`) starts once per slot.
/// With more slots than `cores`, each slot's work is slowed by slots ÷ cores. The merge, the check of the
/// output and the audio (beside the encode) are not counted: next to a slow encode or model they are small.
public struct WallEstimate: Codable, Sendable, Equatable {
    /// The whole run: checks + segments.
    public var seconds: Double
    /// The checks before any work (probe, the processor's check, the cost measurement).
    public var checksSeconds: Double
    /// The segments on the slots, until the last ends.
    public var encodeSeconds: Double
    /// The segments' work, all of it, as on one slot.
    public var workSeconds: Double
    public var jobs: Int
    /// Slots that get a segment (at most the segments).
    public var slots: Int

    public init(plan: Plan, cost: ElementCost, jobs: Int, cores: Int?, checksSeconds: Double) {
        let slots = max(1, min(jobs, plan.segments.count))
        let slow = cores.map { max(1, Double(slots) / Double(max(1, $0))) } ?? 1
        let loadedOnce = cost.processor.map { $0.persistent ? $0.startupSeconds : 0 } ?? 0
        var free = [Double](repeating: 0, count: slots)
        var started = [Bool](repeating: false, count: slots)
        var work = 0.0
        for s in plan.segments.sorted(by: { $0.processedCount > $1.processedCount }) {
            let seconds = cost.fixedSeconds(leading: Double(s.bufferStart - s.decodeFrom))
                + Double(s.processedCount) * cost.totalSecondsPerFrame * slow
            let i = free.indices.min { free[$0] < free[$1] }!
            free[i] += seconds + (started[i] ? 0 : loadedOnce)
            work += seconds + (started[i] ? 0 : loadedOnce)
            started[i] = true
        }
        self.checksSeconds = checksSeconds
        encodeSeconds = free.max() ?? 0
        workSeconds = work
        self.jobs = jobs
        self.slots = slots
        seconds = checksSeconds + encodeSeconds
    }

    /// "about 27.0 s on the wall for --jobs 2: the checks 3.1 s, then the segments 23.9 s (47.8 s of work on 2 slots)".
    public var summary: String {
        String(format: "about %@ on the wall for --jobs %d: the checks %.1f s, then the segments %.1f s (%.1f s of work on %d slot%@)",
               Self.clock(seconds), jobs, checksSeconds, encodeSeconds, workSeconds, slots, slots == 1 ? "" : "s")
    }

    /// "27.0 s" under a minute, else "1:05", "1:02:05".
    public static func clock(_ s: Double) -> String {
        if s < 59.95 { return String(format: "%.1f s", max(0, s)) }
        let t = Int(min(max(0, s), 359_999).rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
