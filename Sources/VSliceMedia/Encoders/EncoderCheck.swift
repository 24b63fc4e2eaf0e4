import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// The encoders this build of FFmpeg has, for checking `--vcodec`/`--acodec` and suggesting a name.
public enum EncoderCatalog {
    /// The encoders vslice documents, in the order they are suggested.
    package static let documented: [AVMediaType: [String]] = [
        AVMEDIA_TYPE_VIDEO: VideoEncoderRules.names,
        AVMEDIA_TYPE_AUDIO: ["aac", "libopus", "libmp3lame", "ac3", "flac"],
    ]

    /// Common names that are not FFmpeg codec names.
    package static let aliases = ["x264": "h264", "avc": "h264", "h265": "hevc", "x265": "hevc", "svtav1": "av1",
                          "svt-av1": "av1", "vp09": "vp9", "mp3": "mp3", "opus": "opus"]

    package static func encoderNames(type: AVMediaType) -> [String] {
        var names: [String] = []
        var opaque: UnsafeMutableRawPointer? = nil
        while let c = av_codec_iterate(&opaque) {
            if av_codec_is_encoder(c) != 0, c.pointee.type == type { names.append(String(cString: c.pointee.name)) }
        }
        return names
    }

    /// Checks that `name` is an encoder of `type` in this build; the error lists the documented encoders the
    /// build has and suggests the likeliest one (`h264` → libx264).
    /// `check(_:type:option:)` for a video (`video`) or an audio encoder.
    package static func check(_ name: String, video: Bool, option: String) throws(VSliceError) {
        try check(name, type: video ? AVMEDIA_TYPE_VIDEO : AVMEDIA_TYPE_AUDIO, option: option)
    }

    package static func check(_ name: String, type: AVMediaType, option: String) throws(VSliceError) {
        let kind = type == AVMEDIA_TYPE_VIDEO ? "video" : "audio"
        if let codec = avcodec_find_encoder_by_name(name) {
            if codec.pointee.type == type { return }
            throw VSliceError(.usage, "check options", reason: "\(option): '\(name)' is not \(kind == "audio" ? "an" : "a") \(kind) encoder")
        }
        let all = encoderNames(type: type)
        let here = (documented[type] ?? []).filter { all.contains($0) }
        var reason = "\(option): this build has no encoder named '\(name)'"
        if let s = suggestion(for: name, type: type, among: all) { reason += "; did you mean \(s)?" }
        reason += " \(kind.capitalized) encoders here: " + (here.isEmpty ? all.prefix(8) : here[...]).joined(separator: ", ")
        if all.count > here.count { reason += " (and \(all.count - here.count) more of FFmpeg's)" }
        throw VSliceError(.usage, "check options", reason: reason)
    }

    /// An encoder for the codec `name` names (`h264`, `hevc`, `vp9`, `av1`…), else an encoder whose name
    /// contains it, preferring the documented ones.
    package static func suggestion(for name: String, type: AVMediaType, among all: [String]) -> String? {
        let lowered = name.lowercased()
        let codecName = aliases[lowered] ?? lowered
        var candidates: [String] = []
        if let desc = avcodec_descriptor_get_by_name(codecName), desc.pointee.type == type {
            var opaque: UnsafeMutableRawPointer? = nil
            while let c = av_codec_iterate(&opaque) {
                if av_codec_is_encoder(c) != 0, c.pointee.id == desc.pointee.id { candidates.append(String(cString: c.pointee.name)) }
            }
        }
        if candidates.isEmpty { candidates = all.filter { $0.lowercased().contains(lowered) } }
        let preferred = documented[type] ?? []
        return candidates.first(where: preferred.contains) ?? candidates.first(where: { $0.hasPrefix("lib") }) ?? candidates.first
    }
}

/// Opens the video encoder once, before any work, on a tiny frame, with exactly the options a segment's
/// encoder gets: a bad `--preset`, `--crf` or `--codec-opt` is a usage error (exit 2) within a second,
/// before a task or a work folder exists, instead of a failed (and retried) segment.
public enum EncoderCheck {
    public static let frameSize: Int32 = 64

