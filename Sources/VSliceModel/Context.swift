import Foundation
import VSliceSupport

/// Context across segments (`--analyze`, `--reduce`, `--context-frames`): what ties the segments together,
/// found per segment in parallel, reduced once, and handed to every segment's processor — the flow
/// cut → cut → merge → process → merge. Part of the output signature, with the content of the files the
/// analyzer's and reducer's command lines name (as for `--process`).
public struct ContextSettings: Codable, Sendable, Equatable {
    /// Run on every segment's frames (buffer frames included), as a processor is; its stdout is the segment's
    /// artifact. Only `command`, `directory` and the file hashes are used.
    public var analyze: ProcessorSettings? = nil
    /// Run once, in the coordinator, with the artifacts' paths in segment order as arguments; its stdout is the
    /// global result (`VSLICE_CONTEXT`).
    public var reduce: ProcessorSettings? = nil
    /// Source frames given to every segment's processor ahead of its own frames, then dropped.
    public var frames: [FrameSpan] = []
    /// `--loudness`: every audio piece measured (an analysis element each), one gain per track from the reduce.
    public var loudness: LoudnessTarget? = nil

    public init() {}

    public var isEmpty: Bool { analyze == nil && reduce == nil && frames.isEmpty && loudness == nil }
    /// Frames `frames` names, in order.
    public var frameCount: Int { frames.reduce(0) { $0 + $1.count } }

    package var signature: [String] {
        var parts: [String] = []
        if let analyze { parts.append(analyze.helperSignature(key: "analyze", files: "afile", folders: "adir")) }
        if let reduce { parts.append(reduce.helperSignature(key: "reduce", files: "rfile", folders: "rdir")) }
        if !frames.isEmpty { parts.append("ctx_frames=" + FrameSpan.text(frames)) }
        if let loudness { parts.append(loudness.signature) }
        return parts
    }

    /// `--context-frames 0-24,300-310` (single frames too: `7`), in order, not overlapping.
    public static func parseFrames(_ text: String) throws(VSliceError) -> [FrameSpan] {
        func refuse(_ why: String) -> VSliceError {
            VSliceError(.usage, "check options", reason: "--context-frames takes frame ranges like 0-24,300-310 (\(why)), got '\(text)'")
        }
        var out: [FrameSpan] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(ends.count), let a = Int(ends[0]), let b = Int(ends[ends.count - 1]), a >= 0, b >= a else {
                throw refuse("FIRST-LAST with FIRST ≤ LAST, from 0")
            }
            if let last = out.last, a <= last.last { throw refuse("ranges in order, not overlapping") }
            out.append(FrameSpan(first: a, last: b))
        }
        guard out.reduce(0, { $0 + $1.count }) <= Self.maxFrames else { throw refuse("at most \(Self.maxFrames) frames") }
        return out
    }

    /// Context frames are held decoded by every segment's attempt: a bound on that memory.
    public static let maxFrames = 1000

    /// Checks the combinations that can be judged without the source.
    package func validate(process: ProcessorSettings?, videoFilter: String?, copyAudio: Bool = false, audioPieceSeconds: Double? = nil) throws(VSliceError) {
        func usage(_ why: String) -> VSliceError { VSliceError(.usage, "check options", reason: why) }
        if loudness != nil && copyAudio { throw usage("--loudness with --acodec copy: the audio must be re-encoded to change its level") }
        if loudness != nil && audioPieceSeconds == 0 { throw usage("--loudness measures and adjusts the audio in pieces: not with --audio-piece-seconds 0") }
        if reduce != nil && analyze == nil { throw usage("--reduce needs --analyze: it reduces the analyzer's artifacts") }
        for (p, option) in [(analyze, "--analyze"), (reduce, "--reduce")] {
            if let p, p.command.trimmingCharacters(in: .whitespaces).isEmpty { throw usage("\(option) takes a command, got an empty one") }
        }
        if analyze != nil && videoFilter != nil {
            throw usage("--analyze with --vf: the analyzer reads source frames; put the filter in the programs")
        }
        if !frames.isEmpty {
            guard let process else { throw usage("--context-frames needs --process: the frames are given to the processor") }
            if videoFilter != nil { throw usage("--context-frames with --vf: context frames are source frames; put the filter in the program") }
            if process.isPersistent { throw usage("--context-frames with --process-persistent is not supported yet") }
            if process.format != .y4m { throw usage("--context-frames needs --process-format y4m") }
            if let r = process.rate, r.den != 1 { throw usage("--context-frames needs a whole --process-rate") }
        }
    }
}

/// Source frames `first…last` (inclusive).
public struct FrameSpan: Codable, Sendable, Equatable {
    public var first: Int
    public var last: Int
    public init(first: Int, last: Int) {
        self.first = first
        self.last = last
    }
    public var count: Int { last - first + 1 }

    /// `0-24,300-310`.
    public static func text(_ spans: [FrameSpan]) -> String {
        spans.map { $0.first == $0.last ? "\($0.first)" : "\($0.first)-\($0.last)" }.joined(separator: ",")
    }
}

/// What the plan says of the context steps: one analysis element per video segment (element i reads segment
/// i's frames, buffers included), one reduce, and the context frames every segment's processor gets first.
public struct ContextPlan: Codable, Sendable, Equatable {
    /// Analysis elements, by segment index (empty: no `--analyze`).
    public var analyses: [Int]
    public var reduces: Bool
    public var frames: [FrameSpan]
    /// `--loudness`: every audio piece is measured too (elements `S + k`), and the reduce gives each track its gain.
    public var loudness: LoudnessTarget? = nil

    /// The plan's context steps for `settings` over a source of `frameCount` frames; nil without any.
    package static func make(_ settings: ContextSettings?, segments: Int, frameCount: Int) throws(VSliceError) -> ContextPlan? {
        guard let settings, !settings.isEmpty else { return nil }
        if let past = settings.frames.first(where: { $0.last >= frameCount }) {
            throw VSliceError(.usage, "check options",
                              reason: "--context-frames names frame \(past.last), past the source's last (\(frameCount - 1))")
        }
        return ContextPlan(analyses: settings.analyze == nil ? [] : Array(0..<segments), reduces: settings.reduce != nil,
                           frames: settings.frames, loudness: settings.loudness)
    }
}

extension ProcessorSettings {
    /// The signature of a helper program (`--analyze`, `--reduce`): its command and the files it runs from.
    package func helperSignature(key: String, files: String, folders: String) -> String {
        var s = "\(key)=\(command)"
        for k in fileHashes.keys.sorted() { s += ";\(files).\(k)=\(fileHashes[k]!)" }
        for k in folderHashes.keys.sorted() { s += ";\(folders).\(k)=\(folderHashes[k]!)" }
        return s
    }
}
