import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

// The steps of an audio encode, shared by the single pass (`AudioEncoder`), the map of a track and its pieces
// (`AudioPieces.swift`): decode a source track (`AudioDecoding`), lay its samples on the track's timeline in the
// encoder's format (`AudioLayer`, by the rule of `AudioTimeline`), and encode them (`AudioSink`).


/// One source audio track, decoded in order from the input's start or from a seek.
package final class AudioDecoding {
    package let input: InputFile
    package let stream: Int
    package let decoder: Decoder
    package let timeBase: AVRational

    package init(source: String, stream: Int, expect: FileIdentity?) throws(VSliceError) {
        input = try InputFile(path: source, expect: expect)
        input.keepOnly(stream)
        self.stream = stream
        let st = input.stream(stream)
        timeBase = st.pointee.time_base
        decoder = try Decoder(stream: st, path: source, threads: 1)
    }

    package var path: String { input.path }

    /// Seeks so that decoding starts at the packet at or before `timestamp` (the stream's time base).
    package func seek(to timestamp: Int64) throws(VSliceError) {
        try input.seek(streamIndex: stream, timestamp: timestamp)
    }

    /// Hands every decoded frame to `body` until it returns false or the stream ends (the decoder drained).
    /// A corrupt frame is an input error, except while `tolerating()` (frames a piece decodes only to warm the
    /// decoder up after a seek, which may lack what they reference); then decode errors are skipped too.
    package func frames(tolerating: () -> Bool = { false }, _ body: (Frame) throws(VSliceError) -> Bool) throws(VSliceError) {
        let packet = Packet(), frame = Frame()
        var going = true
        func drain() throws(VSliceError) {
            while going {
                let got: CodecResult
                do { got = try decoder.receive(frame) } catch {
                    if error.kind == .input && tolerating() { return }
                    throw error
                }
                guard got == .ok else { return }
                if frame.isCorrupt && !tolerating() {
                    throw VSliceError(.input, "decode", path: path, reason: "corrupt data in \(decoder.place(frame.bestEffortTimestamp))")
                }
                if !frame.isCorrupt { going = try body(frame) }
                try Cancellation.throwIfAborted("encode audio", path: path)
            }
        }
        while going, try input.read(into: packet) {
            guard packet.streamIndex == stream else { continue }
            while true {
                let sent: CodecResult
                do { sent = try decoder.send(packet) } catch {
                    if error.kind == .input && tolerating() { break }
                    throw error
                }
                guard sent == .again else { break }
                try drain()
                if !going { return }
            }
            try drain()
        }
        guard going else { return }
        _ = try decoder.send(nil)
        try drain()
    }

    /// A frame's time in `outTB`, nil when it has none.
    package func time(of frame: Frame, in outTB: AVRational) -> Int64? {
        let ts = frame.bestEffortTimestamp
        return ts == AV_NOPTS ? nil : av_rescale_q(ts, timeBase, outTB)
    }
}

/// Converted samples waiting for the encoder, and the timeline position of the first of them. Samples laid
/// before `from` are dropped as they arrive (what a piece decodes before its start); none at or after `until`
/// is handed out (what it decodes past its end).
package final class AudioFIFO {
    private let fifo: OpaquePointer
    package let channels: Int32
    package let sampleFormat: AVSampleFormat
    /// The position of the next sample read.
    package private(set) var position: Int64 = 0
    package var from: Int64 = 0
    package var until: Int64 = .max

    /// `position`: where the first sample written lies on the timeline.
    package init(sampleFormat: AVSampleFormat, channels: Int32, capacity: Int32,
                 position: Int64 = 0) throws(VSliceError) {
        guard let f = av_audio_fifo_alloc(sampleFormat, channels, max(capacity, 1024)) else {
            throw VSliceError(.processing, "allocate audio fifo", reason: "out of memory")
        }
        fifo = f
        self.channels = channels
        self.sampleFormat = sampleFormat
        self.position = position
    }

    deinit { av_audio_fifo_free(fifo) }

    package var size: Int64 { Int64(av_audio_fifo_size(fifo)) }
    /// Samples that may be read now: those held, up to `until`.
    package var available: Int64 {
        let (room, overflow) = until.subtractingReportingOverflow(position)
        return overflow ? size : max(0, min(size, room))
    }

    /// Appends `count` samples (av_samples_alloc_array_and_samples layout).
    package func write(_ buffers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, count: Int32) throws(VSliceError) {
        let w = buffers.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(channels)) {
            av_audio_fifo_write(fifo, $0, count)
        }
        try ffCheck(w, "write audio fifo")
        dropBeforeFrom()
    }

    /// Appends `count` samples of silence.
    package func writeSilence(_ count: Int64) throws(VSliceError) {
        var left = count
        while left > 0 {
            let n = Int32(min(left, 1 << 16))
            var buffers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>? = nil
            var lines: Int32 = 0
            try ffCheck(av_samples_alloc_array_and_samples(&buffers, &lines, channels, n, sampleFormat, 0), "allocate silence")
            defer {
                av_freep(&buffers![0])
                av_freep(&buffers)
            }
            av_samples_set_silence(buffers, 0, n, channels, sampleFormat)
            try write(buffers!, count: n)
            left -= Int64(n)
        }
    }

    private func dropBeforeFrom() {
        guard position < from else { return }
        let (gap, overflow) = from.subtractingReportingOverflow(position)
        let n = overflow ? size : min(size, gap)
        av_audio_fifo_drain(fifo, Int32(n))
        position += n
    }

    /// Reads `count` samples into `frame` (allocated for them, in this FIFO's format and `layout`).
    package func read(into frame: Frame, count: Int32, rate: Int32, layout: inout AVChannelLayout) throws(VSliceError) {
        frame.unref()
        frame.ptr.pointee.nb_samples = count
        frame.ptr.pointee.format = sampleFormat.rawValue
        frame.ptr.pointee.sample_rate = rate
        try ffCheck(av_channel_layout_copy(&frame.ptr.pointee.ch_layout, &layout), "set frame layout")
        try ffCheck(av_frame_get_buffer(frame.ptr, 0), "allocate audio frame")
        let read = frame.ptr.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(channels)) {
            av_audio_fifo_read(fifo, $0, count)
        }
        try ffCheck(read, "read audio fifo")
        position += Int64(count)
    }
}