    /// With `format` (the output's muxer), that muxer is then asked to write a header for the opened encoder's
    /// stream, as the merge will: a codec the container cannot hold (`libvpx-vp9` or `libsvtav1` into MOV, which
    /// FFmpeg 5.1's codec list says it holds) is refused, naming `--vcodec` and the container.
    public static func check(_ settings: TranscodeSettings, format: String? = nil, output: String? = nil) throws(VSliceError) {
        try EncoderCatalog.check(settings.videoCodec, type: AVMEDIA_TYPE_VIDEO, option: "--vcodec")
        if !settings.copyAudio { try EncoderCatalog.check(settings.audioCodec, type: AVMEDIA_TYPE_AUDIO, option: "--acodec") }
        let all = settings.videoEncoderOptions
        guard let failure = capturing({ tryOpen(settings, options: all, muxer: format) }) else { return }
        if failure.error.operation == Container.muxCheck, let format {
            var said = failure.said ?? failure.error.reason
            if let r = said.range(of: ", add '-strict") { said = String(said[..<r.lowerBound]) }
            let name = av_guess_format(format, nil, nil).map { String(cString: $0.pointee.name) } ?? format
            throw VSliceError(.usage, "check options", path: output,
                              reason: "--vcodec \(settings.videoCodec): the \(name) container cannot hold it (\(said.trimmingCharacters(in: CharacterSet(charactersIn: ". ")))); choose another codec or container")
        }
        // Which option did it: the ones vslice adds alone first, then the user's one by one.
        let userKeys = Set(settings.encoderOptions.map(\.0))
        let user = all.filter { userKeys.contains($0.0) }
        let added = all.filter { !userKeys.contains($0.0) }
        var culprit: (key: String, failure: Failure)? = nil
        if attempt(settings, options: added) == nil {
            var kept = added
            for o in user {
                if let f = attempt(settings, options: kept + [o]) { culprit = (o.0, f); break }
                kept.append(o)
            }
        }
        let name = settings.videoCodec
        guard let culprit, let value = settings.encoderOptions.first(where: { $0.0 == culprit.key })?.1 else {
            throw VSliceError(.usage, "check options", reason: "\(name) cannot be opened with these settings: \(Self.why(failure))")
        }
        let key = culprit.key
        let flag = key == "crf" ? "--crf \(value)" : key == "preset" ? "--preset \(value)" : "--codec-opt \(key)=\(value)"
        if culprit.failure.error.kind == .usage && culprit.failure.error.reason.contains("not known") {
            throw VSliceError(.usage, "check options", reason: "\(flag): \(name) has no option '\(key)'")
        }
        throw VSliceError(.usage, "check options", reason: "\(flag): \(name) refused it: \(Self.why(culprit.failure))")
    }

    /// The encoder's own words (x264: "invalid preset 'fastest'") when it said any, else FFmpeg's error, which
    /// for a rejected setting is often "Invalid data found when processing input": not about the input here.
    package static func why(_ f: Failure) -> String {
        if let said = f.said { return said }
        if f.error.code == vs_averror_invaliddata() { return "the encoder rejected the settings" }
        return f.error.reason
    }

    package struct Failure {
        package var error: VSliceError
        /// The last line the encoder library or FFmpeg logged, if any.
        package var said: String?
    }

    /// Opens the encoder on a 64×64 frame in its pixel format, encodes it and drains; the failure, if any.
    /// What the encoder libraries print on stderr meanwhile (x264 and x265 print there directly) is caught,
    /// so a failed check prints one line, with the library's reason in it.
    package static func attempt(_ settings: TranscodeSettings, options: [(String, String)]) -> Failure? {
        capturing { tryOpen(settings, options: options) }
    }

