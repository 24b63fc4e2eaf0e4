import Foundation
import VSliceSupport

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
    /// An external program every segment's frames go through (`--process`), after `videoFilter`.
    public var process: ProcessorSettings? = nil
    /// Context across segments: `--analyze`, `--reduce`, `--context-frames` (nil: none).
    public var context: ContextSettings? = nil
    /// Re-encoded audio is cut into pieces of about this many seconds, encoded in parallel and joined (where
    /// the encoder's pieces join cleanly); 0: every track in one pass; nil: `defaultAudioPieceSeconds`.
    public var audioPieceSeconds: Double? = nil
    public static let defaultAudioPieceSeconds = 30.0

    // How it runs.
    public var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Encoder (and decoder) threads per segment; nil: cores ÷ jobs.
    public var threads: Int? = nil
    /// GPU devices for `process` (`--gpus`): job slot k gets device k (`VSLICE_GPU`, `CUDA_VISIBLE_DEVICES`).
    public var gpus: [String] = []

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case videoCodec, crf, preset, videoBitrate, codecOptions, audioCodec, audioBitrate, audioTracks, strictStreams,
             split, segmentSeconds, segmentFrames, minSplitSeconds, overlapBefore, overlapAfter, videoFilter, process,
             context, audioPieceSeconds, jobs, threads, gpus
    }

    /// Reads settings stored by any version: a key a task stored before the setting existed takes its default
    /// (a task's stored request must stay resumable across upgrades).
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TranscodeSettings()
        videoCodec = try c.decodeIfPresent(String.self, forKey: .videoCodec) ?? d.videoCodec
        crf = try c.decodeIfPresent(Double.self, forKey: .crf)
        preset = try c.decodeIfPresent(String.self, forKey: .preset)
        videoBitrate = try c.decodeIfPresent(Int64.self, forKey: .videoBitrate)
        codecOptions = try c.decodeIfPresent([String: String].self, forKey: .codecOptions) ?? d.codecOptions
        audioCodec = try c.decodeIfPresent(String.self, forKey: .audioCodec) ?? d.audioCodec
        audioBitrate = try c.decodeIfPresent(Int64.self, forKey: .audioBitrate) ?? d.audioBitrate
        audioTracks = try c.decodeIfPresent(String.self, forKey: .audioTracks) ?? d.audioTracks
        strictStreams = try c.decodeIfPresent(Bool.self, forKey: .strictStreams) ?? d.strictStreams
        split = try c.decodeIfPresent(SplitMode.self, forKey: .split) ?? d.split
        segmentSeconds = try c.decodeIfPresent(Double.self, forKey: .segmentSeconds)
        segmentFrames = try c.decodeIfPresent(Int.self, forKey: .segmentFrames) ?? d.segmentFrames
        minSplitSeconds = try c.decodeIfPresent(Double.self, forKey: .minSplitSeconds)
        overlapBefore = try c.decodeIfPresent(Int.self, forKey: .overlapBefore) ?? d.overlapBefore
        overlapAfter = try c.decodeIfPresent(Int.self, forKey: .overlapAfter) ?? d.overlapAfter
        videoFilter = try c.decodeIfPresent(String.self, forKey: .videoFilter)
        process = try c.decodeIfPresent(ProcessorSettings.self, forKey: .process)
        context = try c.decodeIfPresent(ContextSettings.self, forKey: .context)
        gpus = try c.decodeIfPresent([String].self, forKey: .gpus) ?? d.gpus
        audioPieceSeconds = try c.decodeIfPresent(Double.self, forKey: .audioPieceSeconds)
        jobs = try c.decodeIfPresent(Int.self, forKey: .jobs) ?? d.jobs
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
    }

    /// Encoder threads per segment: as asked, else so that jobs × threads fits the cores.
    public var threadsPerJob: Int {
        threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, jobs))
    }

    /// These settings for a run of `segments` segments: with fewer segments than jobs (a short input runs
    /// as one segment), each gets the cores the idle jobs would have had.
    package func forRun(segments: Int) -> TranscodeSettings {
        var s = self
        if s.threads == nil {
            s.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, min(jobs, segments)))
        }
        return s
    }

    /// The encoder's private options, in a stable order.
    package var encoderOptions: [(String, String)] {
        var opts: [(String, String)] = []
        if let crf { opts.append(("crf", String(crf))) }
        if let preset { opts.append(("preset", preset)) }
        for k in codecOptions.keys.sorted() { opts.append((k, codecOptions[k]!)) }
        return opts
    }

    /// Every private option a segment's video encoder is opened with: `encoderOptions` plus what vslice adds
    /// (a forced I frame is an IDR for x264/x265, so a cut at a kept frame is clean; x265's banner silenced).
    /// The encoder check before any work opens the encoder with exactly these.
    package var videoEncoderOptions: [(String, String)] {
        var options = encoderOptions
        // Adds key=value to a ':'-separated parameter list option (x265-params, svtav1-params), unless the user's
        // own list sets that key.
        func addParam(_ option: String, _ key: String, _ value: String) {
            guard let i = options.firstIndex(where: { $0.0 == option }) else { options.append((option, "\(key)=\(value)")); return }
            let given = options[i].1
            if given.split(separator: ":").contains(where: { $0.hasPrefix(key + "=") }) { return }
            options[i].1 = given.isEmpty ? "\(key)=\(value)" : given + ":\(key)=\(value)"
        }
        let rules = videoEncoder
        if rules.forcedIDROption && codecOptions["forced-idr"] == nil {
            options.append(("forced-idr", "1"))
        }
        // Each encoder uses its segment's share of the cores (`threadsPerJob`), so `--jobs` × threads fills the
        // machine without oversubscribing it: x264 takes thread_count; x265 and SVT-AV1 size their own thread
        // pools from the machine unless told; libvpx uses its threads across rows only with row-mt.
        let threads = threadsPerJob
        // x265's banner and per-segment statistics would fill the terminal.
        if videoCodec == "libx265" { addParam("x265-params", "log-level", "error") }
        switch rules.threads {
        case .native: break
        case .parameter(let key): if let list = rules.parameterList { addParam(list, key, String(threads)) }
        case .rowMultithreading: if threads > 1 && codecOptions["row-mt"] == nil { options.append(("row-mt", "1")) }
        }
        if x265Chunking {
            addParam("x265-params", "open-gop", "0")
            addParam("x265-params", "info", "0")
        }
        return options
    }

    /// The rules of the video encoder these settings name (`VideoEncoderRules`).
    package var videoEncoder: VideoEncoderRules { VideoEncoderRules.of(videoCodec) }

    /// Segments cut by x265's chunking (`--overlap` with x265, no `--vf`): every segment's encoder, buffered or
    /// not, gets a closed GOP and no informational SEI, so that all segments share the same stream headers
    /// (the SEI spells out each segment's own chunk bounds, and the merge requires identical headers).
    package var x265Chunking: Bool { videoCodec == "libx265" && !cutsByTime && (overlapBefore > 0 || overlapAfter > 0) }

    /// Segments are cut by time rather than by source frames: a filter graph or a processor decides what
    /// comes out, and the buffer frames only feed it (they never reach the encoder).
    package var cutsByTime: Bool { videoFilter != nil || process != nil }

    /// x265's own chunking for a segment with overlap buffers (frame mode, no `--vf`): `before` buffer frames,
    /// `kept` frames, then `after` buffer frames, sent in presentation order. x265 encodes the frames before
    /// `chunk-start` and discards them (its rate control and references warmed up), encodes the chunk with an IDR
    /// first, and uses the frames after `chunk-end` for its lookahead decisions only — they are never encoded, so
    /// a trailing buffer costs analysis, not an encode. Both numbers count from 1 (measured with x265 3.5:
    /// chunk-start=11:chunk-end=60 keeps the 0-based frames 10…59); x265 chunks only a closed GOP (else it says
    /// "Disabling chunking" and encodes every frame), and only with chunk-end set. nil: no buffers, or not x265.
    package func x265Chunk(before: Int, kept: Int, after: Int) -> [(String, String)]? {
        guard x265Chunking, before > 0 || after > 0, kept > 0 else { return nil }
        return [("chunk-start", String(before + 1)), ("chunk-end", String(before + kept))]
    }

    /// The private options a segment's video encoder is opened with: `videoEncoderOptions`, plus x265's chunk
    /// bounds when the segment has overlap buffers (`chunked`: x265 then cuts the segment itself).
    package func segmentEncoderOptions(before: Int, kept: Int, after: Int) -> (options: [(String, String)], chunked: Bool) {
        guard let chunk = x265Chunk(before: before, kept: kept, after: after) else { return (videoEncoderOptions, false) }
        return (Self.appending(chunk.map { "\($0.0)=\($0.1)" }, to: "x265-params", in: videoEncoderOptions), true)
    }

    /// `options` with `items` (`key=value`) added to the ':'-separated parameter list option `list`
    /// (x265-params, svtav1-params), after what it holds.
    package static func appending(_ items: [String], to list: String, in options: [(String, String)]) -> [(String, String)] {
        guard !items.isEmpty else { return options }
        var options = options
        if let i = options.firstIndex(where: { $0.0 == list }) {
            options[i].1 += (options[i].1.isEmpty ? "" : ":") + items.joined(separator: ":")
        } else {
            options.append((list, items.joined(separator: ":")))
        }
        return options
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
        if let s = audioPieceSeconds, s != Self.defaultAudioPieceSeconds { parts.append("audio_piece_s=\(s)") }
        if strictStreams { parts.append("strict_streams") }
        if let process { parts.append(process.signature) }
        if let context { parts += context.signature }
        return parts.joined(separator: ";")
    }

    /// How the settings of one signature differ from another's, for a person, in the command line's words:
    /// "--crf 30 → 20", "the file ex/denoise.py changed", "--codec-opt tune film → none"; empty when they are
    /// the same. Files found beside the program (`pdir.`) that were not there before do not count: only those
    /// the task started with are compared (a log or a flag file the program leaves beside itself is not a new
    /// version of it). `identityKnown`: `after` says the processor's identity as a check heard it (else one
    /// `before` recorded is not compared).
    public static func changes(from before: String, to after: String, identityKnown: Bool = true) -> String {
        let old = SignatureEntries(before), new = SignatureEntries(after)
        var out: [String] = []
        for (k, v) in new.pairs where old[k] != v {
            if let said = changeWords(k, was: old[k], now: v, identityKnown: identityKnown) { out.append(said) }
        }
        for (k, v) in old.pairs where new[k] == nil {
            if let said = changeWords(k, was: v, now: nil, identityKnown: identityKnown) { out.append(said) }
        }
        return out.joined(separator: ", ")
    }

    /// How settings signed `now` differ from a task's (`stored`), in words; nil when they are the same as far as
    /// a resume is concerned (`changes` is empty: only files that appeared beside the program differ).
    public static func difference(stored: String, now: String, identityKnown: Bool = true) -> String? {
        guard stored != now else { return nil }
        let said = changes(from: stored, to: now, identityKnown: identityKnown)
        return said.isEmpty ? nil : said
    }

    /// One entry's change in words; nil when it does not count.
    private static func changeWords(_ key: String, was: String?, now: String?, identityKnown: Bool) -> String? {
        for (files, whose) in [("pfile.", ""), ("afile.", "--analyze: "), ("rfile.", "--reduce: ")] where key.hasPrefix(files) {
            let f = String(key.dropFirst(files.count))
            return whose + (was == nil ? "the command names the file \(f) now" : now == nil ? "the command no longer names the file \(f)" : "the file \(f) changed")
        }
        for (folders, whose) in [("pdir.", ""), ("adir.", "--analyze: "), ("rdir.", "--reduce: ")] where key.hasPrefix(folders) {
            let f = String(key.dropFirst(folders.count))
            return was == nil ? nil : whose + (now == nil ? "the file \(f) (beside the program) is gone" : "the file \(f) (beside the program) changed")
        }
        if key == "pid" {
            guard identityKnown else { return nil }
            switch (was, now) {
            case (nil, let n?): return "the processor says it is '\(n)' (XVSLICE_ID), where it said nothing before"
            case (let w?, nil): return "the processor no longer says what it is (it said XVSLICE_ID=\(w))"
            default: return "the processor says it is '\(now ?? "")' (XVSLICE_ID), where it said '\(was ?? "")'"
            }
        }
        if key == "strict_streams" { return now == nil ? "--strict-streams no longer given" : "--strict-streams given" }
        let name: String
        if key.hasPrefix("opt.") { name = "--codec-opt \(key.dropFirst(4))" } else { name = optionNames[key] ?? key }
        func shown(_ v: String?) -> String {
            guard let v, v != "-", v != "-x-", v != "auto" else { return "none" }
            return v.hasSuffix(".0") && Double(v) != nil ? String(v.dropLast(2)) : v
        }
        return "\(name) \(shown(was)) → \(shown(now))"
    }

    /// The option each signature key stands for.
    private static let optionNames = [
        "vcodec": "--vcodec", "crf": "--crf", "preset": "--preset", "vbitrate": "--vbitrate", "acodec": "--acodec",
        "abitrate": "--abitrate", "split": "--split", "seg_s": "--segment-seconds", "seg_f": "--segment-frames",
        "min_split": "--min-split-seconds", "overlap": "--overlap", "vf": "--vf", "audio": "--audio",
        "audio_piece_s": "--audio-piece-seconds", "process": "--process", "pformat": "--process-format",
        "prate": "--process-rate", "psize": "--process-size", "pscale": "--process-scale",
        "analyze": "--analyze", "reduce": "--reduce", "ctx_frames": "--context-frames", "loudness": "--loudness",
    ]

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

    /// The ranges of the numeric settings. Bounded so that no value can overflow the planner's or the
    /// encoder's arithmetic; far beyond any useful value.
    public enum Limits {
        public static let jobs = 1...256
        public static let threads = 1...64
        public static let segmentSeconds = 0.01...1_000_000.0
        public static let segmentFrames = 1...1_000_000_000
        public static let minSplitSeconds = 0.0...1_000_000_000.0
        public static let overlap = 0...1_000_000
        public static let videoBitrate: ClosedRange<Int64> = 1_000...10_000_000_000
        public static let audioBitrate: ClosedRange<Int64> = 1_000...10_000_000
        /// Or 0 (one pass).
        public static let audioPieceSeconds = 0.1...1_000_000.0
    }

    /// Checks every value that can be judged without FFmpeg (ranges, combinations); `validate()` (the kit's)
    /// checks the encoders too.
    public func validateValues() throws(VSliceError) {
        func usage(_ why: String) -> VSliceError { VSliceError(.usage, "check options", reason: why) }
        func show(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }
        if !Limits.jobs.contains(jobs) { throw usage("--jobs takes \(Limits.jobs.lowerBound) to \(Limits.jobs.upperBound), got \(jobs)") }
        if let threads, !Limits.threads.contains(threads) {
            throw usage("--threads takes \(Limits.threads.lowerBound) to \(Limits.threads.upperBound), got \(threads)")
        }
        if let segmentSeconds, !Limits.segmentSeconds.contains(segmentSeconds) {
            throw usage("--segment-seconds takes \(show(Limits.segmentSeconds.lowerBound)) to \(show(Limits.segmentSeconds.upperBound)), got \(show(segmentSeconds))")
        }
        if split == .frames && segmentFrames == 0 { throw usage("--split frames needs --segment-frames N (N ≥ 1)") }
        if segmentFrames != 0 && !Limits.segmentFrames.contains(segmentFrames) {
            throw usage("--segment-frames takes \(Limits.segmentFrames.lowerBound) to \(Limits.segmentFrames.upperBound), got \(segmentFrames)")
        }
        if let minSplitSeconds, !Limits.minSplitSeconds.contains(minSplitSeconds) {
            throw usage("--min-split-seconds takes \(show(Limits.minSplitSeconds.lowerBound)) to \(show(Limits.minSplitSeconds.upperBound)), got \(show(minSplitSeconds))")
        }
        if !Limits.overlap.contains(overlapBefore) || !Limits.overlap.contains(overlapAfter) {
            throw usage("--overlap takes frame counts from \(Limits.overlap.lowerBound) to \(Limits.overlap.upperBound), got \(overlapBefore),\(overlapAfter)")
        }
        if let crf {
            if videoBitrate != nil { throw usage("--crf and --vbitrate both set the video rate; give one of them") }
            let range = videoEncoder.crf
            if !range.contains(crf) {
                throw usage("--crf for \(videoCodec) takes \(show(range.lowerBound)) to \(show(range.upperBound)), got \(show(crf))")
            }
        }
        if let b = videoBitrate, !Limits.videoBitrate.contains(b) {
            throw usage("--vbitrate takes 1k to 10G (bits per second), got \(b)")
        }
        if let a = audioPieceSeconds, a != 0 && !Limits.audioPieceSeconds.contains(a) {
            throw usage("--audio-piece-seconds takes 0 (one pass) or \(show(Limits.audioPieceSeconds.lowerBound)) to \(show(Limits.audioPieceSeconds.upperBound)), got \(show(a))")
        }
        if !Limits.audioBitrate.contains(audioBitrate) {
            throw usage("--abitrate takes 1k to 10M (bits per second), got \(audioBitrate)")
        }
        if !["all", "first", "none"].contains(audioTracks) && selectedAudio(of: 1 << 20) == nil {
            throw usage("--audio takes all, first, none, or audio track numbers from 0 (\"0,2\"); got '\(audioTracks)'")
        }
        try process?.validate(videoFilter: videoFilter)
        try context?.validate(process: process, videoFilter: videoFilter, copyAudio: copyAudio, audioPieceSeconds: audioPieceSeconds)
        if !gpus.isEmpty && process == nil { throw usage("--gpus needs --process: the GPUs are handed to the processor") }
        if gpus.contains(where: { $0.isEmpty || $0.contains(where: { $0 == "," || $0.isWhitespace }) }) {
            throw usage("--gpus takes device names separated by commas (0,1), got '\(gpus.joined(separator: ","))'")
        }
        if !videoEncoder.keyframeOnRequest && !cutsByTime && (overlapBefore > 0 || overlapAfter > 0) {
            // SVT-AV1 ignores a requested keyframe (FFmpeg passes it on, the library does not act on it), so the
            // buffer frames it encodes cannot be cut off: the first kept frame would reference dropped ones.
            throw usage("--overlap with libsvtav1: SVT-AV1 cannot start a GOP at a requested frame, so encoded buffer frames cannot be dropped cleanly; use --overlap 0 (with --vf, buffers only feed the filter and are allowed)")
        }
        let reserved = videoEncoder.reservedParameters
        if x265Chunking, let given = codecOptions["x265-params"],
           let key = reserved.first(where: { k in given.split(separator: ":").contains { $0.hasPrefix(k + "=") || $0 == k } }) {
            throw usage("with --overlap, vslice sets x265's \(reserved.joined(separator: ", ")) per segment; remove \(key) from x265-params")
        }
    }
}

