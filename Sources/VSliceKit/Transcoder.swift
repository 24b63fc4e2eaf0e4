import Foundation
import Logging
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport


public struct TranscodeReport: Codable, Sendable {
    public var task: TaskID
    public var input: String
    public var output: String
    public var segments: Int
    public var frames: Int
    public var wallSeconds: Double
    /// Frames each segment kept, in segment order (as the plan said).
    public var segmentFrames: [Int]
    /// Absent when the run detached before the merge.
    public var verify: VerifyReport?
    /// The run handed its segments to a scheduler and returned (`--detach`); `vslice resume TASK` finishes it.
    public var detached: Bool = false
    /// The task's work folder (what `vslice segment --work-dir` takes).
    public var workDir: String? = nil
}

/// The transcode DAG: probe → (audio ∥ plan → encode[0…n-1]) → concat+mux → verify → publish.
public struct Transcoder: Sendable {
    public var request: TranscodeRequest
    public var logger: Logger
    public var onEvent: @Sendable (PipelineEvent) -> Void

    public init(request: TranscodeRequest, logger: Logger, onEvent: @escaping @Sendable (PipelineEvent) -> Void = { _ in }) {
        self.request = request
        self.logger = logger
        self.onEvent = onEvent
    }

    /// The work folder is made beside the output: writing there is tried first (`WorkFolder.writeRefusal`). A
    /// full disk is not refused here: the work's own writes report it.
    private static func probeWritable(_ dir: String, output: String) throws(VSliceError) {
        guard let e = WorkFolder.writeRefusal(dir), [EACCES, EPERM, EROFS].contains(e) else { return }
        throw VSliceError(.usage, "check output", path: output,
                          reason: "output folder '\(dir)' is not writable (\(String(cString: strerror(e))))")
    }

