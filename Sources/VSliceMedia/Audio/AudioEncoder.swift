import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

public struct AudioResult: Codable, Sendable {
    public var samples: Int64
    public var packets: Int
    public var bytes: Int64
    /// Silence inserted where the source's audio timestamps had holes.
    public var silenceSamples: Int64
}

/// Decodes the source's audio stream once, converts it with libswresample to what the encoder takes, and
/// encodes it (AAC by default) into a packet file, in one pass. Packet timestamps are in 1/sample_rate on the
/// source's timeline: the first sample keeps the source's start time, so the merge restores the A/V offset.
/// (A track long enough, whose encoder joins cleanly, is encoded in pieces instead: `AudioPieceEncoder`.)
package struct AudioEncoder {
    package var source: String
    package var audioStream: Int
    /// The encoder (`--acodec`, or aac for a track `--acodec copy` cannot copy into the container).
    package var codec: String
    package var settings: TranscodeSettings
    package var outputPath: String
    /// The input's identity when the task started: a replaced or modified input is refused (exit 3).
    package var expect: FileIdentity? = nil

    package func run() throws(VSliceError) -> AudioResult {
        let decoding = try AudioDecoding(source: source, stream: audioStream, expect: expect)
        let sink = try AudioSink(codec: codec, decoder: decoding.decoder, bitrate: settings.audioBitrate, outputPath: outputPath)
        let layer = try AudioLayer(decoding: decoding, sink: sink)
        sink.written = { if $0 == 20 { Fault.hit("audio") } }
        let outTB = AVRational(num: 1, den: sink.format.rate)
        try decoding.frames { (frame) throws(VSliceError) in
            try layer.lay(frame, time: decoding.time(of: frame, in: outTB))
            sink.origin = layer.timeline.start ?? 0
            try sink.encode(from: layer.fifo, final: false)
            return true
        }
        try layer.flush()
        try sink.encode(from: layer.fifo, final: true)
        try sink.finish()
        return AudioResult(samples: sink.samplesSent, packets: sink.packetsWritten, bytes: sink.bytes, silenceSamples: layer.silenceLaid)
    }

    package init(source: String, audioStream: Int, codec: String, settings: TranscodeSettings, outputPath: String,
                 expect: FileIdentity? = nil) {
        self.source = source
        self.audioStream = audioStream
        self.codec = codec
        self.settings = settings
        self.outputPath = outputPath
        self.expect = expect
    }
}

/// What an audio encoder is set up with for one source track: the source's rate if the encoder takes it (else
/// the closest it takes), the source's channel layout if it takes it (else the default layout for the channel
/// count, else stereo), its first sample format, and `--abitrate`. The one setup of the audio stage and of the
/// check before any work (`EncoderCheck.checkAudio`).
package struct AudioFormat {
    package var rate: Int32
    package var layout = AVChannelLayout()
    /// The source's layout (the default one for its channel count when it has none).
    package var sourceLayout: AVChannelLayout
    package var sampleFormat: AVSampleFormat

    /// The sample rate `codec` supports nearest to `rate` (`rate` itself when the codec lists none).
    package static func nearestSampleRate(_ codec: UnsafePointer<AVCodec>, to rate: Int32) -> Int32 {
        guard var p = codec.pointee.supported_samplerates else { return rate }
        var best: Int32 = 0
        while p.pointee != 0 {
            if best == 0 || abs(p.pointee - rate) < abs(best - rate) { best = p.pointee }
            p += 1
        }
        return best == 0 ? rate : best
    }

    /// Chooses the format for `encoder` from the opened decoder `d`, and sets it on the encoder (not opened).
    /// `bitrate` 0 leaves the encoder's default.
    package init(encoder: Encoder, source d: UnsafeMutablePointer<AVCodecContext>, bitrate: Int64) throws(VSliceError) {
        let codec = encoder.ctx.pointee.codec!
        rate = Self.nearestSampleRate(codec, to: d.pointee.sample_rate)
        sourceLayout = d.pointee.ch_layout
        if sourceLayout.order == AV_CHANNEL_ORDER_UNSPEC {
            av_channel_layout_default(&sourceLayout, d.pointee.ch_layout.nb_channels)
        }
        if let list = codec.pointee.ch_layouts {
            // The entry of the encoder's zero-terminated list equal to `wanted`, if any.
            func find(_ wanted: inout AVChannelLayout) -> AVChannelLayout? {
                var p = list
                while p.pointee.nb_channels != 0 {
                    if av_channel_layout_compare(p, &wanted) == 0 { return p.pointee }
                    p += 1
                }
                return nil
            }
            var fallback = AVChannelLayout()
            av_channel_layout_default(&fallback, sourceLayout.nb_channels)
            if let chosen = find(&sourceLayout) ?? find(&fallback) { try ffCheck(av_channel_layout_copy(&layout, [chosen]), "copy channel layout") }
            else { av_channel_layout_default(&layout, 2) }
        } else {
            try ffCheck(av_channel_layout_copy(&layout, &sourceLayout), "copy channel layout")
        }
        sampleFormat = codec.pointee.sample_fmts?.pointee ?? AV_SAMPLE_FMT_FLTP

        let c = encoder.ctx
        c.pointee.sample_rate = rate
        do { try ffCheck(av_channel_layout_copy(&c.pointee.ch_layout, &layout), "set channel layout") } catch {
            av_channel_layout_uninit(&layout)
            throw error
        }
        c.pointee.sample_fmt = sampleFormat
        if bitrate > 0 { c.pointee.bit_rate = bitrate }
        c.pointee.time_base = AVRational(num: 1, den: rate)
        c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
    }

    package mutating func release() { av_channel_layout_uninit(&layout) }

    /// "48000 Hz stereo".
    package var description: String {
        var buf = [CChar](repeating: 0, count: 128)
        var l = layout
        let n = buf.withUnsafeMutableBufferPointer { av_channel_layout_describe(&l, $0.baseAddress, $0.count) }
        let name = n > 0 ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "\(layout.nb_channels) channels"
        return "\(rate) Hz \(name)"
    }
}
