import ArgumentParser
import Foundation
import VSliceKit

/// The options shared by `transcode`, `plan` and `batch`.
struct TranscodeOptions: ParsableArguments {
    @Option(name: .customLong("vcodec"), help: "Video encoder: libx264, libx265, libsvtav1, libvpx-vp9.")
    var videoCodec = "libx264"

    @Option(help: "Constant rate factor for the video encoder (encoder default if omitted).")
    var crf: Double?

    @Option(help: "Encoder preset (e.g. fast, medium for x264).")
    var preset: String?

    @Option(name: .customLong("vbitrate"), help: "Video bit rate, e.g. 2M (instead of CRF).")
    var videoBitrate: String?

    @Option(name: .customLong("codec-opt"), help: "Encoder option key=value, passed through (repeatable).")
    var codecOptions: [String] = []

    @Option(name: .customLong("acodec"), help: "Audio encoder, or copy (stream copy where the container takes the codec).")
    var audioCodec = "aac"

    @Option(name: .customLong("audio"), help: "Audio tracks kept: all, first, none, or source audio track numbers (0,2).")
    var audioTracks = "all"

    @Flag(name: .customLong("strict-streams"), help: "A stream the output cannot carry is an error (exit 2), not a warning.")
    var strictStreams = false

    @Option(name: .customLong("abitrate"), help: "Audio bit rate.")
    var audioBitrate = "128k"

    @Option(help: "How to cut the video: gop (at keyframes, by duration) or frames (exact frame indices).")
    var split: TranscodeSettings.SplitMode = .gop

    @Option(help: "GOP mode: cut at the first keyframe at or after every N seconds (default: a balanced plan that fills every job to the end; `vslice plan` shows it).")
    var segmentSeconds: Double?

    @Option(help: "Frame mode: N frames per segment.")
    var segmentFrames: Int = 0

    @Option(help: "Inputs shorter than this many seconds run as one segment (default: split whenever two segments of the encoder's minimum length fit).")
    var minSplitSeconds: Double?

    @Option(help: "Overlap buffers in frames, BEFORE[,AFTER]: processed, then dropped.")
    var overlap: String = "0"

    @Option(name: .customLong("vf"), help: "A libavfilter graph applied to every segment.")
    var videoFilter: String?

    @Option(help: "Segments encoded at once (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Encoder threads per segment (default: cores ÷ jobs).")
    var threads: Int?

    func settings() throws -> TranscodeSettings {
        var s = TranscodeSettings()
        s.videoCodec = videoCodec
        s.crf = crf
        s.preset = preset
        s.videoBitrate = try videoBitrate.map { try Self.parseBitrate($0, option: "--vbitrate") }
        for opt in codecOptions {
            guard let eq = opt.firstIndex(of: "="), eq != opt.startIndex else {
                throw VSliceError(.usage, "check options", reason: "--codec-opt takes key=value, got '\(opt)'")
            }
            s.codecOptions[String(opt[..<eq])] = String(opt[opt.index(after: eq)...])
        }
        s.audioCodec = audioCodec
        s.audioTracks = audioTracks
        s.strictStreams = strictStreams
        s.audioBitrate = try Self.parseBitrate(audioBitrate, option: "--abitrate")
        s.split = split
        s.segmentSeconds = segmentSeconds
        s.segmentFrames = segmentFrames
        s.minSplitSeconds = minSplitSeconds
        let parts = overlap.split(separator: ",", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let before = Int(parts[0]), parts.count == 1 || Int(parts[1]) != nil else {
            throw VSliceError(.usage, "check options", reason: "--overlap takes BEFORE[,AFTER] frame counts, got '\(overlap)'")
        }
        s.overlapBefore = before
        s.overlapAfter = parts.count == 2 ? Int(parts[1])! : 0
        s.videoFilter = videoFilter
        s.jobs = jobs
        s.threads = threads
        try s.validate()
        return s
    }

    static func parseBitrate(_ text: String, option: String) throws -> Int64 {
        let t = text.lowercased()
        let mult: Double = t.hasSuffix("k") ? 1e3 : t.hasSuffix("m") ? 1e6 : 1
        let number = mult == 1 ? t : String(t.dropLast())
        guard let v = Double(number), v > 0 else { throw VSliceError(.usage, "check options", reason: "\(option) takes a bit rate like 128k or 2M, got '\(text)'") }
        return Int64(v * mult)
    }
}

extension TranscodeSettings.SplitMode: ExpressibleByArgument {}