    /// Checks the request before any work: output container, output folder, output ≠ input, existing output.
    public static func checkPaths(input: String, output: String, force: Bool) throws(VSliceError) -> String {
        guard let format = Container.format(forPath: output) else {
            throw VSliceError(.usage, "choose container", path: output,
                              reason: "unknown output extension (use .mp4, .mov or .mkv)")
        }
        let fm = FileManager.default
        let dir = (Paths.absolute(output) as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "check output", path: output, reason: "output folder '\(dir)' does not exist")
        }
        guard fm.isWritableFile(atPath: dir) else {
            throw VSliceError(.usage, "check output", path: output, reason: "output folder '\(dir)' is not writable")
        }
        try probeWritable(dir, output: output)
        if fm.fileExists(atPath: input), Paths.canonical(input) == Paths.canonical(output) {
            throw VSliceError(.usage, "check output", path: output, reason: "output is the input file")
        }
        // What is at the output path itself, not what a symlink there points to: a dangling link exists too.
        var st = stat()
        if lstat(output, &st) == 0 {
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                throw VSliceError(.usage, "check output", path: output, reason: "the output path is a folder; name a file in it")
            case S_IFREG, S_IFLNK:
                if !force {
                    let what = (st.st_mode & S_IFMT) == S_IFLNK ? "a symlink exists at the output path" : "output exists"
                    throw VSliceError(.outputExists, "check output", path: output, reason: "\(what) (use --force to replace it)")
                }
            default:
                throw VSliceError(.usage, "check output", path: output, reason: "the output path is not a regular file (a pipe, socket or device)")
            }
        }
        return format
    }


    /// How a run behaves (none of this affects the output).
    public struct RunOptions: Sendable {
        /// Start over instead of resuming an unfinished task for the same input and output.
        public var fresh = false
        /// Attempts per segment before the task fails.
        public var maxAttempts = 3
        /// A segment attempt with no decoded frame for this many seconds is abandoned (and retried).
        public var stallTimeout = 300.0
        /// The ranges of `maxAttempts` and `stallTimeout`, for the command line's checks and the library's.
        public enum Limits {
            public static let maxAttempts = 1...10
            public static let stallTimeout = 0.001...1_000_000.0
        }

        /// Refuses values outside `Limits`.
        public func validate() throws(VSliceError) {
            if !Limits.maxAttempts.contains(maxAttempts) {
                throw VSliceError(.usage, "check options",
                                  reason: "--max-attempts takes \(Limits.maxAttempts.lowerBound) to \(Limits.maxAttempts.upperBound), got \(maxAttempts)")
            }
            if !Limits.stallTimeout.contains(stallTimeout) {
                throw VSliceError(.usage, "check options",
                                  reason: "--stall-timeout takes seconds above 0, up to \(Int(Limits.stallTimeout.upperBound)), got \(stallTimeout)")
            }
        }

        /// Resume exactly this task (`vslice resume`), instead of looking it up by input and output.
        public var taskId: TaskID? = nil
        /// With a remote executor: return once the segments are submitted (the task stays running).
        public var detach = false
        public init() {}
    }

    /// Runs the task for this request: a new one, or the unfinished one for the same input and output
    /// (resume). Finished steps are verified and skipped; the rest runs. Pre-flight checks → claim → the DAG
    /// walk → finish.
    public func run(store: JobStore, options: RunOptions = RunOptions()) throws(VSliceError) -> TranscodeReport {
        // The files a --process command names are part of its settings (read now, also for a stored request):
        // an edited script refuses a resume.
        var hashed = self
        hashed.request.settings = try request.settings.withProcessorFiles(notes: { [logger] in logger.warning("\($0)") })
        return try hashed.runHashed(store: store, options: options)
    }

    /// This transcode with what the processor's check heard it say it is (`XVSLICE_ID`) in its settings: part of
    /// the signature a resume compares.
    func identified(_ checked: Preflight) -> Transcoder {
        guard request.settings.process != nil else { return self }
        var me = self
        me.request.settings.process?.identity = checked.extras.processor?.identity
        return me
    }

    private func runHashed(store: JobStore, options: RunOptions) throws(VSliceError) -> TranscodeReport {
        let started = monotonicSeconds()
        try request.settings.validate()
        try options.validate()
        let input = Paths.absolute(request.input), out = Paths.absolute(request.output)

        // Everything that can be known up front is checked before a task or a work folder exists.
        let known: TaskRecord?
        if let id = options.taskId {
            guard let t = try store.task(id) else { throw VSliceError(.usage, "resume", reason: "no task '\(id)'") }
            known = t
        } else {
            known = try store.unfinishedTask(input: input, output: out)
        }
        let checked: Preflight
        let claim: Claim
        do throws(VSliceError) {
            checked = try preflight(input: input, known: known, store: store, options: options)
            claim = try identified(checked).claim(checked, input: input, output: out, known: known, store: store, options: options)
        } catch {
            // A task left `running` by a process that died, and refused now: say so in the ledger. So too a task
            // resumed by its ID (its own settings) that would be refused again: `resume --all` passes over it. Not
            // for a usage error: with the task's own options, that is this machine's state (a processor's module
            // missing from cron's PATH, a folder not writable), which may be mended.
            if let t = known, t.status == .running || (options.taskId != nil && error.failsAgain && error.kind != .usage) {
                store.markAbandoned(t.id, error: error)
            }
            throw error
        }
        for old in claim.discarded where !old.workDir.isEmpty {
            logger.info("discarding unfinished task", metadata: ["task": "\(old.id)"])
            try? GarbageCollector.remove(old, store: store)
        }
        return try identified(checked).walk(claim, checked, input: input, output: out, store: store, options: options, started: started)
    }

    /// What the pre-flight checks found out about the source and the output.
    struct Preflight {
        var source: Inspection
        var format: String
        /// This thread's CPU seconds when the checks began.
        var cpuAtStart: Double
        var probe: Probe { source.probe }
        var identity: FileIdentity { source.identity }
        var extras: SourceExtras { source.extras }
    }

    /// The source as the checks before any work found it: readable, probed (with a video stream), its identity,
    /// the filter's timing, what the processor puts out, the streams the output keeps.
    struct Inspection {
        var input: String
        var probe: Probe
        var video: VideoIndex
        var identity: FileIdentity
        var extras: SourceExtras
    }

    /// The checks before any work: the output's path and container, the executor, the encoders, the input
    /// (readable, probed), the filter and the streams the output keeps.
    func preflight(input: String, known: TaskRecord?, store: JobStore, options: RunOptions) throws(VSliceError) -> Preflight {
        let cpuAtStart = threadCPUSeconds()
        // A crash between publishing and recording it leaves our own file at the output: not "an existing output".
        let published = !options.fresh && (known.flatMap { try? store.publishedAlready($0) } ?? false)
        let format = try Transcoder.checkPaths(input: request.input, output: request.output, force: request.force || published)
        try request.executor.check(request: request, detach: options.detach)
        try EncoderCheck.check(request.settings, format: format, output: request.output)
        let source = try inspect(input: input, format: format, stallTimeout: options.stallTimeout)
        return Preflight(source: source, format: format, cpuAtStart: cpuAtStart)
    }

    /// Bad input is refused (probing checks readability first) before a task or a work folder exists; then what
    /// the source holds beside its video is decided (`sourceExtras`).
    func inspect(input: String, format: String, stallTimeout: Double) throws(VSliceError) -> Inspection {
        try InputFile.checkReadable(input)
        guard let identity = FileIdentity.of(input) else { throw FileIdentity.changed(input) }
        let probe = try Probe(path: input, expect: identity)
        guard let video = probe.video else { throw VSliceError(.input, "probe", path: input, reason: "no video stream") }
        // Context frames past the source's end are refused before the processor is even checked.
        _ = try ContextPlan.make(request.settings.context, segments: 1, frameCount: video.pts.count)
        let extras = try sourceExtras(input: input, probe: probe, video: video, format: format, identity: identity,
                                      stallTimeout: stallTimeout)
        return Inspection(input: input, probe: probe, video: video, identity: identity, extras: extras)
    }

    /// The filter's timing, what the processor puts out, what the output carries of the other streams (what it
    /// cannot is named), the audio encoders opened for their tracks, the HDR metadata: all decided before any work.
    func sourceExtras(input: String, probe: Probe, video: VideoIndex, format: String, identity: FileIdentity,
                      stallTimeout: Double) throws(VSliceError) -> SourceExtras {
        let settings = request.settings
        // A filter graph is built, and its timing measured, before any work: a bad or uncuttable one is refused.
        var filterTiming: FilterTiming? = nil
        if let vf = settings.videoFilter {
            let v = video
            try VideoFilterGraph.check(vf, source: input, videoStream: v.streamIndex)
            filterTiming = try FilterTiming.measure(vf, source: input, index: v)
        }
        // The processor runs on a few frames: a broken one is refused, and what it puts out is learnt.
        let checked = settings.process == nil ? nil
            : try ProcessorCheck.measure(source: input, index: video, settings: settings, expect: identity, muxer: format,
                                         stallTimeout: stallTimeout, timing: checkTiming, onStderrLine: { [logger] in logger.debug("processor (check): \($0)") })
        let layout = try SourceLayout(path: input)
        let streamPlan = try StreamPlan(layout, videoStream: video.streamIndex, format: format, settings: settings)
        if !streamPlan.dropped.isEmpty {
            logger.warning("not carried (the \(format) output cannot hold them; --strict-streams makes this an error): \(streamPlan.dropped.joined(separator: ", "))")
        }
        if !streamPlan.reencodedInsteadOfCopy.isEmpty {
            logger.warning("--acodec copy: \(streamPlan.reencodedInsteadOfCopy.joined(separator: ", ")) cannot be copied into \(format); re-encoded to aac")
        }
        // The audio encoders open now, set up for their tracks: a bad --acodec/--abitrate is refused here.
        try EncoderCheck.checkAudio(source: input, tracks: streamPlan.audio, settings: settings, format: format,
                                     output: request.output, expect: identity)
        let hdr = try HDRMetadata.read(source: input, videoStream: video.streamIndex)
        return SourceExtras(filterTiming: filterTiming, layout: layout, streams: streamPlan, hdr: hdr, processor: checked?.output,
                            processorCost: checked?.cost)
    }

    /// How the processor's check times it: on the first job slot's GPU; and, where the plan counts its timing
    /// (the default plan, nothing fixed by VSLICE_ELEMENT_COST or VSLICE_PROCESSOR_COST), with as many programs at
    /// once as the segments will run at once here — the jobs the cores hold at their threads each, or with
    /// `--gpus` the job slots on the first device — since each then starts and works slower than one alone.
    /// Elsewhere (`--executor` other than local) one: how many a node runs at once is the scheduler's.
    var checkTiming: ProcessorCheck.Timing {
        let s = request.settings
        var t = ProcessorCheck.Timing(gpu: s.gpus.first)
        guard Plan.measuresElementCost(s), ElementCost.given() == nil, ProcessorCost.given() == nil, !request.executor.isRemote else {
            return t
        }
        if let first = s.gpus.first {
            t.programs = (0..<max(1, s.jobs)).filter { s.gpus[$0 % s.gpus.count] == first }.count
        } else {
            t.programs = min(max(1, s.jobs), max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, s.threadsPerJob)))
        }
        return t
    }

    /// Takes the task in the ledger (a new one, or the unfinished one resumed), once the input's fingerprint
    /// is taken and the input is still the file that was checked.
    func claim(_ checked: Preflight, input: String, output: String, known: TaskRecord?, store: JobStore,
               options: RunOptions) throws(VSliceError) -> Claim {
        let fingerprint = try Fingerprint.of(input)
        guard FileIdentity.of(input) == checked.identity else { throw FileIdentity.changed(input) }
        return try store.claim(.init(input: input, output: output, fingerprint: fingerprint, request: request,
                                     taskId: options.taskId == nil ? nil : known?.id, fresh: options.fresh))
    }

    /// Walks the DAG for the claimed task under a stall watchdog and a heartbeat, then finishes it: done (its
    /// work folder removed), released to its scheduler (detached), or failed.
    func walk(_ claim: Claim, _ checked: Preflight, input: String, output: String, store: JobStore,
              options: RunOptions, started: Double) throws(VSliceError) -> TranscodeReport {
        let task = claim.task
        let published = claim.resumed && ((try? store.publishedAlready(task)) ?? false)
        if claim.resumed { logger.info("resuming task", metadata: ["task": "\(task.id)"]) }
        onEvent(.taskStarted(id: task.id, resumed: claim.resumed))
        let watchdog = StallWatchdog(timeout: options.stallTimeout)
        defer { watchdog.stop() }
        let running = RunningFrames(), told = onEvent
        let heartbeat = Heartbeat(store: store, task: task.id, running: running, onCancelled: { watchdog.cancelAll("the task was cancelled") },
                                  onLost: { watchdog.cancelAll("another process took the task over") })
        defer { heartbeat.stop() }
        let ctx = StageContext(request: request, task: task, store: store, source: checked.source,
                               output: output, format: checked.format,
                               options: options, watchdog: watchdog, published: published, logger: logger,
                               onEvent: { running.apply($0); told($0) },
                               preflight: Transcoder.preflightCost(started: started, cpuAtStart: checked.cpuAtStart))
        do throws(VSliceError) {
            do {
                try FileManager.default.createDirectory(atPath: task.workDir, withIntermediateDirectories: true)
            } catch {
                throw VSliceError(.processing, "create work folder", path: task.workDir, reason: plainReason(error))
            }
            let outcome = try TranscodeDAG.run(ctx)
            let report = TranscodeReport(task: task.id, input: request.input, output: request.output, segments: ctx.plan.segments.count,
                                         frames: ctx.plan.frameCount, wallSeconds: monotonicSeconds() - started,
                                         segmentFrames: ctx.keptFrames, verify: ctx.verify, detached: outcome == .detached,
                                         workDir: task.workDir)
            if outcome == .detached {
                // The segments run under the scheduler; the task stays running, with no process holding it.
                try store.releaseDetached(task.id)
            } else {
                try store.finishTask(task.id, status: .done)
                if !request.keepTemp {
                    ProcessorLogs.keep(task, store: store, all: request.keepLogs)
                    try? FileManager.default.removeItem(atPath: task.workDir)
                }
            }
            return report
        } catch {
            throw failed(task, error: error, heartbeat: heartbeat, store: store, input: input)
        }
    }

    /// Records a failed walk in the ledger (failed, interrupted or cancelled), removes a work folder that no
    /// resume could use, and returns the error to report.
    func failed(_ task: TaskRecord, error: VSliceError, heartbeat: Heartbeat, store: JobStore, input: String) -> VSliceError {
        // A holder that lost its lease touches nothing: the task and its files are another process's now.
        if heartbeat.lost || !store.holdsLease(task.id) { return JobStore.leaseLost(task.id) }
        let cancelled = (try? store.status(of: task.id)) == .cancelled
        let status: TaskStatus = cancelled ? .cancelled : error.kind == .interrupted || Cancellation.stopRequested ? .interrupted : .failed
        var error = error
        if error.isDiskFull {
            error.reason += " — the disk is full; free space, then run the same command to resume (finished segments are kept)"
        }
        // Bad input or bad options fail again on every resume: nothing in the work folder is worth keeping.
        let discard = cancelled || error.kind == .input || error.kind == .usage
        // On a full job store disk this write fails too: the task stays `running` under this (ending) process,
        // which `status` shows as interrupted and the same command takes over — the error below is still the cause.
        try? store.finishTask(task.id, status: status, failure: error, discardWork: discard)
        if discard && !request.keepTemp {
            try? FileManager.default.removeItem(atPath: task.workDir)
            try? FileManager.default.removeItem(atPath: task.partFile)
        } else {
            Transcoder.removeUnrecordedPart(task, store: store)
        }
        if cancelled {
            return VSliceError(.interrupted, "transcode", path: input, reason: "the task was cancelled (vslice cancel)")
        }
        return error
    }

    /// Removes a merged file whose merge the ledger does not record as done (its commit failed, on a full disk):
    /// a resume merges again, so it is only space taken. Kept when the ledger cannot be read.
    static func removeUnrecordedPart(_ task: TaskRecord, store: JobStore) {
        let part = task.partFile
        guard FileManager.default.fileExists(atPath: part) else { return }
        do {
            if try store.eventDone(task.id, .mux) == nil { try? FileManager.default.removeItem(atPath: part) }
        } catch {}
    }

    /// Resumes a stored task by its ID (or ID prefix), with the request it was started with.
    public static func resume(taskId: TaskID, store: JobStore, logger: Logger, options: RunOptions = RunOptions(),
                              jobs: Int? = nil, onEvent: @escaping @Sendable (PipelineEvent) -> Void = { _ in })
        throws(VSliceError) -> TranscodeReport {
        guard let t = try store.task(taskId) else { throw VSliceError(.usage, "resume", reason: "no task '\(taskId)'") }
        // Said before the checks, which would otherwise refuse the newer task's output as "output exists".
        guard t.status.isResumable else { throw notResumable(t, store: store) }
        guard var request = t.storedRequest else {
            throw VSliceError(.resumeRefused, "resume task \(t.id.short)", path: t.output,
                              reason: "the task was stored without its options; run the same transcode command again")
        }
        if let jobs { request.settings.jobs = jobs }
        var options = options
        options.taskId = t.id
        return try Transcoder(request: request, logger: logger, onEvent: onEvent).run(store: store, options: options)
    }

    /// Why a finished task cannot be resumed, naming the task that replaced it, if one did.
    static func notResumable(_ t: TaskRecord, store: JobStore) -> VSliceError {
        let newer = ((try? store.tasks()) ?? []).filter { $0.input == t.input && $0.output == t.output && $0.createdAt > t.createdAt }
            .max { $0.createdAt < $1.createdAt }
        let why: String
        if let newer, t.status == .cancelled {
            why = "the task was replaced by task \(newer.id.short) (\(newer.status.rawValue)), started for the same input and output with other settings"
                + (newer.status.isResumable ? ": `vslice resume \(newer.id.short)` goes on with it" : "")
        } else {
            why = "the task is \(t.status.rawValue)\(t.error.map { " (\($0))" } ?? "")"
        }
        return VSliceError(.usage, "resume task \(t.id.short)", path: t.output, reason: why + "; nothing to resume")
    }

    /// Wall and CPU seconds since a run's start (`monotonicSeconds()` and this thread's CPU then); for the first
    /// run in this process, since the process's start (all its CPU so far).
    static func preflightCost(started: Double, cpuAtStart: Double) -> (wall: Double, cpu: Double) {
        let wall = monotonicSeconds() - started
        guard firstRun.set() else { return (wall, threadCPUSeconds() - cpuAtStart) }
        return (max(wall, ProcessClock.age() ?? 0), processCPUSeconds())
    }
    private static let firstRun = AtomicFlag()

}

/// What the run knows of the source beyond its video index: the filter's timing, the container's streams and
/// metadata, and what the output keeps of them.
struct SourceExtras: @unchecked Sendable {
    var filterTiming: FilterTiming?
    var layout: SourceLayout
    var streams: StreamPlan
    var hdr: HDRMetadata?
    /// What the `--process` program puts out, learnt by running it on a few frames.
    var processor: ProcessorOutput? = nil
    /// What the check timed of the program (its start-up and work per frame), for the plan.
    var processorCost: ProcessorCost? = nil
}
