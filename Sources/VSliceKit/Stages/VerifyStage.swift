import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// verify: checks the merged file (or the output an interrupted run already published) against the source —
/// frame count and times (the filter's, with `--vf`), DTS order, every track's duration and offset. A file that
/// fails is kept for inspection inside the work folder, never at the output path.
enum VerifyStage: Stage {
    static let node = Node.verify
    static let inputs: [Node] = [.mux]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let streams = ctx.extras.streams
        let checked = ctx.published ? ctx.output : ctx.partPath
        let report = try ctx.traced(node) { (_) throws(VSliceError) in
            StepRecord(value: try Verifier.verify(output: Probe(path: checked), against: ctx.probe, filtered: ctx.extras.filterTiming,
                                                  rate: ctx.plan.processor?.rate,
                                                  audioStreams: streams.audio.map(\.stream),
                                                  copiedAudio: Set(streams.audio.indices.filter { streams.audio[$0].copy }),
                                                  subtitleStreams: streams.subtitles.map(\.stream)))
        }
        guard report.ok else {
            let rejected = (ctx.work as NSString).appendingPathComponent("rejected." + (ctx.output as NSString).pathExtension)
            if !ctx.published {
                try? FileManager.default.removeItem(atPath: rejected)
                try? FileManager.default.moveItem(atPath: ctx.partPath, toPath: rejected)
            }
            throw VSliceError(.processing, "verify", path: ctx.request.output,
                              reason: report.problems.joined(separator: "; ") + (ctx.published ? "" : " (not published; see \(rejected))"))
        }
        ctx.verify = report
        return .done
    }
}
