import CFFmpeg
import Foundation

public struct AudioResult: Codable, Sendable {
    public var samples: Int64
    public var packets: Int
    public var bytes: Int64
    /// Silence inserted where the source's audio timestamps had holes.
    public var silenceSamples: Int64
}

/// Decodes the source's audio stream once, converts it with libswresample to what the encoder takes, and
/// encodes it (AAC by default) into a packet file. Packet timestamps are in 1/sample_rate on the source's
/// timeline: the first sample keeps the source's start time, so the merge restores the A/V offset.
struct AudioEncoder {
    var source: String
    var audioStream: Int
    /// The encoder (`--acodec`, or aac for a track `--acodec copy` cannot copy into the container).
    var codec: String
    var settings: TranscodeSettings
    var outputPath: String
    /// The input's identity when the task started: a replaced or modified input is refused (exit 3).
    var expect: FileIdentity? = nil

    func run() throws(VSliceError) -> AudioResult {
        let input = try InputFile(path: source, expect: expect)
        input.keepOnly(audioStream)
        let st = input.stream(audioStream)
        let decoder = try Decoder(stream: st, path: source, threads: 1)
        let encoder = try Encoder(name: codec, path: outputPath)
        let d = decoder.ctx
        var format = try AudioFormat(encoder: encoder, source: d, bitrate: settings.audioBitrate)
        defer { format.release() }
        try encoder.open(options: [])
        var layout = format.layout, srcLayout = format.sourceLayout
        let rate = format.rate, sampleFormat = format.sampleFormat
        let c = encoder.ctx

        var swr: OpaquePointer? = nil
        try ffCheck(swr_alloc_set_opts2(&swr, &layout, sampleFormat, rate,
                                        &srcLayout, d.pointee.sample_fmt, d.pointee.sample_rate, 0, nil),
                    "configure resampler", path: source)
        defer { swr_free(&swr) }
        try ffCheck(swr_init(swr), "open resampler", path: source)

        guard let fifo = av_audio_fifo_alloc(sampleFormat, layout.nb_channels, max(c.pointee.frame_size, 1024)) else {
            throw VSliceError(.processing, "allocate audio fifo", reason: "out of memory")
        }
        defer { av_audio_fifo_free(fifo) }

        let writer = try PacketFileWriter(path: outputPath, params: StreamParams(encoder: c))
        let packet = Packet(), frame = Frame(), out = Frame(), encoded = Packet()
        let frameSize = c.pointee.frame_size > 0 ? Int(c.pointee.frame_size) : 1024
        var nextPts: Int64? = nil
        var samplesOut: Int64 = 0
        /// Samples (at the output rate) written to the FIFO so far, silence included.
        var samplesQueued: Int64 = 0
        var silenceInserted: Int64 = 0
        var packets = 0
        let outTB = AVRational(num: 1, den: rate)
        let srcTB = st.pointee.time_base

        func drainEncoder() throws(VSliceError) {
            while try encoder.receive(encoded) == .ok {
                try writer.write(encoded)
                packets += 1
                if packets == 20 { Fault.hit("audio") }
            }
        }
        func encodeFromFifo(final: Bool) throws(VSliceError) {
            while av_audio_fifo_size(fifo) >= Int32(frameSize) || (final && av_audio_fifo_size(fifo) > 0) {
                let n = min(Int32(frameSize), av_audio_fifo_size(fifo))
                out.unref()
                out.ptr.pointee.nb_samples = n
                out.ptr.pointee.format = sampleFormat.rawValue
                out.ptr.pointee.sample_rate = rate
                try ffCheck(av_channel_layout_copy(&out.ptr.pointee.ch_layout, &layout), "set frame layout")
                try ffCheck(av_frame_get_buffer(out.ptr, 0), "allocate audio frame")
                let read = out.ptr.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(layout.nb_channels)) {
                    av_audio_fifo_read(fifo, $0, n)
                }
                try ffCheck(read, "read audio fifo")
                out.pts = (nextPts ?? 0) + samplesOut
                samplesOut += Int64(n)
                while try encoder.send(out) == .again { try drainEncoder() }
                try drainEncoder()
            }
        }
        func convert(_ input: Frame?) throws(VSliceError) {
            let inSamples = input?.sampleCount ?? 0
            let cap = swr_get_out_samples(swr, Int32(inSamples))
            if cap <= 0 && input == nil { return }
            var buffers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>? = nil
            var lines: Int32 = 0
            try ffCheck(av_samples_alloc_array_and_samples(&buffers, &lines, layout.nb_channels, max(cap, 1), sampleFormat, 0),
                        "allocate resample buffer")
            defer {
                av_freep(&buffers![0])
                av_freep(&buffers)
            }
            let got: Int32
            if let input {
                got = input.ptr.pointee.extended_data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) {
                    swr_convert(swr, buffers, max(cap, 1), $0, Int32(inSamples))
                }
            } else {
                got = swr_convert(swr, buffers, max(cap, 1), nil, 0)
            }
            try ffCheck(got, "resample audio", path: source)
            if got > 0 {
                let w = buffers!.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(layout.nb_channels)) {
                    av_audio_fifo_write(fifo, $0, got)
                }
                try ffCheck(w, "write audio fifo")
                samplesQueued += Int64(got)
            }
        }
        /// A hole in the source's audio timestamps (a dropped stretch, a splice) becomes silence of the same
        /// length, so every later sample keeps its time and the audio lasts as long as the source's.
        func fillGap(before frame: Frame, start: Int64) throws(VSliceError) {
            let ts = frame.bestEffortTimestamp
            guard ts != AV_NOPTS else { return }
            let expected = av_rescale_q(ts, srcTB, outTB) - start
            let queued = samplesQueued + swr_get_delay(swr, Int64(rate))
            let gap = expected - queued
            guard gap > Int64(frameSize) else { return }
            var buffers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>? = nil
            var lines: Int32 = 0
            var left = gap
            while left > 0 {
                let n = Int32(min(left, Int64(rate)))
                try ffCheck(av_samples_alloc_array_and_samples(&buffers, &lines, layout.nb_channels, n, sampleFormat, 0),
                            "allocate silence")
                av_samples_set_silence(buffers, 0, n, layout.nb_channels, sampleFormat)
                let w = buffers!.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(layout.nb_channels)) {
                    av_audio_fifo_write(fifo, $0, n)
                }
                av_freep(&buffers![0])
                av_freep(&buffers)
                try ffCheck(w, "write audio fifo")
                samplesQueued += Int64(n)
                left -= Int64(n)
            }
            silenceInserted += gap
        }
        func drainDecoder() throws(VSliceError) {
            while try decoder.receive(frame) == .ok {
                if frame.isCorrupt {
                    throw VSliceError(.input, "decode audio", path: source, reason: "corrupt data in the audio stream")
                }
                if let start = nextPts {
                    try fillGap(before: frame, start: start)
                } else {
                    let ts = frame.bestEffortTimestamp
                    nextPts = ts == AV_NOPTS ? 0 : av_rescale_q(ts, srcTB, outTB)
                }
                try convert(frame)
                try encodeFromFifo(final: false)
                try Cancellation.throwIfAborted("encode audio", path: source)
            }
        }

        while try input.read(into: packet) {
            guard packet.streamIndex == audioStream else { continue }
            while try decoder.send(packet) == .again { try drainDecoder() }
            try drainDecoder()
        }
        _ = try decoder.send(nil)
        try drainDecoder()
        try convert(nil)
        try encodeFromFifo(final: true)
        _ = try encoder.send(nil)
        try drainEncoder()
        try writer.finish()
        return AudioResult(samples: samplesOut, packets: packets, bytes: writer.bytesWritten, silenceSamples: silenceInserted)
    }
}

