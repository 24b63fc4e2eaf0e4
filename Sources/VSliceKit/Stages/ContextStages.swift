import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// analyze (`--analyze`, `--loudness`): the analysis elements — every video segment's frames (buffer frames
/// included) through the analyzer, and every audio piece's loudness — as segments of the analyze event
/// (`TASK_analyze_N`: N a segment's index, or S + k for audio piece k of a task with S segments), `--jobs` at a
/// time where the segments run. Each artifact (`ana-NNNNN.out`, the analyzer's stdout; `loud-NNNNN.json`, a
/// piece's measurement) is sealed by the commit that records it: a resume analyses only the elements whose
/// artifact is not recorded, or not intact. Nothing to do without either option, and nothing once the reduce is
/// done (its result stands).
enum AnalyzeStage: Stage {
    static let node = Node.analyze
    static let inputs: [Node] = [.plan]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        guard let context = ctx.plan.context, !context.analyses.isEmpty || context.loudness != nil else { return .done }
        let plan = ctx.plan, store = ctx.store, taskId = ctx.taskId, s = plan.segments.count
        let segments = context.analyses.isEmpty ? [] : plan.segments
        let pieces = context.loudness == nil ? [] : ctx.allAudioPieces
        try store.ensureAnalyses(task: taskId, elements: segments.map { ($0.index, $0.processedCount, ctx.analysisPath($0.index)) }
                                     + pieces.map { (s + $0.order, 0, ctx.measurePath($0.order)) })
        if try ReduceStage.isDone(ctx) {
            try store.markEventDone(taskId, node)
            return .done
        }
        var done = Set<Int>()
        for row in try store.analyses(task: taskId) where row.status == .done {
            if row.artifactIsIntact { done.insert(row.ord) } else {
                ctx.logger.warning("analysis artifact missing or damaged; analysing again", metadata: ["element": "\(row.ord)"])
                try store.resetSegment(taskId, row.id)
            }
        }
        if !done.isEmpty { ctx.logger.info("\(done.count) of \(segments.count + pieces.count) analyses already done") }
        var job = EncodeJob(task: ctx.task, store: store, input: ctx.input, identity: ctx.identity, index: ctx.video,
                            plan: plan, segmentPaths: ctx.segmentPaths, todo: [], settings: ctx.settings, options: ctx.options,
                            watchdog: ctx.watchdog, onEvent: ctx.onEvent, logger: ctx.logger, kept: { _, _ in })
        job.analyses = segments.filter { !done.contains($0.index) }.sorted { $0.processedCount > $1.processedCount }
        job.analysisPaths = plan.segments.map { ctx.analysisPath($0.index) }
        job.measures = pieces.filter { !done.contains(s + $0.order) }
        job.measurePaths = ctx.allAudioPieces.map { ctx.measurePath($0.order) }
        if !job.elements.isEmpty { _ = try ctx.request.executor.make().encode(job) }
        if Cancellation.stopRequested {
            throw VSliceError(.interrupted, "transcode", path: ctx.input, reason: "interrupted; resume by running the same command")
        }
        try store.markEventDone(taskId, node)
        return .done
    }
}

/// What the reduce recorded (the event's detail, JSON): its result file's size and checksum (`--reduce`), and
/// each track's loudness and gain (`--loudness`).
struct ReduceRecord: Codable, Equatable {
    var context: String?
    var loudness: [LoudnessResult]?
}

/// reduce (`--reduce`, `--loudness`): once, in the coordinator. The reducer runs with the artifacts' paths in
/// segment order as its arguments; its stdout is the global result (`context.out`, `VSLICE_CONTEXT` for every
/// processor), sealed by the commit that records the step. The pieces' loudness measurements give one gated
/// integral and true peak per track, and its gain. A resume keeps the step while its file is intact.
enum ReduceStage: Stage {
    static let node = Node.reduce
    static let inputs: [Node] = [.analyze]

