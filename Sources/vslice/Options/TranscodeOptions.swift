import ArgumentParser
import Foundation
import VSliceKit

/// The options shared by `transcode`, `plan` and `batch`.
struct TranscodeOptions: ParsableArguments {
    @Option(name: .customLong("vcodec"), help: "Video encoder: libx264, libx265, libsvtav1, libvpx-vp9.")
    var videoCodec = "libx264"

    @Option(help: ArgumentHelp("Constant rate factor (encoder default if omitted): x264/x265 0–51, SVT-AV1 and VP9 0–63.",
                               discussion: "Not together with --vbitrate."))
    var crf: Double?

    @Option(help: "Encoder preset (e.g. veryfast, medium, slow for x264/x265; 0–13 for SVT-AV1).")
    var preset: String?

    @Option(name: .customLong("vbitrate"), help: "Video bit rate instead of CRF: 2M, 800k, or a number (below 1000: kb/s).")
    var videoBitrate: String?

    @Option(name: .customLong("codec-opt"), help: "Encoder option key=value, passed through (repeatable).")
    var codecOptions: [String] = []

    @Option(name: .customLong("acodec"), help: "Audio encoder, or copy (stream copy where the container takes the codec).")
    var audioCodec = "aac"

    @Option(name: .customLong("audio"), help: "Audio tracks kept: all, first, none, or source audio track numbers (0,2).")
    var audioTracks = "all"

    @Flag(name: .customLong("strict-streams"), help: "A stream the output cannot carry is an error (exit 2), not a warning.")
    var strictStreams = false

    @Option(name: .customLong("abitrate"), help: "Audio bit rate: 128k, or a number (below 1000: kb/s, so 128 is 128k).")
    var audioBitrate = "128k"

    @Option(help: ArgumentHelp("Re-encoded audio is cut into pieces of about N seconds, encoded in parallel and joined (default 30; 0: one pass).",
                               discussion: "Only where the encoder's pieces join cleanly (aac, ac3, eac3, mp2) and the track is at least about two pieces long; `vslice plan` says which tracks."))
    var audioPieceSeconds: Double?

    @Option(help: "How to cut the video: gop (at keyframes), frames (exact frame indices), or scene (at a scene change near each cut of the default plan).")
    var split: TranscodeSettings.SplitMode = .gop

    @Option(help: "GOP mode: cut at the first keyframe at or after every N seconds (default: a balanced plan that fills every job to the end; `vslice plan` shows it).")
    var segmentSeconds: Double?

    @Option(help: "Frame mode (--split frames, where it is required): N frames per segment.")
    var segmentFrames: Int?

    @Option(help: "Inputs shorter than this many seconds run as one segment (default: split whenever two segments of the encoder's minimum length fit).")
    var minSplitSeconds: Double?

    @Option(help: "Overlap buffers in frames, BEFORE[,AFTER]: processed, then dropped.")
    var overlap: String = "0"

    @Option(name: .customLong("vf"), help: ArgumentHelp(
        "A libavfilter graph applied to every segment (e.g. scale=1280:-2, hqdn3d).",
        discussion: """
            The graph is built on the input and its timing measured before any work: the frames a cut needs \
            before a segment (its memory, up to 32: tmix=frames=5 needs 4) and after it (its lookahead), and \
            whether it counts frames; --overlap is raised to that by itself (`vslice plan --vf GRAPH` prints \
            what was measured). Segments are cut by time, so filters that change the frame rate or drop frames \
            (fps=24, framerate, minterpolate, select, tpad, mpdecimate…) give the output of one ffmpeg pass \
            with the same -vf. Refused before any work (exit 2): graphs that cannot be cut by time (reverse, \
            loop, shuffleframes, a setpts that moves frames progressively such as setpts=2*PTS).
            """))
    var videoFilter: String?

    @OptionGroup(title: "Processor") var processor: ProcessorOptions

    @OptionGroup(title: "Context across segments") var context: ContextOptions

