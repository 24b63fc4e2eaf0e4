import ArgumentParser
import Foundation
import Logging
import VSliceKit

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the segments a transcode would make (a dry run: nothing is encoded).",
        discussion: """
            EXAMPLES:
              vslice plan in.mp4 --segment-seconds 5 --min-split-seconds 0
              vslice plan in.mp4 --split frames --segment-frames 250 --overlap 0,4 --json
              vslice plan in.mp4 --process cat --overlap 2,2
            """)

    @Argument(help: "The input media file.")
    var input: String

    @OptionGroup var options: TranscodeOptions

    @OptionGroup(title: "Where segments run") var cluster: ExecutorChoice

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var manifest: EmitOptions

    func run() throws {
        if try manifest.run(input: input) { return }
        let settings = try options.settings()
        // The same checks and the same planning path as the transcode's: a dry run says what it would refuse, too.
        var request = TranscodeRequest(input: input, output: input + ".plan.mp4", settings: settings)
        request.executor = cluster.config
        let preview = try Transcoder(request: request, logger: Logger(label: "vslice.plan")).preview()
        let plan = preview.plan, audio = preview.audio, timing = preview.filterTiming
        if json {
            try Terminal.printJSON(PlanWithAudio(plan: plan, audio: audio))
            return
        }
        let tb = plan.timeBase.value
        print("\(input): \(plan.frameCount) frames, \(plan.segments.count) segment\(plan.segments.count == 1 ? "" : "s") (time base \(plan.timeBase))")
        print("  why: \(plan.reason)")
        if let timing {
            print("  filter: lookahead \(timing.lookahead), memory \(timing.memory) frames\(timing.countsFrames ? ", counts frames" : ""); "
                  + (timing.outputPts.map { "\($0.count) output frames" } ?? "output frames depend on the pictures"))
        }
        if let p = plan.processor, let command = settings.process?.command {
            let rate = p.rate.den == 1 ? "\(p.rate.num)" : "\(p.rate)"
            print("  processor: \(command)")
            print("    puts out \(p.width)x\(p.height) \(p.pixelFormat), \(rate) frame(s) per input frame "
                  + "(learnt from a run on the first \(min(Transcoder.processorCheckFrames, plan.frameCount)) frames)")
            print("    " + Self.processorCost(timed: preview.processorCost, counted: plan.elementCost?.processor))
        }
        if let c = plan.context {
            let analyze = (c.analyses.isEmpty ? [] : ["\(c.analyses.count) elements, ana-NNNNN.out"])
                + (c.loudness == nil ? [] : ["each audio piece's loudness, loud-NNNNN.json"])
            print("  steps: probe → plan" + (analyze.isEmpty ? "" : " → analyze (" + analyze.joined(separator: "; ") + ")")
                  + (c.reduces || c.loudness != nil ? " → reduce (once" + (c.reduces ? ", context.out" : "") + ")" : "") + " → encode → mux → verify → publish")
            if let l = c.loudness {
                print("  loudness: I \(l.integrated) LUFS, true peak under \(l.truePeak) dBTP: one linear gain per track")
            }
            if !c.frames.isEmpty {
                print("  context frames: \(FrameSpan.text(c.frames)) (\(c.frames.reduce(0) { $0 + $1.count }) frames ahead of every segment's own)")
            }
        }
        if let c = plan.elementCost {
            print("  element cost: " + c.summary)
        }
        for a in audio {
            let what = a.codec.map { "\($0), " + (a.pieces > 1 ? "\(a.pieces) pieces of about \(a.pieceSeconds ?? 0) s" : "one pass (\(a.onePass ?? ""))") }
                ?? "copied (re-encoded to aac in one pass where the output's container cannot hold it)"
            print("  audio track \(a.track) (stream \(a.stream)): \(what)")
        }
        print("  seg  decode-from  buffer-start  first  last  buffer-end  frames      start s       end s")
        for s in plan.segments {
            print(String(format: "%5d  %11d  %12d  %5d  %4d  %10d  %6d  %11.3f  %10.3f", s.index, s.decodeFrom,
                         s.bufferStart, s.firstFrame, s.lastFrame, s.bufferEnd, s.frameCount,
                         Double(s.startPts) * tb, Double(s.endPts) * tb))
        }
    }
}

extension PlanCommand {
    /// What the check timed of the processor, and whether the plan counted it.
    static func processorCost(timed: ProcessorCost?, counted: ProcessorCost?) -> String {
        let what = timed.map { "timed by the check: " + $0.summary } ?? "timed by the check: fewer than two frames out, nothing to time"
        if let counted {
            return what + (counted == timed ? "; the plan counts it" : "; the plan counts " + counted.summary)
        }
        return what + "; the plan does not count it (" + Self.notCountedWhy + ")"
    }

    static var notCountedWhy: String {
        ProcessInfo.processInfo.environment["VSLICE_ELEMENT_COST"] != nil
            ? "VSLICE_ELEMENT_COST fixes the element's cost; VSLICE_PROCESSOR_COST adds the processor's"
            : "the plan is not the default balanced one, or --jobs is 1"
    }
}

/// `plan --json`: the plan's own keys, plus `audio` (each kept audio track: `track`, `stream`, `codec`, `pieces`,
/// `piece_seconds`, `one_pass`).
struct PlanWithAudio: Encodable {
    var plan: Plan
    var audio: [AudioTrackPlan]

    private enum Keys: String, CodingKey { case audio }

    func encode(to encoder: any Encoder) throws {
        try plan.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(audio, forKey: .audio)
    }
}