/// How frames cross the pipes of a `--process` program.
public enum ProcessFormat: String, Codable, Sendable, CaseIterable {
    /// YUV4MPEG2 in the source's pixel format (where Y4M has it), with headers: the program's own header says
    /// its output size, pixel format and rate.
    case y4m
    /// Raw packed RGB, 8 bits a sample, no headers: vslice converts with the source's matrix and range.
    case rgb24
    /// Raw packed RGB, 16 bits little-endian a sample (for 10-bit and HDR sources), no headers.
    case rgb48le
}

/// An external per-segment processor (`--process CMD` and its options): part of the output signature, with the
/// content of every file its command line names.
public struct ProcessorSettings: Codable, Sendable, Equatable {
    public var command: String
    public var format: ProcessFormat = .y4m
    /// Output frames per input frame as given (`--process-rate`); nil: 1, or with y4m the ratio of the headers.
    public var rate: Ratio? = nil
    /// Raw output size (`--process-size WxH`); nil: the input's.
    public var width: Int? = nil
    public var height: Int? = nil
    /// Raw output size as a function of the input's (`--process-scale`): `2`, `3/2`, `640x360` or `iw*2:ih*2`;
    /// nil: `width`/`height`, else the input's. Each task works it out from its own input, so one batch serves
    /// inputs of mixed sizes.
    public var scale: String? = nil
    /// Files and folders the program runs from beside those its command line names (`--process-deps`): weights,
    /// modules elsewhere. As given.
    public var deps: [String] = []
    /// SHA-256 of each regular file the command line or `deps` names (the script, its weights), by path as written.
    public var fileHashes: [String: String] = [:]
    /// SHA-256 of the files found under the folders of those files (and under the folders `deps` names): the
    /// modules a script imports beside it. By path as written (folder + relative path).
    public var folderHashes: [String: String] = [:]
    /// What the program says it is (`XVSLICE_ID=…` in its Y4M header), as the check before the run heard it;
    /// nil: it says nothing.
    public var identity: String? = nil
    /// The folder the command runs in and its relative paths are read from: where the transcode was started
    /// (absolute), so that a resume from elsewhere — `resume --all` from cron, a worker on another node of a
    /// shared filesystem — runs the same script. Nil in tasks stored before it was kept (then: the current one).
    public var directory: String? = nil
    /// The program stays loaded (`--process-persistent`): started once per job slot, it reads one Y4M stream per
    /// segment on the same stdin and writes one back for each (docs/usage.md, "A processor that stays loaded").
    /// How it runs, not what it makes: not part of the signature. Optional so that tasks stored before it decode.
    public var persistent: Bool? = nil
    public var isPersistent: Bool { persistent == true }

