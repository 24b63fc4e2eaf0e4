import CFFmpeg
import Foundation

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

    /// Refuses, before any work, a video encoder whose codec the output container cannot hold. Audio encoders
    /// are checked by the muxer itself (`acceptsStream`) once they are opened for their tracks: the list this
    /// asks is wrong for audio (it takes FLAC into MP4, FLAC and Opus into MOV, which the muxer then refuses,
    /// and refuses Vorbis into MOV, which the muxer writes).
    static func checkCodecs(format: String, settings: TranscodeSettings, output: String) throws(VSliceError) {
        guard let muxer = av_guess_format(format, nil, nil) else { return }
        for (name, option) in [(settings.videoCodec, "--vcodec")] {
            guard let codec = avcodec_find_encoder_by_name(name) else { continue }
            if avformat_query_codec(muxer, codec.pointee.id, FF_COMPLIANCE_NORMAL) == 0 {
                throw VSliceError(.usage, "check options", path: output,
                                  reason: "the \(String(cString: muxer.pointee.name)) container cannot hold \(name) (\(option)); choose another codec or container")
            }
        }
    }

    /// Operation name of `acceptsStream`'s failure.
    static let muxCheck = "mux check"

    /// Whether the `format` muxer writes a header for a stream of the opened encoder `c`: the check the merge's
    /// header makes (codec tag, experimental support, codec parameters), into memory. nil when it does.
    static func acceptsStream(format: String, encoder c: UnsafeMutablePointer<AVCodecContext>) -> VSliceError? {
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
            try ffCheck(avcodec_parameters_from_context(st.pointee.codecpar, c), muxCheck)
            st.pointee.time_base = c.pointee.time_base
            try ffCheck(avio_open_dyn_buf(&ctx.pointee.pb), muxCheck)
            try ffCheck(avformat_write_header(ctx, nil), muxCheck)
            return nil
        } catch {
            return error
        }
    }
}
