import Foundation
import VSliceSupport

/// What vslice knows of each video encoder it documents, in one place: the option checks, the planner and the
/// segment encoder read these rules instead of naming encoders themselves. Adding an encoder is one entry here
/// (CONTRIBUTING.md says what else to check).
package struct VideoEncoderRules: Sendable {
    /// How an encoder is told how many threads a segment may use.
    package enum Threads: Sendable {
        /// FFmpeg's own `thread_count` (x264).
        case native
        /// A key of the encoder's parameter list (x265's `pools`, SVT-AV1's `lp`), besides `thread_count`.
        case parameter(String)
        /// libvpx: threads spread across rows only with `row-mt`.
        case rowMultithreading
    }

    /// FFmpeg's name (`--vcodec`).
    package var name: String
    /// What `--crf` takes.
    package var crf: ClosedRange<Double>
    /// The shortest segment worth its cost when that cost was not measured, seconds (a rule of thumb).
    package var minimumSegmentSeconds: Double
    /// A forced I frame is an IDR only when asked (`forced-idr=1`): x264 and x265.
    package var forcedIDROption: Bool
    /// The encoder starts a GOP at a frame vslice asks for. SVT-AV1 does not (FFmpeg passes the request on,
    /// the library does not act on it), so encoded buffer frames cannot be cut off there.
    package var keyframeOnRequest: Bool
    /// The private option holding its own `key=value:…` parameters (x265-params, svtav1-params), where vslice
    /// adds its threads, its quiet log and the source's HDR10 metadata.
    package var parameterList: String?
    package var threads: Threads
    /// Parameters vslice sets itself on segments with buffers (x265's chunking); a user's own breaks the cut.
    package var reservedParameters: [String] = []

    package static let documented: [VideoEncoderRules] = [
        VideoEncoderRules(name: "libx264", crf: 0...51, minimumSegmentSeconds: 1, forcedIDROption: true,
                          keyframeOnRequest: true, parameterList: nil, threads: .native),
        VideoEncoderRules(name: "libx265", crf: 0...51, minimumSegmentSeconds: 2, forcedIDROption: true,
                          keyframeOnRequest: true, parameterList: "x265-params", threads: .parameter("pools"),
                          reservedParameters: ["chunk-start", "chunk-end", "open-gop", "info"]),
        VideoEncoderRules(name: "libsvtav1", crf: 0...63, minimumSegmentSeconds: 4, forcedIDROption: false,
                          keyframeOnRequest: false, parameterList: "svtav1-params", threads: .parameter("lp")),
        VideoEncoderRules(name: "libvpx-vp9", crf: 0...63, minimumSegmentSeconds: 2, forcedIDROption: false,
                          keyframeOnRequest: true, parameterList: nil, threads: .rowMultithreading),
    ]

    /// An encoder vslice does not document (FFmpeg has it): no rules beyond FFmpeg's own.
    package static func undocumented(_ name: String) -> VideoEncoderRules {
        VideoEncoderRules(name: name, crf: 0...1000, minimumSegmentSeconds: name == "libaom-av1" ? 2 : 1,
                          forcedIDROption: false, keyframeOnRequest: true, parameterList: nil, threads: .native)
    }

    /// The rules of the encoder named `name`.
    package static func of(_ name: String) -> VideoEncoderRules {
        documented.first { $0.name == name } ?? undocumented(name)
    }

    /// The documented encoders' names, in the order they are suggested.
    package static var names: [String] { documented.map(\.name) }
}
