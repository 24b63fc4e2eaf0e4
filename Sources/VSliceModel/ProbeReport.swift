import Foundation
import VSliceSupport

/// A rational number as FFmpeg prints it ("30000/1001").
public struct Ratio: Codable, Sendable, Equatable, CustomStringConvertible {
    public var num: Int32
    public var den: Int32
    public init(num: Int32, den: Int32) { self.num = num; self.den = den }
    public var value: Double { den == 0 ? 0 : Double(num) / Double(den) }
    public var description: String { "\(num)/\(den)" }
    /// This ratio times `k`, in lowest terms.

    public init(from decoder: Swift.Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        let parts = s.split(separator: "/")
        guard parts.count == 2, let n = Int32(parts[0]), let d = Int32(parts[1]) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad ratio \(s)"))
        }
        num = n; den = d
    }
    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// One keyframe of the video stream: its presentation-order frame index and timestamp.
public struct Keyframe: Codable, Sendable, Equatable {
    public var index: Int
    public var pts: Int64
    public var time: Double

    package init(index: Int, pts: Int64, time: Double) {
        self.index = index
        self.pts = pts
        self.time = time
    }
}

public struct StreamInfo: Codable, Sendable {
    public var index: Int
    public var type: String
    public var codec: String
    public var profile: String?
    public var timeBase: Ratio
    public var startTime: Double?
    public var duration: Double?
    public var bitRate: Int64?
    // video
    public var width: Int?
    public var height: Int?
    public var pixelFormat: String?
    public var avgFrameRate: Ratio?
    public var realFrameRate: Ratio?
    public var colorPrimaries: String?
    public var colorTransfer: String?
    public var colorSpace: String?
    public var colorRange: String?
    public var rotation: Int?
    // audio
    public var sampleRate: Int?
    public var sampleFormat: String?
    public var channelLayout: String?
    public var channels: Int?
    /// The stream's `language` tag (also in `tags`).
    public var language: String?
    /// Every disposition flag FFmpeg knows, 0 or 1 (as ffprobe prints them).
    public var disposition: [String: Int]?
    /// The stream's metadata tags.
    public var tags: [String: String]?

    /// ffprobe's key names where ffprobe has the value; the Swift names stay as they are.
    package enum CodingKeys: String, CodingKey {
        case index, profile, width, height, rotation, channels, language, disposition, tags
        case type = "codec_type", codec = "codec_name", timeBase = "time_base", startTime = "start_time"
        case duration, bitRate = "bit_rate", pixelFormat = "pix_fmt", avgFrameRate = "avg_frame_rate"
        case realFrameRate = "r_frame_rate", colorPrimaries = "color_primaries", colorTransfer = "color_transfer"
        case colorSpace = "color_space", colorRange = "color_range", sampleRate = "sample_rate"
        case sampleFormat = "sample_fmt", channelLayout = "channel_layout"
    }

    /// A stream of a type, with its codec and time base; the rest of what its container states is set after.
    package init(index: Int, type: String, codec: String, timeBase: Ratio) {
        (self.index, self.type, self.codec, self.timeBase) = (index, type, codec, timeBase)
    }
}

/// What `vslice probe` reports. Keys are documented in docs/usage.md ("probe --json" keys).
public struct ProbeReport: Codable, Sendable {
    public var path: String
    public var format: String
    public var formatLongName: String
    public var duration: Double?
    public var startTime: Double?
    public var bitRate: Int64?
    public var streams: [StreamInfo]
    public var videoStream: Int?
    public var audioStream: Int?
    /// Exact count of video frames (packets read, not header values).
    public var frameCount: Int?
    public var keyframes: [Keyframe]?
    public var variableFrameRate: Bool?
    /// True when some keyframe has leading frames (decoded after it, shown before it): open GOPs.
    public var openGop: Bool?
    /// The container's metadata tags.
    public var tags: [String: String]?

    /// ffprobe's key names where ffprobe has the value (`filename`, `format_name`…).
    package enum CodingKeys: String, CodingKey {
        case path = "filename", format = "format_name", formatLongName = "format_long_name", duration
        case startTime = "start_time", bitRate = "bit_rate", streams, videoStream = "video_stream"
        case audioStream = "audio_stream", frameCount = "frame_count", keyframes
        case variableFrameRate = "variable_frame_rate", openGop = "open_gop", tags
    }