    public init(command: String) { self.command = command }

    public static let maxRateTerm: Int32 = 1000
    public static let sizeRange = 16...16384

    package var signature: String {
        var s = "process=\(command);pformat=\(format.rawValue);prate=\(rate.map { "\($0)" } ?? "-")"
            + ";psize=\(width.map(String.init) ?? "-")x\(height.map(String.init) ?? "-")"
        if let scale { s += ";pscale=\(scale)" }
        for k in fileHashes.keys.sorted() { s += ";pfile.\(k)=\(fileHashes[k]!)" }
        for k in folderHashes.keys.sorted() { s += ";pdir.\(k)=\(folderHashes[k]!)" }
        if let identity { s += ";pid=\(identity)" }
        return s
    }

    /// The size of a raw-format program's frames for frames of `width`×`height` in: `--process-size`, else
    /// `--process-scale` worked out on them, else theirs. nil: the scale gives no size in `sizeRange` for them.
    package func rawSize(width w: Int, height h: Int) -> (width: Int, height: Int)? {
        if let width, let height { return (width, height) }
        guard let scale else { return (w, h) }
        guard let s = ProcessorScale.size(scale, width: w, height: h), Self.sizeRange.contains(s.width), Self.sizeRange.contains(s.height)
        else { return nil }
        return s
    }