/// Lays decoded frames on the timeline in the encoder's format: libswresample converts them (rate, layout,
/// sample format), `AudioTimeline` says where they go, and holes become silence; all into a FIFO.
package final class AudioLayer {
    private var swr: OpaquePointer?
    package let fifo: AudioFIFO
    package var timeline: AudioTimeline
    private let rate: Int32
    private let outTB: AVRational
    private let path: String
    package private(set) var silenceLaid: Int64 = 0

    package init(decoding: AudioDecoding, sink: AudioSink, timeline: AudioTimeline? = nil) throws(VSliceError) {
        let d = decoding.decoder.ctx
        var layout = sink.format.layout, srcLayout = sink.format.sourceLayout
        rate = sink.format.rate
        outTB = AVRational(num: 1, den: rate)
        path = decoding.path
        let timeline = timeline ?? AudioTimeline(holeThreshold: sink.frameSize)
        self.timeline = timeline
        fifo = try AudioFIFO(sampleFormat: sink.format.sampleFormat, channels: layout.nb_channels, capacity: Int32(sink.frameSize),
                             position: timeline.laid)
        var swr: OpaquePointer? = nil
        try ffCheck(swr_alloc_set_opts2(&swr, &layout, sink.format.sampleFormat, rate,
                                        &srcLayout, d.pointee.sample_fmt, d.pointee.sample_rate, 0, nil),
                    "configure resampler", path: path)
        do { try ffCheck(swr_init(swr), "open resampler", path: path) } catch {
            swr_free(&swr)
            throw error
        }
        self.swr = swr
    }

    deinit { swr_free(&swr) }

    /// Lays one decoded frame (and the silence of a hole before it).
    package func lay(_ frame: Frame, time: Int64?) throws(VSliceError) {
        let gap = timeline.silence(before: time, pending: swr_get_delay(swr, Int64(rate)))
        if gap > 0 {
            try fifo.writeSilence(gap)
            timeline.laid += gap
            silenceLaid += gap
        }
        try convert(frame)
    }

    /// Lays what the converter still holds (at the end of the track).
    package func flush() throws(VSliceError) { try convert(nil) }

    private func convert(_ input: Frame?) throws(VSliceError) {
        let inSamples = input?.sampleCount ?? 0
        let cap = swr_get_out_samples(swr, Int32(inSamples))
        if cap <= 0 && input == nil { return }
        var buffers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>? = nil
        var lines: Int32 = 0
        try ffCheck(av_samples_alloc_array_and_samples(&buffers, &lines, fifo.channels, max(cap, 1), fifo.sampleFormat, 0),
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
        try ffCheck(got, "resample audio", path: path)
        if got > 0 {
            try fifo.write(buffers!, count: got)
            timeline.laid += Int64(got)
        }
    }
}

/// An audio encoder set up for a source track (`AudioFormat`), fed from a FIFO in frames of its size, writing
/// the packets it keeps to a packet file. Packet times are in 1/rate on the source's timeline (`origin` is the
/// time of timeline position 0). A packet's position is that of the first sample of the frame it was made from
/// (its time plus the encoder's priming, less `origin`); those outside `keep` are dropped (a piece's pre-roll and
/// post-roll).
package final class AudioSink {
    package let encoder: Encoder
    package var format: AudioFormat
    package let frameSize: Int64
    /// The encoder's priming (initial padding), samples.
    package let padding: Int64
    package let writer: PacketFileWriter
    package var origin: Int64 = 0
    package var keep: Range<Int64> = Int64.min..<Int64.max
    /// A linear gain on every sample encoded (`--loudness`); 1: none.
    package var gain: Double = 1
    /// Called after each packet written (the fault point of the single pass).
    package var written: (_ packets: Int) -> Void = { _ in }
    package private(set) var samplesSent: Int64 = 0
    package private(set) var packetsWritten = 0
    /// The first kept packet's time, and where the last one ends (time + duration), 1/rate.
    package private(set) var firstTime: Int64?
    package private(set) var endTime: Int64?
    private let frame = Frame(), packet = Packet()

    package init(codec: String, decoder: Decoder, bitrate: Int64, outputPath: String) throws(VSliceError) {
        let encoder = try Encoder(name: codec, path: outputPath)
        var format = try AudioFormat(encoder: encoder, source: decoder.ctx, bitrate: bitrate)
        do {
            try encoder.open(options: [])
            writer = try PacketFileWriter(path: outputPath, params: StreamParams(encoder: encoder.ctx))
        } catch {
            format.release()
            throw error
        }
        let c = encoder.ctx.pointee
        frameSize = c.frame_size > 0 ? Int64(c.frame_size) : 1024
        padding = Int64(c.initial_padding)
        self.encoder = encoder
        self.format = format
    }

    deinit { format.release() }

    package var bytes: Int64 { writer.bytesWritten }

    /// Encodes whole frames from `fifo`; with `final`, also the short frame that ends the track.
    package func encode(from fifo: AudioFIFO, final: Bool) throws(VSliceError) {
        while fifo.available >= frameSize || (final && fifo.available > 0) {
            let n = min(frameSize, fifo.available)
            let time = origin + fifo.position
            try fifo.read(into: frame, count: Int32(n), rate: format.rate, layout: &format.layout)
            if gain != 1 { AudioGain.apply(gain, to: frame) }
            frame.pts = time
            samplesSent += n
            while try encoder.send(frame) == .again { try drain() }
            try drain()
        }
    }

    /// Encodes `frames` frames of digital silence ending at timeline position `position` (before the packets
    /// kept: they are dropped).
    package func encodeSilence(frames: Int64, before position: Int64) throws(VSliceError) {
        let fifo = try AudioFIFO(sampleFormat: format.sampleFormat, channels: format.layout.nb_channels, capacity: Int32(frameSize),
                                 position: position - frames * frameSize)
        fifo.from = .min
        try fifo.writeSilence(frames * frameSize)
        try encode(from: fifo, final: false)
    }

    /// Flushes the encoder and seals the packet file.
    package func finish() throws(VSliceError) {
        _ = try encoder.send(nil)
        try drain()
        try writer.finish()
    }

    private func drain() throws(VSliceError) {
        while try encoder.receive(packet) == .ok {
            guard keep.contains(packet.pts - origin + padding) else { continue }
            try writer.write(packet)
            packetsWritten += 1
            if firstTime == nil { firstTime = packet.pts }
            endTime = packet.pts + packet.duration
            written(packetsWritten)
        }
    }
}

/// A linear gain applied to a frame's samples in place (integer samples clipped to their range).
enum AudioGain {
    static func apply(_ gain: Double, to frame: Frame) {
        let f = frame.ptr.pointee
        let fmt = AVSampleFormat(rawValue: f.format)
        let planar = av_sample_fmt_is_planar(fmt) != 0
        let channels = Int(f.ch_layout.nb_channels), n = Int(f.nb_samples)
        let planes = planar ? channels : 1, count = planar ? n : n * channels
        for p in 0..<planes {
            guard let base = f.extended_data[p] else { continue }
            switch av_get_packed_sample_fmt(fmt) {
            case AV_SAMPLE_FMT_FLT:
                base.withMemoryRebound(to: Float.self, capacity: count) { s in for i in 0..<count { s[i] = Float(Double(s[i]) * gain) } }
            case AV_SAMPLE_FMT_DBL:
                base.withMemoryRebound(to: Double.self, capacity: count) { s in for i in 0..<count { s[i] *= gain } }
            case AV_SAMPLE_FMT_S16:
                base.withMemoryRebound(to: Int16.self, capacity: count) { s in
                    for i in 0..<count { s[i] = Int16(max(-32768, min(32767, (Double(s[i]) * gain).rounded()))) }
                }
            case AV_SAMPLE_FMT_S32:
                base.withMemoryRebound(to: Int32.self, capacity: count) { s in
                    for i in 0..<count { s[i] = Int32(max(-2147483648, min(2147483647, (Double(s[i]) * gain).rounded()))) }
                }
            default:
                continue
            }
        }
    }
}
