import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

extension Ratio {
    package init(_ r: AVRational) { self.init(num: r.num, den: r.den) }
    package var av: AVRational { AVRational(num: num, den: den) }
    /// This ratio times `k`, in lowest terms.
    package func times(_ k: Ratio) -> Ratio { Ratio(av_mul_q(av, k.av)) }
}

extension Probe {
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
        var report = ProbeReport(path: path, format: String(cString: fmt.iformat.pointee.name),
                                 formatLongName: fmt.iformat.pointee.long_name.map { String(cString: $0) } ?? "", streams: streams)
        report.duration = fmt.duration == AV_NOPTS ? nil : Double(fmt.duration) / Double(AV_TIME_BASE)
        report.startTime = fmt.start_time == AV_NOPTS ? nil : Double(fmt.start_time) / Double(AV_TIME_BASE)
        report.bitRate = fmt.bit_rate > 0 ? fmt.bit_rate : nil
        (report.videoStream, report.audioStream) = (vIndex, aIndex)
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
        var displayMatrix: Data? = nil
        if let m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size), size == 36 {
            displayMatrix = Data(bytes: m, count: 36)
        }
        let audioIndexes = (0..<input.streamCount).filter {
            input.stream($0).pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO
        }
        let (index, spans, subs) = try Probe.indexStreams(input, video: vIndex, audio: audioIndexes)
        let tb = index.timeBase.value
        report.frameCount = index.pts.count
        report.keyframes = index.keyframeIndices.map {
            Keyframe(index: $0, pts: index.pts[$0], time: Double(index.pts[$0]) * tb)
        }
        report.variableFrameRate = Probe.isVariable(index.pts)
        report.openGop = index.openGop
        self.init(report: report, video: index, audioTracks: audioIndexes.compactMap { i in spans[i].map { (i, $0) } },
                  subtitleTracks: subs)
        audio = aIndex.flatMap { spans[$0] }
        self.displayMatrix = displayMatrix
    }

    /// Reads every packet of the video stream (timestamps and flags only; nothing is decoded), and the
    /// audio and subtitle streams' packet times.
    package static func indexStreams(_ input: InputFile, video streamIndex: Int, audio: [Int]) throws(VSliceError)
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
    package struct PacketScan {
        package let path: String
        package let video: Int
        package let audio: [Int]
        package let subtitles: [Int]
        package var subtitleEvents: [Int: (first: Int64, count: Int)] = [:]
        package var decodeOrder: [(pts: Int64, key: Bool)] = []
        package var videoEnd = Int64.min
        package var lastDts = Int64.min
        package var dtsIncreasing = true
        /// Per audio stream: the first packet kept by the demuxer, the end of the last one, the first of all
        /// (discarded priming included), the last packet's duration.
        package var audioFirst: [Int: Int64] = [:], audioEnd: [Int: Int64] = [:], audioFirstAll: [Int: Int64] = [:]
        package var audioLastDuration: [Int: Int64] = [:]

        package init(path: String, video: Int, audio: [Int], subtitles: [Int]) {
            self.path = path
            self.video = video
            self.audio = audio
            self.subtitles = subtitles
        }

        package mutating func add(_ pkt: Packet) throws(VSliceError) {
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

        package mutating func addAudio(_ pkt: Packet, at t: Int64) {
            let s = pkt.streamIndex
            if t != AV_NOPTS { audioFirstAll[s] = min(audioFirstAll[s] ?? .max, t) }
            guard !pkt.isDiscard, t != AV_NOPTS else { return }
            audioFirst[s] = min(audioFirst[s] ?? .max, t)
            if t + pkt.duration >= audioEnd[s] ?? .min {
                audioEnd[s] = t + pkt.duration
                audioLastDuration[s] = max(pkt.duration, 0)
            }
        }

        package mutating func addVideo(_ pkt: Packet, at t: Int64) throws(VSliceError) {
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
        package func videoIndex(timeBase: AVRational) throws(VSliceError) -> VideoIndex {
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
        package func audioSpan(_ audio: Int, in input: InputFile) -> AudioSpan? {
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

    package static func describe(_ st: UnsafeMutablePointer<AVStream>, index: Int) -> StreamInfo {
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
        var info = StreamInfo(index: index, type: type, codec: String(cString: avcodec_get_name(par.codec_id)), timeBase: Ratio(tb))
        info.profile = avcodec_profile_name(par.codec_id, par.profile).map { String(cString: $0) }
        (info.startTime, info.duration) = (seconds(st.pointee.start_time), seconds(st.pointee.duration))
        info.bitRate = par.bit_rate > 0 ? par.bit_rate : nil
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
    package static func tags(_ dict: OpaquePointer?) -> [String: String]? {
        var out: [String: String] = [:]
        var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
        while let e = av_dict_get(dict, "", entry, AV_DICT_IGNORE_SUFFIX) {
            out[String(cString: e.pointee.key)] = String(cString: e.pointee.value)
            entry = e
        }
        return out.isEmpty ? nil : out
    }
}
