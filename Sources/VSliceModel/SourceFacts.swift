import Foundation
import VSliceSupport

/// HDR10 static metadata of the source's video: mastering display colour volume and content light level,
/// read from the stream's side data (the container's), else from the first decoded frame's (the codec's
/// SEI). Handed to the encoder (x265's `master-display`/`max-cll`, SVT-AV1's `mastering-display`/
/// `content-light`) and to the output stream's side data (MP4 `mdcv`/`clli`, Matroska `MasteringMetadata`).
public struct HDRMetadata: Codable, Sendable, Equatable {
    /// An `AVMasteringDisplayMetadata`, as its bytes.
    package var mastering: Data?
    /// An `AVContentLightMetadata`, as its bytes.
    package var lightLevel: Data?

    package var isEmpty: Bool { mastering == nil && lightLevel == nil }

    package init(mastering: Data? = nil, lightLevel: Data? = nil) {
        self.mastering = mastering
        self.lightLevel = lightLevel
    }
}

/// How a `--vf` graph moves frames in time, measured before any work by running the graph on small synthetic
/// frames (64×64, each its own noise) that carry the source's timestamps. Segments of a filtered
/// transcode are cut by time: each keeps the graph's output frames whose timestamps fall in its own
/// [start, next start). For that to equal one pass, a segment's graph must see enough frames before its start
/// (`memory`) and after its end (`lookahead`), and a graph that counts frames must count from the source's
/// first frame (`countsFrames`). All three are found by running the graph once over the first frames and
/// again from a frame in their middle, and comparing the outputs after that frame.
public struct FilterTiming: Codable, Sendable, Equatable {
    /// Input frames past a time that the graph reads before it emits its output for that time.
    public var lookahead: Int
    /// Frames before a segment's first frame that its graph must see for its output to equal one pass.
    public var memory: Int
    /// The graph counts its input frames (`n` in `select`, `fade` by frame): each segment's graph is first
    /// fed one blank frame per source frame before its first, all timed before it (their output is dropped).
    public var countsFrames: Bool
    /// The output timestamps (source time base) of one pass over the whole source, when they do not depend
    /// on the pictures (`fps`, `select` by frame number do not; `select` by scene change does): nil then.
    public var outputPts: [Int64]?
    /// Interval between output frames (source time base) when the graph states an output rate.
    public var frameInterval: Int64?
    /// Subtracted from the source's timestamps before they enter the graph (and added back after): the
    /// file's start time, as ffmpeg does, so that a rate change lays its grid where one ffmpeg pass does.
    /// It is also the first time (source time base) a filtered output keeps: the earliest packet of any stream —
    /// before the sound when that stream's first samples are dropped by its decoder (Opus's pre-skip). ffmpeg
    /// keeps what a rate change puts there (its first frame) and drops what a filter times before it; so does vslice.
    public var offset: Int64 = 0
    /// The graph's output frame rate, when it states one.
    public var rate: Ratio? = nil
    /// `lookahead` and `memory` as time spans (source time base), where they were measured: a graph that
    /// moves frames by a fixed time (`setpts=PTS+0.1/TB`) needs that time, which on a VFR source is more
    /// frames at another cut than where it was measured.
    public var lookaheadSpan: Int64 = 0
    public var memorySpan: Int64 = 0

    /// Filters whose output at a time depends on frames far from it: refused with this reason.
    package static let refused: [String: String] = [
        "reverse": "it plays the frames backwards (it needs the whole video at once)",
        "loop": "it repeats frames (its output times depend on the whole video)",
        "shuffleframes": "it reorders frames",
    ]

    package init(lookahead: Int, memory: Int, countsFrames: Bool, outputPts: [Int64]? = nil,
                 frameInterval: Int64? = nil, offset: Int64 = 0, rate: Ratio? = nil, lookaheadSpan: Int64 = 0,
                 memorySpan: Int64 = 0) {
        self.lookahead = lookahead
        self.memory = memory
        self.countsFrames = countsFrames
        self.outputPts = outputPts
        self.frameInterval = frameInterval
        self.offset = offset
        self.rate = rate
        self.lookaheadSpan = lookaheadSpan
        self.memorySpan = memorySpan
    }
}