    static func run(_ ctx: StageContext) throws(VSliceError) -> StageOutcome {
        guard let context = ctx.plan.context, context.reduces || context.loudness != nil else { return .done }
        if let done = try recorded(ctx) {
            ctx.loudnessGains = gains(done)
            return .done
        }
        let record = try ctx.traced(node) { (trace) throws(VSliceError) -> StepRecord<ReduceRecord> in
            var record = ReduceRecord()
            var seal: Seal? = nil, cpu = 0.0, bytes: Int64? = nil
            if context.reduces, let reducer = ctx.settings.context?.reduce {
                let tmp = ctx.contextPath + ".\(trace.short).tmp"
                let r = try runReducer(ctx, reducer, into: tmp)
                record.context = ArtifactFile.signature(bytes: r.bytes, checksum: r.checksum)
                seal = .init(from: tmp, to: ctx.contextPath)
                cpu = r.cpuSeconds
                bytes = r.bytes
            }
            if let target = context.loudness { record.loudness = try loudness(ctx, target: target) }
            let detail = (try? JSONEncoder().encode(record)).flatMap { String(data: $0, encoding: .utf8) }
            return StepRecord(value: record, detail: detail, bytes: bytes, seal: seal, before: (wall: 0, cpu: cpu))
        }
        for r in record.loudness ?? [] {
            ctx.logger.info("loudness", metadata: ["track": "\(r.track)", "integrated": "\(r.integrated.map { String(format: "%.2f", $0) } ?? "-")",
                                                   "true_peak": "\(String(format: "%.2f", r.truePeak))", "gain_db": "\(String(format: "%.2f", r.gainDB))"])
        }
        ctx.loudnessGains = gains(record)
        Fault.hit("reduce-done")
        return .done
    }

    private static func runReducer(_ ctx: StageContext, _ reducer: ProcessorSettings, into tmp: String) throws(VSliceError) -> ArtifactResult {
        var env = ProcessInfo.processInfo.environment
        env["VSLICE_TASK"] = ctx.taskId.rawValue
        env["VSLICE_SEGMENTS"] = String(ctx.plan.segments.count)
        let program = HelperProgram(command: reducer.command, directory: reducer.directory, environment: env,
                                    logPath: (ctx.work as NSString).appendingPathComponent(WorkFolder.reduceLogName))
        do throws(VSliceError) {
            return try Reduction.run(program, arguments: ctx.plan.segments.map { ctx.analysisPath($0.index) },
                                     watch: WorkWatch(stalledMeans: "nothing from the reducer"), outputPath: tmp)
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Every piece's measurement, read back from its sealed artifact, reduced per track.
    private static func loudness(_ ctx: StageContext, target: LoudnessTarget) throws(VSliceError) -> [LoudnessResult] {
        var measures: [LoudnessMeasure] = []
        for piece in ctx.allAudioPieces {
            let path = ctx.measurePath(piece.order)
            guard let data = FileManager.default.contents(atPath: path), let m = try? JSONDecoder().decode(LoudnessMeasure.self, from: data) else {
                throw VSliceError(.processing, "reduce loudness", path: path, reason: "the piece's measurement is missing or unreadable")
            }
            measures.append(m)
        }
        return LoudnessResult.reduce(measures, target: target)
    }

    private static func gains(_ r: ReduceRecord) -> [Int: Double] {
        Dictionary(uniqueKeysWithValues: (r.loudness ?? []).map { ($0.track, $0.linearGain) })
    }

    /// What the reduce recorded, when it is done and its result file (if any) is there, intact.
    static func recorded(_ ctx: StageContext) throws(VSliceError) -> ReduceRecord? {
        guard let detail = try ctx.store.eventDone(ctx.taskId, node)?.detail,
              let r = try? JSONDecoder().decode(ReduceRecord.self, from: Data(detail.utf8)) else { return nil }
        if let context = r.context, ArtifactFile.signature(ctx.contextPath) != context { return nil }
        return r
    }

    static func isDone(_ ctx: StageContext) throws(VSliceError) -> Bool {
        guard let c = ctx.plan.context, c.reduces || c.loudness != nil else { return false }
        return try recorded(ctx) != nil
    }
}
