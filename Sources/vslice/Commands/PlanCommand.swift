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
              vslice plan in --jobs 4 --json

            The estimate of the wall time (text and --json) is made from the costs measured before any work: \
            the encoder's start-up and work per frame and, with --process, the program's. Given a folder, each \
            video in it (not its subfolders) is planned, and the estimates are added up (a batch runs its \
            inputs one after another).
            """)

    @Argument(help: "The input media file, or a folder (each video in it is planned).")
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
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDir), isDir.boolValue {
            let all = try BatchEstimate.folder(input, settings: settings, executor: cluster.config, logger: Logger(label: "vslice.plan")) { i, n, item in
                if !json { FileHandle.standardError.write(Data("planning file \(i) of \(n): \(item.relative)\n".utf8)) }
            }
            return try EstimateText.print(all, json: json)
        }
        var request = TranscodeRequest(input: input, output: input + ".plan.mp4", settings: settings)
        request.executor = cluster.config
        let preview = try Transcoder(request: request, logger: Logger(label: "vslice.plan")).preview()
        let plan = preview.plan, audio = preview.audio, timing = preview.filterTiming
        if json {
            try Terminal.printJSON(PlanWithAudio(plan: plan, audio: audio, estimate: preview.estimate))
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
        print("  estimate: " + (preview.estimate.map(\.summary) ?? "none (the costs could not be measured)"))
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

/// The estimates of `plan DIR` and `batch --dry-run`: one JSON value, or a line per input and the total.
enum EstimateText {
    static func print(_ all: BatchEstimate, json: Bool) throws {
        if json { return try Terminal.printJSON(all) }
        for i in all.inputs {
            Swift.print("\(i.relative): \(i.frames) frames, \(i.segments) segment\(i.segments == 1 ? "" : "s"), "
                        + (i.estimate.map { $0.summary } ?? "no estimate (the costs could not be measured)"))
        }
        for (rel, why) in all.skipped.sorted(by: { $0.key < $1.key }) { Swift.print("\(rel): skipped (\(why))") }
        for (rel, error) in all.failed.sorted(by: { $0.key < $1.key }) { Swift.print("\(rel): refused: \(error)") }
        Swift.print("batch: \(all.inputs.count) input\(all.inputs.count == 1 ? "" : "s") planned, about \(WallEstimate.clock(all.seconds)) "
                    + "on the wall, one after another" + (all.unestimated > 0 ? " (\(all.unestimated) without an estimate)" : "")
                    + "; \(all.skipped.count) skipped, \(all.failed.count) refused")
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
/// `piece_seconds`, `one_pass`) and `estimate` (`seconds`, `checks_seconds`, `encode_seconds`, `work_seconds`,
/// `jobs`, `slots`; null when the costs could not be measured).
struct PlanWithAudio: Encodable {
    var plan: Plan
    var audio: [AudioTrackPlan]
    var estimate: WallEstimate?

    private enum Keys: String, CodingKey { case audio, estimate }

    func encode(to encoder: any Encoder) throws {
        try plan.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(audio, forKey: .audio)
        try c.encode(estimate, forKey: .estimate)
    }
}
