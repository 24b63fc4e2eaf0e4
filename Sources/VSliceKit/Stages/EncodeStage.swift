import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// encode: the segments not done yet, longest first (so the last to finish is short), then the audio pieces not
/// done yet, handed to the executor — threads in this process by default, or `vslice segment` workers under a
/// scheduler (elements of the same array).
enum EncodeStage: Stage {
    static let node = Node.encode
    static let inputs: [Node] = [.plan, .reduce]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let plan = ctx.plan
        let done = ctx.doneSegments
        let todo = plan.segments.filter { !done.contains($0.index) }.sorted { $0.processedCount > $1.processedCount }
        let pieces = ctx.allAudioPieces
        let rows = Dictionary(uniqueKeysWithValues: try ctx.store.audioPieces(task: ctx.taskId).map { ($0.ord, $0) })
        let piecesTodo = pieces.filter { p in rows[p.order].map { $0.status != .done || !$0.fileIsIntact } ?? true }
        if piecesTodo.count < pieces.count { ctx.logger.info("\(pieces.count - piecesTodo.count) of \(pieces.count) audio pieces already done") }
        var job = EncodeJob(task: ctx.task, store: ctx.store, input: ctx.input, identity: ctx.identity, index: ctx.video,
                            plan: plan, segmentPaths: ctx.segmentPaths, todo: todo, settings: ctx.settings, options: ctx.options,
                            watchdog: ctx.watchdog, onEvent: ctx.onEvent, logger: ctx.logger, kept: { i, n in ctx.setKept(i, n) })
        job.pieces = piecesTodo
        job.gains = ctx.loudnessGains
        job.piecePaths = (0..<pieces.count).map { ctx.audioPiecePath($0) }
        if case .detached = try ctx.request.executor.make().encode(job) { return .detached }
        if ctx.settings.videoFilter != nil && ctx.keptFrames.reduce(0, +) == 0 {
            var e = VSliceError(.processing, "filter", path: ctx.input, reason: "the --vf graph gave no frames at all")
            e.deterministic = true
            throw e
        }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: ctx.input, reason: "interrupted; resume by running the same command")
        }
        try ctx.store.markEventDone(ctx.taskId, node)
        return .done
    }
}