    /// The container's name and streams; its other facts and what indexing the packets finds are set after.
    package init(path: String, format: String, formatLongName: String, streams: [StreamInfo]) {
        (self.path, self.format, self.formatLongName, self.streams) = (path, format, formatLongName, streams)
    }
}

/// The full per-frame timing of the video stream, used by the planner (not printed).
public struct VideoIndex: Codable, Sendable {
    public var streamIndex: Int
    public var timeBase: Ratio
    /// Presentation timestamps of every frame, sorted (presentation order).
    public var pts: [Int64]
    /// Presentation-order indices of keyframes, ascending.
    public var keyframeIndices: [Int]
    public var openGop: Bool

    /// How long frame `pts` is shown: until the next frame, or the last frame's own duration.
    package func duration(ofFrameAt pts: Int64) -> Int64 {
        var lo = 0, hi = self.pts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self.pts[mid] <= pts { lo = mid + 1 } else { hi = mid }
        }
        return lo < self.pts.count ? self.pts[lo] - pts : lastFrameDuration
    }
    /// End of the last frame (its pts + duration), seconds.
    public var endTime: Double
    /// End of the last frame, ticks.
    public var endPts: Int64 { (pts.last ?? 0) + lastFrameDuration }

    /// DTS of the packets, in file order, strictly increasing.
    public var dtsStrictlyIncreasing: Bool
    /// Duration of the last frame shown, ticks (as its packet states it, else the median frame interval).
    public var lastFrameDuration: Int64
    /// The container (as libavformat reads it) gave the last frame's duration, rather than vslice guessing it.
    public var lastFrameDurationStated: Bool = true

    package init(streamIndex: Int, timeBase: Ratio, pts: [Int64], keyframeIndices: [Int], openGop: Bool,
                 endTime: Double, dtsStrictlyIncreasing: Bool, lastFrameDuration: Int64,
                 lastFrameDurationStated: Bool = true) {
        self.streamIndex = streamIndex
        self.timeBase = timeBase
        self.pts = pts
        self.keyframeIndices = keyframeIndices
        self.openGop = openGop
        self.endTime = endTime
        self.dtsStrictlyIncreasing = dtsStrictlyIncreasing
        self.lastFrameDuration = lastFrameDuration
        self.lastFrameDurationStated = lastFrameDurationStated
    }
}

/// In the work order (`task.json`) every worker reads, frame times and keyframes are stored as runs of equal
/// steps (`[first, step, count]`): a 2-hour 60 fps CFR source is a few numbers instead of 432,000 (3.9 MB, a
/// measurable part of each cluster element's start-up). Reads the plain `pts` list too.
extension VideoIndex {
    private enum CodingKeys: String, CodingKey {
        case streamIndex, timeBase, pts, ptsRuns, keyframeIndices, keyframeRuns, openGop, endTime, dtsStrictlyIncreasing,
             lastFrameDuration, lastFrameDurationStated
    }

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        streamIndex = try c.decode(Int.self, forKey: .streamIndex)
        timeBase = try c.decode(Ratio.self, forKey: .timeBase)
        pts = try c.decodeIfPresent([Int64].self, forKey: .pts) ?? Self.expand(try c.decode([[Int64]].self, forKey: .ptsRuns))
        keyframeIndices = try c.decodeIfPresent([Int].self, forKey: .keyframeIndices)
            ?? Self.expand(try c.decode([[Int64]].self, forKey: .keyframeRuns)).map { Int($0) }
        openGop = try c.decode(Bool.self, forKey: .openGop)
        endTime = try c.decode(Double.self, forKey: .endTime)
        dtsStrictlyIncreasing = try c.decode(Bool.self, forKey: .dtsStrictlyIncreasing)
        lastFrameDuration = try c.decode(Int64.self, forKey: .lastFrameDuration)
        lastFrameDurationStated = try c.decodeIfPresent(Bool.self, forKey: .lastFrameDurationStated) ?? true
    }

    public func encode(to encoder: any Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(streamIndex, forKey: .streamIndex)
        try c.encode(timeBase, forKey: .timeBase)
        try c.encode(Self.runs(pts), forKey: .ptsRuns)
        try c.encode(Self.runs(keyframeIndices.map(Int64.init)), forKey: .keyframeRuns)
        try c.encode(openGop, forKey: .openGop)
        try c.encode(endTime, forKey: .endTime)
        try c.encode(dtsStrictlyIncreasing, forKey: .dtsStrictlyIncreasing)
        try c.encode(lastFrameDuration, forKey: .lastFrameDuration)
        try c.encode(lastFrameDurationStated, forKey: .lastFrameDurationStated)
    }

    /// `values` as runs of equal steps: `[first, step, count]` each.
    package static func runs(_ values: [Int64]) -> [[Int64]] {
        var out: [[Int64]] = []
        var i = 0
        while i < values.count {
            let step = i + 1 < values.count ? values[i + 1] - values[i] : 0
            var n = 1
            while i + n < values.count && values[i + n] - values[i + n - 1] == step { n += 1 }
            // A run of two is no shorter than two runs of one; it stays one run all the same.
            out.append([values[i], step, Int64(n)])
            i += n
        }
        return out
    }

    package static func expand(_ runs: [[Int64]]) throws -> [Int64] {
        var out: [Int64] = []
        for r in runs {
            guard r.count == 3, r[2] > 0, r[2] <= 100_000_000 else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "bad run \(r)"))
            }
            for k in 0..<r[2] { out.append(r[0] + k * r[1]) }
        }
        return out
    }
}

