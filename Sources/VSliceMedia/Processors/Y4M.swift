import CFFmpeg
import VSliceModel
import VSliceSupport

/// A YUV4MPEG2 stream header (`YUV4MPEG2 W1280 H720 F30000:1001 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED`): what
/// vslice writes before the frames it hands a processor, and reads from the processor's output.
package struct Y4MHeader: Equatable {
    package var width: Int
    package var height: Int
    /// Frames per second as a ratio (`F`), 0:0 when the writer gave none.
    package var rate: Ratio
    /// Pixel aspect (`A`), 0:0 unknown.
    package var aspect: Ratio
    /// `p`, `t`, `b` or `m` (`I`).
    package var interlace: Character
    /// The chroma tag (`C`), as written: `420jpeg`, `422p10`, `mono`…
    package var chroma: String
    /// `XCOLORRANGE=FULL` (true) / `LIMITED` (false); nil when absent.
    package var fullRange: Bool?
    /// What the writer says it is (`XVSLICE_ID=…`: a model's version, its weights' hash); nil when absent.
    package var identity: String? = nil

    package static let magic = "YUV4MPEG2"
    /// A header line longer than this is not a Y4M header.
    package static let maxLine = 1024

    /// The line that starts a stream, newline included.
    package var line: String {
        var s = "\(Self.magic) W\(width) H\(height) F\(rate.num):\(rate.den) I\(interlace) A\(aspect.num):\(aspect.den) C\(chroma)"
        if let fullRange { s += " XCOLORRANGE=" + (fullRange ? "FULL" : "LIMITED") }
        return s + "\n"
    }

    /// Parses a header line (without its newline). Unknown `X` tags are ignored, as the format says.
    package static func parse(_ line: Substring) throws(VSliceError) -> Y4MHeader {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.first == Substring(magic) else { throw malformedOutput("the output does not start with a YUV4MPEG2 header") }
        var h = Y4MHeader(width: 0, height: 0, rate: Ratio(num: 0, den: 0), aspect: Ratio(num: 0, den: 0),
                          interlace: "p", chroma: "420jpeg", fullRange: nil)
        for f in fields.dropFirst() {
            let value = f.dropFirst()
            switch f.first {
            case "W": guard let w = Int(value), w > 0, w <= 32768 else { throw malformedOutput("bad width '\(f)'") }; h.width = w
            case "H": guard let v = Int(value), v > 0, v <= 32768 else { throw malformedOutput("bad height '\(f)'") }; h.height = v
            case "F": guard let r = ratio(value) else { throw malformedOutput("bad frame rate '\(f)'") }; h.rate = r
            case "A": guard let r = ratio(value) else { throw malformedOutput("bad aspect '\(f)'") }; h.aspect = r
            case "I": guard let c = value.first else { throw malformedOutput("bad interlace '\(f)'") }; h.interlace = c
            case "C": h.chroma = String(value)
            case "X":
                if value == "COLORRANGE=FULL" { h.fullRange = true } else if value == "COLORRANGE=LIMITED" { h.fullRange = false }
                if value.hasPrefix("VSLICE_ID=") { h.identity = String(value.dropFirst("VSLICE_ID=".count).prefix(200)) }
            default: break
            }
        }
        guard h.width > 0, h.height > 0 else { throw malformedOutput("the header has no W and H") }
        guard Y4MChroma.pixelFormat(h.chroma) != nil else {
            throw malformedOutput("unsupported chroma 'C\(h.chroma)' (vslice reads \(Y4MChroma.readable))")
        }
        return h
    }

    private static func ratio(_ s: Substring) -> Ratio? {
        let p = s.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 2, let n = Int32(p[0]), let d = Int32(p[1]), n >= 0, d >= 0 else { return nil }
        return Ratio(num: n, den: d)
    }

    package var pixelFormat: AVPixelFormat { Y4MChroma.pixelFormat(chroma)! }
}

