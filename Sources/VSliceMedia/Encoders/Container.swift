import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Output containers by file extension.
public enum Container {
    public static func format(forPath path: String) -> String? {
        switch (path as NSString).pathExtension.lowercased() {
        case "mp4", "m4v": "mp4"
        case "mov": "mov"
        case "mkv": "matroska"
        default: nil
        }
    }

    // What a container holds is asked of its muxer (`acceptsStream`), for the opened encoders (`EncoderCheck`) and
    // for stream copies (`StreamPlan`): FFmpeg 5.1's codec list (`avformat_query_codec`) is wrong both ways (it
    // lists FLAC for MP4/MOV, Opus, VP9 and AV1 for MOV, which the muxer refuses, and not Vorbis for MOV, which
    // it writes).

    /// Operation name of `acceptsStream`'s failure.
    package static let muxCheck = "mux check"

    /// Whether the `format` muxer writes a header for a stream of the opened encoder `c`: the check the merge's
    /// header makes (codec tag, experimental support, codec parameters), into memory. nil when it does.
    package static func acceptsStream(format: String, encoder c: UnsafeMutablePointer<AVCodecContext>) -> VSliceError? {
        do throws(VSliceError) {
            return acceptsStream(format: format, params: try StreamParams(encoder: c))
        } catch {
            return VSliceError(.processing, muxCheck, reason: error.reason, code: error.code)
        }
    }

    /// Whether the `format` muxer writes a header for a stream with these codec parameters, set on the stream
    /// as the merge sets them (`StreamParams.apply`, no codec tag): for a stream copy, the source stream's own
    /// parameters. nil when it does; else the failure (operation `muxCheck`).
    package static func acceptsStream(format: String, params: StreamParams) -> VSliceError? {
        var ctx: UnsafeMutablePointer<AVFormatContext>? = nil
        let ret = avformat_alloc_output_context2(&ctx, nil, format, nil)
        guard ret >= 0, let ctx else {
            return VSliceError(.processing, muxCheck, reason: ffErrorString(ret < 0 ? ret : vs_averror(ENOMEM)), code: ret)
        }
        defer {
            if ctx.pointee.pb != nil {
                var buf: UnsafeMutablePointer<UInt8>? = nil
                _ = avio_close_dyn_buf(ctx.pointee.pb, &buf)
                av_free(buf)
                ctx.pointee.pb = nil
            }
            avformat_free_context(ctx)
        }
        guard let st = avformat_new_stream(ctx, nil) else {
            return VSliceError(.processing, muxCheck, reason: "out of memory")
        }
        do throws(VSliceError) {
            try params.apply(to: st.pointee.codecpar)
            st.pointee.time_base = params.timeBase.av
            try ffCheck(avio_open_dyn_buf(&ctx.pointee.pb), muxCheck)
            try ffCheck(avformat_write_header(ctx, nil), muxCheck)
            return nil
        } catch {
            return VSliceError(.processing, muxCheck, reason: error.reason, code: error.code)
        }
    }
}
