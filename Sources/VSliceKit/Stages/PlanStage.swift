import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// plan: cuts the video into segments (once: the plan is stored with the task, so a resume — maybe with
/// another `--jobs`, which shapes the default plan — works on the same segments), creates the segment rows,
/// writes the work order `vslice segment` workers read (`task.json`), takes in what workers reported since the
/// last run, and finds which segments are really done: recorded done, and their files there, sealed, intact.
enum PlanStage: Stage {
    static let node = Node.plan
    static let inputs: [Node] = [.probe]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        let store = ctx.store, taskId = ctx.taskId, index = ctx.video
        let plan: Plan
        // The audio tracks encoded in pieces: mapped and cut now, so that the executor runs their pieces as
        // elements beside the video's (the audio node encodes only the other tracks). When the plan is made, the
        // map (a decode of each such track) runs beside it, in the plan's trace: serial work, recorded as the plan's.
        var pieces: [Int: [AudioPiece]]? = nil
        if let json = try store.eventDone(taskId, node)?.detail,
           let stored = try? JSONDecoder().decode(Plan.self, from: Data(json.utf8)), stored.frameCount == index.pts.count {
            plan = stored
        } else {
            plan = try ctx.traced(node) { (_) throws(VSliceError) in
                let mapped = Mutex<(pieces: [Int: [AudioPiece]], cpu: Double)?>(nil)
                let map = WorkerPool.spawn { () throws(VSliceError) in
                    let c0 = threadCPUSeconds()
                    let p = try AudioStage.planPieces(ctx)
                    mapped.withLock { $0 = (p, threadCPUSeconds() - c0) }
                }
                let made: Result<Plan, VSliceError>
                do throws(VSliceError) { made = .success(try Plan.forRun(source: ctx.source, settings: ctx.settings, workers: ctx.request.executor.processPerElement)) } catch { made = .failure(error) }
                if let e = map.wait() { throw e }
                let p = try made.get()
                let m = mapped.withLock { $0 }
                pieces = m?.pieces ?? [:]
                return StepRecord(value: p, detail: (try? JSONEncoder().encode(p)).flatMap { String(data: $0, encoding: .utf8) },
                                  before: (wall: 0, cpu: m?.cpu ?? 0))
            }
        }
        ctx.plan = plan
        // Asked to cut, and it could not: say why (a clip with one keyframe needs --split frames).
        if ctx.settings.segmentSeconds != nil && plan.segments.count == 1 && plan.frameCount > 1 { ctx.logger.warning("\(plan.reason)") }
        try store.setFrames(taskId, plan.frameCount)
        try store.ensureSegments(task: taskId, plan: plan, files: ctx.segmentPaths)
        if let pieces { ctx.audioPieces = pieces } else { ctx.audioPieces = try AudioStage.planPieces(ctx) }
        try WorkOrder(task: taskId, input: ctx.input, fingerprint: ctx.task.inputFingerprint, settings: ctx.settings, plan: plan,
                      index: index, stallTimeout: ctx.options.stallTimeout, audioPieces: ctx.allAudioPieces).write(workDir: ctx.work)
        try store.ingestTraceRecords(task: taskId, workDir: ctx.work, videoSegments: plan.segments.count)

        ctx.resetKept(count: plan.segments.count)
        var done = Set<Int>(), framesDone = 0
        for row in try store.segments(task: taskId) where row.status == .done {
            if row.fileIsIntact {
                done.insert(row.ord)
                framesDone += plan.segments[row.ord].frameCount
                ctx.setKept(row.ord, plan.segments[row.ord].frameCount)
            } else {
                ctx.logger.warning("segment file missing or damaged; redoing it", metadata: ["segment": "\(row.ord)"])
                try store.resetSegment(taskId, row.id)
            }
        }
        ctx.doneSegments = done
        ctx.logger.info("planned", metadata: ["segments": "\(plan.segments.count)", "frames": "\(plan.frameCount)", SegmentStatus.done.rawValue: "\(done.count)"])
        ctx.onEvent(.alreadyDone(segments: done.count))
        ctx.onEvent(.planned(totalFrames: plan.frameCount, segments: plan.segments.count, framesAlreadyDone: framesDone))
        return .done
    }
}
