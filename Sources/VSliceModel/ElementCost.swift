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
    /// The `--process` program's own cost (timed by the check before any work), when the plan counts it: its
    /// start-up is paid by every segment (once per job slot with `--process-persistent`), its work by every frame.
    public var processor: ProcessorCost? = nil

    public init(startupSeconds: Double, decodeSecondsPerFrame: Double, workSecondsPerFrame: Double, processSeconds: Double = 0,
                processor: ProcessorCost? = nil) {
        self.startupSeconds = startupSeconds
        self.decodeSecondsPerFrame = decodeSecondsPerFrame
        self.workSecondsPerFrame = workSecondsPerFrame
        self.processSeconds = processSeconds
        self.processor = processor
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

    /// A segment's fixed cost when it decodes `leading` frames before its first one (the processor's start-up
    /// included, unless it stays loaded).
    public func fixedSeconds(leading: Double) -> Double {
        startupSeconds + processSeconds + max(0, leading) * decodeSecondsPerFrame + (processor?.perSegmentSeconds ?? 0)
    }

    /// Wall seconds of work per kept frame: the encoder's and the processor's.
    public var totalSecondsPerFrame: Double { workSecondsPerFrame + (processor?.secondsPerFrame ?? 0) }

    /// The fewest frames a segment needs so that its fixed cost (with `leading` frames decoded before its first)
    /// is at most `share` of its work.
    public func minimumFrames(leading: Double, share: Double) -> Double {
        guard totalSecondsPerFrame > 0, share > 0 else { return 0 }
        return fixedSeconds(leading: leading) / (share * totalSecondsPerFrame)
    }

    /// "start-up 15 ms + worker start 90 ms, against 11.3 ms of work per frame"; with a processor "start-up 15 ms
    /// + the processor's 420 ms, against 1.3 + 182 ms of work per frame (the encoder's and the processor's)".
    package var summary: String {
        var s = String(format: "start-up %.0f ms", startupSeconds * 1000)
        if processSeconds > 0 { s += String(format: " + worker start %.0f ms", processSeconds * 1000) }
        guard let p = processor else {
            return s + String(format: ", against %.2g ms of work per frame, %@", workSecondsPerFrame * 1000, origin)
        }
        if p.perSegment { s += String(format: " + the processor's %.0f ms", p.startupSeconds * 1000) }
        return s + String(format: ", against %.2g + %.3g ms of work per frame (the encoder's and the processor's), %@",
                          workSecondsPerFrame * 1000, p.secondsPerFrame * 1000, origin)
    }

    private var origin: String {
        let elementGiven = Self.given() != nil
        guard let _ = processor else { return elementGiven ? "as VSLICE_ELEMENT_COST says" : "measured before any work" }
        switch (elementGiven, ProcessorCost.given() != nil) {
        case (false, false): return "measured before any work"
        case (true, true): return "as VSLICE_ELEMENT_COST and VSLICE_PROCESSOR_COST say"
        case (true, false): return "as VSLICE_ELEMENT_COST says, the processor's measured"
        case (false, true): return "the processor's as VSLICE_PROCESSOR_COST says"
        }
    }
}

/// What a `--process` program costs, timed by the check before any work (`ProcessorCheck`) on the frames it runs
/// on, and recorded by every segment's trace the same way: its start-up — from its launch until its first frame
/// out (the interpreter, its imports, the model's load, and that first frame) — and its work per source frame
/// once it runs: the time between its first and last frames out, per frame in between (a program putting out P
/// frames per Q, P/Q of them per source frame). Wall seconds, with the cores a segment's program gets
/// (`VSLICE_THREADS`).
public struct ProcessorCost: Codable, Sendable, Equatable {
    public var startupSeconds: Double
    public var secondsPerFrame: Double
    /// Source frames the work per frame was timed over (0: given, not measured).
    public var framesTimed: Int
    /// The program stays loaded (`--process-persistent`): its start-up is paid once per job slot, not per segment.
    public var persistent: Bool = false
    /// Programs timed at once (the check's, as the segments run them; nil: one).
    public var programs: Int? = nil

    public init(startupSeconds: Double, secondsPerFrame: Double, framesTimed: Int, persistent: Bool = false) {
        self.startupSeconds = startupSeconds
        self.secondsPerFrame = secondsPerFrame
        self.framesTimed = framesTimed
        self.persistent = persistent
    }