/// A processor's output that is not what vslice can read (the caller decides, from how the processor ended,
/// whether that is worth a retry).
package func malformedOutput(_ why: String) -> VSliceError {
    VSliceError(.processing, "read the processor's output", reason: why)
}

/// The pixel formats Y4M carries, by chroma tag: the tags FFmpeg's and the mjpegtools' writers use.
package enum Y4MChroma {
    private static let table: [(tag: String, format: AVPixelFormat)] = [
        ("420jpeg", AV_PIX_FMT_YUV420P), ("420mpeg2", AV_PIX_FMT_YUV420P), ("420paldv", AV_PIX_FMT_YUV420P),
        ("420", AV_PIX_FMT_YUV420P), ("411", AV_PIX_FMT_YUV411P), ("422", AV_PIX_FMT_YUV422P),
        ("444", AV_PIX_FMT_YUV444P), ("444alpha", AV_PIX_FMT_YUVA444P), ("mono", AV_PIX_FMT_GRAY8),
        ("420p9", AV_PIX_FMT_YUV420P9LE), ("422p9", AV_PIX_FMT_YUV422P9LE), ("444p9", AV_PIX_FMT_YUV444P9LE),
        ("420p10", AV_PIX_FMT_YUV420P10LE), ("422p10", AV_PIX_FMT_YUV422P10LE), ("444p10", AV_PIX_FMT_YUV444P10LE),
        ("420p12", AV_PIX_FMT_YUV420P12LE), ("422p12", AV_PIX_FMT_YUV422P12LE), ("444p12", AV_PIX_FMT_YUV444P12LE),
        ("420p14", AV_PIX_FMT_YUV420P14LE), ("422p14", AV_PIX_FMT_YUV422P14LE), ("444p14", AV_PIX_FMT_YUV444P14LE),
        ("420p16", AV_PIX_FMT_YUV420P16LE), ("422p16", AV_PIX_FMT_YUV422P16LE), ("444p16", AV_PIX_FMT_YUV444P16LE),
        ("mono9", AV_PIX_FMT_GRAY9LE), ("mono10", AV_PIX_FMT_GRAY10LE), ("mono12", AV_PIX_FMT_GRAY12LE),
        ("mono16", AV_PIX_FMT_GRAY16LE),
    ]

    package static var readable: String { table.map(\.tag).joined(separator: ", ") }

    package static func pixelFormat(_ tag: String) -> AVPixelFormat? { table.first { $0.tag == tag }?.format }

    /// The tag for `format` (nil: Y4M cannot carry it); 4:2:0 8-bit says where its chroma sits.
    package static func tag(_ format: AVPixelFormat, chromaLocation: AVChromaLocation = AVCHROMA_LOC_UNSPECIFIED) -> String? {
        if format == AV_PIX_FMT_YUV420P {
            switch chromaLocation {
            case AVCHROMA_LOC_LEFT: return "420mpeg2"
            case AVCHROMA_LOC_TOPLEFT: return "420paldv"
            default: return "420jpeg"
            }
        }
        return table.first { $0.format == format }?.tag
    }

    /// Every pixel format Y4M carries (once each).
    package static var formats: [AVPixelFormat] {
        var out: [AVPixelFormat] = []
        for e in table where !out.contains(e.format) { out.append(e.format) }
        return out
    }

    /// The format `format` crosses the pipe in: itself when Y4M carries it (the full-range yuvj formats as their
    /// plain twins, with XCOLORRANGE=FULL), else the carried format nearest to it.
    package static func carrier(for format: AVPixelFormat) -> AVPixelFormat {
        if tag(PixelConverter.plainTwin(format)) != nil { return PixelConverter.plainTwin(format) }
        var list = formats
        list.append(AV_PIX_FMT_NONE)
        let best = list.withUnsafeBufferPointer { avcodec_find_best_pix_fmt_of_list($0.baseAddress, format, 0, nil) }
        return best == AV_PIX_FMT_NONE ? AV_PIX_FMT_YUV420P : best
    }
}
