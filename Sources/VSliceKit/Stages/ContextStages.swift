import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// analyze (`--analyze`): every video segment's frames, buffer frames included, through the analyzer, as
/// elements of their own (a segment of the analyze event each, `TASK_analyze_N`), `--jobs` at a time where the
/// segments run. Each artifact (`ana-NNNNN.out`, the analyzer's stdout) is sealed by the commit that records it:
/// a resume analyses only the segments whose artifact is not recorded, or not intact. Nothing to do without
/// `--analyze`, and nothing once the reduce is done (its result stands).
enum AnalyzeStage: Stage {
    static let node = Node.analyze
    static let inputs: [Node] = [.plan]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        guard let context = ctx.plan.context, !context.analyses.isEmpty else { return .done }
        let plan = ctx.plan, store = ctx.store, taskId = ctx.taskId
        let paths = plan.segments.map { ctx.analysisPath($0.index) }
        try store.ensureAnalyses(task: taskId, elements: plan.segments.map { ($0.index, $0.processedCount, paths[$0.index]) })
        if context.reduces, try ReduceStage.isDone(ctx) {
            try store.markEventDone(taskId, node)
            return .done
        }
        var done = Set<Int>()
        for row in try store.analyses(task: taskId) where row.status == .done {
            if row.artifactIsIntact { done.insert(row.ord) } else {
                ctx.logger.warning("analysis artifact missing or damaged; analysing again", metadata: ["segment": "\(row.ord)"])
                try store.resetSegment(taskId, row.id)
            }
        }
        if !done.isEmpty { ctx.logger.info("\(done.count) of \(plan.segments.count) analyses already done") }
        let todo = plan.segments.filter { !done.contains($0.index) }.sorted { $0.processedCount > $1.processedCount }
        if !todo.isEmpty {
            var job = EncodeJob(task: ctx.task, store: store, input: ctx.input, identity: ctx.identity, index: ctx.video,
                                plan: plan, segmentPaths: ctx.segmentPaths, todo: [], settings: ctx.settings, options: ctx.options,
                                watchdog: ctx.watchdog, onEvent: ctx.onEvent, logger: ctx.logger, kept: { _, _ in })
            job.analyses = todo
            job.analysisPaths = paths
            _ = try ctx.request.executor.make().encode(job)
        }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: ctx.input, reason: "interrupted; resume by running the same command")
        }
        try store.markEventDone(taskId, node)
        return .done
    }
}

/// reduce (`--reduce`): the reducer run once, in the coordinator, with the artifacts' paths in segment order as
/// its arguments; its stdout is the global result (`context.out`, `VSLICE_CONTEXT` for every processor), sealed by
/// the commit that records the step, its size and checksum in the event's detail. A resume keeps it while the
/// file is intact.
enum ReduceStage: Stage {
    static let node = Node.reduce
    static let inputs: [Node] = [.analyze]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        guard let context = ctx.plan.context, context.reduces, let reducer = ctx.settings.context?.reduce else { return .done }
        if try isDone(ctx) { return .done }
        let path = ctx.contextPath
        let artifacts = ctx.plan.segments.map { ctx.analysisPath($0.index) }
        var env = ProcessInfo.processInfo.environment
        env["VSLICE_TASK"] = ctx.taskId.rawValue
        env["VSLICE_SEGMENTS"] = String(ctx.plan.segments.count)
        let program = HelperProgram(command: reducer.command, directory: reducer.directory, environment: env,
                                    logPath: (ctx.work as NSString).appendingPathComponent(WorkFolder.reduceLogName))
        try ctx.traced(node) { (trace) throws(VSliceError) in
            let tmp = path + ".\(trace.short).tmp"
            let r: ArtifactResult
            do throws(VSliceError) { r = try Reduction.run(program, arguments: artifacts, watch: WorkWatch(stalledMeans: "nothing from the reducer"), outputPath: tmp) } catch {
                unlink(tmp)
                throw error
            }
            return StepRecord(value: (), detail: ArtifactFile.signature(bytes: r.bytes, checksum: r.checksum), bytes: r.bytes,
                              seal: .init(from: tmp, to: path), before: (wall: 0, cpu: r.cpuSeconds))
        }
        Fault.hit("reduce-done")
        return .done
    }

    /// The reduce is recorded done and its result is there, intact.
    static func isDone(_ ctx: StageContext) throws(VSliceError) -> Bool {
        guard let recorded = try ctx.store.eventDone(ctx.taskId, node)?.detail else { return false }
        return ArtifactFile.signature(ctx.contextPath) == recorded
    }
}
