import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Name/value pairs of an FFmpeg dictionary, in its order.
package typealias Tags = [(key: String, value: String)]

package func readTags(_ dict: OpaquePointer?) -> Tags {
    var out: Tags = []
    var e: UnsafeMutablePointer<AVDictionaryEntry>? = nil
    while let next = av_dict_get(dict, "", e, AV_DICT_IGNORE_SUFFIX) {
        out.append((String(cString: next.pointee.key), String(cString: next.pointee.value)))
        e = next
    }
    return out
}

/// What the source has besides the video frames, read from its container: global tags, chapters, and every
/// stream's codec, tags and dispositions (attachments with their data).
package struct SourceLayout {
    package struct Stream {
        package var index: Int
        package var type: AVMediaType
        package var codec: AVCodecID
        package var tags: Tags
        package var disposition: Int32
        /// Attachments (fonts): the file. Attached pictures (cover art): the picture's packet data.
        package var data: Data?
        /// Its codec parameters, as a stream copy writes them (not for attachments, whose data is the file).
        package var params: StreamParams?
        /// The demuxer itself reads this stream into something else (MP4's chapter text track: chapters).
        package var internalToDemuxer = false
        package var codecName: String { String(cString: avcodec_get_name(codec)) }
        package var isAttachedPicture: Bool { disposition & AV_DISPOSITION_ATTACHED_PIC != 0 }
        package var typeName: String {
            switch type {
            case AVMEDIA_TYPE_VIDEO: "video"
            case AVMEDIA_TYPE_AUDIO: "audio"
            case AVMEDIA_TYPE_SUBTITLE: "subtitle"
            case AVMEDIA_TYPE_ATTACHMENT: "attachment"
            case AVMEDIA_TYPE_DATA: "data"
            default: "unknown"
            }
        }
    }
    package struct Chapter {
        package var id: Int64
        package var timeBase: AVRational
        package var start: Int64
        package var end: Int64
        package var tags: Tags
    }

    package var tags: Tags
    package var chapters: [Chapter]
    package var streams: [Stream]
    /// The container's short name (`mov,mp4,…`, `matroska,webm`).
    package var format: String

    package init(path: String) throws(VSliceError) {
        let input = try InputFile(path: path)
        let ctx = input.ctx.pointee
        format = String(cString: ctx.iformat.pointee.name)
        tags = readTags(ctx.metadata)
        chapters = (0..<Int(ctx.nb_chapters)).compactMap { i in
            guard let c = ctx.chapters[i] else { return nil }
            return Chapter(id: c.pointee.id, timeBase: c.pointee.time_base, start: c.pointee.start, end: c.pointee.end,
                           tags: readTags(c.pointee.metadata))
        }
        streams = (0..<input.streamCount).map { i in
            let st = input.stream(i)
            let par = st.pointee.codecpar.pointee
            var data: Data? = nil
            if par.codec_type == AVMEDIA_TYPE_ATTACHMENT, let x = par.extradata, par.extradata_size > 0 {
                data = Data(bytes: x, count: Int(par.extradata_size))
            } else if st.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0, let d = st.pointee.attached_pic.data,
                      st.pointee.attached_pic.size > 0 {
                data = Data(bytes: d, count: Int(st.pointee.attached_pic.size))
            }
            let copyable = par.codec_type != AVMEDIA_TYPE_ATTACHMENT
            return Stream(index: i, type: par.codec_type, codec: par.codec_id, tags: readTags(st.pointee.metadata),
                          disposition: st.pointee.disposition, data: data,
                          params: copyable ? StreamParams(codecpar: st.pointee.codecpar, timeBase: st.pointee.time_base) : nil,
                          internalToDemuxer: st.pointee.discard == AVDISCARD_ALL)
        }
    }

    /// Tags worth carrying to the output: not the container's own statistics or the old encoder's name.
    package static func carried(_ tags: Tags) -> Tags {
        tags.filter { t in
            let k = t.key.uppercased()
            return !(k == "ENCODER" || k == "DURATION" || k == "BPS" || k == "NUMBER_OF_FRAMES" || k == "NUMBER_OF_BYTES"
                     || k.hasPrefix("_STATISTICS_") || k == "MAJOR_BRAND" || k == "MINOR_VERSION" || k == "COMPATIBLE_BRANDS"
                     || k.hasPrefix("DURATION-"))
        }
    }
}

