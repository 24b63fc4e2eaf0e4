import Foundation
import VSliceSupport

/// What one element (a segment's attempt) costs besides its frames, and what a frame costs, measured before any
/// work (`ElementCost.measure`, Media/ElementCostProbe.swift): the balanced plan keeps every segment long enough
/// that its fixed cost stays under `Plan.fixedCostShare` of its work.
///
/// The fixed cost of a segment is its start-up — opening the input, the seek, opening the decoder and the
/// encoder (`startupSeconds`, measured on a segment starting at a keyframe) — plus the frames decoded before its
/// first one and dropped (`decodeSecondsPerFrame` each: a cut between keyframes decodes from the keyframe before;
/// an open GOP from the one before that), plus, where segments run as `vslice segment` processes, the worker's
/// own start (`processSeconds`: loading the binary, reading `task.json`). The encoder's flush is not counted: the
/// frames it encodes then are work a longer segment would do too. The scheduler's latency is not counted either:
/// it is a wait, not work, and it is paid once per wave of `--jobs` elements (`vslice report` shows it).
public struct ElementCost: Codable, Sendable, Equatable {
    /// Wall seconds from the attempt's start until its first frame was handed on, starting at a keyframe.
    public var startupSeconds: Double
    /// Wall seconds to decode one frame (and drop it).
    public var decodeSecondsPerFrame: Double
    /// Wall seconds of work per kept frame: decoding it, encoding it, writing it.
    public var workSecondsPerFrame: Double
    /// Wall seconds a worker process takes to start (0 when segments run in this process).
    public var processSeconds: Double = 0

    public init(startupSeconds: Double, decodeSecondsPerFrame: Double, workSecondsPerFrame: Double, processSeconds: Double = 0) {
        self.startupSeconds = startupSeconds
        self.decodeSecondsPerFrame = decodeSecondsPerFrame
        self.workSecondsPerFrame = workSecondsPerFrame
        self.processSeconds = processSeconds
    }

    /// `VSLICE_ELEMENT_COST=STARTUP,DECODE,WORK[,PROCESS]` (seconds: start-up, a frame decoded, a frame's work, a
    /// worker's start): the cost the plan uses instead of measuring it — for plans that must not depend on the
    /// machine's noise (tests, comparisons). Nil when unset or malformed.
    public static func given(environment: [String: String] = ProcessInfo.processInfo.environment) -> ElementCost? {
        guard let text = environment["VSLICE_ELEMENT_COST"] else { return nil }
        let v = text.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == text.split(separator: ",").count, v.count == 3 || v.count == 4, v.allSatisfy({ $0 >= 0 }), v[2] > 0 else {
            return nil
        }
        return ElementCost(startupSeconds: v[0], decodeSecondsPerFrame: v[1], workSecondsPerFrame: v[2], processSeconds: v.count == 4 ? v[3] : 0)
    }

    /// A segment's fixed cost when it decodes `leading` frames before its first one.
    public func fixedSeconds(leading: Double) -> Double {
        startupSeconds + processSeconds + max(0, leading) * decodeSecondsPerFrame
    }

    /// The fewest frames a segment needs so that its fixed cost (with `leading` frames decoded before its first)
    /// is at most `share` of its work.
    public func minimumFrames(leading: Double, share: Double) -> Double {
        guard workSecondsPerFrame > 0, share > 0 else { return 0 }
        return fixedSeconds(leading: leading) / (share * workSecondsPerFrame)
    }

    /// "start-up 15 ms + worker start 90 ms, against 11.3 ms of work per frame"
    package var summary: String {
        var s = String(format: "start-up %.0f ms", startupSeconds * 1000)
        if processSeconds > 0 { s += String(format: " + worker start %.0f ms", processSeconds * 1000) }
        return s + String(format: ", against %.2g ms of work per frame, %@", workSecondsPerFrame * 1000,
                          Self.given() == nil ? "measured before any work" : "as VSLICE_ELEMENT_COST says")
    }
}

/// The shortest segment the default plan makes, from what an element costs: long enough that its fixed cost is
/// at most `Plan.fixedCostShare` of its work — for a segment starting at a keyframe (an open GOP's decodes from
/// the keyframe before), and for one starting between keyframes (half a GOP more decoded, on average). Without a
/// measurement, the encoder's rule of thumb.
package struct FixedCostMinimum {
    /// Seconds.
    package var atKeyframes: Double
    package var betweenKeyframes: Double
    /// What `vslice plan` says of each.
    package var why: String
    package var whyBetween: String

    package init(index: VideoIndex, cost: ElementCost?, encoder: String, interval: Double) {
        guard let cost else {
            atKeyframes = VideoEncoderRules.of(encoder).minimumSegmentSeconds
            betweenKeyframes = atKeyframes
            why = String(format: "%g s for %@", atKeyframes, encoder)
            whyBetween = why
            return
        }
        let gop = Double(index.pts.count) / Double(max(1, index.keyframeIndices.count))
        let leading = index.openGop ? gop : 0
        let share = Plan.fixedCostShare
        // At least two frames: a segment of one frame is all start-up whatever the measurement says.
        atKeyframes = max(2 * interval, cost.minimumFrames(leading: leading, share: share) * interval)
        betweenKeyframes = max(atKeyframes, cost.minimumFrames(leading: leading + gop / 2, share: share) * interval)
        why = String(format: "%.3g s, so that a segment's fixed cost — %@ — stays under %g %% of its work", atKeyframes,
                     cost.summary, share * 100)
        whyBetween = String(format: "%.3g s, so that a segment's fixed cost with the %.0f frames it decodes first on average — %@, "
                            + "%.2g ms to decode a frame — stays under %g %% of its work", betweenKeyframes, leading + gop / 2,
                            cost.summary, cost.decodeSecondsPerFrame * 1000, share * 100)
    }
}