/// Where the audio stream starts (its first decoded sample; the sound `unsignalledPriming` later) and ends on
/// the file's timeline, seconds.
public struct AudioSpan: Sendable {
    public var start: Double
    public var end: Double
    /// Encoder priming that the demuxer does not trim, seconds: AAC's in Matroska (not signalled), and in
    /// MP4/MOV the part the edit list could not skip (a track starting after the file's start). The decoded
    /// samples start at `start`, the encoder's sound this much later.
    public var unsignalledPriming: Double
    /// The first packet's time, priming and discarded packets included (what a stream copy preserves).
    public var firstPacket: Double = 0
    /// The last packet's duration: how much an encoder may pad the sound's end to a whole frame, which
    /// Matroska does not trim.
    public var lastPacketDuration: Double = 0
    public var duration: Double { end - start }

    package init(start: Double, end: Double, unsignalledPriming: Double, firstPacket: Double = 0,
                 lastPacketDuration: Double = 0) {
        self.start = start
        self.end = end
        self.unsignalledPriming = unsignalledPriming
        self.firstPacket = firstPacket
        self.lastPacketDuration = lastPacketDuration
    }
}

/// A subtitle stream's events (with text): how many, and when the first is shown (seconds).
public struct SubtitleSpan: Sendable {
    public var stream: Int
    public var first: Double?
    public var events: Int

    package init(stream: Int, first: Double? = nil, events: Int) {
        self.stream = stream
        self.first = first
        self.events = events
    }
}

public struct Probe: Sendable {
    public var report: ProbeReport
    public var video: VideoIndex?
    public var audio: AudioSpan?
    /// Every subtitle stream, in stream order.
    public var subtitleTracks: [SubtitleSpan] = []
    /// Every audio stream with packets, in stream order: its index and span.
    public var audioTracks: [(stream: Int, span: AudioSpan)] = []
    /// The video stream's display matrix (rotation), 9 × Int32, if any.
    public var displayMatrix: Data?

    /// A probe put together from its parts (the unit tests build them in memory); the best audio track is the
    /// first.
    package init(report: ProbeReport, video: VideoIndex?, audioTracks: [(stream: Int, span: AudioSpan)] = [],
         subtitleTracks: [SubtitleSpan] = []) {
        self.report = report
        self.video = video
        self.audio = audioTracks.first?.span
        self.audioTracks = audioTracks
        self.subtitleTracks = subtitleTracks
    }

    /// The median of the intervals between consecutive frame timestamps (sorted), 0 for a single frame.
    package static func medianInterval(_ pts: [Int64]) -> Int64 {
        guard pts.count > 1 else { return 0 }
        var d: [Int64] = []
        d.reserveCapacity(pts.count - 1)
        for i in 1..<pts.count { d.append(pts[i] - pts[i - 1]) }
        d.sort()
        return d[d.count / 2]
    }

    /// Variable frame rate: frame intervals differ by more than one tick of the time base.
    package static func isVariable(_ pts: [Int64]) -> Bool {
        guard pts.count > 2 else { return false }
        var lo = Int64.max, hi = Int64.min
        for i in 1..<pts.count {
            let d = pts[i] - pts[i - 1]
            lo = min(lo, d); hi = max(hi, d)
        }
        return hi - lo > 1
    }
}