    @Option(help: "Segments encoded at once (default: the number of cores; with --gpus, the number of GPUs).")
    var jobs: Int?

    @Option(help: "Encoder threads per segment (default: cores ÷ jobs).")
    var threads: Int?

    func settings() throws -> TranscodeSettings {
        var s = TranscodeSettings()
        s.videoCodec = videoCodec
        s.crf = crf
        s.preset = preset
        s.videoBitrate = try videoBitrate.map { try Self.parseBitrate($0, option: "--vbitrate", range: TranscodeSettings.Limits.videoBitrate) }
        for opt in codecOptions {
            guard let eq = opt.firstIndex(of: "="), eq != opt.startIndex else {
                throw VSliceError(.usage, "check options", reason: "--codec-opt takes key=value, got '\(opt)'")
            }
            s.codecOptions[String(opt[..<eq])] = String(opt[opt.index(after: eq)...])
        }
        s.audioCodec = audioCodec
        s.audioTracks = audioTracks
        s.strictStreams = strictStreams
        s.audioBitrate = try Self.parseBitrate(audioBitrate, option: "--abitrate", range: TranscodeSettings.Limits.audioBitrate)
        s.audioPieceSeconds = audioPieceSeconds
        s.split = split
        s.segmentSeconds = segmentSeconds
        s.segmentFrames = segmentFrames ?? 0
        if segmentFrames == 0 { throw VSliceError(.usage, "check options", reason: "--segment-frames takes 1 or more, got 0") }
        s.minSplitSeconds = minSplitSeconds
        let parts = overlap.split(separator: ",", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let before = Int(parts[0]), parts.count == 1 || Int(parts[1]) != nil else {
            throw VSliceError(.usage, "check options", reason: "--overlap takes BEFORE[,AFTER] frame counts, got '\(overlap)'")
        }
        s.overlapBefore = before
        s.overlapAfter = parts.count == 2 ? Int(parts[1])! : 0
        s.videoFilter = videoFilter
        s.process = try processor.settings()
        s.gpus = try processor.gpuList()
        s.context = try context.settings()
        s.jobs = jobs ?? (s.gpus.isEmpty ? s.jobs : s.gpus.count)
        s.threads = threads
        try s.validate()
        return s
    }

    /// A bit rate: `128k`, `2M`, `1.5M`, `2G`, or a bare number of bits per second; a bare number below 1000
    /// is kb/s (`--abitrate 128` is 128k, as HandBrake reads it).
    static func parseBitrate(_ text: String, option: String, range: ClosedRange<Int64>) throws -> Int64 {
        func refuse() -> VSliceError {
            VSliceError(.usage, "check options",
                        reason: "\(option) takes \(Self.rate(range.lowerBound)) to \(Self.rate(range.upperBound)) bits per second, "
                            + "like 128k or 2M (a bare number below 1000 is kb/s), got '\(text)'")
        }
        var number = Substring(text.trimmingCharacters(in: .whitespaces).lowercased())
        var mult: Double? = nil
        switch number.last {
        case "k": mult = 1e3
        case "m": mult = 1e6
        case "g": mult = 1e9
        default: break
        }
        if mult != nil { number = number.dropLast() }
        guard let v = Double(number), v.isFinite, v > 0 else { throw refuse() }
        let bps = v * (mult ?? (v < 1000 ? 1e3 : 1))
        guard bps >= Double(range.lowerBound), bps <= Double(range.upperBound) else { throw refuse() }
        return Int64(bps.rounded())
    }

    static func rate(_ bps: Int64) -> String {
        bps % 1_000_000_000 == 0 ? "\(bps / 1_000_000_000)G" : bps % 1_000_000 == 0 ? "\(bps / 1_000_000)M"
            : bps % 1000 == 0 ? "\(bps / 1000)k" : "\(bps)"
    }
}

extension TranscodeSettings.SplitMode: ExpressibleByArgument {}
