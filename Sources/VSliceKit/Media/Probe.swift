import CFFmpeg
import Foundation

/// A rational number as FFmpeg prints it ("30000/1001").
public struct Ratio: Codable, Sendable, Equatable, CustomStringConvertible {
    public var num: Int32
    public var den: Int32
    public init(num: Int32, den: Int32) { self.num = num; self.den = den }
    init(_ r: AVRational) { num = r.num; den = r.den }
    var av: AVRational { AVRational(num: num, den: den) }
    public var value: Double { den == 0 ? 0 : Double(num) / Double(den) }
    public var description: String { "\(num)/\(den)" }
    /// This ratio times `k`, in lowest terms.
    func times(_ k: Ratio) -> Ratio { Ratio(av_mul_q(av, k.av)) }

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
    enum CodingKeys: String, CodingKey {
        case index, profile, width, height, rotation, channels, language, disposition, tags
        case type = "codec_type", codec = "codec_name", timeBase = "time_base", startTime = "start_time"
        case duration, bitRate = "bit_rate", pixelFormat = "pix_fmt", avgFrameRate = "avg_frame_rate"
        case realFrameRate = "r_frame_rate", colorPrimaries = "color_primaries", colorTransfer = "color_transfer"
        case colorSpace = "color_space", colorRange = "color_range", sampleRate = "sample_rate"
        case sampleFormat = "sample_fmt", channelLayout = "channel_layout"
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
    enum CodingKeys: String, CodingKey {
        case path = "filename", format = "format_name", formatLongName = "format_long_name", duration
        case startTime = "start_time", bitRate = "bit_rate", streams, videoStream = "video_stream"
        case audioStream = "audio_stream", frameCount = "frame_count", keyframes
        case variableFrameRate = "variable_frame_rate", openGop = "open_gop", tags
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
    func duration(ofFrameAt pts: Int64) -> Int64 {
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
    static func runs(_ values: [Int64]) -> [[Int64]] {
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

    static func expand(_ runs: [[Int64]]) throws -> [Int64] {
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
}

/// A subtitle stream's events (with text): how many, and when the first is shown (seconds).
public struct SubtitleSpan: Sendable {
    public var stream: Int
    public var first: Double?
    public var events: Int
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
    init(report: ProbeReport, video: VideoIndex?, audioTracks: [(stream: Int, span: AudioSpan)] = [],
         subtitleTracks: [SubtitleSpan] = []) {
        self.report = report
        self.video = video
        self.audio = audioTracks.first?.span
        self.audioTracks = audioTracks
        self.subtitleTracks = subtitleTracks
    }

    /// Opens and indexes `path`: stream properties, and every video packet's timing.
    /// With `expect`, only the file with that identity is read (see `InputFile`).
    public init(path: String, expect: FileIdentity? = nil) throws(VSliceError) {
        let input = try InputFile(path: path, expect: expect)
        let fmt = input.ctx.pointee
        let vIndex = input.bestStream(AVMEDIA_TYPE_VIDEO)
        let aIndex = input.bestStream(AVMEDIA_TYPE_AUDIO)
        var streams: [StreamInfo] = []
        for i in 0..<input.streamCount {
            streams.append(Probe.describe(input.stream(i), index: i))
        }
        report = ProbeReport(
            path: path,
            format: String(cString: fmt.iformat.pointee.name),
            formatLongName: fmt.iformat.pointee.long_name.map { String(cString: $0) } ?? "",
            duration: fmt.duration == AV_NOPTS ? nil : Double(fmt.duration) / Double(AV_TIME_BASE),
            startTime: fmt.start_time == AV_NOPTS ? nil : Double(fmt.start_time) / Double(AV_TIME_BASE),
            bitRate: fmt.bit_rate > 0 ? fmt.bit_rate : nil,
            streams: streams, videoStream: vIndex, audioStream: aIndex)
        report.tags = Probe.tags(fmt.metadata)
        guard let vIndex else {
            throw VSliceError(.input, "probe", path: path, reason: "no video stream")
        }
        let st = input.stream(vIndex)
        let w = st.pointee.codecpar.pointee.width, h = st.pointee.codecpar.pointee.height
        if w <= 0 || h <= 0 || w > InputLimits.maxDimension || h > InputLimits.maxDimension {
            throw VSliceError(.input, "probe", path: path,
                              reason: "video dimensions \(w)x\(h) are outside 1..\(InputLimits.maxDimension)")
        }
        if avcodec_find_decoder(st.pointee.codecpar.pointee.codec_id) == nil {
            let name = String(cString: avcodec_get_name(st.pointee.codecpar.pointee.codec_id))
            throw VSliceError(.input, "probe", path: path, reason: "this build cannot decode video codec '\(name)'")
        }
        var size: Int = 0
        if let m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size), size == 36 {
            displayMatrix = Data(bytes: m, count: 36)
        }
        let audioIndexes = (0..<input.streamCount).filter {
            input.stream($0).pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO
        }
        let (index, spans, subs) = try Probe.indexStreams(input, video: vIndex, audio: audioIndexes)
        subtitleTracks = subs
        video = index
        audio = aIndex.flatMap { spans[$0] }
        audioTracks = audioIndexes.compactMap { i in spans[i].map { (i, $0) } }
        let tb = index.timeBase.value
        report.frameCount = index.pts.count
        report.keyframes = index.keyframeIndices.map {
            Keyframe(index: $0, pts: index.pts[$0], time: Double(index.pts[$0]) * tb)
        }
        report.variableFrameRate = Probe.isVariable(index.pts)
        report.openGop = index.openGop
    }

    /// Reads every packet of the video stream (timestamps and flags only; nothing is decoded), and the
    /// audio and subtitle streams' packet times.
    static func indexStreams(_ input: InputFile, video streamIndex: Int, audio: [Int]) throws(VSliceError)
        -> (VideoIndex, [Int: AudioSpan], [SubtitleSpan]) {
        let subtitles = (0..<input.streamCount).filter { input.stream($0).pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_SUBTITLE }
        for i in 0..<input.streamCount where i != streamIndex && !audio.contains(i) && !subtitles.contains(i) {
            input.stream(i).pointee.discard = AVDISCARD_ALL
        }
        var scan = PacketScan(path: input.path, video: streamIndex, audio: audio, subtitles: subtitles)
        let pkt = Packet()
        while try input.read(into: pkt) { try scan.add(pkt) }
        let video = try scan.videoIndex(timeBase: input.stream(streamIndex).pointee.time_base)
        var spans: [Int: AudioSpan] = [:]
        for audio in audio { spans[audio] = scan.audioSpan(audio, in: input) }
        let subs = subtitles.map { i in
            SubtitleSpan(stream: i, first: scan.subtitleEvents[i].map { Double($0.first) * av_q2d(input.stream(i).pointee.time_base) },
                         events: scan.subtitleEvents[i]?.count ?? 0)
        }
        return (video, spans, subs)
    }

    /// What one read through the file's packets collects: every video packet's time and key flag in decode
    /// order, each audio stream's first and last packet times, each subtitle stream's events.
    struct PacketScan {
        let path: String
        let video: Int
        let audio: [Int]
        let subtitles: [Int]
        var subtitleEvents: [Int: (first: Int64, count: Int)] = [:]
        var decodeOrder: [(pts: Int64, key: Bool)] = []
        var videoEnd = Int64.min
        var lastDts = Int64.min
        var dtsIncreasing = true
        /// Per audio stream: the first packet kept by the demuxer, the end of the last one, the first of all
        /// (discarded priming included), the last packet's duration.
        var audioFirst: [Int: Int64] = [:], audioEnd: [Int: Int64] = [:], audioFirstAll: [Int: Int64] = [:]
        var audioLastDuration: [Int: Int64] = [:]

        init(path: String, video: Int, audio: [Int], subtitles: [Int]) {
            self.path = path
            self.video = video
            self.audio = audio
            self.subtitles = subtitles
        }

        mutating func add(_ pkt: Packet) throws(VSliceError) {
            let t = pkt.pts != AV_NOPTS ? pkt.pts : pkt.dts
            if subtitles.contains(pkt.streamIndex) {
                // Events with text (MP4's mov_text fills the gaps between them with empty samples).
                if t != AV_NOPTS && pkt.size > 2 {
                    let e = subtitleEvents[pkt.streamIndex] ?? (.max, 0)
                    subtitleEvents[pkt.streamIndex] = (min(e.first, t), e.count + 1)
                }
            } else if pkt.streamIndex != video {
                guard audio.contains(pkt.streamIndex) else { return }
                addAudio(pkt, at: t)
            } else if !pkt.isDiscard {
                try addVideo(pkt, at: t)
            }
        }

        mutating func addAudio(_ pkt: Packet, at t: Int64) {
            let s = pkt.streamIndex
            if t != AV_NOPTS { audioFirstAll[s] = min(audioFirstAll[s] ?? .max, t) }
            guard !pkt.isDiscard, t != AV_NOPTS else { return }
            audioFirst[s] = min(audioFirst[s] ?? .max, t)
            if t + pkt.duration >= audioEnd[s] ?? .min {
                audioEnd[s] = t + pkt.duration
                audioLastDuration[s] = max(pkt.duration, 0)
            }
        }

        mutating func addVideo(_ pkt: Packet, at t: Int64) throws(VSliceError) {
            if pkt.dts != AV_NOPTS {
                if pkt.dts <= lastDts { dtsIncreasing = false }
                lastDts = pkt.dts
            }
            if pkt.isCorrupt {
                throw VSliceError(.input, "read video", path: path, reason: "corrupt packet at dts \(pkt.dts)")
            }
            if t == AV_NOPTS {
                throw VSliceError(.input, "read video", path: path, reason: "video packet \(decodeOrder.count) has no timestamp")
            }
            decodeOrder.append((t, pkt.isKey))
            videoEnd = max(videoEnd, t + max(pkt.duration, 0))
        }

        /// The video's frames in presentation order, its keyframes, open GOPs, and the last frame's duration.
        func videoIndex(timeBase: AVRational) throws(VSliceError) -> VideoIndex {
            if decodeOrder.isEmpty {
                throw VSliceError(.input, "read video", path: path, reason: "the video stream has no frames")
            }
            // Open GOP: a frame decoded after a keyframe but presented before it.
            var openGop = false
            var lastKeyPts: Int64? = nil
            for p in decodeOrder {
                if p.key { lastKeyPts = p.pts } else if let k = lastKeyPts, p.pts < k { openGop = true; break }
            }
            let sorted = decodeOrder.map(\.pts).sorted()
            for i in 1..<max(sorted.count, 1) where sorted[i] == sorted[i - 1] {
                throw VSliceError(.input, "read video", path: path, reason: "two video frames share the timestamp \(sorted[i])")
            }
            let keyPts = Set(decodeOrder.filter(\.key).map(\.pts))
            var keyIdx: [Int] = []
            for (i, p) in sorted.enumerated() where keyPts.contains(p) { keyIdx.append(i) }
            if keyIdx.first != 0 {
                // The first frame shown must be decodable on its own for a segment to start there.
                keyIdx.insert(0, at: 0)
            }
            // Where the last frame's duration comes from (it is the only part of the video's length that the
            // frame timestamps do not give): the duration libavformat reports for the packets, as far as they
            // reach past the last frame's start. That is the container's own figure where the demuxer reads one
            // (Matroska BlockDuration or the track's default duration); FFmpeg 5.1's MP4/MOV demuxer reads no
            // sample durations and libavformat derives them from the codec's frame rate, or reports none. When
            // nothing is reported, the typical (median) frame interval is used, not the interval before the
            // last frame: a screen recording's long-held frames or the gap a stream-copy trim leaves where
            // B-frames were cut would otherwise stretch the last frame to seconds. The output stores this
            // duration on its last packet (see SegmentSink), so the output ends where the source ends.
            let stated = videoEnd - sorted[sorted.count - 1]
            var lastDuration = stated
            if lastDuration <= 0 { lastDuration = Probe.medianInterval(sorted) }
            lastDuration = max(lastDuration, 0)
            let endTime = Double(sorted[sorted.count - 1] + lastDuration) * av_q2d(timeBase)
            return VideoIndex(streamIndex: video, timeBase: Ratio(timeBase), pts: sorted, keyframeIndices: keyIdx,
                              openGop: openGop, endTime: endTime, dtsStrictlyIncreasing: dtsIncreasing,
                              lastFrameDuration: lastDuration, lastFrameDurationStated: stated > 0)
        }

        /// Where audio stream `audio`'s sound starts and ends, and the priming its demuxer leaves in it; nil when
        /// it has no packets.
        func audioSpan(_ audio: Int, in input: InputFile) -> AudioSpan? {
            guard let audioEnd = audioEnd[audio], let audioFirst = audioFirst[audio] else { return nil }
            let ast = input.stream(audio)
            let atb = av_q2d(ast.pointee.time_base)
            // The stream's start time accounts for encoder priming that the demuxer trims.
            let start = ast.pointee.start_time != AV_NOPTS ? ast.pointee.start_time : audioFirst
            var startSeconds = Double(start) * atb
            let par = ast.pointee.codecpar.pointee
            let fmtName = String(cString: input.ctx.pointee.iformat.pointee.name)
            // Matroska signals a codec delay (Opus pre-skip) that the decoder drops: the stream's start time
            // is that of the dropped samples, and the sound starts this much later (−7 ms → −0.5 ms for
            // ffmpeg's Opus). The sound's start is what vslice decodes, keeps in sync and checks.
            if fmtName.hasPrefix("matroska"), par.initial_padding > 0, par.sample_rate > 0 {
                startSeconds += Double(par.initial_padding) / Double(par.sample_rate)
            }
            // Matroska signals no encoder delay but Opus's, so its demuxer trims nothing: the decoder returns
            // the encoder's priming (AAC 1024 samples, MP3 1105, MP2 481, AC-3 256), and the sound starts after
            // it (as in ffmpeg's own MKV output); a Vorbis decoder returns nothing for the first packet, so its
            // samples start a block after the stream's start. Both as FFmpeg's encoder and decoder measure.
            var priming = 0.0
            if fmtName.hasPrefix("matroska"), par.initial_padding == 0, par.sample_rate > 0 {
                let delay = CodecDelay.of(par.codec_id, rate: par.sample_rate, channels: par.ch_layout.nb_channels)
                priming = Double(delay.priming) / Double(par.sample_rate)
                startSeconds += Double(delay.dropped) / Double(par.sample_rate)
            }
            // MP4/MOV trim AAC's priming by an edit list, but ffmpeg's muxer can only skip the part of it that
            // lies before the file's start: a track that starts later than the file keeps the rest, which the
            // decoder returns as samples from the stream's start on. That rest (up to 1024 samples, the AAC
            // encoders' priming) is untrimmed priming like Matroska's: `start` stays where the decoded samples
            // start (what a re-encode, vslice's or ffmpeg's, carries over from a source), the sound after it.
            if fmtName.contains("mp4") || fmtName.hasPrefix("mov"), par.codec_id == AV_CODEC_ID_AAC, par.sample_rate > 0,
               let firstAll = audioFirstAll[audio] {
                priming = max(0, Double(firstAll) * atb + 1024 / Double(par.sample_rate) - startSeconds)
            }
            return AudioSpan(start: startSeconds, end: Double(audioEnd) * atb, unsignalledPriming: priming,
                             firstPacket: Double(audioFirstAll[audio] ?? audioFirst) * atb,
                             lastPacketDuration: Double(audioLastDuration[audio] ?? 0) * atb)
        }
    }

    /// The median of the intervals between consecutive frame timestamps (sorted), 0 for a single frame.
    static func medianInterval(_ pts: [Int64]) -> Int64 {
        guard pts.count > 1 else { return 0 }
        var d: [Int64] = []
        d.reserveCapacity(pts.count - 1)
        for i in 1..<pts.count { d.append(pts[i] - pts[i - 1]) }
        d.sort()
        return d[d.count / 2]
    }

    /// Variable frame rate: frame intervals differ by more than one tick of the time base.
    static func isVariable(_ pts: [Int64]) -> Bool {
        guard pts.count > 2 else { return false }
        var lo = Int64.max, hi = Int64.min
        for i in 1..<pts.count {
            let d = pts[i] - pts[i - 1]
            lo = min(lo, d); hi = max(hi, d)
        }
        return hi - lo > 1
    }

    static func describe(_ st: UnsafeMutablePointer<AVStream>, index: Int) -> StreamInfo {
        let par = st.pointee.codecpar.pointee
        let tb = st.pointee.time_base
        func seconds(_ t: Int64) -> Double? { t == AV_NOPTS ? nil : Double(t) * av_q2d(tb) }
        let type: String = switch par.codec_type {
        case AVMEDIA_TYPE_VIDEO: "video"
        case AVMEDIA_TYPE_AUDIO: "audio"
        case AVMEDIA_TYPE_SUBTITLE: "subtitle"
        case AVMEDIA_TYPE_DATA: "data"
        case AVMEDIA_TYPE_ATTACHMENT: "attachment"
        default: "unknown"
        }
        var info = StreamInfo(
            index: index, type: type, codec: String(cString: avcodec_get_name(par.codec_id)),
            profile: avcodec_profile_name(par.codec_id, par.profile).map { String(cString: $0) },
            timeBase: Ratio(tb), startTime: seconds(st.pointee.start_time), duration: seconds(st.pointee.duration),
            bitRate: par.bit_rate > 0 ? par.bit_rate : nil)
        if par.codec_type == AVMEDIA_TYPE_VIDEO {
            info.width = Int(par.width)
            info.height = Int(par.height)
            info.pixelFormat = av_get_pix_fmt_name(AVPixelFormat(rawValue: par.format)).map { String(cString: $0) }
            info.avgFrameRate = Ratio(st.pointee.avg_frame_rate)
            info.realFrameRate = Ratio(st.pointee.r_frame_rate)
            // Unspecified colour properties are left out (as ffprobe's JSON does), not "unknown".
            if par.color_primaries != AVCOL_PRI_UNSPECIFIED {
                info.colorPrimaries = av_color_primaries_name(par.color_primaries).map { String(cString: $0) }
            }
            if par.color_trc != AVCOL_TRC_UNSPECIFIED {
                info.colorTransfer = av_color_transfer_name(par.color_trc).map { String(cString: $0) }
            }
            if par.color_space != AVCOL_SPC_UNSPECIFIED {
                info.colorSpace = av_color_space_name(par.color_space).map { String(cString: $0) }
            }
            if par.color_range != AVCOL_RANGE_UNSPECIFIED {
                info.colorRange = av_color_range_name(par.color_range).map { String(cString: $0) }
            }
            var size: Int = 0
            if let m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size), size >= 36 {
                let deg = m.withMemoryRebound(to: Int32.self, capacity: 9) { av_display_rotation_get($0) }
                if deg.isFinite { info.rotation = Int(deg.rounded()) }
            }
        } else if par.codec_type == AVMEDIA_TYPE_AUDIO {
            info.sampleRate = Int(par.sample_rate)
            info.sampleFormat = av_get_sample_fmt_name(AVSampleFormat(rawValue: par.format)).map { String(cString: $0) }
            info.channels = Int(par.ch_layout.nb_channels)
            var layout = par.ch_layout
            var buf = [CChar](repeating: 0, count: 128)
            let n = buf.withUnsafeMutableBufferPointer { av_channel_layout_describe(&layout, $0.baseAddress, $0.count) }
            if n >= 0 {
                info.channelLayout = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
        }
        info.tags = tags(st.pointee.metadata)
        info.language = info.tags?["language"]
        var flags: [String: Int] = [:]
        for bit in 0..<31 {
            let flag = Int32(1) << Int32(bit)
            if let name = av_disposition_to_string(flag) { flags[String(cString: name)] = st.pointee.disposition & flag != 0 ? 1 : 0 }
        }
        info.disposition = flags
        return info
    }

    /// A metadata dictionary's entries (nil when it has none).
    static func tags(_ dict: OpaquePointer?) -> [String: String]? {
        var out: [String: String] = [:]
        var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
        while let e = av_dict_get(dict, "", entry, AV_DICT_IGNORE_SUFFIX) {
            out[String(cString: e.pointee.key)] = String(cString: e.pointee.value)
            entry = e
        }
        return out.isEmpty ? nil : out
    }
}
