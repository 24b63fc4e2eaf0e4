import CFFmpeg
import VSliceModel
import VSliceSupport

/// What a send/receive call produced.
package enum CodecResult {
    case ok
    /// The codec needs the other half of the API first (EAGAIN).
    case again
    /// The codec is fully drained.
    case endOfStream
}

/// An owned `AVCodecContext` (decoder or encoder), freed on deinit.
package class CodecContext {
    package let ctx: UnsafeMutablePointer<AVCodecContext>
    package let path: String
    package let role: String

    fileprivate init(codec: UnsafePointer<AVCodec>, path: String, role: String) throws(VSliceError) {
        guard let c = avcodec_alloc_context3(codec) else {
            throw VSliceError(.processing, "allocate \(role)", path: path, reason: "out of memory")
        }
        ctx = c
        self.path = path
        self.role = role
    }

    deinit {
        var p: UnsafeMutablePointer<AVCodecContext>? = ctx
        avcodec_free_context(&p)
    }

}

/// A decoder for one input stream. Its errors name the stream and the time of the last packet sent
/// ("audio stream 1 near 3.646 s"), as `vslice verify` does.
package final class Decoder: CodecContext {
    package let streamIndex: Int
    package let streamKind: String
    package let timeBase: AVRational
    /// The timestamp of the last packet sent (its pts, else its dts), for the place of an error.
    private var lastSentTs: Int64 = AV_NOPTS

    package init(stream: UnsafeMutablePointer<AVStream>, path: String, threads: Int) throws(VSliceError) {
        let par = stream.pointee.codecpar!
        streamIndex = Int(stream.pointee.index)
        streamKind = par.pointee.codec_type == AVMEDIA_TYPE_VIDEO ? "video" : par.pointee.codec_type == AVMEDIA_TYPE_AUDIO ? "audio" : "data"
        timeBase = stream.pointee.time_base
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            let name = String(cString: avcodec_get_name(par.pointee.codec_id))
            throw VSliceError(.input, "find decoder", path: path, reason: "this build cannot decode '\(name)'")
        }
        try super.init(codec: codec, path: path, role: "decoder")
        try ffCheck(avcodec_parameters_to_context(ctx, par), "configure decoder", path: path)
        ctx.pointee.pkt_timebase = stream.pointee.time_base
        ctx.pointee.thread_count = Int32(threads)
        // Frames the decoder flags as corrupt are refused by the caller where they matter (kept frames);
        // frames before a segment's start may legitimately reference a GOP that was not decoded.
        ctx.pointee.flags |= AV_CODEC_FLAG_OUTPUT_CORRUPT
        try ffCheck(avcodec_open2(ctx, codec, nil), "open decoder \(String(cString: codec.pointee.name))",
                    path: path, kind: .input)
    }

    /// Sends a packet (nil: start draining).
    package func send(_ packet: Packet?) throws(VSliceError) -> CodecResult {
        if let packet {
            let ts = packet.pts != AV_NOPTS ? packet.pts : packet.dts
            if ts != AV_NOPTS { lastSentTs = ts }
        }
        let ret = avcodec_send_packet(ctx, packet?.ptr)
        if ret == AVERROR_EAGAIN_ { return .again }
        if ret == AVERROR_EOF_ { return .endOfStream }
        try check(ret)
        return .ok
    }

    /// "video stream 0 near 3.120 s": the stream, and the time of `ts` (default: the last packet sent) when known.
    package func place(_ ts: Int64? = nil) -> String {
        let t = ts ?? lastSentTs
        let near = t == AV_NOPTS ? "" : String(format: " near %.3f s", Double(t) * av_q2d(timeBase))
        return "\(streamKind) stream \(streamIndex)\(near)"
    }

    private func check(_ ret: Int32) throws(VSliceError) {
        do { try ffCheck(ret, "decode", path: path, kind: .input) } catch {
            var e = error
            if e.kind == .input { e.reason = "\(place()): \(e.reason)" }
            throw e
        }
    }

    package func receive(_ frame: Frame) throws(VSliceError) -> CodecResult {
        frame.unref()
        let ret = avcodec_receive_frame(ctx, frame.ptr)
        if ret == AVERROR_EAGAIN_ { return .again }
        if ret == AVERROR_EOF_ { return .endOfStream }
        try check(ret)
        return .ok
    }
}

/// An encoder; configure `ctx` between `init` and `open`.
package final class Encoder: CodecContext {
    package init(name: String, path: String) throws(VSliceError) {
        guard let codec = avcodec_find_encoder_by_name(name) else {
            throw VSliceError(.usage, "find encoder", path: nil, reason: "this build has no encoder named '\(name)'")
        }
        try super.init(codec: codec, path: path, role: "encoder \(name)")
    }

    /// Opens the encoder with private options (`crf`, `preset`, …). Unknown options are an error.
    package func open(options: [(String, String)]) throws(VSliceError) {
        var dict: OpaquePointer? = nil
        for (k, v) in options { av_dict_set(&dict, k, v, 0) }
        defer { av_dict_free(&dict) }
        do { try ffCheck(avcodec_open2(ctx, ctx.pointee.codec, &dict), "open \(role)", path: path) } catch {
            throw error.deterministicUnlessTransient()
        }
        if let leftover = av_dict_get(dict, "", nil, AV_DICT_IGNORE_SUFFIX) {
            let key = String(cString: leftover.pointee.key)
            throw VSliceError(.usage, "open \(role)", path: nil, reason: "option '\(key)' is not known to this encoder")
        }
    }

    /// Sends a frame (nil: start draining).
    package func send(_ frame: Frame?) throws(VSliceError) -> CodecResult {
        let ret = avcodec_send_frame(ctx, frame?.ptr)
        if ret == AVERROR_EAGAIN_ { return .again }
        if ret == AVERROR_EOF_ { return .endOfStream }
        do { try ffCheck(ret, "encode with \(role)", path: path) } catch { throw error.deterministicUnlessTransient() }
        return .ok
    }

    package func receive(_ packet: Packet) throws(VSliceError) -> CodecResult {
        packet.unref()
        let ret = avcodec_receive_packet(ctx, packet.ptr)
        if ret == AVERROR_EAGAIN_ { return .again }
        if ret == AVERROR_EOF_ { return .endOfStream }
        do { try ffCheck(ret, "encode with \(role)", path: path) } catch { throw error.deterministicUnlessTransient() }
        return .ok
    }
}
