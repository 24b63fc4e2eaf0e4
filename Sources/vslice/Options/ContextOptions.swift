import ArgumentParser
import Foundation
import VSliceKit

/// `--analyze`, `--reduce`, `--context-frames`: context across segments, analysed per segment, reduced once, and
/// handed to every segment's processor.
struct ContextOptions: ParsableArguments {
    @Option(name: .customLong("analyze"), help: ArgumentHelp(
        "A program run on every segment's frames before the encode (run with /bin/sh -c): what it writes on stdout is the segment's artifact.",
        discussion: """
            It reads the segment's frames, buffer frames included, as one Y4M stream on stdin, with the environment \
            a processor gets (VSLICE_SEGMENT, VSLICE_FIRST_FRAME, VSLICE_FRAMES, VSLICE_BUFFER_BEFORE/AFTER…). The \
            artifacts are kept in the work folder (ana-NNNNN.out) and in the job store: a resume analyses only the \
            segments not done. The processor finds its segment's at $VSLICE_SEGMENT_ARTIFACT.
            """,
        valueName: "command"))
    var analyze: String?

    @Option(name: .customLong("reduce"), help: ArgumentHelp(
        "A program run once after the analysis, with the artifacts' paths in segment order as arguments: what it writes on stdout is the global result, at $VSLICE_CONTEXT for every processor.",
        valueName: "command"))
    var reduce: String?

    @Option(name: .customLong("context-frames"), help: ArgumentHelp(
        "Source frames (0-24,300-310) given to every segment's processor ahead of its own frames, then dropped; VSLICE_CONTEXT_FRAMES says how many lead.",
        valueName: "ranges"))
    var frames: String?

    @Option(name: .customLong("loudness"), help: ArgumentHelp(
        "Bring the audio to this loudness (EBU R128) by one linear gain per track: I=LUFS[:TP=dBTP][:LRA=LU], e.g. I=-16:TP=-1.5.",
        discussion: "Each audio piece is measured in parallel (its 400 ms blocks and true peak), one gated integral per track is taken, and its gain keeps the true peak under TP.",
        valueName: "target"))
    var loudness: String?

    func settings() throws -> ContextSettings? {
        var c = ContextSettings()
        c.analyze = analyze.map { ProcessorSettings(command: $0) }
        c.reduce = reduce.map { ProcessorSettings(command: $0) }
        if let frames { c.frames = try ContextSettings.parseFrames(frames) }
        if let loudness { c.loudness = try LoudnessTarget.parse(loudness) }
        return c.isEmpty ? nil : c
    }
}
