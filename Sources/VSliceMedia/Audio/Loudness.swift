import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// One audio piece's loudness (`--loudness`), measured by libavfilter's `ebur128` on the source's decoded samples:
/// the track decoded from a second before the piece's first kept sample (the K-weighting and the first 400 ms
/// window see the samples before it, as in one pass over the track) on the track's own 100 ms grid, cut into
/// 100 ms frames; the momentary loudness after each is the energy of the 400 ms block ending there. The blocks
/// ending inside the piece, and its true peak, are its measurement.
package enum AudioLoudness {
    /// Seconds decoded before the piece's first kept sample: the 400 ms window and the filter's settling.
    static let prerollSeconds = 1.0

    package static func measure(source: String, piece: AudioPiece, expect: FileIdentity?) throws(VSliceError) -> LoudnessMeasure {
        let decoding = try AudioDecoding(source: source, stream: piece.stream, expect: expect)
        let shape = try AudioEncoderShape(codec: piece.codec, decoder: decoding.decoder, bitrate: piece.bitrate)
        let rate = Int64(decoding.decoder.ctx.pointee.sample_rate)
        guard rate > 0, rate % 10 == 0 else {
            throw VSliceError(.input, "measure loudness", path: source, reason: "a sample rate of \(rate) Hz has no 100 ms grid")
        }
        let step = rate / 10
        // The piece's kept samples, in the source's samples from the track's first.
        let scale = Double(rate) / Double(shape.rate)
        let keepFrom = Int64((Double(piece.keepFrom) * scale).rounded())
        let keepTo = piece.keepTo.map { Int64((Double($0) * scale).rounded()) }
        let start = max(0, keepFrom / step - Int64(prerollSeconds * 10)) * step
        var origin: Int64? = piece.timeline.start.map { Int64((Double($0) * scale).rounded()) }
        if let seek = piece.seek { try decoding.seek(to: seek) }
        let graph = try AudioMeter(decoder: decoding.decoder, start: start, end: keepTo, step: step, path: source)
        var blocks: [Double] = [], peak = 0.0
        let outTB = AVRational(num: 1, den: Int32(rate))
        func take() throws(VSliceError) {
            while let (loudness, tp, samples, pts) = try graph.pull() {
                let end = pts + samples
                guard let m = loudness, samples == step, end - start >= 4 * step, end > keepFrom, keepTo.map({ end <= $0 }) ?? true else {
                    continue
                }
                blocks.append(LoudnessMeasure.energy(loudness: m))
                peak = max(peak, tp)
            }
        }
        var first = true
        try decoding.frames(tolerating: { first }) { (frame) throws(VSliceError) in
            guard let t = decoding.time(of: frame, in: outTB) else { return true }
            if origin == nil { origin = t }
            let position = t - origin!
            if first {
                guard position + Int64(frame.sampleCount) > start else { return true }
                if position > start {
                    throw VSliceError(.processing, "measure loudness", path: source,
                                      reason: "decoding after the seek starts at sample \(position), after the measurement's start \(start)")
                }
                first = false
            }
            frame.pts = position
            try graph.push(frame)
            try take()
            return keepTo.map { position < $0 + step } ?? true
        }
        try graph.push(nil)
        try take()
        return LoudnessMeasure(track: piece.track, piece: piece.index, blocks: blocks, truePeak: peak)
    }
}

/// `abuffer → atrim (the measured stretch) → asetnsamples (100 ms frames) → ebur128 (true peak, metadata) → abuffersink`.
private final class AudioMeter {
    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private let source: UnsafeMutablePointer<AVFilterContext>
    private let sink: UnsafeMutablePointer<AVFilterContext>
    private let path: String
    private let channels: Int32
    private let out = Frame()

    init(decoder: Decoder, start: Int64, end: Int64?, step: Int64, path: String) throws(VSliceError) {
        self.path = path
        let c = decoder.ctx.pointee
        channels = c.ch_layout.nb_channels
        guard let g = avfilter_graph_alloc() else { throw VSliceError(.processing, "allocate filter graph", path: path, reason: "out of memory") }
        graph = g
        g.pointee.nb_threads = 1
        var layout = AVChannelLayout()
        av_channel_layout_default(&layout, channels)
        var buf = [CChar](repeating: 0, count: 128)
        _ = av_channel_layout_describe(&layout, &buf, buf.count)
        let name = String(cString: av_get_sample_fmt_name(c.sample_fmt))
        let args = "time_base=1/\(c.sample_rate):sample_rate=\(c.sample_rate):sample_fmt=\(name):channel_layout=\(String(cString: buf))"
        var src: UnsafeMutablePointer<AVFilterContext>? = nil, snk: UnsafeMutablePointer<AVFilterContext>? = nil
        // Positions are the frames' timestamps (1/rate): atrim's *_sample options count the samples it was given.
        let chain = "atrim=start_pts=\(start)" + (end.map { ":end_pts=\($0 + step)" } ?? "")
            + ",asetnsamples=n=\(step):p=0,ebur128=peak=true:metadata=1"
        var outputs = avfilter_inout_alloc(), inputs = avfilter_inout_alloc()
        defer {
            avfilter_inout_free(&outputs)
            avfilter_inout_free(&inputs)
        }
        do {
            try ffCheck(avfilter_graph_create_filter(&src, avfilter_get_by_name("abuffer"), "in", args, nil, g), "create audio filter source", path: path)
            try ffCheck(avfilter_graph_create_filter(&snk, avfilter_get_by_name("abuffersink"), "out", nil, nil, g), "create audio filter sink", path: path)
            outputs!.pointee.name = av_strdup("in")
            outputs!.pointee.filter_ctx = src
            inputs!.pointee.name = av_strdup("out")
            inputs!.pointee.filter_ctx = snk
            try ffCheck(avfilter_graph_parse_ptr(g, chain, &inputs, &outputs, nil), "parse the loudness meter", path: path)
            try ffCheck(avfilter_graph_config(g, nil), "configure the loudness meter", path: path)
        } catch {
            avfilter_graph_free(&graph)
            throw error
        }
        source = src!
        sink = snk!
    }

    deinit { avfilter_graph_free(&graph) }

    func push(_ frame: Frame?) throws(VSliceError) {
        if let frame, frame.ptr.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            av_channel_layout_uninit(&frame.ptr.pointee.ch_layout)
            av_channel_layout_default(&frame.ptr.pointee.ch_layout, channels)
        }
        try ffCheck(av_buffersrc_add_frame_flags(source, frame?.ptr, Int32(AV_BUFFERSRC_FLAG_KEEP_REF)), "measure loudness", path: path)
    }

    /// The next 100 ms frame's momentary loudness (LUFS; nil on a short frame), its largest true peak over the
    /// channels (linear), its sample count and first sample's position; nil when none is ready.
    func pull() throws(VSliceError) -> (Double?, Double, Int64, Int64)? {
        out.unref()
        let ret = av_buffersink_get_frame(sink, out.ptr)
        if ret == AVERROR_EAGAIN_ || ret == AVERROR_EOF_ { return nil }
        try ffCheck(ret, "measure loudness", path: path)
        // A short frame (the stretch's end) completes no 100 ms step: it carries no momentary loudness.
        let m = out.metadata("lavfi.r128.M").flatMap(Double.init)
        var peak = 0.0
        for ch in 0..<Int(channels) { peak = max(peak, out.metadata("lavfi.r128.true_peaks_ch\(ch)").flatMap(Double.init) ?? 0) }
        return (m, peak, Int64(out.sampleCount), out.pts)
    }
}
