import CFFmpeg
import Foundation

/// Everything that affects what a transcode produces (and so goes into a task's settings hash), plus how it
/// runs (`jobs`, `workDir`…), which does not.
public struct TranscodeSettings: Codable, Sendable, Equatable {
    /// gop: at keyframes; frames: at exact frame indices; scene: at a scene change near each balanced mark.
    public enum SplitMode: String, Codable, Sendable, CaseIterable { case gop, frames, scene }

    // Output-affecting.
    public var videoCodec = "libx264"
    public var crf: Double? = nil
    public var preset: String? = nil
    public var videoBitrate: Int64? = nil
    public var codecOptions: [String: String] = [:]
    /// An audio encoder, or "copy".
    public var audioCodec = "aac"
    public var audioBitrate: Int64 = 128_000
    /// Audio tracks kept: "all", "first", "none", or source audio track numbers ("0,2").
    public var audioTracks = "all"
    /// A stream the output container cannot carry is an error rather than a warning.
    public var strictStreams = false
    public var split: SplitMode = .gop
    /// GOP mode: cut at the first keyframe at or after every N seconds; nil: the balanced plan (see `Plan`).
    public var segmentSeconds: Double? = nil
    public var segmentFrames: Int = 0
    /// Inputs shorter than this run as one segment; nil: split whenever it pays (see `Plan`).
    public var minSplitSeconds: Double? = nil
    public var overlapBefore: Int = 0
    public var overlapAfter: Int = 0
    public var videoFilter: String? = nil

    // How it runs.
    public var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Encoder (and decoder) threads per segment; nil: cores ÷ jobs.
    public var threads: Int? = nil

    public init() {}

    /// Encoder threads per segment: as asked, else so that jobs × threads fits the cores.
    public var threadsPerJob: Int {
        threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, jobs))
    }

    /// These settings for a run of `segments` segments: with fewer segments than jobs (a short input runs
    /// as one segment), each gets the cores the idle jobs would have had.
    func forRun(segments: Int) -> TranscodeSettings {
        var s = self
        if s.threads == nil {
            s.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, min(jobs, segments)))
        }
        return s
    }

    /// The encoder's private options, in a stable order.
    var encoderOptions: [(String, String)] {
        var opts: [(String, String)] = []
        if let crf { opts.append(("crf", String(crf))) }
        if let preset { opts.append(("preset", preset)) }
        for k in codecOptions.keys.sorted() { opts.append((k, codecOptions[k]!)) }
        return opts
    }

    /// A canonical description of the output-affecting settings (its hash identifies them).
    public var outputSignature: String {
        var parts = ["vcodec=\(videoCodec)", "crf=\(crf.map { String($0) } ?? "-")", "preset=\(preset ?? "-")",
                     "vbitrate=\(videoBitrate.map { String($0) } ?? "-")", "acodec=\(audioCodec)",
                     "abitrate=\(audioBitrate)", "split=\(split.rawValue)", "seg_s=\(segmentSeconds.map { String($0) } ?? "auto")",
                     "seg_f=\(segmentFrames)", "min_split=\(minSplitSeconds.map { String($0) } ?? "auto")",
                     "overlap=\(overlapBefore),\(overlapAfter)", "vf=\(videoFilter ?? "-")"]
        for k in codecOptions.keys.sorted() { parts.append("opt.\(k)=\(codecOptions[k]!)") }
        if audioTracks != "all" { parts.append("audio=\(audioTracks)") }
        if strictStreams { parts.append("strict_streams") }
        return parts.joined(separator: ";")
    }

    /// The audio tracks (0-based among the source's audio streams) `audioTracks` keeps out of `count`, in
    /// source order; nil when it names one that does not exist or is malformed.
    public func selectedAudio(of count: Int) -> [Int]? {
        switch audioTracks {
        case "all": return Array(0..<count)
        case "first": return count > 0 ? [0] : []
        case "none": return []
        default:
            var out: [Int] = []
            for part in audioTracks.split(separator: ",", omittingEmptySubsequences: false) {
                guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 0, n < count else { return nil }
                if !out.contains(n) { out.append(n) }
            }
            return out.isEmpty ? nil : out.sorted()
        }
    }

    /// Audio is stream-copied (`--acodec copy`).
    public var copyAudio: Bool { audioCodec == "copy" }

    public func validate() throws(VSliceError) {
        func usage(_ why: String) -> VSliceError { VSliceError(.usage, "check options", reason: why) }
        if jobs < 1 { throw usage("--jobs must be at least 1") }
        if let threads, threads < 1 { throw usage("--threads must be at least 1") }
        if let segmentSeconds, !(segmentSeconds > 0 && segmentSeconds.isFinite) { throw usage("--segment-seconds must be a positive number of seconds") }
        if split == .frames && segmentFrames < 1 { throw usage("--split frames needs --segment-frames N (N ≥ 1)") }
        if let minSplitSeconds, !(minSplitSeconds >= 0 && minSplitSeconds.isFinite) { throw usage("--min-split-seconds must be a number of seconds ≥ 0") }
        if overlapBefore < 0 || overlapAfter < 0 { throw usage("--overlap takes non-negative frame counts") }
        if let crf, crf < 0 { throw usage("--crf must not be negative") }
        if audioBitrate <= 0 { throw usage("--abitrate must be positive") }
        if !["all", "first", "none"].contains(audioTracks) && selectedAudio(of: 1 << 20) == nil {
            throw usage("--audio takes all, first, none, or audio track numbers from 0 (\"0,2\"); got '\(audioTracks)'")
        }
        for (name, type, option) in [(videoCodec, AVMEDIA_TYPE_VIDEO, "--vcodec"), (audioCodec, AVMEDIA_TYPE_AUDIO, "--acodec")]
            where !(option == "--acodec" && name == "copy") {
            guard let codec = avcodec_find_encoder_by_name(name) else {
                throw usage("\(option): this build has no encoder named '\(name)'")
            }
            if codec.pointee.type != type { throw usage("\(option): '\(name)' is not a \(type == AVMEDIA_TYPE_VIDEO ? "video" : "audio") encoder") }
        }
    }
}