    package func validate(videoFilter: String?) throws(VSliceError) {
        func usage(_ why: String) -> VSliceError { VSliceError(.usage, "check options", reason: why) }
        if command.trimmingCharacters(in: .whitespaces).isEmpty { throw usage("--process takes a command, got an empty one") }
        if let r = rate {
            guard r.num > 0, r.den > 0, r.num <= Self.maxRateTerm, r.den <= Self.maxRateTerm else {
                throw usage("--process-rate takes a positive integer or fraction P/Q (P, Q up to \(Self.maxRateTerm)), got \(r)")
            }
            if r.den > 1 && videoFilter != nil {
                throw usage("--process-rate \(r) with --vf: a fractional rate is taken on source frames only; change the rate in one of them")
            }
        }
        if (width == nil) != (height == nil) { throw usage("--process-size takes WxH") }
        if let scale {
            if width != nil { throw usage("--process-size and --process-scale both say the size of the processor's frames; give one of them") }
            if format == .y4m { throw usage("--process-scale is for raw formats (rgb24, rgb48le); a y4m processor's header says its size") }
            if let why = ProcessorScale.problem(scale) { throw usage("--process-scale \(why)") }
        }
        if let w = width, let h = height {
            guard Self.sizeRange.contains(w), Self.sizeRange.contains(h) else {
                throw usage("--process-size takes WxH with sides from \(Self.sizeRange.lowerBound) to \(Self.sizeRange.upperBound), got \(w)x\(h)")
            }
            if format == .y4m { throw usage("--process-size is for raw formats (rgb24, rgb48le); a y4m processor's header says its size") }
        }
        if isPersistent {
            if format != .y4m {
                throw usage("--process-persistent needs --process-format y4m: each segment is a Y4M stream of its own, told by its header")
            }
            if videoFilter != nil {
                throw usage("--process-persistent with --vf: a stream's header says its frame count, which a filter may change; "
                            + "put the filter in the program, or drop --process-persistent")
            }
        }
    }
}

/// What a processor puts out, learnt by running it on a few frames before any work (stored with the plan):
/// every segment's processor must put out the same.
public struct ProcessorOutput: Codable, Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Its frames' pixel format as the program writes them (FFmpeg's name: yuv420p, rgb24…).
    public var pixelFormat: String
    /// Its frames' range as its Y4M header says (nil: not said, the input's).
    public var fullRange: Bool?
    /// Output frames per input frame, P/Q in lowest terms.
    public var rate: Ratio
    /// What the program says it is (`XVSLICE_ID=…` in its Y4M header); every segment's must say the same.
    public var identity: String? = nil

    public init(width: Int, height: Int, pixelFormat: String, fullRange: Bool?, rate: Ratio, identity: String? = nil) {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.fullRange = fullRange
        self.rate = rate
        self.identity = identity
    }
}

/// A settings signature's `key=value` entries, in order.
struct SignatureEntries {
    var pairs: [(String, String)] = []
    private var values: [String: String] = [:]

    init(_ signature: String) {
        for part in signature.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = String(kv[0]), v = kv.count > 1 ? String(kv[1]) : ""
            if values[k] == nil { pairs.append((k, v)) }
            values[k] = v
        }
    }

    subscript(key: String) -> String? { values[key] }
}
