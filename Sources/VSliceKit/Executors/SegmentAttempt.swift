import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// One attempt at one segment, the same wherever it runs — a job slot of the local executor, or a
/// `vslice segment` worker under a scheduler: the segment's pipeline (with its `--process` program, told what
/// it works on through its environment, its stderr in the segment's log in the work folder) run under the
/// stall watchdog into a part file, and measured. Recording the attempt is the executor's (the ledger here, a
/// trace record file there).
struct SegmentAttempt {
    var task: TaskID
    var input: String
    /// The input's identity when the task started (every open checks it); nil: not checked.
    var identity: FileIdentity?
    var index: VideoIndex
    var plan: Plan
    var segment: SegmentPlan
    var settings: TranscodeSettings
    var workDir: String
    /// Where the segment file is written (renamed into place by the executor once recorded).
    var partPath: String
    /// The GPU the processor gets (`VSLICE_GPU`, `CUDA_VISIBLE_DEVICES`), if any.
    var gpu: String? = nil
    /// `--process-persistent`: the job slot's program, kept loaded (nil: one for this attempt alone).
    var host: PersistentProcessor? = nil
    /// The environment the processor inherits.
    var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Kept frames decoded so far (increments, from the attempt's thread).
    var progress: @Sendable (Int) -> Void = { _ in }
    /// Each line the processor writes on stderr.
    var onProcessorLine: (@Sendable (String) -> Void)? = nil
    /// How its CPU time is read: its thread's (a job slot among others in one process; an encoder's own threads,
    /// with `--threads` above 1, are not counted) or its process's (a worker, which runs one attempt).
    var cpuClock: @Sendable () -> Double = threadCPUSeconds
    /// When the attempt started (`monotonicSeconds`): its start-up is measured from here (nil: when `run` starts).
    var startedAt: Double? = nil

    struct Outcome {
        var result: SegmentResult
        var wallSeconds: Double
        /// The attempt's CPU seconds, its processor's included.
        var cpuSeconds: Double
    }

    /// Runs the attempt. On failure the part file is removed and the error says how long it ran (`measured`).
    func run(watchdog: StallWatchdog, measured: ((wall: Double, cpu: Double)) -> Void = { _ in }) throws(VSliceError) -> Outcome {
        let t0 = monotonicSeconds(), c0 = cpuClock()
        let origin = startedAt ?? t0
        let watch = WorkWatch(stalledMeans: settings.process == nil ? "no frame decoded" : "no frame from the processor")
        var pipeline = SegmentPipeline(source: input, index: index, segment: segment, settings: settings, outputPath: partPath,
                                       progress: progress, watch: watch, expect: identity)
        pipeline.hdr = plan.hdr
        pipeline.origin = origin
        if settings.process != nil {
            guard let output = plan.processor else {
                throw VSliceError(.usage, "encode segment \(segment.index)", path: workDir,
                                  reason: "the plan has no processor output (planned by an older vslice); start over with --fresh")
            }
            pipeline.processor = ProcessorRun(output: output, environment: processorEnvironment,
                                              logPath: (workDir as NSString).appendingPathComponent(WorkFolder.processLogName(segment.index)),
                                              onStderrLine: onProcessorLine, host: host)
        }
        do throws(VSliceError) {
            let result = try watchdog.watching(watch) { () throws(VSliceError) in try pipeline.run() }
            return Outcome(result: result, wallSeconds: monotonicSeconds() - t0, cpuSeconds: cpuClock() - c0 + result.processorCPU)
        } catch {
            unlink(partPath)
            measured((monotonicSeconds() - t0, cpuClock() - c0))
            throw namingLog(error)
        }
    }

    /// A failure with a processor names its log, when it said anything (it is kept; see `ProcessorLogs`).
    func namingLog(_ error: VSliceError) -> VSliceError {
        guard settings.process != nil, error.kind != .interrupted else { return error }
        let log = (workDir as NSString).appendingPathComponent(WorkFolder.processLogName(segment.index))
        guard let size = (try? FileManager.default.attributesOfItem(atPath: log))?[.size] as? Int, size > 0 else { return error }
        var e = error
        e.reason += " (\(ProcessorLogs.named(task: task, segment: segment.index)))"
        return e
    }

    /// What the processor is told of its task and segment (the frame counts are source frames; the program
    /// reads BUFFER_BEFORE + FRAMES + BUFFER_AFTER of them, from FIRST_FRAME − BUFFER_BEFORE, before any `--vf`).
    var processorEnvironment: [String: String] {
        var env = Self.segmentEnvironment(task: task, plan: plan, segment: segment, workDir: workDir, inherited: environment)
        env.merge(ProcessorCheck.threadEnvironment(settings.threadsPerJob, inherited: environment)) { $1 }
        if let gpu {
            env["VSLICE_GPU"] = gpu
            env["CUDA_VISIBLE_DEVICES"] = gpu
        } else if let given = env["CUDA_VISIBLE_DEVICES"], !given.isEmpty {
            // A scheduler's choice (Slurm's --gres=gpu) passes on as it is.
            env["VSLICE_GPU"] = given
        }
        if let context = plan.context {
            if context.reduces { env["VSLICE_CONTEXT"] = (workDir as NSString).appendingPathComponent(WorkFolder.contextFileName) }
            if !context.analyses.isEmpty {
                env["VSLICE_SEGMENT_ARTIFACT"] = (workDir as NSString).appendingPathComponent(WorkFolder.analysisFileName(segment.index))
            }
            if !context.frames.isEmpty { env["VSLICE_CONTEXT_FRAMES"] = String(context.frames.reduce(0) { $0 + $1.count }) }
        }
        return env
    }

    /// What a program working on a segment (a processor, an analyzer) is told of its task and segment.
    static func segmentEnvironment(task: TaskID, plan: Plan, segment: SegmentPlan, workDir: String,
                                   inherited: [String: String]) -> [String: String] {
        var env = inherited
        env["VSLICE_TASK"] = task.rawValue
        env["VSLICE_SEGMENT"] = String(segment.index)
        env["VSLICE_SEGMENTS"] = String(plan.segments.count)
        env["VSLICE_FIRST_FRAME"] = String(segment.firstFrame)
        env["VSLICE_FRAMES"] = String(segment.frameCount)
        env["VSLICE_BUFFER_BEFORE"] = String(segment.firstFrame - segment.bufferStart)
        env["VSLICE_BUFFER_AFTER"] = String(segment.bufferEnd - segment.lastFrame)
        return env
    }
}

/// One attempt at one analysis element (`--analyze`), the same wherever it runs: the segment's frames through
/// the analyzer into a part file (its stdout), under the stall watchdog. Recording it is the executor's.
struct AnalysisAttempt {
    var task: TaskID
    var input: String
    var identity: FileIdentity?
    var index: VideoIndex
    var plan: Plan
    var segment: SegmentPlan
    var settings: TranscodeSettings
    var workDir: String
    /// Where the artifact is written (renamed into place by the executor once recorded).
    var partPath: String
    var environment: [String: String] = ProcessInfo.processInfo.environment

    func run(watchdog: StallWatchdog) throws(VSliceError) -> ArtifactResult {
        guard let analyzer = settings.context?.analyze else {
            throw VSliceError(.usage, "analyze segment \(segment.index)", path: workDir, reason: "the task has no --analyze")
        }
        let watch = WorkWatch(stalledMeans: "no frame decoded and nothing from the analyzer")
        var env = SegmentAttempt.segmentEnvironment(task: task, plan: plan, segment: segment, workDir: workDir, inherited: environment)
        env.merge(ProcessorCheck.threadEnvironment(settings.threadsPerJob, inherited: environment)) { $1 }
        let program = HelperProgram(command: analyzer.command, directory: analyzer.directory, environment: env,
                                    logPath: (workDir as NSString).appendingPathComponent(WorkFolder.analysisLogName(segment.index)))
        do throws(VSliceError) {
            return try watchdog.watching(watch) { () throws(VSliceError) in
                try Analysis.run(program, source: input, index: index, segment: segment, threads: settings.threadsPerJob,
                                 watch: watch, expect: identity, outputPath: partPath)
            }
        } catch {
            unlink(partPath)
            throw error
        }
    }
}