    /// Runs `body` with FFmpeg's errors logged and stderr caught; its failure, with the last line logged.
    package static func capturing(_ body: () -> VSliceError?) -> Failure? {
        let capture = StderrCapture()
        let level = av_log_get_level()
        av_log_set_level(AV_LOG_ERROR)
        let error = body()
        av_log_set_level(level)
        let text = capture.finish()
        guard let error else { return nil }
        // "x264 [error]: invalid preset 'fastest'" (the library's own words) before
        // "[libx264 @ 0x…] Error setting preset/tune …" (FFmpeg's); the words after the tag.
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        let said = (lines.last { $0.contains(" [error]: ") } ?? lines.last { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
            .map { line -> String in
                var l = Substring(line)
                if let r = l.range(of: "]: ") ?? l.range(of: "] ") { l = l[r.upperBound...] }
                return l.trimmingCharacters(in: .whitespaces)
            }
        return Failure(error: error, said: said)
    }

    /// Encodes `frame` (timed 0) through the opened `encoder` and drains it; then, with `muxer`, has that muxer
    /// write a header for the encoder's stream. The muxer's refusal, if any.
    package static func encodeTestFrame(_ frame: Frame, _ encoder: Encoder, muxer: String?) throws(VSliceError) -> VSliceError? {
        frame.pts = 0
        let packet = Packet()
        while try encoder.send(frame) == .again {
            while try encoder.receive(packet) == .ok {}
        }
        _ = try encoder.send(nil)
        while try encoder.receive(packet) == .ok {}
        guard let muxer else { return nil }
        return Container.acceptsStream(format: muxer, encoder: encoder.ctx)
    }

    package static func tryOpen(_ settings: TranscodeSettings, options: [(String, String)], muxer: String? = nil) -> VSliceError? {
        do throws(VSliceError) {
            let encoder = try Encoder(name: settings.videoCodec, path: "(encoder check)")
            let c = encoder.ctx
            var format = AV_PIX_FMT_YUV420P
            if var p = c.pointee.codec.pointee.pix_fmts {
                var supported: [AVPixelFormat] = []
                while p.pointee != AV_PIX_FMT_NONE { supported.append(p.pointee); p += 1 }
                if !supported.isEmpty && !supported.contains(AV_PIX_FMT_YUV420P) { format = supported[0] }
            }
            c.pointee.width = frameSize
            c.pointee.height = frameSize
            c.pointee.pix_fmt = format
            c.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
            c.pointee.time_base = AVRational(num: 1, den: 25)
            c.pointee.framerate = AVRational(num: 25, den: 1)
            c.pointee.thread_count = Int32(settings.threadsPerJob)
            c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
            if let b = settings.videoBitrate { c.pointee.bit_rate = b }
            try encoder.open(options: options)

            let frame = Frame()
            frame.ptr.pointee.width = frameSize
            frame.ptr.pointee.height = frameSize
            frame.ptr.pointee.format = format.rawValue
            try ffCheck(av_frame_get_buffer(frame.ptr, 0), "allocate a test frame")
            // Mid-grey bytes in every plane's buffer (any content does; this keeps it defined).
            withUnsafeBytes(of: frame.ptr.pointee.buf) { raw in
                for ref in raw.bindMemory(to: UnsafeMutablePointer<AVBufferRef>?.self) {
                    if let ref { memset(ref.pointee.data, 0x80, Int(ref.pointee.size)) }
                }
            }
            return try encodeTestFrame(frame, encoder, muxer: muxer)
        } catch {
            return error
        }
    }
}

extension EncoderCheck {
    /// Opens, before any work, each audio encoder the stream plan uses, set up as the audio stage sets it up for
    /// its track (the track's decoded rate and channel layout, `--abitrate`: `AudioFormat`), and encodes a frame
    /// of silence through it: a bit rate the encoder refuses (`--acodec mp2 --abitrate 1k`), an experimental
    /// encoder (`--acodec opus`) or one that cannot take the track is a usage error (exit 2) naming the option,
    /// before a task or a work folder exists.
    /// The output's muxer (`format`) is then asked to write a header for the opened encoder's stream, as the
    /// merge will: a codec the container cannot hold (`--acodec flac` into MP4, `libopus` into MOV,
    /// `pcm_s16le` into MP4) is refused the same way, naming `--acodec` and the container.
    package static func checkAudio(source: String, tracks: [StreamPlan.Audio], settings: TranscodeSettings, format: String,
                           output: String? = nil, expect: FileIdentity?) throws(VSliceError) {
        let encoded = tracks.filter { !$0.copy }
        guard !encoded.isEmpty else { return }
        let input = try InputFile(path: source, expect: expect)
        var checked: [String: Bool] = [:]
        for track in encoded {
            guard let codec = track.encoder else { continue }
            let decoder = try Decoder(stream: input.stream(track.stream), path: source, threads: 1)
            var described = ""
            // Tracks alike (same encoder, rate, channels) are checked once.
            let key = "\(codec) \(decoder.ctx.pointee.sample_rate) \(decoder.ctx.pointee.ch_layout.nb_channels) \(decoder.ctx.pointee.ch_layout.u.mask)"
            if checked[key] != nil { continue }
            checked[key] = true
            guard let failure = capturing({ tryAudio(codec, source: decoder.ctx, bitrate: settings.audioBitrate, format: format,
                                                     described: &described) }) else {
                continue
            }
            let flag = settings.copyAudio ? "--acodec copy (audio track \(track.ordinal) re-encoded to \(codec))" : "--acodec \(codec)"
            if failure.error.operation == Container.muxCheck {
                // The muxer's words without the ffmpeg command-line advice ("add '-strict -2' …").
                var said = failure.said ?? failure.error.reason
                if let r = said.range(of: ", add '-strict") { said = String(said[..<r.lowerBound]) }
                let name = av_guess_format(format, nil, nil).map { String(cString: $0.pointee.name) } ?? format
                throw VSliceError(.usage, "check options", path: output,
                                  reason: "\(flag): the \(name) container cannot hold \(codec) audio (\(said.trimmingCharacters(in: CharacterSet(charactersIn: ". ")))); choose another codec or container")
            }
            if failure.error.code == vs_averror_experimental() {
                var reason = "\(flag): FFmpeg's \(codec) encoder is experimental, and vslice uses no experimental encoder"
                // Another encoder of the same codec (opus: libopus), if this build has one.
                let all = EncoderCatalog.encoderNames(type: AVMEDIA_TYPE_AUDIO).filter { $0 != codec }
                if let s = EncoderCatalog.suggestion(for: codec, type: AVMEDIA_TYPE_AUDIO, among: all), s != codec {
                    reason += "; did you mean \(s)?"
                }
                throw VSliceError(.usage, "check options", reason: reason)
            }
            // The same encoder at its own default bit rate: if that works, the bit rate is what it refused.
            var unused = ""
            if capturing({ tryAudio(codec, source: decoder.ctx, bitrate: 0, format: nil, described: &unused) }) == nil {
                throw VSliceError(.usage, "check options",
                                  reason: "--abitrate \(Self.bitrate(settings.audioBitrate)): \(codec) refused it for audio track \(track.ordinal) (\(described)): \(why(failure))")
            }
            throw VSliceError(.usage, "check options",
                              reason: "\(flag): the encoder cannot encode audio track \(track.ordinal) (\(described)): \(why(failure))")
        }
    }

    /// 128000 → "128k", 10000000 → "10M".
    package static func bitrate(_ b: Int64) -> String {
        b % 1_000_000 == 0 ? "\(b / 1_000_000)M" : b % 1000 == 0 ? "\(b / 1000)k" : "\(b)"
    }

    /// Opens `name` set up for the decoder's track, encodes a frame of silence and drains, then (with `format`)
    /// has that muxer write a header for the stream; the failure, if any (the muxer's: `Container.muxCheck`).
    /// `described`: the format it was set up with ("48000 Hz stereo").
    package static func tryAudio(_ name: String, source d: UnsafeMutablePointer<AVCodecContext>, bitrate: Int64, format muxer: String?,
                         described: inout String) -> VSliceError? {
        do throws(VSliceError) {
            let encoder = try Encoder(name: name, path: "(encoder check)")
            var format = try AudioFormat(encoder: encoder, source: d, bitrate: bitrate)
            defer { format.release() }
            described = format.description
            try encoder.open(options: [])
            let c = encoder.ctx
            let frame = Frame()
            let samples = c.pointee.frame_size > 0 ? c.pointee.frame_size : 1024
            frame.ptr.pointee.nb_samples = samples
            frame.ptr.pointee.format = format.sampleFormat.rawValue
            frame.ptr.pointee.sample_rate = format.rate
            try ffCheck(av_channel_layout_copy(&frame.ptr.pointee.ch_layout, &format.layout), "set frame layout")
            try ffCheck(av_frame_get_buffer(frame.ptr, 0), "allocate a test frame")
            try ffCheck(av_samples_set_silence(frame.ptr.pointee.extended_data, 0, samples, format.layout.nb_channels, format.sampleFormat),
                        "fill a test frame")
            return try encodeTestFrame(frame, encoder, muxer: muxer)
        } catch {
            return error
        }
    }
}

/// Sends fd 2 to a temporary file until `finish()`, which restores it and returns what was written.
package final class StderrCapture {
    private var saved: Int32 = -1
    private var file: Int32 = -1

    package init() {
        var template = Array((NSTemporaryDirectory() + "vslice-stderr-XXXXXX").utf8CString)
        file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard file >= 0 else { return }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        fflush(nil)
        saved = dup(STDERR_FILENO)
        if saved < 0 || dup2(file, STDERR_FILENO) < 0 { close(file); file = -1 }
    }

    package func finish() -> String {
        guard file >= 0, saved >= 0 else { return "" }
        fflush(nil)
        dup2(saved, STDERR_FILENO)
        close(saved)
        var data = Data()
        lseek(file, 0, SEEK_SET)
        var buf = [UInt8](repeating: 0, count: 4096)
        while data.count < 1 << 20 {
            let n = read(file, &buf, buf.count)
            if n <= 0 { break }
            data.append(buf, count: n)
        }
        close(file)
        file = -1
        return String(decoding: data, as: UTF8.self)
    }
}
