import CFFmpeg
import VSliceModel
import VSliceSupport

/// Converts frames between pixel formats (same size) with libswscale, with the colour matrix and range said
/// explicitly on both sides — a colour shift comes from a conversion that guesses.
/// To RGB the chroma is taken as it is (nearest) and interpolated per pixel; from RGB it is averaged over its
/// area: the pair loses least (an identity processor through rgb24 measures about 53 dB PSNR on BT.709).
package final class PixelConverter {
    private var ctx: OpaquePointer?
    package let to: AVPixelFormat
    private let width: Int32, height: Int32
    private let range: AVColorRange

    /// `space`: the YUV side's matrix (unspecified: BT.709 above 576 lines, else BT.601, as players guess);
    /// `fullRange`: the range of each side (RGB is always full).
    package init(width: Int32, height: Int32, from: AVPixelFormat, fromFullRange: Bool, to: AVPixelFormat, toFullRange: Bool,
         space: AVColorSpace, path: String) throws(VSliceError) {
        self.to = to
        self.width = width
        self.height = height
        range = toFullRange ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG
        let rgbIn = Self.isRGB(from), rgbOut = Self.isRGB(to)
        let flags: Int32 = rgbOut ? SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT
            : rgbIn ? SWS_AREA | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT
            : SWS_BICUBIC | SWS_ACCURATE_RND
        guard let c = sws_getContext(width, height, from, width, height, to, flags, nil, nil, nil) else {
            throw VSliceError(.processing, "convert pixels", path: path,
                              reason: "libswscale cannot convert \(Self.name(from)) to \(Self.name(to)) at \(width)x\(height)")
        }
        ctx = c
        let matrix = Self.matrix(space, height: height)
        let coefficients = sws_getCoefficients(Int32(matrix.rawValue))
        sws_setColorspaceDetails(c, coefficients, rgbIn || fromFullRange ? 1 : 0, coefficients, rgbOut || toFullRange ? 1 : 0,
                                 0, 1 << 16, 1 << 16)
    }

    deinit { sws_freeContext(ctx) }

    /// The matrix a YUV frame of `height` lines was made with: its own, or the usual guess.
    package static func matrix(_ space: AVColorSpace, height: Int32) -> AVColorSpace {
        switch space {
        case AVCOL_SPC_UNSPECIFIED, AVCOL_SPC_RESERVED, AVCOL_SPC_RGB: return height > 576 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M
        default: return space
        }
    }

    package static func isRGB(_ f: AVPixelFormat) -> Bool {
        guard let d = av_pix_fmt_desc_get(f) else { return false }
        return d.pointee.flags & UInt64(AV_PIX_FMT_FLAG_RGB) != 0
    }

    /// The same bytes in memory: equal, or a deprecated full-range yuvj format and its plain twin.
    package static func sameLayout(_ a: AVPixelFormat, _ b: AVPixelFormat) -> Bool { plainTwin(a) == plainTwin(b) }

    /// The plain format of a deprecated full-range yuvj format (the same layout); any other format itself.
    package static func plainTwin(_ f: AVPixelFormat) -> AVPixelFormat {
        switch f {
        case AV_PIX_FMT_YUVJ420P: AV_PIX_FMT_YUV420P
        case AV_PIX_FMT_YUVJ422P: AV_PIX_FMT_YUV422P
        case AV_PIX_FMT_YUVJ444P: AV_PIX_FMT_YUV444P
        default: f
        }
    }

    package static func name(_ f: AVPixelFormat) -> String { av_get_pix_fmt_name(f).map { String(cString: $0) } ?? "\(f.rawValue)" }

    /// `frame` converted into `out` (its buffers allocated here); timestamps and colour tags are the caller's.
    package func convert(_ frame: Frame, into out: Frame) throws(VSliceError) {
        out.unref()
        out.ptr.pointee.width = width
        out.ptr.pointee.height = height
        out.ptr.pointee.format = to.rawValue
        try ffCheck(av_frame_get_buffer(out.ptr, 0), "allocate frame")
        try ffCheck(sws_scale_frame(ctx, out.ptr, frame.ptr), "convert pixels")
        out.ptr.pointee.color_range = range
    }
}