/// What an audio encoder is set up with for one source track: the source's rate if the encoder takes it (else
/// the closest it takes), the source's channel layout if it takes it (else the default layout for the channel
/// count, else stereo), its first sample format, and `--abitrate`. The one setup of the audio stage and of the
/// check before any work (`EncoderCheck.checkAudio`).
struct AudioFormat {
    var rate: Int32
    var layout = AVChannelLayout()
    /// The source's layout (the default one for its channel count when it has none).
    var sourceLayout: AVChannelLayout
    var sampleFormat: AVSampleFormat

    /// The sample rate `codec` supports nearest to `rate` (`rate` itself when the codec lists none).
    static func nearestSampleRate(_ codec: UnsafePointer<AVCodec>, to rate: Int32) -> Int32 {
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
    init(encoder: Encoder, source d: UnsafeMutablePointer<AVCodecContext>, bitrate: Int64) throws(VSliceError) {
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

    mutating func release() { av_channel_layout_uninit(&layout) }

    /// "48000 Hz stereo".
    var description: String {
        var buf = [CChar](repeating: 0, count: 128)
        var l = layout
        let n = buf.withUnsafeMutableBufferPointer { av_channel_layout_describe(&l, $0.baseAddress, $0.count) }
        let name = n > 0 ? String(cString: buf) : "\(layout.nb_channels) channels"
        return "\(rate) Hz \(name)"
    }
}