/// What the output carries of the source's other streams, decided for a container before any work.
package struct StreamPlan {
    package struct Audio {
        /// Source stream index, and its number among the source's audio streams.
        package var stream: Int
        package var ordinal: Int
        /// The encoder that re-encodes it: `--acodec`, or aac when `--acodec copy` cannot copy it into the
        /// container. nil: stream-copied.
        package var encoder: String?
        package var copy: Bool { encoder == nil }
    }
    package struct Subtitle {
        package var stream: Int
        package var ordinal: Int
        /// nil: copied; else the encoder that converts it (`mov_text`, `srt`).
        package var convertTo: String?
    }
    package var audio: [Audio] = []
    package var subtitles: [Subtitle] = []
    /// Attachments (fonts) and attached pictures (cover art) carried as they are.
    package var attachments: [Int] = []
    package var attachedPictures: [Int] = []
    /// Streams not carried, described ("stream 3 (data, tmcd)"), and why not as a whole.
    package var dropped: [String] = []
    /// Audio that `--acodec copy` could not copy into the container (re-encoded instead).
    package var reencodedInsteadOfCopy: [String] = []

    /// - Parameter format: the output's muxer name (`mp4`, `mov`, `matroska`).
    package init(_ src: SourceLayout, videoStream: Int, format: String,
                 settings: TranscodeSettings) throws(VSliceError) {
        let muxer = av_guess_format(format, nil, nil)
        func holds(_ id: AVCodecID) -> Bool {
            guard let muxer else { return false }
            return avformat_query_codec(muxer, id, FF_COMPLIANCE_NORMAL) == 1
        }
        // A stream copy is decided by the muxer itself, given the source stream's parameters as the merge gives
        // them: FFmpeg 5.1's codec list is wrong for audio (it lists FLAC for MP4 and MOV, Opus for MOV, which
        // the muxer refuses, and not Vorbis for MOV, which it writes). nil: it holds it; else the muxer's words.
        func refusal(_ s: SourceLayout.Stream) -> String? {
            guard let params = s.params else { return "no codec parameters" }
            guard let failure = EncoderCheck.capturing({ Container.acceptsStream(format: format, params: params) }) else { return nil }
            var said = failure.said ?? failure.error.reason
            if let r = said.range(of: ", add '-strict") { said = String(said[..<r.lowerBound]) }
            // The muxer names its own stream ("in stream #0"): not the source's stream number.
            if let r = said.range(of: #" in stream #\d+"#, options: .regularExpression) { said.removeSubrange(r) }
            return said.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        }
        let audioStreams = src.streams.filter { $0.type == AVMEDIA_TYPE_AUDIO }
        guard let chosen = settings.selectedAudio(of: audioStreams.count) else {
            throw VSliceError(.usage, "check options", reason: "--audio \(settings.audioTracks): the input has \(audioStreams.count) audio track(s), numbered from 0")
        }
        for (ordinal, s) in audioStreams.enumerated() where chosen.contains(ordinal) {
            var copy = settings.copyAudio
            if copy, let why = refusal(s) {
                copy = false
                reencodedInsteadOfCopy.append("audio track \(ordinal) (\(s.codecName): \(why))")
            }
            audio.append(Audio(stream: s.index, ordinal: ordinal, encoder: copy ? nil : settings.copyAudio ? "aac" : settings.audioCodec))
        }
        let textSubs: Set<AVCodecID> = [AV_CODEC_ID_SUBRIP, AV_CODEC_ID_SRT, AV_CODEC_ID_ASS, AV_CODEC_ID_SSA, AV_CODEC_ID_MOV_TEXT,
                                        AV_CODEC_ID_WEBVTT, AV_CODEC_ID_TEXT]
        var subOrdinal = 0
        for s in src.streams where s.index != videoStream && !s.internalToDemuxer {
            switch s.type {
            case AVMEDIA_TYPE_AUDIO:
                continue
            case AVMEDIA_TYPE_SUBTITLE:
                defer { subOrdinal += 1 }
                if s.codec != AV_CODEC_ID_TEXT && refusal(s) == nil {
                    subtitles.append(Subtitle(stream: s.index, ordinal: subOrdinal, convertTo: nil))
                } else if textSubs.contains(s.codec) {
                    let target = format == "matroska" ? "srt" : "mov_text"
                    subtitles.append(Subtitle(stream: s.index, ordinal: subOrdinal, convertTo: target))
                } else {
                    dropped.append("stream \(s.index) (subtitle, \(s.codecName): a picture subtitle \(format) cannot hold)")
                }
            case AVMEDIA_TYPE_ATTACHMENT:
                if format == "matroska" { attachments.append(s.index) }
                else { dropped.append("stream \(s.index) (attachment \(s.tags.first { $0.key == "filename" }?.value ?? s.codecName): only Matroska holds attachments)") }
            case AVMEDIA_TYPE_VIDEO where s.isAttachedPicture:
                if holds(s.codec) && s.data != nil { attachedPictures.append(s.index) }
                else { dropped.append("stream \(s.index) (cover art, \(s.codecName))") }
            case AVMEDIA_TYPE_VIDEO:
                dropped.append("stream \(s.index) (a second video stream, \(s.codecName): vslice carries one)")
            case AVMEDIA_TYPE_DATA:
                let tag = s.tags.first { $0.key == "handler_name" }?.value
                dropped.append("stream \(s.index) (data, \(s.codecName)\(tag.map { ", \($0)" } ?? ""))")
            default:
                dropped.append("stream \(s.index) (\(s.typeName), \(s.codecName))")
            }
        }
        if settings.strictStreams && !dropped.isEmpty {
            throw VSliceError(.usage, "check streams", reason: "the output cannot carry " + dropped.joined(separator: ", ") + " (--strict-streams)")
        }
    }
}

/// Copies the packets of subtitle streams into packet files, converting text subtitles the container does
/// not take (SRT/ASS → mov_text for MP4/MOV, mov_text → SRT for Matroska) through libavcodec's subtitle API.
package struct SubtitleExtractor {
    package var source: String
    package var tracks: [StreamPlan.Subtitle]
    /// Packet file per track, same order.
    package var outputs: [String]
    /// The input's identity when the task started: a replaced or modified input is refused.
    package var expect: FileIdentity? = nil

    package func run() throws(VSliceError) {
        guard !tracks.isEmpty else { return }
        let input = try InputFile(path: source, expect: expect)
        for i in 0..<input.streamCount where !tracks.contains(where: { $0.stream == i }) {
            input.stream(i).pointee.discard = AVDISCARD_ALL
        }
        var writers: [Int: PacketFileWriter] = [:]
        var converters: [Int: Converter] = [:]
        for (k, t) in tracks.enumerated() {
            let st = input.stream(t.stream)
            if let target = t.convertTo {
                let c = try Converter(stream: st, encoder: target, path: source)
                converters[t.stream] = c
                writers[t.stream] = try PacketFileWriter(path: outputs[k], params: StreamParams(encoder: c.encoder.ctx))
            } else {
                writers[t.stream] = try PacketFileWriter(path: outputs[k], params: StreamParams(codecpar: st.pointee.codecpar,
                                                                                               timeBase: st.pointee.time_base))
            }
        }
        let packet = Packet(), out = Packet()
        while try input.read(into: packet) {
            guard let writer = writers[packet.streamIndex] else { continue }
            if let c = converters[packet.streamIndex] {
                if try c.convert(packet, into: out) { try writer.write(out) }
            } else {
                if packet.dts == AV_NOPTS { packet.dts = packet.pts }
                try writer.write(packet)
            }
            try Cancellation.throwIfAborted("copy subtitles", path: source)
        }
        for w in writers.values { try w.finish() }
    }

    /// Decodes a text subtitle packet and encodes it with another subtitle encoder.
    package final class Converter {
        package let decoder: Decoder
        package let encoder: Encoder
        package let timeBase: AVRational
        package let path: String
        private var buffer = [UInt8](repeating: 0, count: 1 << 16)

        package init(stream: UnsafeMutablePointer<AVStream>, encoder name: String, path: String) throws(VSliceError) {
            self.path = path
            timeBase = stream.pointee.time_base
            decoder = try Decoder(stream: stream, path: path, threads: 1)
            encoder = try Encoder(name: name, path: path)
            let e = encoder.ctx
            e.pointee.time_base = timeBase
            // Text subtitle encoders take their styles from the ASS header the decoder makes.
            if let h = decoder.ctx.pointee.subtitle_header, decoder.ctx.pointee.subtitle_header_size > 0 {
                let n = Int(decoder.ctx.pointee.subtitle_header_size)
                guard let copy = av_mallocz(n + 1) else {
                    throw VSliceError(.processing, "copy subtitle header", path: path, reason: "out of memory")
                }
                memcpy(copy, h, n)
                e.pointee.subtitle_header = copy.assumingMemoryBound(to: UInt8.self)
                e.pointee.subtitle_header_size = Int32(n)
            }
            try encoder.open(options: [])
        }

        /// Converts one packet; false when it holds no subtitle.
        package func convert(_ packet: Packet, into out: Packet) throws(VSliceError) -> Bool {
            var sub = AVSubtitle()
            var got: Int32 = 0
            let ret = avcodec_decode_subtitle2(decoder.ctx, &sub, &got, packet.ptr)
            if ret < 0 { try ffCheck(ret, "decode subtitle", path: path, kind: .input) }
            guard got != 0 else { return false }
            defer { avsubtitle_free(&sub) }
            let start = packet.pts != AV_NOPTS ? packet.pts : packet.dts
            // The event is shown from start_display_time to end_display_time (ms) after its packet's time.
            let shownFrom = start + av_rescale_q(Int64(sub.start_display_time), AVRational(num: 1, den: 1000), timeBase)
            var length = sub.end_display_time > sub.start_display_time
                ? av_rescale_q(Int64(sub.end_display_time - sub.start_display_time), AVRational(num: 1, den: 1000), timeBase) : 0
            if length == 0 { length = packet.duration }
            sub.end_display_time -= sub.start_display_time
            sub.start_display_time = 0
            let n = buffer.withUnsafeMutableBufferPointer { avcodec_encode_subtitle(encoder.ctx, $0.baseAddress, Int32($0.count), &sub) }
            try ffCheck(n, "encode subtitle", path: path)
            out.unref()
            try ffCheck(av_new_packet(out.ptr, n), "allocate packet", path: path)
            buffer.withUnsafeBufferPointer { out.ptr.pointee.data.update(from: $0.baseAddress!, count: Int(n)) }
            out.pts = shownFrom
            out.dts = shownFrom
            out.duration = length
            out.ptr.pointee.flags = AV_PKT_FLAG_KEY
            return true
        }
    }

    package init(source: String, tracks: [StreamPlan.Subtitle], outputs: [String], expect: FileIdentity? = nil) {
        self.source = source
        self.tracks = tracks
        self.outputs = outputs
        self.expect = expect
    }
}

/// Copies the packets of audio streams (`--acodec copy`) into packet files, timestamps as in the source.
package struct AudioCopier {
    package var source: String
    package var streams: [Int]
    package var outputs: [String]
    /// The input's identity when the task started: a replaced or modified input is refused.
    package var expect: FileIdentity? = nil

    package func run() throws(VSliceError) -> Int {
        guard !streams.isEmpty else { return 0 }
        let input = try InputFile(path: source, expect: expect)
        for i in 0..<input.streamCount where !streams.contains(i) { input.stream(i).pointee.discard = AVDISCARD_ALL }
        var writers: [Int: PacketFileWriter] = [:]
        for (k, s) in streams.enumerated() {
            let st = input.stream(s)
            writers[s] = try PacketFileWriter(path: outputs[k], params: StreamParams(codecpar: st.pointee.codecpar, timeBase: st.pointee.time_base))
        }
        let packet = Packet()
        var count = 0
        while try input.read(into: packet) {
            guard let w = writers[packet.streamIndex] else { continue }
            if packet.pts == AV_NOPTS && packet.dts == AV_NOPTS { continue }
            if packet.dts == AV_NOPTS { packet.dts = packet.pts }
            if packet.pts == AV_NOPTS { packet.pts = packet.dts }
            try w.write(packet)
            count += 1
            try Cancellation.throwIfAborted("copy audio", path: source)
        }
        for w in writers.values { try w.finish() }
        return count
    }

    package init(source: String, streams: [Int], outputs: [String], expect: FileIdentity? = nil) {
        self.source = source
        self.streams = streams
        self.outputs = outputs
        self.expect = expect
    }
}