    /// Paid by every segment: the start-up, unless the program stays loaded.
    public var perSegment: Bool { !persistent }
    public var perSegmentSeconds: Double { perSegment ? startupSeconds : 0 }

    /// `VSLICE_PROCESSOR_COST=STARTUP,WORK` (seconds: its start-up, its work per source frame): the processor's
    /// cost the plan uses instead of the check's timing (tests, comparisons). Nil when unset or malformed.
    public static func given(environment: [String: String] = ProcessInfo.processInfo.environment) -> ProcessorCost? {
        guard let text = environment["VSLICE_PROCESSOR_COST"] else { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let v = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 2, parts.count == 2, v.allSatisfy({ $0 >= 0 }) else { return nil }
        return ProcessorCost(startupSeconds: v[0], secondsPerFrame: v[1], framesTimed: 0)
    }

    /// "start-up 420 ms, 182 ms of work per frame (timed over 4 frames, 2 programs at once)".
    public var summary: String {
        let at = (programs ?? 1) > 1 ? ", \(programs ?? 1) programs at once" : ""
        return String(format: "start-up %.0f ms%@, %.3g ms of work per frame", startupSeconds * 1000,
                      persistent ? " (once per job slot: it stays loaded)" : "", secondsPerFrame * 1000)
            + (framesTimed > 0 ? " (timed over \(framesTimed) frames\(at))" : " (as VSLICE_PROCESSOR_COST says)")
    }

    /// The mean of programs' timings (the check's, run `programs` at once): their start-ups, and their work per
    /// frame weighted by the frames each timed; `framesTimed` is one program's. Nil when none was timed.
    public static func mean(of costs: [ProcessorCost]) -> ProcessorCost? {
        guard var m = costs.first else { return nil }
        guard costs.count > 1 else { return m }
        let frames = costs.map(\.framesTimed).reduce(0, +)
        m.startupSeconds = costs.map(\.startupSeconds).reduce(0, +) / Double(costs.count)
        m.secondsPerFrame = frames > 0 ? costs.map { $0.secondsPerFrame * Double($0.framesTimed) }.reduce(0, +) / Double(frames)
            : costs.map(\.secondsPerFrame).reduce(0, +) / Double(costs.count)
        m.programs = costs.count
        return m
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

    /// The share of its work a segment's fixed cost may take, at most, when a processor's start-up would
    /// otherwise leave job slots idle (see `init`).
    package static let idleSlotShare = 0.10

    /// `jobs`, `duration`: with a processor counted, where the 2 % rule asks for segments so long that there
    /// would be fewer than two per job, the shortest segment is that of two per job instead (idle job slots
    /// lose all their time; a program's start-up only its own), but never so short that its fixed cost passes
    /// `idleSlotShare` of its work. The encoder alone is not relaxed so: one segment's encoder gets the idle
    /// slots' cores and x264, x265 thread well over them; a program is not assumed to.
    package init(index: VideoIndex, cost: ElementCost?, encoder: String, interval: Double, jobs: Int = 1, duration: Double = 0) {
        self.init(index: index, cost: cost, encoder: encoder, interval: interval)
        guard let cost, cost.processor != nil, jobs > 1, duration > 0 else { return }
        let gop = Double(index.pts.count) / Double(max(1, index.keyframeIndices.count))
        let leading = index.openGop ? gop : 0
        let share = Self.idleSlotShare
        let perJob = duration / Double(2 * jobs)
        let relaxed = max(2 * interval, cost.minimumFrames(leading: leading, share: share) * interval, perJob)
        let relaxedBetween = max(relaxed, cost.minimumFrames(leading: leading + gop / 2, share: share) * interval, perJob)
        if relaxed < atKeyframes {
            atKeyframes = relaxed
            why = String(format: "%.3g s: two segments per job, as the 2 %% rule would leave job slots idle, and a segment's fixed "
                         + "cost — %@ — stays under %g %% of its work", relaxed, cost.summary, share * 100)
        }
        if relaxedBetween < betweenKeyframes {
            betweenKeyframes = relaxedBetween
            whyBetween = String(format: "%.3g s: two segments per job, as the 2 %% rule would leave job slots idle, and a segment's "
                                + "fixed cost with the %.0f frames it decodes first on average — %@, %.2g ms to decode a frame — "
                                + "stays under %g %% of its work", relaxedBetween, leading + gop / 2, cost.summary,
                                cost.decodeSecondsPerFrame * 1000, share * 100)
        }
    }

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
